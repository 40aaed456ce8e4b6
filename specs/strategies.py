"""Hypothesis strategies shared by the families: small, bounded, keyword-only,
and biased towards the sizes where IPC code breaks (0, 1, PIPE_BUF±1, a page,
the pipe capacity and beyond), all read from the running kernel.

Large payloads are drawn as :class:`Blob` (a size and a seed) rather than as
literal bytes: Hypothesis shrinks the size towards the boundaries, and a
falsifying example prints as ``Blob(size=4097, seed=0)`` instead of 4 KiB of noise.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import List

from hypothesis import strategies as st

from . import limits


@dataclass(frozen=True)
class Blob:
    """A reproducible payload of ``size`` bytes derived from ``seed``."""

    size: int
    seed: int = 0

    @property
    def data(self) -> bytes:
        if self.size == 0:
            return b""
        rng = random.Random(self.seed)
        return rng.getrandbits(self.size * 8).to_bytes(self.size, "little")


def boundary_sizes(*, max_size: int, min_size: int = 0) -> st.SearchStrategy[int]:
    """Sizes in ``[min_size, max_size]``, half the time exactly at a kernel boundary."""
    pb, page, cap = limits.pipe_buf(), limits.page_size(), limits.pipe_capacity()
    edges = sorted({0, 1, 2, pb - 1, pb, pb + 1, page, cap - 1, cap, cap + 1, 2 * cap + 7})
    picked = [e for e in edges if min_size <= e <= max_size]
    uniform = st.integers(min_size, max_size)
    return st.one_of(st.sampled_from(picked), uniform) if picked else uniform


def blobs(*, max_size: int, min_size: int = 0) -> st.SearchStrategy[Blob]:
    return st.builds(Blob, boundary_sizes(max_size=max_size, min_size=min_size), st.integers(0, 2**16))


def write_plans(*, max_writes: int = 6, max_size: int) -> st.SearchStrategy[List[Blob]]:
    """The successive writes of one writer (zero-length writes included)."""
    return st.lists(blobs(max_size=max_size), min_size=1, max_size=max_writes)


def read_sizes() -> st.SearchStrategy[int]:
    """Buffer sizes a reader asks for: tiny, boundary, or large."""
    pb = limits.pipe_buf()
    return st.one_of(st.sampled_from([1, 7, pb - 1, pb, pb + 1, 65536]), st.integers(1, 65536))


def process_counts(*, min_value: int = 1, max_value: int = 8) -> st.SearchStrategy[int]:
    return st.integers(min_value, max_value)


def delays_ms(*, max_ms: int = 30) -> st.SearchStrategy[int]:
    """Pauses in integer milliseconds (never floats: 0.1*3 is not 0.3)."""
    return st.one_of(st.just(0), st.integers(0, max_ms))
