"""Shared memory: mmap, multiprocessing.shared_memory, posix_ipc and sysv_ipc segments.
See ``protocol`` for the contract, ``checks`` and ``lifetime_checks`` for the invariants,
``roles`` for what workers run."""

from . import checks, lifetime_checks  # noqa: F401  (register the invariants)
from .protocol import SHM, Segment, ShmChannel

__all__ = ["SHM", "Segment", "ShmChannel"]
