"""The reference timeout: nesting-aware scopes on ``setitimer(ITIMER_REAL)``.

The process has one real-time timer, so every scope of a :class:`ItimerTimeouts`
shares it: the scopes form a stack of absolute deadlines (``time.monotonic``),
the timer is always armed for the earliest live one, and the SIGALRM handler
raises TimeoutError for the *outermost* expired scope (its guarded region
contains every inner one).  Leaving a scope re-arms for what is left, so an
inner scope can neither cancel nor extend an outer one.

The Python-level handler runs between any two bytecodes of the main thread,
including inside this module's bookkeeping; a reentrancy counter defers an
expiry that arrives there until the bookkeeping is done.

A SIGALRM handler and an ITIMER_REAL (or alarm()) the caller armed outside
every scope are handed back: the outermost scope saves both on entry, the
caller's deadline joins the scopes' (an expiry there calls the caller's handler,
or takes its default action), and leaving the last scope disarms first, then
restores the handler, then re-arms the caller's timer for what is left of it.

Entered in a thread other than the main thread, a scope refuses with ScopeRefused
before touching the timer or the handler (Python installs signal handlers from
the main thread only, and runs them there).
"""

from __future__ import annotations

import os
import signal
import threading
import time
from contextlib import contextmanager
from types import TracebackType
from typing import Any, FrozenSet, Iterator, List, Optional, Type

from ipc_specs.harness.resources import Scope
from ipc_specs.timeouts import protocol as p

ITIMER_REAL = signal.ITIMER_REAL
#: setitimer(0) disarms, so a deadline already due is armed with the smallest value that fires.
TINY = 1e-6


class ItimerScope:
    def __init__(self, owner: ItimerTimeouts, seconds: float) -> None:
        self.owner = owner
        self.seconds = float(seconds)
        self.deadline = 0.0
        self.fired = False
        self.cancelled = False

    def __enter__(self) -> ItimerScope:
        self.owner._enter(self)
        return self

    def __exit__(self, exc_type: Optional[Type[BaseException]], exc: Optional[BaseException],
                 tb: Optional[TracebackType]) -> None:
        self.owner._leave(self)  # returns None: a TimeoutError (ours or an outer one's) propagates

    def cancel(self) -> float:
        return self.owner._cancel(self)


class ItimerTimeouts:
    """The scopes of one process; the channel hands every worker its own copy (fork)."""

    #: The class its timeouts raise (the contract's optional ``exception``).
    exception: Type[BaseException] = TimeoutError

    def __init__(self) -> None:
        self.stack: List[ItimerScope] = []
        self.saved_handler: Any = None
        #: The caller's ITIMER_REAL while scopes are active: its absolute deadline and interval.
        self.outer: Optional[float] = None
        self.outer_interval = 0.0
        self.busy = 0
        self.deferred = False

    def timeout(self, seconds: float) -> ItimerScope:
        if seconds <= 0:
            raise ValueError(f"timeout must be positive, got {seconds!r}")
        return ItimerScope(self, seconds)

    # --- bookkeeping, never interrupted half-way -------------------------------------------
    @contextmanager
    def _critical(self) -> Iterator[None]:
        self.busy += 1
        try:
            yield
        finally:
            self.busy -= 1
            if not self.busy and self.deferred:
                self.deferred = False
                self._expire()  # may raise: the expiry is delivered here, after the bookkeeping

    def _enter(self, scope: ItimerScope) -> None:
        if threading.current_thread() is not threading.main_thread():
            # Checked before anything is touched: saving the caller's timer disarms it, and
            # signal.signal would only refuse afterwards (ValueError), with that timer lost.
            raise p.ScopeRefused("SIGALRM scopes work in the main thread only (where Python runs handlers)")
        with self._critical():
            if not self.stack:
                self._save_caller()
            scope.deadline = time.monotonic() + scope.seconds
            self.stack.append(scope)
            self._arm()

    def _leave(self, scope: ItimerScope) -> None:
        with self._critical():
            if scope not in self.stack:
                return  # left already: its own expiry or an enclosing one's popped it
            # Scopes entered after this one are left already (LIFO), even if an
            # expiry interrupted their __exit__ before it could pop them.
            self._pop(scope)

    def _pop(self, scope: ItimerScope) -> None:
        """Remove ``scope`` and every scope inside it; re-arm, or hand SIGALRM back to the caller."""
        del self.stack[self.stack.index(scope):]
        if self.stack:
            self._arm()
        else:
            self._restore_caller()

    def _cancel(self, scope: ItimerScope) -> float:
        with self._critical():
            live = not (scope.fired or scope.cancelled) and scope in self.stack
            left = max(0.0, scope.deadline - time.monotonic()) if live else 0.0
            scope.cancelled = True
            if self.stack:
                self._arm()
            return left

    def _save_caller(self) -> None:
        # Disarm before installing our handler, so the caller's timer cannot expire into it.
        # The clock is read right after the timer, before anything else: the deadline it
        # gives is late by whatever passes between the two readings.
        value, interval = signal.setitimer(ITIMER_REAL, 0)
        now = time.monotonic()
        self.saved_handler = signal.signal(signal.SIGALRM, self._on_alarm)
        self.outer = now + value if value > 0 else None
        self.outer_interval = interval

    def _restore_caller(self) -> None:
        # Disarm, then restore the handler, then re-arm: in the other order an expiry in
        # between would reach the wrong handler (or none, and kill the process).
        signal.setitimer(ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, signal.SIG_DFL if self.saved_handler is None else self.saved_handler)
        self.deferred = False
        if self.outer is not None:
            signal.setitimer(ITIMER_REAL, max(self.outer - time.monotonic(), TINY), self.outer_interval)
            self.outer = None

    def _live(self) -> List[ItimerScope]:
        return [s for s in self.stack if not (s.fired or s.cancelled)]

    def _arm(self) -> None:
        live = self._live()
        deadlines = [s.deadline for s in live] + ([self.outer] if self.outer is not None else [])
        if not deadlines:
            signal.setitimer(ITIMER_REAL, 0)
            return
        signal.setitimer(ITIMER_REAL, max(min(deadlines) - time.monotonic(), TINY))

    # --- expiry ---------------------------------------------------------------------------
    def _on_alarm(self, signum: int, frame: Any) -> None:
        if self.busy:
            self.deferred = True
            return
        self._expire()

    def _expire(self) -> None:
        now = time.monotonic()
        if self.outer is not None and self.outer <= now:
            self._caller_expired(now)
        due = [s for s in self._live() if s.deadline <= now]
        if not due:
            self._arm()  # early or stale SIGALRM: wait for the real deadline
            return
        scope = due[0]  # the outermost expired scope
        scope.fired = True
        for inner in self.stack[self.stack.index(scope) + 1:]:
            inner.cancelled = True  # abandoned: this expiry unwinds through them, they must not fire too
        # Left here and now, not in __exit__: an expiry that lands in __exit__'s first
        # bytecodes, before it reaches _leave, would otherwise leave the scope on the
        # stack and our handler installed for good (found by the near-deadline check).
        self._pop(scope)
        raise self.exception(f"timeout of {scope.seconds:g} s expired")

    def _caller_expired(self, now: float) -> None:
        """The caller's own timer came due while scopes are active: what the kernel would have done."""
        self.outer = now + self.outer_interval if self.outer_interval else None
        handler = self.saved_handler
        if callable(handler):
            handler(signal.SIGALRM, None)  # may raise: then it unwinds through the scopes, as it would have
        elif handler != signal.SIG_IGN:  # SIG_DFL (or not set from Python): SIGALRM terminates the process
            signal.signal(signal.SIGALRM, signal.SIG_DFL)
            os.kill(os.getpid(), signal.SIGALRM)


class TimeoutChannel:
    def __init__(self, factory: type) -> None:
        self.factory = factory

    def open_timeouts(self) -> Any:
        return self.factory()

    def detach(self) -> None:
        pass

    def teardown(self) -> None:
        pass


class ItimerTimeoutsBackend:
    name = "itimer-timeouts"
    kind = "timeout"
    wiring = "inherit"
    capabilities: FrozenSet[str] = frozenset({p.INTERRUPTS_BLOCKING, p.NESTING, p.CANCEL, p.SUB_SECOND})
    factory: type = ItimerTimeouts

    def setup(self, scope: Scope) -> TimeoutChannel:
        return TimeoutChannel(self.factory)


BACKENDS = [ItimerTimeoutsBackend()]
