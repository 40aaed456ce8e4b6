"""Broken timeouts: the SIGALRM recipes that circulate in blog posts and answers,
each breaking one rule of the timeout kind.

:class:`AlarmScope` is the classic recipe (install a handler, arm the timer,
disarm and restore on exit); the others change one line of it or of the
reference.  Each docstring says which piece of folk knowledge it embodies.
"""

from __future__ import annotations

import math
import signal
import time
from types import TracebackType
from typing import Any, Dict, FrozenSet, List, Optional, Type

from ipc_specs.timeouts import protocol as p

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
                 tb: Optional[TracebackType]) -> Optional[bool]:
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


class LeavesHandlerScope(AlarmScope):
    """Disarms on exit but leaves its handler installed ("it only raises if the timer fires, and the
    timer is off"): the caller's SIGALRM handler is gone for good."""

    def __exit__(self, exc_type: Optional[Type[BaseException]], exc: Optional[BaseException],
                 tb: Optional[TracebackType]) -> None:
        self._disarm()
        return None


class ForgetsToDisarmScope(AlarmScope):
    """Restores the handler on exit but disarms only in cancel() ("a scope that returned in time
    has nothing left to fire"): the timer is still running, and SIGALRM's default action kills
    the process after the scope is gone."""

    def __exit__(self, exc_type: Optional[Type[BaseException]], exc: Optional[BaseException],
                 tb: Optional[TracebackType]) -> None:
        signal.signal(signal.SIGALRM, self.old)
        return None


class RestoresBeforeDisarmScope(AlarmScope):
    """Restores the handler first, logs the exit, then disarms: an expiry in between finds
    SIGALRM's default action and kills the process (a window of a few ms at the deadline)."""

    def __exit__(self, exc_type: Optional[Type[BaseException]], exc: Optional[BaseException],
                 tb: Optional[TracebackType]) -> None:
        signal.signal(signal.SIGALRM, self.old)
        time.sleep(0.002)  # "log the exit": anything that takes time between the two steps
        self._disarm()
        return None


class CeilSecondsScope(AlarmScope):
    """``alarm(math.ceil(seconds))``, to avoid alarm(0): 0.3 s becomes 1 s, 0.7 s too late."""

    def _arm(self) -> None:
        signal.alarm(math.ceil(self.seconds))


class SwallowingScope(AlarmScope):
    """"A timeout is an expected outcome": ``__exit__`` returns True on its own expiry, so the
    with ends quietly and the caller goes on as if the guarded code had finished."""

    def __exit__(self, exc_type: Optional[Type[BaseException]], exc: Optional[BaseException],
                 tb: Optional[TracebackType]) -> Optional[bool]:
        super().__exit__(exc_type, exc, tb)
        return self.fired and exc_type is TimeoutError


class CancelKeepsTimerScope(AlarmScope):
    """cancel() reports the time left (getitimer) but leaves the timer running: "cancelled" scopes
    still fire."""

    def cancel(self) -> float:
        return float(signal.getitimer(ITIMER_REAL)[0])


class UnclearRefusalScope(AlarmScope):
    """Refuses to run beside the caller's alarm, rightly, but with a bare RuntimeError the caller
    cannot tell from any other failure (and after zeroing that alarm to look at it)."""

    def __enter__(self) -> AlarmScope:
        left = signal.alarm(0)  # "is an alarm pending?" -- and now it is not
        if left:
            raise RuntimeError("an alarm is already set")
        return super().__enter__()


class CallerTimerHandedBackLateScope(AlarmScope):
    """Saves the caller's ITIMER_REAL and handler, and hands both back, but re-arms the caller's
    timer with the value it had at entry ("put back what was there"), not with what is left of
    it: the caller's deadline moves later by the time spent in the scope."""

    def __enter__(self) -> AlarmScope:
        self.saved = signal.setitimer(ITIMER_REAL, 0)
        return super().__enter__()

    def __exit__(self, exc_type: Optional[Type[BaseException]], exc: Optional[BaseException],
                 tb: Optional[TracebackType]) -> None:
        super().__exit__(exc_type, exc, tb)
        if self.saved[0] > 0:
            signal.setitimer(ITIMER_REAL, *self.saved)
        return None


class RefusalDropsCallerTimerTimeouts(ItimerTimeouts):
    """The reference as it was: outside the main thread ``signal.signal`` raises ValueError, a
    refusal of sorts, but only after the caller's ITIMER_REAL was disarmed to be saved: the
    process's one timer, armed by the main thread, is gone."""

    def _enter(self, scope: ItimerScope) -> None:
        with self._critical():  # no look at the thread first: _save_caller zeroes, then fails
            if not self.stack:
                self._save_caller()
            scope.deadline = time.monotonic() + scope.seconds
            self.stack.append(scope)
            self._arm()


class AssertionTimeout(AssertionError):
    """A library's timeout class derived from AssertionError ("a timeout is a failed expectation")."""


class AssertionClassTimeouts(ItimerTimeouts):
    """The reference, raising (and declaring) a class derived from AssertionError: test runners and
    ``except AssertionError`` clauses take a timeout for a failed check."""

    exception = AssertionTimeout


class WholeSecondCancelKeepsAlarmScope(WholeSecondAlarmScope):
    """A whole-second ``alarm()`` scope (claiming no sub_second) whose cancel() reads what is
    left with ``getitimer`` and leaves the alarm running: a cancelled scope still fires."""

    def cancel(self) -> float:
        return float(signal.getitimer(ITIMER_REAL)[0])


#: What a plain scope recipe promises: no nesting (so nothing that needs it is checked).
PLAIN = frozenset({p.INTERRUPTS_BLOCKING, p.CANCEL, p.SUB_SECOND})


def _recipe(name: str, scope_class: type, capabilities: Optional[FrozenSet[str]] = None) -> Any:
    """A backend claiming what the reference claims (or ``capabilities``), whose scopes are ``scope_class``."""
    factory = type(scope_class.__name__ + "Timeouts", (), {"timeout": lambda self, s: scope_class(s)})
    attrs: Dict[str, Any] = {"name": name, "factory": factory}
    if capabilities is not None:
        attrs["capabilities"] = capabilities
    return type(scope_class.__name__ + "Backend", (ItimerTimeoutsBackend,), attrs)()


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
    Exhibit(_recipe("broken-zeroes-caller-alarm-timeout", AlarmScope, PLAIN),
            "caller_alarm_and_handler_survive_the_scope",
            "setitimer returns the timer it replaces: a scope hands the caller's alarm back, nesting claimed or not."),
    Exhibit(_recipe("broken-leaves-handler-timeout", LeavesHandlerScope, PLAIN),
            "signal_state_restored_on_every_exit_path",
            "signal.signal returns the handler it replaces: a scope puts it back on every exit, in its own process."),
    Exhibit(_recipe("broken-fires-after-exit-timeout", ForgetsToDisarmScope, PLAIN),
            "scope_left_early_never_fires_later",
            "Leaving a scope early must disarm its timer, or SIGALRM arrives after the scope is gone."),
    Exhibit(_recipe("broken-restore-before-disarm-timeout", RestoresBeforeDisarmScope, PLAIN),
            "scopes_ending_near_their_deadline_leave_no_trace",
            "Disarm the timer before restoring the handler, or an expiry in between meets SIGALRM's default."),
    Exhibit(_recipe("broken-ceil-seconds-timeout", CeilSecondsScope, frozenset({p.INTERRUPTS_BLOCKING, p.SUB_SECOND})),
            "timeout_is_no_later_than_a_control_timer",
            "Rounding a duration up to whole seconds for alarm() makes a 0.3 s timeout fire 0.7 s late."),
    Exhibit(_recipe("broken-swallowing-timeout", SwallowingScope, PLAIN),
            "timeout_fires_once_and_interrupts_guarded_code",
            "An __exit__ that returns True on its own expiry hides the timeout from the caller."),
    Exhibit(_recipe("broken-cancel-keeps-timer-timeout", CancelKeepsTimerScope,
                    frozenset({p.INTERRUPTS_BLOCKING, p.SUB_SECOND, p.CANCEL_DISARMS})),
            "cancelled_scope_never_fires",
            "Reading the time left is not cancelling: cancel() must disarm the timer."),
    Exhibit(_recipe("broken-unclear-refusal-timeout", UnclearRefusalScope, PLAIN),
            "caller_alarm_and_handler_survive_the_scope",
            "A scope that will not share SIGALRM refuses with ScopeRefused and leaves the caller's alarm alone."),
    Exhibit(_recipe("broken-caller-timer-handed-back-late-timeout", CallerTimerHandedBackLateScope, PLAIN),
            "caller_alarm_and_handler_survive_the_scope",
            "Hand the caller's timer back with what is left of it, not what it read at entry, or its deadline slips."),
    Exhibit(_recipe("broken-caller-timer-rearmed-from-entry-timeout", CallerTimerHandedBackLateScope, PLAIN),
            "signal_state_restored_on_every_exit_path",
            "A timer handed back must read no more than it did before the scope, less the time spent in it."),
    Exhibit(_recipe("broken-disarms-caller-timer-timeout", AlarmScope, PLAIN),
            "signal_state_restored_on_every_exit_path",
            "setitimer(0) on exit disarms whatever timer the process had: hand back the one setitimer returned."),
    Exhibit(_reference_variant("broken-refusal-drops-caller-timer-timeout", RefusalDropsCallerTimerTimeouts),
            "scope_outside_main_thread_works_alone_or_refuses_cleanly",
            "Refuse outside the main thread before touching the process's one ITIMER_REAL, not after zeroing it."),
    Exhibit(_reference_variant("broken-assertion-class-timeout", AssertionClassTimeouts),
            "declared_timeout_class_is_not_an_unrelated_error",
            "A timeout class derived from AssertionError reads as a failed check: derive it from TimeoutError."),
    Exhibit(_recipe("broken-whole-second-cancel-keeps-alarm-timeout", WholeSecondCancelKeepsAlarmScope,
                    frozenset({p.INTERRUPTS_BLOCKING, p.CANCEL_DISARMS})),
            "cancelled_scope_never_fires",
            "A whole-second scope is checked on whole seconds: its cancel() must disarm the alarm it armed."),
]
