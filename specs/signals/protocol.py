"""The contract of "a process's signal facilities": alarm, interval timer, kill,
signal mask, synchronous dequeue, handlers and the wakeup fd.

A backend's channel hands each worker, through ``open_process()``, an object
that acts on *the calling process* (the reference wraps the stdlib ``signal``
and ``os`` modules).  Wrapping them behind one small interface lets a library
that emulates or re-implements signals (a signal "bus", a timer service, a
sandbox) be judged by the same invariants as the kernel.

Signal state (mask, dispositions, the ITIMER_REAL timer) belongs to the whole
process, so every invariant of this family runs in a fresh forked worker and
nothing touches the process that runs the suite.

Why order and count are observed with ``sigtimedwait`` and never with Python
handlers: CPython's C-level handler only sets a per-signal "tripped" flag and
the Python handler runs later, once per flag, so five queued SIGRTMIN may run
the Python handler once.  And when several pending signals are unblocked at
once the kernel stacks one handler frame per signal, so the C handlers run in
*reverse* dequeue order.  ``sigtimedwait`` dequeues one instance at a time, in
the kernel's order, with the sender's pid.
"""

from __future__ import annotations

from typing import Any, Callable, Iterable, Optional, Set, Tuple, Union

try:
    from typing import Protocol
except ImportError:  # pragma: no cover
    from typing_extensions import Protocol  # type: ignore

from ..backend import Kind, register_kind

ALARM = "alarm"
ITIMER = "itimer"
SIGWAIT = "sigwait"
REALTIME = "realtime_signals"
HANDLERS = "python_handlers"
WAKEUP_FD = "wakeup_fd"

SIGNAL = register_kind(
    Kind(
        name="signal",
        summary="the signal facilities of the calling process: alarm, ITIMER_REAL, kill, mask, "
        "sigtimedwait, handlers and the wakeup fd",
        capabilities={
            ALARM: "alarm(n) arms the process's one real-time timer in whole seconds, as alarm(2) does",
            ITIMER: "setitimer/getitimer(ITIMER_REAL) with microsecond values, sharing the timer with alarm()",
            SIGWAIT: "pthread_sigmask, sigpending and sigtimedwait follow POSIX (blocked signals stay pending)",
            REALTIME: "SIGRTMIN…SIGRTMAX are supported and queue one instance per send",
            HANDLERS: "signal() installs Python handlers that run in the main thread; read() is retried "
            "after a handler returns (PEP 475)",
            WAKEUP_FD: "set_wakeup_fd(fd) writes each delivered signal's number to a non-blocking fd",
        },
        channel_members=("open_process",),
    )
)

Handler = Union[Callable[[int, Any], Any], int, None]
#: What ``sigtimedwait`` returns for one dequeued instance: (si_signo, si_pid).
Dequeued = Tuple[int, int]


class SignalFacilities(Protocol):
    """The calling process's signal facilities; every call acts on this process."""

    def alarm(self, seconds: int) -> int:
        """Arm SIGALRM ``seconds`` from now (0 cancels) and return the seconds that
        were left on the previous alarm, rounded to nearest, never 0 while one was
        pending (alarm(2)).  A new alarm replaces the previous one."""

    def setitimer(self, which: int, seconds: float, interval: float = 0.0) -> Tuple[float, float]:
        """Arm the timer ``which`` (ITIMER_REAL shares alarm()'s timer); return the old
        (value, interval).  Any positive value, however small, arms the timer."""

    def getitimer(self, which: int) -> Tuple[float, float]:
        """The (value left, interval) of timer ``which``; (0.0, 0.0) when disarmed."""

    def kill(self, pid: int, signum: int) -> None:
        """Send ``signum`` to ``pid``.  ``signum == 0`` only checks that ``pid`` exists
        (ProcessLookupError otherwise) and sends nothing."""

    def pthread_sigmask(self, how: int, signals: Iterable[int]) -> Set[int]:
        """Change the calling thread's mask as ``signal.pthread_sigmask``; return the old mask."""

    def sigpending(self) -> Set[int]:
        """The signals pending for this process or thread while blocked."""

    def sigtimedwait(self, signals: Iterable[int], timeout: float) -> Optional[Dequeued]:
        """Dequeue one pending instance of one of ``signals`` (blocked by the caller):
        standard signals before real-time ones (Linux; among standard signals the order is
        unspecified), real-time ones lowest number first, FIFO within one real-time number.
        Return (signo, sender pid), or None once ``timeout`` seconds passed (0 polls and
        returns at once)."""

    def signal(self, signum: int, handler: Handler) -> Handler:
        """Install a Python handler (main thread only; ValueError elsewhere); return the old one."""

    def set_wakeup_fd(self, fd: int) -> int:
        """Make every delivered signal write its number as one byte to ``fd``; ``fd``
        must be non-blocking (ValueError otherwise).  -1 disables; returns the old fd."""

    def read(self, fd: int, n: int) -> bytes:
        """Blocking read: a signal whose handler returns does not end it (PEP 475: it
        is retried); only a handler that raises makes the exception propagate."""


class SignalChannel(Protocol):
    def open_process(self) -> SignalFacilities:
        """The facilities of the process that calls this (each worker calls it once)."""

    def detach(self) -> None: ...

    def teardown(self) -> None: ...
