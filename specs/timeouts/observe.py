"""A scope's events seen from outside it, without replacing the backend's handler:
what it armed, and the SIGALRMs delivered while it was active.

"armed" is a reading of ITIMER_REAL just after the scope was entered (a thread-based
scope arms none).  "fired" counts SIGALRMs through ``signal.set_wakeup_fd``: CPython's
C-level handler writes the number of each signal it catches to that fd, whatever Python
handler the backend installed (Python docs, signal.set_wakeup_fd, paraphrased), so the
count is the kernel's side of the story next to the scope's own ``fired`` flag.  The fd
can be set from the main thread only, and must be non-blocking; elsewhere the count is
not taken.  A wakeup fd set before (asyncio sets one) is put back afterwards.
"""

from __future__ import annotations

import os
import signal
import threading
from typing import Optional, Tuple

from ..harness.worker import Proc


class AlarmWatch:
    """Counts SIGALRMs between :meth:`start` and :meth:`stop`; notes "armed" and "fired"."""

    def __init__(self, proc: Proc) -> None:
        self.proc = proc
        self.pipe: Optional[Tuple[int, int]] = None  # (read end, write end) while watching
        self.previous = -1
        #: SIGALRMs seen while the scope was active; None where they could not be counted.
        self.sigalrms: Optional[int] = None

    def start(self) -> None:
        """Just before entering the scope."""
        if threading.current_thread() is not threading.main_thread():
            return  # set_wakeup_fd raises ValueError outside the main thread
        r, w = os.pipe()
        os.set_blocking(r, False)
        os.set_blocking(w, False)  # the C handler must never block on a full pipe
        try:
            self.previous = signal.set_wakeup_fd(w)
        except (ValueError, OSError):
            os.close(r)
            os.close(w)
            return
        self.pipe = (r, w)

    def armed(self) -> None:
        """Just after entering the scope: what ITIMER_REAL now counts down."""
        left, every = signal.getitimer(signal.ITIMER_REAL)
        self.proc.note("armed", f"ITIMER_REAL {left * 1000:.3f} ms" + (f", every {every:g} s" if every else "")
                       if left > 0 else "no ITIMER_REAL armed")

    def stop(self) -> Optional[int]:
        """Just after leaving the scope: put the previous wakeup fd back and note the SIGALRMs."""
        if self.pipe is None:
            return None
        r, w = self.pipe
        self.pipe = None
        got = b""
        try:  # a stray alarm of a broken scope may raise anywhere here: restore and close anyway
            while True:
                chunk = os.read(r, 4096)
                if not chunk:
                    break
                got += chunk
        except BlockingIOError:
            pass
        finally:
            signal.set_wakeup_fd(self.previous)  # first: the C handler must never write to a closed fd
            os.close(r)
            os.close(w)
        self.sigalrms = got.count(bytes([int(signal.SIGALRM)]))
        if self.sigalrms:
            self.proc.note("fired", f"{self.sigalrms} SIGALRM delivered while the scope was active")
        else:
            self.proc.note("no_sigalrm", "no SIGALRM delivered while the scope was active")
        return self.sigalrms
