"""The timeout contract: scopes that interrupt guarded code when their time is up.

Libraries offer timeouts as context managers or decorators built on SIGALRM,
``setitimer`` or threads.  A backend of this kind hands each worker, through
``open_timeouts()``, a factory whose ``timeout(seconds)`` returns a scope::

    with timeouts.timeout(0.25) as scope:
        guarded_code()          # interrupted by TimeoutError after 0.25 s
    # scope.fired tells whether *this* scope's deadline interrupted the code

The rules: a scope fires exactly once and interrupts the guarded code, even
when it is blocked in a system call (``interrupts_blocking_calls``); the
TimeoutError propagates out of the ``with`` (an inner scope never swallows an
outer scope's expiry); ``cancel()`` disarms the scope and returns the time
that was left; nested scopes are independent — an inner scope neither cancels
nor extends an outer one, and leaving it restores the outer deadline; and a
duration below one second is honoured, never rounded to 0 or to "never".

A timeouts object may declare the class its scopes raise (``exception``, a
class attribute; TimeoutError when absent): libraries that raise their own class
are checked against it.  A scope that cannot coexist with a SIGALRM handler and
timer armed by its caller may refuse at entry by raising :class:`ScopeRefused`
(after changing nothing); one that accepts must hand both back on every exit.

SIGALRM-based scopes act on the whole process, so every example runs in a
fresh forked worker.  pytest-timeout's ``signal`` method arms SIGALRM in the
pytest process only: a fork does not inherit ITIMER_REAL (alarm(2), fork(2)),
so the scopes under test never see that timer, and the harness's own guard on
parent calls stands aside while another alarm is pending (README, "Timeouts and
pytest-timeout").
"""

from __future__ import annotations

from types import TracebackType
from typing import Optional, Type

try:
    from typing import Protocol
except ImportError:  # pragma: no cover
    from typing_extensions import Protocol  # type: ignore

from ..backend import Kind, register_kind

INTERRUPTS_BLOCKING = "interrupts_blocking_calls"
NESTING = "nesting"
CANCEL = "cancel"
SUB_SECOND = "sub_second"
CANCEL_DISARMS = "cancel_disarms"


class ScopeRefused(RuntimeError):
    """Raised by a scope's ``__enter__`` that will not run beside a SIGALRM handler or an
    ITIMER_REAL/alarm its caller armed; it must leave both exactly as they were."""

TIMEOUT = register_kind(
    Kind(
        name="timeout",
        summary="scoped timeouts that interrupt the guarded code with TimeoutError",
        capabilities={
            INTERRUPTS_BLOCKING: "guarded code blocked in time.sleep or select() is interrupted too (not only "
            "pure-Python loops)",
            NESTING: "scopes may nest; each keeps its own deadline",
            CANCEL: "scope.cancel() disarms the scope and returns the seconds that were left (implies "
            "cancel_disarms)",
            CANCEL_DISARMS: "scope.cancel() disarms the scope (what it returns is not promised)",
            SUB_SECOND: "durations below one second are honoured as given",
        },
        channel_members=("open_timeouts",),
    )
)


class TimeoutScope(Protocol):
    fired: bool
    """True once this scope's own deadline has interrupted the guarded code."""

    def __enter__(self) -> TimeoutScope:
        """Start the clock: the deadline is ``seconds`` after entering."""

    def __exit__(self, exc_type: Optional[Type[BaseException]], exc: Optional[BaseException],
                 tb: Optional[TracebackType]) -> Optional[bool]:
        """Disarm this scope and restore any enclosing scope's deadline; never swallow a TimeoutError."""

    def cancel(self) -> float:
        """Disarm the scope early; return the seconds that were left (0.0 if it already fired)."""


class Timeouts(Protocol):
    # Optional: ``exception``, the class this object's timeouts raise (TimeoutError when absent).
    def timeout(self, seconds: float) -> TimeoutScope:
        """A new, not yet entered, scope of ``seconds`` (a float; any positive value)."""


class TimeoutChannel(Protocol):
    def open_timeouts(self) -> Timeouts: ...

    def detach(self) -> None: ...

    def teardown(self) -> None: ...


# --- call and executor forms (issue 15 items 9-11; kept apart from the scope contract above) ---
# ``run(seconds, fn, *args, **kwargs)`` is the form of decorators and function wrappers;
# an executor runs ``fn`` in another thread or process.  A backend that offers only this
# form claims CALL_ONLY, which makes every scope invariant n/a (``excluded_by``), so the
# scope backends of today need claim nothing new.  ``open_timeouts()``'s object may carry
# ``exception``: the class its timeouts raise (absent: TimeoutError).
from typing import Any, Callable  # noqa: E402  (kept inside this block, for a clean merge)

CALL_FORM = "call_form"
CALL_ONLY = "call_only"
EXECUTOR = "executor"
STOPS_GUARDED_CODE = "stops_guarded_code"

TIMEOUT.capabilities.update({
    CALL_FORM: "timeouts.run(seconds, fn, *args, **kwargs) calls fn under a timeout and returns its result",
    CALL_ONLY: "the object offers only run(), no timeout(seconds) scope: the scope invariants do not apply",
    EXECUTOR: "run() calls fn in another thread or process and releases the caller at the deadline, even "
              "when fn ignores the timeout",
    STOPS_GUARDED_CODE: "when run() raises its timeout, fn's thread or process, and every process it started, "
                        "has been stopped (without it fn is only abandoned)",
})


class CallTimeouts(Protocol):
    def run(self, seconds: float, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """``fn(*args, **kwargs)`` under a timeout of ``seconds``: its result, or its exception
        unchanged, or the timeout's exception once ``seconds`` have passed."""
# --- end of call and executor forms ---
