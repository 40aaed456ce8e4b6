"""ipc_specs: executable specifications of inter-process communication.

This package imports neither pytest nor ``ipc_impls``: a backend author can run
every check from unittest or a script::

    import ipc_specs
    ipc_specs.check(my_backend, "eof_after_last_writer_closes", placement="fork")

``check`` returns when the invariant held, raises :class:`Violation` with a
minimal counterexample when it did not, and :class:`Unsupported` when the
backend does not claim what the invariant needs.
"""

from __future__ import annotations

from typing import Any, Dict, Optional

from .backend import Backend, Kind, unsupported_reason, validate_backend, validate_channel
from .harness.placements import PLACEMENTS
from .harness.run import Case, Harness, Role, default_harness
from .invariant import Invariant, Level, Unresolved, Unsupported, Violation, invariant
from .registry import all_invariants, get_invariant, kinds

__version__ = "0.1.0"


def check(backend: Any, invariant_id: str, *, placement: str = "fork", harness: Optional[Harness] = None) -> None:
    """Judge one invariant for one backend in one placement (see module docstring)."""
    problems = validate_backend(backend)
    if problems:
        raise TypeError(f"{backend!r} is not a valid backend: " + "; ".join(problems))
    inv = get_invariant(invariant_id)
    reason = unsupported_reason(backend, inv, placement)
    if reason:
        raise Unsupported(reason)
    h = harness or default_harness()
    inv.check(backend, h.case(backend, invariant_id, placement))


def check_all(backend: Any, *, harness: Optional[Harness] = None) -> Dict[str, str]:
    """Run every invariant of the backend's kind in every placement; returns id/placement -> verdict."""
    verdicts: Dict[str, str] = {}
    for inv in all_invariants(getattr(backend, "kind", None)):
        for placement in PLACEMENTS:
            key = f"{inv.id}[{placement}]"
            try:
                check(backend, inv.id, placement=placement, harness=harness)
                verdicts[key] = "pass"
            except Unsupported as exc:
                verdicts[key] = f"unsupported: {exc}"
            except Violation as exc:
                verdicts[key] = f"fail: {exc.got}"
    return verdicts


__all__ = [
    "Backend", "Case", "Harness", "Invariant", "Kind", "Level", "PLACEMENTS", "Role", "Unresolved",
    "Unsupported", "Violation", "all_invariants", "check", "check_all", "get_invariant", "invariant",
    "kinds", "unsupported_reason", "validate_backend", "validate_channel",
]
