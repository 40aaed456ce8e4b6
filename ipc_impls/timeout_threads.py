"""A scope that works in any thread: a timer thread raises TimeoutError in the thread that
entered the scope (``PyThreadState_SetAsyncExc``), with no signal and no process timer.

The C API delivers the exception when the target thread next runs Python bytecode
(Python/C API docs, "PyThreadState_SetAsyncExc", paraphrased), so it interrupts pure
Python code only: a thread blocked in ``time.sleep`` or ``select`` sees it when the call
returns.  It therefore does not claim ``interrupts_blocking_calls``, nor nesting or
cancel.  The thread that *enters* the scope is the one interrupted, wherever the scope
was built.
"""

from __future__ import annotations

import ctypes
import threading
from types import TracebackType
from typing import Any, FrozenSet, Optional, Type

from ipc_specs.harness.resources import Scope
from ipc_specs.timeouts import protocol as p

from .timeouts import TimeoutChannel

_SET_ASYNC_EXC: Any = ctypes.pythonapi.PyThreadState_SetAsyncExc


def _raise_in(ident: int, exc: Optional[type]) -> None:
    """Make ``exc`` pending in thread ``ident``; None clears a pending one."""
    _SET_ASYNC_EXC(ctypes.c_ulong(ident), ctypes.py_object(exc) if exc is not None else None)


class AsyncExcScope:
    def __init__(self, seconds: float) -> None:
        self.seconds = float(seconds)
        #: True once the TimeoutError reached the guarded code: it is made (its __init__
        #: runs) in the interrupted thread when it is raised there, never before.
        self.fired = False
        self.sent = False
        self.lock = threading.Lock()
        self.done = False
        self.ident = 0
        self.timer: Optional[threading.Timer] = None
        scope = self

        class ScopeTimeout(TimeoutError):
            def __init__(self, *args: Any) -> None:
                super().__init__(*(args or (f"timeout of {scope.seconds:g} s expired",)))
                scope.fired = True

        self.exception = ScopeTimeout

    def __enter__(self) -> AsyncExcScope:
        self.ident = threading.get_ident()  # the entering thread, not the building one
        self.timer = threading.Timer(self.seconds, self._fire)
        self.timer.daemon = True
        self.timer.start()
        return self

    def _fire(self) -> None:
        with self.lock:
            if not self.done:
                self.sent = True
                _raise_in(self.ident, self.exception)

    def __exit__(self, exc_type: Optional[Type[BaseException]], exc: Optional[BaseException],
                 tb: Optional[TracebackType]) -> None:
        self._disarm()  # returns None: a TimeoutError propagates

    def cancel(self) -> float:
        raise NotImplementedError("not claimed")

    def _disarm(self) -> None:
        with self.lock:
            self.done = True
            if self.sent and not self.fired:
                # Sent as the guarded code ended, not raised yet: withdrawn, so that it
                # never lands outside the scope (the scope then did not fire).
                _raise_in(self.ident, None)
        if self.timer is not None:
            self.timer.cancel()
            if self.timer is not threading.current_thread():
                self.timer.join()


class AsyncExcTimeouts:
    def timeout(self, seconds: float) -> AsyncExcScope:
        if seconds <= 0:
            raise ValueError(f"timeout must be positive, got {seconds!r}")
        return AsyncExcScope(seconds)


class AsyncExcTimeoutsBackend:
    name = "async-exc-timeouts"
    kind = "timeout"
    wiring = "inherit"
    capabilities: FrozenSet[str] = frozenset({p.SUB_SECOND})
    factory: type = AsyncExcTimeouts

    def setup(self, scope: Scope) -> TimeoutChannel:
        return TimeoutChannel(self.factory)


BACKENDS = [AsyncExcTimeoutsBackend()]
