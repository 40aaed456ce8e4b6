"""Invariants, verdicts and the registry that names them.

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
from typing import TYPE_CHECKING, Any, Callable, Dict, FrozenSet, Iterable, List, Optional, Tuple

from .harness.faults import FAULTS

if TYPE_CHECKING:
    from .harness.run import Case


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


class Violation(AssertionError):
    """A backend broke an invariant; the message reads ``got=…, but should be … [call]``."""

    def __init__(
        self,
        invariant: str,
        *,
        got: str,
        expected: str,
        call: str,
        history: str = "",
    ) -> None:
        self.invariant = invariant
        self.got = got
        self.expected = expected
        self.call = call
        self.history = history
        #: True when replays of the minimal example did not all fail (see :meth:`replayed`).
        self.flaky = False
        #: True when Hypothesis saw the example pass once it had failed: found intermittently.
        #: That alone is not FLAKY: the replays decide (a rare schedule, then reproducible).
        self.intermittent = False
        #: A role hung (the harness called it): each replay costs a wait, so one is enough.
        self.hang = False
        #: Hypothesis's failure blob for the minimal example, if it printed one; replays it
        #: exactly anywhere with the same Hypothesis version (``--ipc-replay``).
        self.blob = ""
        #: ``(failed, runs)``: how the minimal example fared when the harness replayed it.
        self.replays: Optional[Tuple[int, int]] = None
        text = f"[{invariant}] got={got}, but should be {expected} [{call}]"
        if history:
            text += "\n" + history
        super().__init__(text)

    def replayed(self, failed: int, runs: int) -> Violation:
        """Record how replays of the minimal example went: FLAKY when any replay passed.

        With no replays the only evidence is Hypothesis's: FLAKY if it saw the example pass.
        """
        self.replays = (failed, runs)
        self.flaky = failed < runs if runs else self.intermittent
        self.args = (f"{self.args[0]}\n({self.verdict_line()})",)
        return self

    def verdict_line(self) -> str:
        """One line, one meaning: ``FAIL (found intermittently; the minimal example failed 3 of 3 replays)``."""
        notes = ["found intermittently"] if self.intermittent else []
        if self.replays and self.replays[1]:
            notes.append(f"the minimal example failed {self.replays[0]} of {self.replays[1]} replays")
        return ("FLAKY" if self.flaky else "FAIL") + (f" ({'; '.join(notes)})" if notes else "")


class Unsupported(Exception):
    """The backend does not claim what the invariant needs; never a pass."""


class Unresolved(Exception):
    """The machine cannot host the check (a kernel limit, a missing package)."""


CheckFn = Callable[[Any, "Case"], None]


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

    def missing(self, capabilities: Iterable[str]) -> List[str]:
        """The required capabilities a backend does not claim, sorted."""
        return sorted(self.requires - frozenset(capabilities))


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
) -> Callable[[CheckFn], CheckFn]:
    """Register ``fn`` as the check of a new invariant.

    Ids are global and stable: reports, ``explain`` and the Hypothesis
    database all key on them, so renaming one is a breaking change.
    """

    def register(fn: CheckFn) -> CheckFn:
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
        )
        return fn

    return register


def load_all_families() -> None:
    """Import every spec module so that its invariants register themselves."""
    from . import families  # noqa: F401  (imported for its side effect)


def all_invariants(family: Optional[str] = None) -> List[Invariant]:
    """Registered invariants in declaration order, optionally of one family."""
    load_all_families()
    from .backend import family_order

    order = family_order()  # families.py's order, not the order modules happened to be imported in
    found = [inv for inv in _REGISTRY.values() if family is None or inv.family == family]
    return sorted(found, key=lambda inv: order.get(inv.family, len(order)))


def get_invariant(id: str) -> Invariant:
    load_all_families()
    try:
        return _REGISTRY[id]
    except KeyError:
        raise KeyError(f"no invariant with id {id!r}") from None


def expect(ok: bool, invariant: str, *, got: object, expected: str, call: str, history: str = "",
           want: Optional[bytes] = None) -> None:
    """Raise a :class:`Violation` unless ``ok``; ``got`` is shown with ``repr`` when not a str,
    or, when it is bytes and ``want`` is given, by where the two part."""
    if not ok:
        shown = got if isinstance(got, str) else shown_against(got, want)
        raise Violation(invariant, got=shown, expected=expected, call=call, history=history)


def shown_against(got: object, want: object) -> str:
    """``got`` for a failure message: where it parts from ``want`` when both are byte strings
    (see :func:`describe_bytes_mismatch`), else its short repr."""
    if isinstance(got, (bytes, bytearray)) and isinstance(want, (bytes, bytearray)):
        return describe_bytes_mismatch(bytes(got), bytes(want))
    return short_repr(got)


def _hex_at(data: bytes, start: int, count: int) -> str:
    """Up to ``count`` bytes of ``data`` from ``start`` in hex, with … when more follow."""
    chunk = data[start:start + count]
    return (chunk.hex(" ") or "nothing") + (" …" if len(data) > start + count else "")


def describe_bytes_mismatch(got: bytes, want: bytes, *, context: int = 8) -> str:
    """Where ``got`` parts from ``want``: the first differing offset and the bytes there (in
    hex), or which is a prefix of the other; each length said once.  Two long payloads
    share their first bytes, so printing both heads shows the same bytes twice and
    nothing of the difference."""
    common = next((i for i, (a, b) in enumerate(zip(got, want)) if a != b), min(len(got), len(want)))
    if got == want:
        return f"the same {len(got)} bytes"
    if common == len(got):
        return (f"got is a prefix of want ({len(got)} of {len(want)} bytes); "
                f"missing from byte {common}: {_hex_at(want, common, context)}")
    if common == len(want):
        return (f"got has {len(got) - len(want)} bytes more than want ({len(got)} bytes, want {len(want)}); "
                f"extra from byte {common}: {_hex_at(got, common, context)}")
    sizes = f"both {len(got)} bytes" if len(got) == len(want) else f"got {len(got)} bytes, want {len(want)}"
    return (f"first difference at byte {common} (got 0x{got[common]:02x}, want 0x{want[common]:02x}); {sizes}; "
            f"from there got {_hex_at(got, common, context)}, want {_hex_at(want, common, context)}")


def short_repr(value: object, limit: int = 80) -> str:
    """``repr`` cut to ``limit`` characters, keeping the length of byte strings visible."""
    if isinstance(value, (bytes, bytearray, memoryview)):
        raw = bytes(value)
        head = repr(raw[:24])
        return head if len(raw) <= 24 else f"{head[:-1]}…' ({len(raw)} bytes)"
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"
