"""The backend API shared by every kind, and its validation.

A backend is any object with

* ``name``          a short unique name (``os-pipe``), used in test ids and reports;
* ``kind``          which contract it implements (``stream``, ``queue``, …);
* ``capabilities``  the claims it makes (a set of strings from its kind's table);
* ``wiring``        ``"inherit"`` when the channel reaches workers by fork only
                    (``os.pipe()`` descriptors), ``"process-arg"`` when it can be
                    handed to any new process as a ``multiprocessing.Process``
                    argument (``multiprocessing`` objects, made with the context of
                    ``scope.start_method``), or ``"named"`` when workers open it by
                    name (FIFO paths, POSIX names); and
* ``setup(scope)``  which makes a fresh channel for one example, in the parent.

The channel's own methods depend on the kind (see each family's ``protocol``
module).  Every channel also has ``detach()``, called in each process once it has
opened what it needs (drop inherited references it does not use), and
``teardown()``, called once in the parent at the end of the example.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, FrozenSet, List, Optional, Tuple

try:
    from typing import Protocol, runtime_checkable
except ImportError:  # pragma: no cover
    from typing_extensions import Protocol, runtime_checkable  # type: ignore

from .harness.resources import Scope
from .invariant import Invariant, family_order, load_all_families

WIRINGS = ("inherit", "named", "process-arg")
#: Placements whose workers are not forked from the parent: a channel reaches them by name,
#: or (``process-arg``) as an argument of a worker started for the example.
NAMED_ONLY_PLACEMENTS = ("spawn", "forkserver")
#: Wirings that reach the workers of NAMED_ONLY_PLACEMENTS.
REACHES_ANY_PROCESS = ("named", "process-arg")
THREAD_SAFE = "thread_safe"


@runtime_checkable
class Backend(Protocol):
    name: str
    kind: str
    capabilities: FrozenSet[str]
    wiring: str

    def setup(self, scope: Scope) -> Any: ...


@dataclass(frozen=True)
class IntAttribute:
    """A number a backend of some kind must state (``max_value``), and its sane range."""

    name: str
    low: int
    high: int


@dataclass(frozen=True)
class Kind:
    """A contract: what a channel of this kind offers and which claims it can make."""

    name: str
    summary: str
    capabilities: Dict[str, str]
    channel_members: Tuple[str, ...]
    #: Numbers a backend of this kind states besides its capabilities.
    int_attributes: Tuple[IntAttribute, ...] = ()
    #: Names (str) a backend of this kind states, e.g. the exception an overflow raises.
    str_attributes: Tuple[str, ...] = ()


_KINDS: Dict[str, Kind] = {}


#: The package (``ipc_specs.streams`` …) that registered each kind.
_PACKAGES: Dict[str, str] = {}


def register_kind(kind: Kind) -> Kind:
    import sys

    _KINDS[kind.name] = kind
    _PACKAGES[kind.name] = sys._getframe(1).f_globals.get("__name__", "").rpartition(".")[0]
    return kind


def registered_kinds() -> Dict[str, Kind]:
    """Every kind, every family loaded first, in no particular order (``ipc_specs.kinds()``,
    from ``ipc_specs.registry``, gives the catalogue's order)."""
    load_all_families()
    return dict(_KINDS)


def kinds() -> Dict[str, Kind]:
    """Every kind, in the catalogue's order (as ``ipc_specs.kinds()``)."""
    order = family_order()
    return dict(sorted(registered_kinds().items(), key=lambda item: order.get(item[0], len(order))))


def kind_packages() -> Dict[str, str]:
    """Kind name -> the package that registered it (``ipc_specs.streams`` …)."""
    return dict(_PACKAGES)


def validate_backend(obj: Any) -> List[str]:
    """Everything wrong with ``obj`` as a backend, one sentence each (empty: fine)."""
    problems: List[str] = []
    for member in ("name", "kind", "capabilities", "wiring", "setup"):
        if not hasattr(obj, member):
            problems.append(f"missing attribute {member!r}")
    if problems:
        return problems
    if not isinstance(obj.name, str) or not obj.name:
        problems.append(f"name must be a non-empty str, got {obj.name!r}")
    known = registered_kinds()
    kind = known.get(obj.kind)
    if kind is None:
        problems.append(f"kind {obj.kind!r} is not one of {sorted(known)}")
    if obj.wiring not in WIRINGS:
        problems.append(f"wiring {obj.wiring!r} is not one of {WIRINGS}")
    if not callable(obj.setup):
        problems.append("setup is not callable")
    caps = obj.capabilities
    if isinstance(caps, str) or not all(isinstance(c, str) for c in _iter(caps)):
        problems.append(f"capabilities must be a set of str, got {caps!r}")
    elif kind is not None:
        unknown = sorted(set(caps) - set(kind.capabilities))
        if unknown:
            problems.append(f"unknown capabilities {unknown} for kind {kind.name!r}; "
                            f"known: {sorted(kind.capabilities)}")
    if kind is not None:
        problems += _attribute_problems(obj, kind)
    return problems


def _attribute_problems(obj: Any, kind: Kind) -> List[str]:
    problems: List[str] = []
    for attr in kind.int_attributes:
        value = getattr(obj, attr.name, None)
        if not isinstance(value, int) or isinstance(value, bool):
            problems.append(f"a {kind.name} backend must state {attr.name} as an int, got {value!r}")
        elif not attr.low <= value <= attr.high:
            problems.append(f"{attr.name} must be between {attr.low} and {attr.high}, got {value}")
    for name in kind.str_attributes:
        value = getattr(obj, name, None)
        if not isinstance(value, str) or not value:
            problems.append(f"a {kind.name} backend must state {name} as a non-empty str, got {value!r}")
    return problems


def validate_channel(kind_name: str, channel: Any) -> List[str]:
    """Members the channel returned by ``setup`` lacks, one sentence each."""
    kind = registered_kinds()[kind_name]
    wanted = kind.channel_members + ("detach", "teardown")
    return [f"channel from setup() has no callable {m!r}" for m in wanted if not callable(getattr(channel, m, None))]


def _iter(value: Any) -> List[Any]:
    try:
        return list(value)
    except TypeError:
        return [None]


def unsupported_reason(backend: Any, invariant: Invariant, placement: str) -> Optional[str]:
    """Why ``invariant`` cannot be judged for ``backend`` in ``placement``, or None."""
    if invariant.family != backend.kind:
        return f"invariant of family {invariant.family!r}, backend of kind {backend.kind!r}"
    missing = invariant.missing(backend.capabilities)
    if missing:
        return f"backend does not claim {', '.join(missing)}"
    excluding = invariant.excluding(backend.capabilities)
    if excluding:
        return f"backend claims {', '.join(excluding)}, which rules this invariant out"
    if invariant.placements and placement not in invariant.placements:
        return f"invariant runs only in {'/'.join(sorted(invariant.placements))}"
    if placement in NAMED_ONLY_PLACEMENTS and backend.wiring not in REACHES_ANY_PROCESS:
        return f"inherit-wired channels cannot reach a {placement}ed process"
    if placement == "thread" and THREAD_SAFE not in backend.capabilities:
        return "backend does not claim thread_safe"
    return None
