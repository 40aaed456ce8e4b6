"""Faults that Hypothesis draws *inside* other invariants, as one more dimension.

Separate invariants state what each fault does on its own (a killed holder, a
handler during a blocking read, a full buffer, EPIPE).  Drawn inside the delivery
invariants, a fault asks the harder question: does the mechanism still keep its
promises when the fault lands at a moment the backend did not choose?

``interrupts``: while a role runs, a thread of its own process interrupts the main
thread again and again with a signal whose Python handler returns at once.  Every
blocking system call the role is in fails with EINTR.  CPython retries those
(PEP 475), so pure-Python backends see nothing; C extensions do not, and code
that takes EINTR for "done" (``except InterruptedError: return b''``) or for "timed
out" breaks.  posix_ipc raises ``SignalError`` and sysv_ipc raises
``sysv_ipc.Error('Signaled while waiting')``: a backend over them must retry, with
what is left of its timeout.  Drawn in process placements only: in the thread
placement the signal would hit the test runner's own main thread.

``kills``: one role the check marks ``killable`` is SIGKILLed a drawn 0, 1, 5 or
20 ms after it reaches the point from which it may die (``proc.arm_kill()``, after
its set-up handshakes): in the middle of a write, blocked on a full buffer, or
waiting to close.  The kernel closes a dead process's descriptors and releases its
flock locks, but not what user space keeps for it: a count of live writers in shared
memory is never decremented (``broken-writer-registry``), a ``multiprocessing.Lock``
it held is never released.  The
check states what the survivors may observe (for streams with EOF on close: the
others' bytes complete, the victim's a prefix of its own, and EOF still comes).
Drawn in the fork placement only: a pool worker is reused, and killing it would
cost a fresh spawn.

Each fault is meaningful only where a check says how to judge it, so each
invariant opts in (``@invariant(..., faults=[INTERRUPTS, KILLS])``).
"""

from __future__ import annotations

import os
import signal
import threading
from types import FrameType
from typing import Any, List, Optional

#: Fault names an invariant can opt in to.
INTERRUPTS = "interrupts"
KILLS = "kills"
FAULTS = (INTERRUPTS, KILLS)
#: Drawn with the invariant's own data; "0" (no fault) first, so examples shrink to it.
INTERRUPT_PERIODS_US = (0, 5000, 1000, 200)
#: Chosen because its default action is to be ignored: one that arrives after the
#: role's handler is gone (or before it is installed) does nothing at all.
INTERRUPT_SIGNAL = signal.SIGWINCH
#: Placements a fault can be drawn in.
FAULT_PLACEMENTS = frozenset({"fork", "spawn", "forkserver"})
#: How long after ``arm_kill`` the victim dies; drawn with an index that picks the victim.
KILL_DELAYS_MS = (0, 1, 5, 20)
KILL_PLACEMENTS = frozenset({"fork"})
#: Where each fault is drawn.
PLACEMENTS_OF = {INTERRUPTS: FAULT_PLACEMENTS, KILLS: KILL_PLACEMENTS}


def arm_kill(after_s: float) -> threading.Timer:
    """SIGKILL this process ``after_s`` from now, from a timer thread; cancel to spare it."""
    timer = threading.Timer(after_s, os.kill, (os.getpid(), signal.SIGKILL))
    timer.daemon = True
    timer.start()
    return timer


class InterruptStorm:
    """Interrupt the main thread every ``period_s`` while the ``with`` block runs.

    The pestering thread starts with every signal blocked, so that signals meant
    for the process (the parent's deadline signal, a check's own) still go to the
    main thread, as they would without it.
    """

    def __init__(self, period_s: float) -> None:
        self.period_s = period_s
        #: Signals the handler saw: evidence in the history that the fault did land.
        self.count = 0
        self._stop = threading.Event()
        self._thread: Optional[threading.Thread] = None
        self._previous: Any = None

    def _handler(self, signum: int, frame: Optional[FrameType]) -> None:
        self.count += 1

    def _pester(self, target: int) -> None:
        while not self._stop.wait(self.period_s):
            try:
                signal.pthread_kill(target, INTERRUPT_SIGNAL)
            except (ProcessLookupError, OSError):  # the main thread is exiting
                return

    def __enter__(self) -> InterruptStorm:
        self._previous = signal.signal(INTERRUPT_SIGNAL, self._handler)
        target = threading.main_thread().ident
        assert target is not None
        self._thread = threading.Thread(target=self._pester, args=(target,), name="interrupt-storm", daemon=True)
        held: List[int] = list(signal.valid_signals())
        old = signal.pthread_sigmask(signal.SIG_BLOCK, held)
        try:
            self._thread.start()  # it inherits the all-blocked mask
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, old)
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        # Back to the default (ignore): a signal still in flight is then harmless.
        signal.signal(INTERRUPT_SIGNAL, self._previous if self._previous is not None else signal.SIG_DFL)
