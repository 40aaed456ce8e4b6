"""File exchange: temp-file result exchange, atomic publish, O_APPEND logs, flock/lockf locks.
See ``protocol`` for the contract, ``checks`` and ``lock_checks`` for the invariants, ``roles`` for what workers run."""

from . import checks, lock_checks  # noqa: F401  (register the invariants)
from .protocol import FILE, FileChannel, FileLock, LogWriter

__all__ = ["FILE", "FileChannel", "FileLock", "LogWriter"]
