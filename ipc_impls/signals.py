"""The reference signal facilities: thin wrappers over the stdlib ``signal`` and ``os``.

The channel holds no state: every call acts on the process that makes it, so
the same object works in every forked worker.  ``sigtimedwait`` returns only
(si_signo, si_pid), the part of ``struct_siginfo`` the invariants judge.
"""

from __future__ import annotations

import os
import signal
from typing import FrozenSet, Iterable, Optional, Set, Tuple

from ipc_specs.harness.resources import Scope
from ipc_specs.signals import protocol as p


class PosixSignals:
    """``signal.*`` and ``os.kill``/``os.read`` as they are (CPython on Linux)."""

    def alarm(self, seconds: int) -> int:
        return signal.alarm(seconds)

    def setitimer(self, which: int, seconds: float, interval: float = 0.0) -> Tuple[float, float]:
        return signal.setitimer(which, seconds, interval)

    def getitimer(self, which: int) -> Tuple[float, float]:
        return signal.getitimer(which)

    def kill(self, pid: int, signum: int) -> None:
        os.kill(pid, signum)

    def pthread_sigmask(self, how: int, signals: Iterable[int]) -> Set[int]:
        return {int(s) for s in signal.pthread_sigmask(how, signals)}

    def sigpending(self) -> Set[int]:
        return {int(s) for s in signal.sigpending()}

    def sigtimedwait(self, signals: Iterable[int], timeout: float) -> Optional[p.Dequeued]:
        info = signal.sigtimedwait(signals, timeout)
        return None if info is None else (info.si_signo, info.si_pid)

    def signal(self, signum: int, handler: p.Handler) -> p.Handler:
        return signal.signal(signum, handler)  # type: ignore[arg-type,return-value]

    def set_wakeup_fd(self, fd: int) -> int:
        return signal.set_wakeup_fd(fd)

    def read(self, fd: int, n: int) -> bytes:
        return os.read(fd, n)


class SignalChannel:
    """Hands each worker the facilities object; nothing to detach or tear down."""

    def __init__(self, facilities: PosixSignals) -> None:
        self.facilities = facilities

    def open_process(self) -> PosixSignals:
        return self.facilities

    def detach(self) -> None:
        pass

    def teardown(self) -> None:
        pass


class PosixSignalsBackend:
    """Claims everything the kind defines: this *is* the kernel's and CPython's behaviour."""

    name = "posix-signals"
    kind = "signal"
    wiring = "inherit"
    capabilities: FrozenSet[str] = frozenset({p.ALARM, p.ITIMER, p.SIGWAIT, p.REALTIME, p.HANDLERS, p.WAKEUP_FD})
    facilities_class: type = PosixSignals

    def setup(self, scope: Scope) -> SignalChannel:
        return SignalChannel(self.facilities_class())


BACKENDS = [PosixSignalsBackend()]
