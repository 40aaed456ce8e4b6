"""PEP 475 for C extensions: retry a blocking call that a signal interrupted.

CPython retries its own system calls after EINTR once the signal's handler has
returned, and recomputes what is left of a timeout.  posix_ipc and sysv_ipc do
not: a signal that lands while they wait raises ``posix_ipc.SignalError`` or
``sysv_ipc.Error('Signaled while waiting')``.  Taking that for a failure, an empty
queue or a timeout is the classic EINTR bug, which the suite's ``interrupts``
fault draws into the delivery checks (``ipc_specs.harness.faults``).
"""

from __future__ import annotations

import time
from typing import Callable, Optional, TypeVar

import posix_ipc
import sysv_ipc

T = TypeVar("T")

#: sysv_ipc reports EINTR as its base ``Error`` with this text (semaphore.c, mq.c).
SYSV_EINTR_TEXT = "Signaled while waiting"


def interrupted(exc: BaseException) -> bool:
    """True if ``exc`` is how posix_ipc or sysv_ipc say that a signal cut a wait short."""
    if isinstance(exc, posix_ipc.SignalError):
        return True
    return type(exc) is sysv_ipc.Error and str(exc) == SYSV_EINTR_TEXT


def retry_interrupted(call: Callable[[Optional[float]], T], timeout: Optional[float]) -> T:
    """``call(remaining)`` again after each interruption, with what is left of ``timeout``.

    ``timeout`` None waits for ever; 0 is a poll (which no signal interrupts).  Any
    exception a signal handler raised (KeyboardInterrupt) propagates as usual: it
    surfaces when the handler runs, before the next attempt.
    """
    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
        try:
            return call(remaining)
        except (posix_ipc.Error, sysv_ipc.Error) as exc:
            if not interrupted(exc):
                raise
