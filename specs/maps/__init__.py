"""Shared key-value maps: fixed slots in a mapped file under flock, and SQLite.
See ``protocol`` for the contract, ``checks`` and ``limit_checks`` for the
invariants, ``roles`` for what workers run."""

from . import checks, limit_checks  # noqa: F401  (register the invariants)
from .protocol import MAP, MapChannel, MapHandle

__all__ = ["MAP", "MapChannel", "MapHandle"]
