"""Timeouts: scopes (context managers) that interrupt guarded code.  See ``protocol``
for the contract, ``checks`` for the invariants, ``roles`` for what workers run."""

from . import checks, scope_checks  # noqa: F401  (register the invariants)
from .protocol import TIMEOUT, ScopeRefused, TimeoutChannel, Timeouts, TimeoutScope

__all__ = ["TIMEOUT", "ScopeRefused", "TimeoutChannel", "TimeoutScope", "Timeouts"]
