"""Timeouts: scopes (context managers) that interrupt guarded code, and the call form
(``run(seconds, fn, ...)``: decorators, wrappers, executors).  See ``protocol`` for the
contract, ``checks``, ``call_checks`` and ``thread_checks`` for the invariants, and the
``*roles`` modules for what workers run."""

# ruff: noqa: I001  (the order of registration is the catalogue's: scope invariants first)

from . import checks, scope_checks  # noqa: F401  (register the invariants)
from . import call_checks, thread_checks  # noqa: F401  (register the invariants)
from ..invariant import exclude_when_claimed, registered
from .protocol import CALL_FORM, CALL_ONLY, TIMEOUT, ScopeRefused, TimeoutChannel, Timeouts, TimeoutScope

#: Invariants about what every timeout backend declares, whichever form it offers.
ANY_FORM = {scope_checks.declared_timeout_class_is_not_an_unrelated_error.__name__}

# Keep last, after every checks module: any other invariant of this family that does not need
# the call form checks the scope form, so it is n/a for a backend that offers only run().
exclude_when_claimed([i.id for i in registered() if i.family == "timeout" and CALL_FORM not in i.requires
                      and i.id not in ANY_FORM], CALL_ONLY)

__all__ = ["TIMEOUT", "ScopeRefused", "TimeoutChannel", "TimeoutScope", "Timeouts"]
