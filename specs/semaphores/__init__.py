"""Semaphores and locks: multiprocessing, POSIX and System V semaphores, flock locks.
See ``protocol`` for the contract, ``checks`` and ``lifetime_checks`` for the
invariants, ``roles`` for what workers run."""

from . import checks, lateness_checks, lifetime_checks  # noqa: F401  (register the invariants)
from .protocol import SEMAPHORE, SemaphoreChannel, SemaphoreHandle

__all__ = ["SEMAPHORE", "SemaphoreChannel", "SemaphoreHandle"]
