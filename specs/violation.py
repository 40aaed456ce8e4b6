"""What a check raises, and how it words a failure: the types the invariant registry,
the harness and every check share.

This module imports nothing of the package, so that the registry (``invariant``),
the harness (``harness.run``) and the families all import it downward.
``ipc_specs.invariant`` re-exports every name, the import path checks use.
"""

from __future__ import annotations

from typing import Optional, Tuple


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
