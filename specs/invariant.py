"""Invariants and the registry that names them.

An invariant is a rule about an IPC mechanism that a backend either keeps or
breaks.  Each one has a stable id written as a statement
(``eof_after_last_writer_closes``), the rule in one sentence, an RFC 2119
level, the source the rule comes from, the capabilities a backend must claim
for it to apply, and a check function.

A check never returns a verdict: it returns normally when the rule held for
every example, raises :class:`Violation` when it found a counterexample, and
raises :class:`Unsupported` or :class:`Unresolved` when it could not judge.
That makes checks usable from pytest, unittest or a plain script alike.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, FrozenSet, Iterable, List, Optional, TypeVar

from .harness.faults import FAULTS

# Re-exported: checks and backends import them from here (``from ..invariant import expect``).
from .violation import Unresolved as Unresolved
from .violation import Unsupported as Unsupported
from .violation import Violation as Violation
from .violation import describe_bytes_mismatch as describe_bytes_mismatch
from .violation import expect as expect
from .violation import short_repr as short_repr
from .violation import shown_against as shown_against


class Level(str, enum.Enum):
    """How strongly the source states the rule (RFC 2119), or that it is a documented hazard.

    ``HAZARD`` is not a fourth degree of recommendation: it marks a known defect or trap
    of a real implementation that its own maintainers document (a CPython issue, a
    warning in the docs).  Such an "invariant" states the hazard as a fact, applies only to
    backends that declare it (a capability naming the hazard), and its check confirms
    that the declared hazard really bites, so that code relying on the opposite is caught.
    "pass" then means "the declared hazard is real here", never "recommended behaviour".
    """

    MUST = "MUST"
    SHOULD = "SHOULD"
    MAY = "MAY"
    HAZARD = "HAZARD"


#: ``check(backend, case)``; the case is the harness's (``harness.run.Case``), which this
#: registry never looks into: it sits below the harness, which imports it.
CheckFn = Callable[[Any, Any], None]
_Check = TypeVar("_Check", bound=CheckFn)


@dataclass(frozen=True)
class Invariant:
    """One rule, its provenance, and the function that checks it."""

    id: str
    family: str
    level: Level
    rule: str
    source: str
    requires: FrozenSet[str]
    check: CheckFn = field(repr=False, compare=False)
    #: Placements the check is meaningful in; empty means every placement.
    placements: FrozenSet[str] = frozenset()
    #: Faults the harness may draw into its examples (``harness.faults``).
    faults: FrozenSet[str] = frozenset()
    #: Claims that rule the invariant out (n/a): a backend claiming one offers no form the
    #: check could use (a decorator-only timeout library has no ``with`` scope).  Lets a
    #: kind grow a second form without its existing backends having to claim the first.
    excluded_by: FrozenSet[str] = frozenset()

    def missing(self, capabilities: Iterable[str]) -> List[str]:
        """The required capabilities a backend does not claim, sorted."""
        return sorted(self.requires - frozenset(capabilities))

    def excluding(self, capabilities: Iterable[str]) -> List[str]:
        """The claims among ``capabilities`` that rule this invariant out, sorted."""
        return sorted(self.excluded_by & frozenset(capabilities))


_REGISTRY: Dict[str, Invariant] = {}


def invariant(
    id: str,
    *,
    family: str,
    level: Level,
    rule: str,
    source: str,
    requires: Iterable[str] = (),
    placements: Iterable[str] = (),
    faults: Iterable[str] = (),
    excluded_by: Iterable[str] = (),
) -> Callable[[_Check], _Check]:
    """Register ``fn`` as the check of a new invariant.

    Ids are global and stable: reports, ``explain`` and the Hypothesis
    database all key on them, so renaming one is a breaking change.
    """

    def register(fn: _Check) -> _Check:
        if id in _REGISTRY:
            raise ValueError(f"invariant id {id!r} registered twice")
        if not id.isidentifier() or id.lower() != id:
            raise ValueError(f"invariant id {id!r} must be a lower_snake_case statement")
        unknown = sorted(set(faults) - set(FAULTS))
        if unknown:
            raise ValueError(f"invariant {id!r}: unknown faults {unknown}; expected some of {FAULTS}")
        _REGISTRY[id] = Invariant(
            id=id,
            family=family,
            level=level,
            rule=" ".join(rule.split()),
            source=" ".join(source.split()),
            requires=frozenset(requires),
            check=fn,
            placements=frozenset(placements),
            faults=frozenset(faults),
            excluded_by=frozenset(excluded_by),
        )
        return fn

    return register


def exclude_when_claimed(ids: Iterable[str], capability: str) -> None:
    """Rule the invariants ``ids`` out for backends claiming ``capability`` (see
    :attr:`Invariant.excluded_by`); for a family whose checks of one form live in
    several modules, decided once all of them are imported."""
    from dataclasses import replace

    for id in ids:
        inv = _REGISTRY[id]
        _REGISTRY[id] = replace(inv, excluded_by=inv.excluded_by | {capability})


#: Imports every family, so that its kind and invariants register themselves.  The
#: families import this module, so it cannot import them: ``ipc_specs.registry``, the top
#: of the package (imported by ``ipc_specs/__init__.py``), installs it.
_family_loader: Optional[Callable[[], None]] = None
#: Kind name -> its position in the catalogue; installed alongside the loader.
_family_order: Callable[[], Dict[str, int]] = dict


def install_family_loader(loader: Callable[[], None], order: Callable[[], Dict[str, int]] = dict) -> None:
    global _family_loader, _family_order
    _family_loader = loader
    _family_order = order


def family_order() -> Dict[str, int]:
    """Kind name -> its position in the catalogue (``ipc_specs.registry.family_order``)."""
    return _family_order()


def load_all_families() -> None:
    """Import every spec module so that its invariants register themselves."""
    if _family_loader is not None:
        _family_loader()


def registered() -> List[Invariant]:
    """Every invariant registered so far, in registration order (see
    ``ipc_specs.registry.all_invariants`` for the catalogue's order)."""
    return list(_REGISTRY.values())


def all_invariants(family: Optional[str] = None) -> List[Invariant]:
    """Registered invariants in the catalogue's order, optionally of one family."""
    load_all_families()
    order = family_order()
    found = [inv for inv in _REGISTRY.values() if family is None or inv.family == family]
    return sorted(found, key=lambda inv: order.get(inv.family, len(order)))


def get_invariant(id: str) -> Invariant:
    load_all_families()
    try:
        return _REGISTRY[id]
    except KeyError:
        raise KeyError(f"no invariant with id {id!r}") from None
