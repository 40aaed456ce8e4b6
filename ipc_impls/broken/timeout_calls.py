"""Broken call-form timeouts (decorators, wrappers, executors) and scopes used from threads.

Each changes one thing in a reference of :mod:`ipc_impls.timeout_calls` or
:mod:`ipc_impls.timeouts`, the way published timeout decorators and recipes do, and
keeps every other rule: only its own invariant catches it.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from typing import Any, Callable, Dict, FrozenSet, List, Set

from ipc_specs.harness.worker import die_with_parent
from ipc_specs.timeouts import protocol as p

from ..timeout_calls import BACKENDS as CALLS
from ..timeout_calls import CallsBackend, ForkCalls, ItimerCalls, ThreadCalls
from ..timeout_threads import AsyncExcScope, AsyncExcTimeouts, AsyncExcTimeoutsBackend
from ..timeouts import ItimerScope, ItimerTimeouts, ItimerTimeoutsBackend
from . import Exhibit


class CallFailed(Exception):
    """The wrapper's own error class."""


class WrappingCalls(ItimerCalls):
    """Wraps whatever fn raised in its own class ("so callers catch one exception")."""

    def run(self, seconds: float, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        try:
            return super().run(seconds, fn, *args, **kwargs)
        except Exception as exc:
            if isinstance(exc, TimeoutError):
                raise
            raise CallFailed(f"{fn.__name__} failed: {exc!r}") from exc


class ExitSwallowingForkCalls(ForkCalls):
    """The child catches ``Exception`` only: SystemExit or KeyboardInterrupt end it with no
    result, which the parent takes for "fn returned None"."""

    def _child(self, w: int, fn: Callable[..., Any], args: Any, kwargs: Dict[str, Any]) -> None:
        import pickle

        try:
            os.setpgid(0, 0)
            die_with_parent()
            try:
                outcome: Any = ("returned", fn(*args, **kwargs))
            except Exception as exc:
                outcome = ("raised", exc)
            os.write(w, pickle.dumps(outcome))
        finally:
            os._exit(0)

    def run(self, seconds: float, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        try:
            return super().run(seconds, fn, *args, **kwargs)
        except RuntimeError:
            return None  # "no result: fn returned nothing"


class NoneOnNestedTimeoutCalls(ItimerCalls):
    """A nested call that times out returns None ("the outer call will report it")."""

    def __init__(self) -> None:
        super().__init__()
        self.depth = 0

    def run(self, seconds: float, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        self.depth += 1
        scope = self.scopes.timeout(seconds)
        try:
            with scope:
                return fn(*args, **kwargs)
        except TimeoutError:
            if scope.fired and self.depth > 1:
                return None
            raise
        finally:
            self.depth -= 1


_ACTIVE: Set[Any] = set()


class NonReentrantCalls(ItimerCalls):
    """A module-level set of the functions running under a timeout: a function already in
    it is refused ("a timeout is already active for it"), so recursion fails."""

    def run(self, seconds: float, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        if fn in _ACTIVE:
            raise RuntimeError(f"a timeout is already active for {fn.__name__}")
        _ACTIVE.add(fn)
        try:
            return super().run(seconds, fn, *args, **kwargs)
        finally:
            _ACTIVE.discard(fn)


class OverrideKeepsHandlerCalls(ItimerCalls):
    """The first duration is the default; a call with another one (a per-call override)
    takes a side path that installs the handler again afterwards, "ready for the next call"."""

    def __init__(self) -> None:
        super().__init__()
        self.default = 0.0

    def run(self, seconds: float, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        self.default = self.default or seconds
        try:
            return super().run(seconds, fn, *args, **kwargs)
        finally:
            if seconds != self.default and not self.scopes.stack:
                signal.signal(signal.SIGALRM, self.scopes._on_alarm)


class OverridingCalls:
    """timeout-decorator's signal recipe: handler, ``setitimer(seconds)``, then ``setitimer(0)``
    and the old handler back.  A nested call re-arms the one process timer for itself."""

    def handler(self, seconds: float) -> Callable[[int, Any], None]:
        def fire(signum: int, frame: Any) -> None:
            raise TimeoutError(f"timeout of {seconds:g} s expired")
        return fire

    def run(self, seconds: float, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        old = signal.signal(signal.SIGALRM, self.handler(seconds))
        signal.setitimer(signal.ITIMER_REAL, seconds)
        try:
            return fn(*args, **kwargs)
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, old)


class JoiningThreadCalls(ThreadCalls):
    """Waits for fn's thread to finish before raising ("tidy up first"): a stubborn fn
    holds the caller until it ends on its own."""

    def run(self, seconds: float, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        before = set(threading.enumerate())
        try:
            return super().run(seconds, fn, *args, **kwargs)
        except TimeoutError:
            for th in set(threading.enumerate()) - before:
                th.join()
            raise


class ChildOnlyForkCalls(ForkCalls):
    """Kills only the child, as ``Process.terminate()`` does: what fn started lives on."""

    def _kill(self, pid: int) -> None:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)


class SilentThreadTimeouts(ItimerTimeouts):
    """signal.signal raises ValueError outside the main thread; this catches it and arms
    the process timer anyway ("the handler must be there already")."""

    def _enter(self, scope: ItimerScope) -> None:
        with self._critical():
            if not self.stack:
                try:
                    self.saved_handler = signal.signal(signal.SIGALRM, self._on_alarm)
                except ValueError:
                    self.saved_handler = None
            scope.deadline = time.monotonic() + scope.seconds
            self.stack.append(scope)
            self._arm()

    def _leave(self, scope: ItimerScope) -> None:
        try:
            super()._leave(scope)
        except (ValueError, TypeError):
            pass


class NamedMainTimeouts(ItimerTimeouts):
    """Tells the main thread by its name: ``current_thread().name == 'MainThread'``."""

    def _enter(self, scope: ItimerScope) -> None:
        if threading.current_thread().name != "MainThread":
            raise RuntimeError("timeouts work only in the main thread")
        super()._enter(scope)


class BuilderThreadScope(AsyncExcScope):
    """Takes the thread to interrupt when the scope is built, not when it is entered."""

    def __init__(self, seconds: float) -> None:
        super().__init__(seconds)
        self.builder = threading.get_ident()

    def __enter__(self) -> BuilderThreadScope:
        super().__enter__()
        self.ident = self.builder
        return self


class BuilderThreadTimeouts(AsyncExcTimeouts):
    def timeout(self, seconds: float) -> BuilderThreadScope:
        return BuilderThreadScope(seconds)


class CoveringThreadCalls(ThreadCalls):
    """A call started while others run extends their deadlines to cover its own ("the outer
    call must live to collect the inner call's result"): a nested run() with a later deadline
    holds the outer caller until that one."""

    def __init__(self) -> None:
        self.running: List[Dict[str, float]] = []

    def run(self, seconds: float, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        mine = {"end": time.monotonic() + seconds}
        for other in self.running:
            other["end"] = max(other["end"], mine["end"])
        self.running.append(mine)
        box, done = self.start(fn, *args, **kwargs)
        try:
            while not done.wait(max(0.0, mine["end"] - time.monotonic())):
                if time.monotonic() >= mine["end"]:
                    raise TimeoutError(f"timeout of {seconds:g} s expired (the call goes on in its thread)")
        finally:
            self.running.remove(mine)
        return self.outcome(box)


class BusyFlagCalls(ItimerCalls):
    """Refuses re-entry with a busy flag ("one timed call at a time"), set on every call and
    cleared only when the timer fires: after a call that returned in time, every later call is
    refused.  It claims no nesting, so only calling it again in sequence shows the flag."""

    def __init__(self) -> None:
        super().__init__()
        self.busy = False

    def run(self, seconds: float, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        if self.busy:
            raise RuntimeError("a timed call is already running")
        self.busy = True
        try:
            return super().run(seconds, fn, *args, **kwargs)
        except TimeoutError:
            self.busy = False
            raise


class BlocksInHandlerCalls(OverridingCalls):
    """The decorator recipe, whose handler blocks SIGALRM before raising ("so that no second
    expiry interrupts the cleanup") and whose cleanup disarms and restores the handler but
    never unblocks: after a call that timed out, SIGALRM stays blocked in the caller."""

    def handler(self, seconds: float) -> Callable[[int, Any], None]:
        def fire(signum: int, frame: Any) -> None:
            signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGALRM})
            raise TimeoutError(f"timeout of {seconds:g} s expired")
        return fire


def _calls(name: str, factory: type, like: str, extra: FrozenSet[str] = frozenset(), without: str = "") -> CallsBackend:
    """A call backend claiming what the reference ``like`` claims (plus ``extra``, less ``without``)."""
    ref = next(b for b in CALLS if b.name == like)
    return CallsBackend(name, factory, (ref.capabilities | extra) - {without})


def _scopes(name: str, factory: type, like: type = ItimerTimeoutsBackend) -> Any:
    return type(factory.__name__ + "Backend", (like,), {"name": name, "factory": factory})()


EXHIBITS: List[Exhibit] = [
    Exhibit(_calls("broken-wrapping-decorator", WrappingCalls, "itimer-call-timeouts"),
            "call_passes_results_and_exceptions_unchanged",
            "A wrapper re-raises fn's exception as it is: wrapping it in the wrapper's own class breaks every "
            "except clause of the caller."),
    Exhibit(_calls("broken-exit-swallowing-fork-call", ExitSwallowingForkCalls, "fork-call-timeouts"),
            "call_passes_results_and_exceptions_unchanged",
            "SystemExit and KeyboardInterrupt are not Exceptions and classes made at run time cannot be pickled "
            "by name: a process executor that misses them returns None or another error instead."),
    Exhibit(_calls("broken-none-on-nested-timeout", NoneOnNestedTimeoutCalls, "itimer-call-timeouts"),
            "call_timeout_is_raised_never_returned",
            "A timeout is an exception at every depth: a nested call that returns None hands its caller a "
            "result fn never produced."),
    Exhibit(_calls("broken-non-reentrant-decorator", NonReentrantCalls, "itimer-call-timeouts"),
            "wrapped_call_can_be_called_again_reentrantly_and_recursively",
            "A decorated function may call itself: state kept at module level, per function, makes recursion "
            "fail."),
    Exhibit(_calls("broken-override-keeps-handler", OverrideKeepsHandlerCalls, "itimer-call-timeouts"),
            "call_duration_override_cleans_up_like_the_default",
            "Every duration leaves through the same cleanup: an override path that keeps its SIGALRM handler "
            "installed changes the process for everyone after it."),
    Exhibit(_calls("broken-overriding-decorator", OverridingCalls, "itimer-call-timeouts"),
            "nested_call_keeps_outer_deadline",
            "A process has one ITIMER_REAL: a nested decorator that arms it for itself delays the outer "
            "deadline to its own."),
    Exhibit(_calls("broken-joining-thread-call", JoiningThreadCalls, "thread-call-timeouts"),
            "executor_releases_caller_at_deadline",
            "A thread cannot be stopped, so joining it before raising holds the caller until the guarded code "
            "ends on its own."),
    Exhibit(_calls("broken-child-only-fork-call", ChildOnlyForkCalls, "fork-call-timeouts"),
            "stopped_guarded_code_leaves_nothing_running",
            "Killing a child does not kill what it started: a process executor kills the child's whole "
            "process group."),
    Exhibit(_calls("broken-claims-stopped-thread-call", ThreadCalls, "thread-call-timeouts",
                   frozenset({p.STOPS_GUARDED_CODE})),
            "stopped_guarded_code_leaves_nothing_running",
            "Python cannot stop a running thread: a thread executor abandons the guarded code and must not "
            "claim to stop it."),
    Exhibit(_scopes("broken-silent-thread-timeout", SilentThreadTimeouts),
            "scope_outside_main_thread_works_alone_or_refuses_cleanly",
            "signal.signal refuses outside the main thread for a reason: a scope that swallows the ValueError "
            "and arms the process timer anyway alarms the main thread instead."),
    Exhibit(_scopes("broken-named-main-timeout", NamedMainTimeouts),
            "scope_outside_main_thread_works_alone_or_refuses_cleanly",
            "A thread's name is only a label: tell the main thread by threading.main_thread(), not by "
            "'MainThread'."),
    Exhibit(_scopes("broken-builder-thread-timeout", BuilderThreadTimeouts, AsyncExcTimeoutsBackend),
            "scope_outside_main_thread_works_alone_or_refuses_cleanly",
            "A scope may be built in one thread and entered in another: the thread to interrupt is the one "
            "that enters it."),
    Exhibit(_calls("broken-covering-thread-call", CoveringThreadCalls, "thread-call-timeouts"),
            "nested_call_keeps_outer_deadline",
            "Each call of an executor keeps its own deadline: extending the outer call to cover a nested one "
            "holds the caller past the deadline it asked for."),
    Exhibit(_calls("broken-busy-flag-decorator", BusyFlagCalls, "itimer-call-timeouts", without=p.NESTING),
            "wrapped_call_can_be_called_again",
            "A decorated function is called again and again: a flag set by a call must be cleared however that "
            "call ends, not only when its timer fires."),
    Exhibit(_calls("broken-blocks-in-handler-decorator", BlocksInHandlerCalls, "itimer-call-timeouts",
                   without=p.NESTING),
            "call_duration_override_cleans_up_like_the_default",
            "The signal mask is part of the state a call hands back: a handler that blocks SIGALRM leaves every "
            "later timeout of the caller pending forever."),
]
