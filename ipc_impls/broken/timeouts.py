"""Broken timeouts: the SIGALRM recipes that circulate in blog posts and answers,
each breaking one rule of the timeout kind.

:class:`AlarmScope` is the classic recipe (install a handler, arm the timer,
disarm and restore on exit); the others change one line of it or of the
reference.  Each docstring says which piece of folk knowledge it embodies.
"""

from __future__ import annotations

import signal
from types import TracebackType
from typing import Any, List, Optional, Type

from ..timeouts import ItimerScope, ItimerTimeouts, ItimerTimeoutsBackend
from . import Exhibit

ITIMER_REAL = signal.ITIMER_REAL


class AlarmScope:
    """The recipe: ``signal.signal(SIGALRM, raise_timeout); setitimer(s)``; on exit
    ``setitimer(0)`` and restore the handler.  Fine alone; nested, the inner scope
    overwrites the outer one's timer and its exit disarms it for good."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.fired = False
        self.old: Any = None

    def __enter__(self) -> AlarmScope:
        self.old = signal.signal(signal.SIGALRM, self._fire)
        self._arm()
        return self

    def __exit__(self, exc_type: Optional[Type[BaseException]], exc: Optional[BaseException],
                 tb: Optional[TracebackType]) -> None:
        self._disarm()
        signal.signal(signal.SIGALRM, self.old)
        return None

    def cancel(self) -> float:
        return self._disarm()

    def _fire(self, signum: int, frame: Any) -> None:
        self.fired = True
        raise TimeoutError(f"timeout of {self.seconds:g} s expired")

    def _arm(self) -> None:
        signal.setitimer(ITIMER_REAL, self.seconds)

    def _disarm(self) -> float:
        return float(signal.setitimer(ITIMER_REAL, 0)[0])


class PeriodicScope(AlarmScope):
    """Passes the duration as setitimer's *interval* too (copied from a periodic-timer
    example), and skips the cleanup once fired ("it already went off"): the timer
    re-arms itself and fires again outside the scope."""

    def _arm(self) -> None:
        signal.setitimer(ITIMER_REAL, self.seconds, self.seconds)

    def __exit__(self, exc_type: Optional[Type[BaseException]], exc: Optional[BaseException],
                 tb: Optional[TracebackType]) -> None:
        if not self.fired:
            super().__exit__(exc_type, exc, tb)
        return None


class WholeSecondAlarmScope(AlarmScope):
    """``signal.alarm(int(seconds))``: alarm() takes whole seconds, so 0.5 s becomes
    alarm(0), which cancels instead of arming — the timeout never fires."""

    def _arm(self) -> None:
        signal.alarm(int(self.seconds))

    def _disarm(self) -> float:
        return float(signal.alarm(0))


class DurationNotLeftTimeouts(ItimerTimeouts):
    """cancel() returns the configured duration ("how long the timeout was") instead
    of the time that was left."""

    def _cancel(self, scope: ItimerScope) -> float:
        super()._cancel(scope)
        return scope.seconds


def _recipe(name: str, scope_class: type) -> Any:
    """A backend claiming what the reference claims, whose scopes are ``scope_class``."""
    factory = type(scope_class.__name__ + "Timeouts", (), {"timeout": lambda self, s: scope_class(s)})
    return type(scope_class.__name__ + "Backend", (ItimerTimeoutsBackend,), {"name": name, "factory": factory})()


def _reference_variant(name: str, factory: type) -> Any:
    return type(factory.__name__ + "Backend", (ItimerTimeoutsBackend,), {"name": name, "factory": factory})()


EXHIBITS: List[Exhibit] = [
    Exhibit(_recipe("broken-periodic-timeout", PeriodicScope), "timeout_fires_once_and_interrupts_guarded_code",
            "setitimer's second argument re-arms the timer: a one-shot timeout passes interval 0 and disarms on exit."),
    Exhibit(_recipe("broken-whole-second-alarm-timeout", WholeSecondAlarmScope), "sub_second_timeout_is_honoured",
            "alarm() counts whole seconds and alarm(0) cancels: use setitimer for anything below a second."),
    Exhibit(_reference_variant("broken-duration-not-left-timeout", DurationNotLeftTimeouts),
            "cancel_returns_time_left_and_disarms",
            "Cancelling reports the time that was left, as alarm() and setitimer() do, not the duration."),
    Exhibit(_recipe("broken-inner-overrides-outer-timeout", AlarmScope), "nested_timeout_keeps_outer_deadline",
            "A process has one ITIMER_REAL: a nested timeout must save and restore the outer deadline itself."),
]
