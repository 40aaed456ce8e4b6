"""Timed waits that round their timeout up to whole seconds: each waits at least as long as
asked, so lower bounds pass, and is caught only against a control of the same duration.

Kept apart from ``semaphores.py`` and ``queues.py`` so that their gallery can change freely.
"""

from __future__ import annotations

import math
from typing import List, Optional

from ipc_specs.queues.protocol import Received

from ..queues import PosixEndpoint
from ..semaphores import MpHandle
from . import Exhibit
from .queues import _posix_variant
from .semaphores import _mp_variant


class CeilSecondsAcquire(MpHandle):
    """``acquire(True, math.ceil(ms / 1000))``, to avoid the truncation to 0: 50 ms waits a second."""

    def acquire_timeout(self, timeout_ms: int) -> bool:
        return bool(self.sem.acquire(True, math.ceil(timeout_ms / 1000)))


class CeilSecondsReceive(PosixEndpoint):
    """A receive timeout rounded up to whole seconds ("the queue library takes seconds")."""

    def receive(self, *, select: int = 0, timeout_ms: Optional[int] = None) -> Received:
        rounded = None if timeout_ms is None else 1000 * math.ceil(timeout_ms / 1000)
        return super().receive(select=select, timeout_ms=rounded)


EXHIBITS: List[Exhibit] = [
    Exhibit(_mp_variant("broken-ceil-seconds-acquire", CeilSecondsAcquire),
            "timed_acquire_gives_up_no_later_than_a_control",
            "Rounding a timeout up to whole seconds keeps the lower bound and makes 50 ms wait a whole second."),
    Exhibit(_posix_variant("broken-ceil-seconds-receive", CeilSecondsReceive),
            "timed_receive_gives_up_no_later_than_a_control",
            "A receive timeout rounded up to whole seconds passes every lower bound and still waits far too long."),
]
