"""Hypothesis strategies shared by the families: small, bounded, keyword-only,
and biased towards the sizes where IPC code breaks (0, 1, PIPE_BUF±1, a page,
the pipe capacity and beyond), all read from the running kernel.

Large payloads are drawn as :class:`Blob` (a size and a seed) rather than as
literal bytes: Hypothesis shrinks the size towards the boundaries, and a
falsifying example prints as ``Blob(4097, 0)`` instead of 4 KiB of noise.

Every size strategy is one integer draw mapped monotonically onto its range
(:func:`anchored_integers`), so that a minimal example does not depend on what
happened to be drawn first.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any, Iterable, List, Tuple

from hypothesis import strategies as st

from . import limits


@dataclass(frozen=True, repr=False)
class Blob:
    """A reproducible payload of ``size`` bytes derived from ``seed`` (all NUL when ``zeros``)."""

    size: int
    seed: int = 0
    zeros: bool = False

    @property
    def data(self) -> bytes:
        if self.zeros:
            return bytes(self.size)
        if self.size == 0:
            return b""
        rng = random.Random(self.seed)
        return rng.getrandbits(self.size * 8).to_bytes(self.size, "little")

    def __repr__(self) -> str:
        return f"Blob({self.size}, zeros=True)" if self.zeros else f"Blob({self.size}, {self.seed})"

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        """Hypothesis prints falsifying examples with this hook, not ``__repr__``: without it a
        dataclass shows as ``Blob(size=…, seed=…)``, one drawn by ``builds`` as a call with comments."""
        printer.text(repr(self))


#: Where uniform size draws come from: see :func:`anchored_integers`.
_FAR = 1 << 48


def anchored_integers(lo: int, hi: int, anchors: Iterable[int], *, weight: float = 0.5,
                      deep: bool = True) -> st.SearchStrategy[int]:
    """Integers in ``[lo, hi]``, each one of ``anchors`` likely, with a minimal example that does
    not depend on what was drawn first.

    ``one_of(sampled_from(anchors), integers(lo, hi))`` cannot be shrunk across its branches:
    the same bug shrank to 4095 bytes in one run and to 256 in another.  Here a size is
    ``min(n, cap)``: ``cap`` one of the anchors (about ``weight`` of the time) or ``hi``, and
    ``n`` an integer from ``lo`` to half the range past ``hi`` (a third of its draws stand for
    ``hi``, so that ``hi`` and the anchors just below it come up too: without the overshoot an
    anchor comes up only when ``n`` reaches it).  Both draws shrink towards ``lo``, the size grows
    with each, and "size > X" holds exactly when ``n > X`` and ``cap > X``, so a failure at
    every size above X shrinks to the one example ``n = X + 1``, ``cap`` = the first anchor
    above X: the size X + 1, whichever failing example was found first.

    ``deep`` draws ``n`` about uniformly; without it, ``n`` follows
    Hypothesis's own preference for small values.
    """
    if lo > hi:
        raise ValueError(f"empty range {lo}…{hi}")
    caps = sorted({a for a in anchors if lo <= a <= hi} | {hi})
    uncapped = max(0, round(len(caps) * (1 - weight) / weight))
    return _capped(lo, hi + (hi - lo) // 2, tuple(caps + [hi] * uncapped), _FAR if deep else 0)


@st.composite
def _capped(draw: st.DrawFn, lo: int, past: int, caps: Tuple[int, ...], shift: int) -> int:
    # Hypothesis draws an integer near zero far more often than one far from it; shifted far
    # from zero the draw is about uniform over [lo, past], so deep sizes are as likely as shallow
    # ones (anchors 0, 1, 2 keep the smallest likely).  Composite, not .map(): Hypothesis
    # prints a mapped value as the call ``f(n)``.
    n = draw(st.integers(shift + lo, shift + past)) - shift
    return min(n, caps[draw(st.integers(0, len(caps) - 1))])


def kernel_edges() -> List[int]:
    """Sizes at which byte-moving code breaks on this machine: PIPE_BUF, a page, the pipe's
    capacity and the socket buffers (read at run time), each with its neighbours."""
    centres = [limits.pipe_buf(), limits.page_size(), limits.pipe_capacity()] + limits.socket_buffers()
    return sorted({0, 1, 2} | {c + d for c in centres for d in (-1, 0, 1)})


def boundary_sizes(*, max_size: int, min_size: int = 0) -> st.SearchStrategy[int]:
    """Sizes in ``[min_size, max_size]``, half the time exactly at a kernel boundary (or the ends)."""
    cap = limits.pipe_capacity()
    edges = kernel_edges() + [2 * cap + 7, min_size, min_size + 1, max_size - 1, max_size]
    return anchored_integers(min_size, max_size, edges)


def _blob(size_seed: Tuple[int, int]) -> Blob:
    return Blob(*size_seed)


def blobs(*, max_size: int, min_size: int = 0) -> st.SearchStrategy[Blob]:
    return st.tuples(boundary_sizes(max_size=max_size, min_size=min_size), st.integers(0, 2**16)).map(_blob)


def write_plans(*, max_writes: int = 6, max_size: int) -> st.SearchStrategy[List[Blob]]:
    """The successive writes of one writer (zero-length writes included)."""
    return st.lists(blobs(max_size=max_size), min_size=1, max_size=max_writes)


def read_sizes() -> st.SearchStrategy[int]:
    """Buffer sizes a reader asks for: tiny, boundary, or large."""
    pb = limits.pipe_buf()
    return anchored_integers(1, 65536, [1, 7, pb - 1, pb, pb + 1, 65536])


def process_counts(*, min_value: int = 1, max_value: int = 8) -> st.SearchStrategy[int]:
    return st.integers(min_value, max_value)


def delays_ms(*, max_ms: int = 30) -> st.SearchStrategy[int]:
    """Pauses in integer milliseconds (never floats: 0.1*3 is not 0.3)."""
    return st.one_of(st.just(0), st.integers(0, max_ms))
