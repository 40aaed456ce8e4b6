"""The nonblocking-write rule of pipes and FIFOs: small writes are all or nothing.

pipe(7) makes a write of at most PIPE_BUF bytes atomic in two ways: it never
interleaves with other writers (``small_writes_never_interleave``), and with
O_NONBLOCK it never goes in part.  Linux keeps a pipe as a ring of page-sized
buffers, so "room" is not a byte count: after the reader takes a page, a small
write may fill part of the freed buffer, and a later write that does not fit in
the rest must fail whole with EAGAIN.  Writes above PIPE_BUF may be partial, so
nothing is asserted about them.
"""

from __future__ import annotations

from typing import List

from hypothesis import strategies as st

from .. import limits
from ..harness.run import Case, Role
from ..invariant import Level, expect, invariant
from ..strategies import anchored_integers
from . import roles
from .protocol import ATOMIC_PIPE_BUF

FAMILY = "stream"


@invariant(
    "nonblocking_small_write_is_all_or_nothing", family=FAMILY, level=Level.MUST,
    rule="A nonblocking write of at most PIPE_BUF bytes either takes every byte or fails with EAGAIN "
         "(BlockingIOError); it is never partial, however little room is left.",
    source="pipe(7), section PIPE_BUF, case 'O_NONBLOCK enabled, n <= PIPE_BUF': 'If there is room to write n bytes "
           "to the pipe, then write(2) succeeds immediately, writing all n bytes; otherwise write(2) fails, with "
           "errno set to EAGAIN.'; POSIX write() (paraphrase: a nonblocking write of at most {PIPE_BUF} bytes "
           "transfers all the data or none, with EAGAIN)",
    requires=[ATOMIC_PIPE_BUF],
    # The writer opens only once the reader has (a FIFO refuses a nonblocking write-open
    # before), which threads, all released together past their opens, cannot do.
    placements=["fork", "spawn", "forkserver"],
)
def nonblocking_small_write_is_all_or_nothing(backend: object, case: Case) -> None:
    page, pipe_buf = limits.page_size(), limits.pipe_buf()

    def body(drain: int, prefill: int, attempts: List[int]) -> None:
        out = case.run([Role("R", roles.drain_some, (drain,)),
                        Role("W", roles.fill_then_try_small_writes, (prefill, attempts, page))])
        out.value("R")
        h = out.history
        for n, got in out.value("W"):
            expect(got in (n, "EAGAIN"), case.invariant.id, got=f"a nonblocking write of {n} bytes returned {got}",
                   expected=f"{n} (every byte) or BlockingIOError (EAGAIN)", call="write",
                   history=h.format(h.of("W", "write")[-2 * len(attempts):]))

    case.explore(
        body,
        # A page taken, then part of it refilled: room for less than PIPE_BUF in the last buffer.
        examples=[{"drain": page, "prefill": 1000, "attempts": [pipe_buf]}],
        drain=anchored_integers(1, 2 * page, [1, page - 1, page, page + 1, 2 * page]),
        prefill=anchored_integers(0, pipe_buf, [0, 1, 1000, pipe_buf - 1]),
        attempts=st.lists(anchored_integers(1, pipe_buf, [1, 512, pipe_buf - 1, pipe_buf]), min_size=1, max_size=4),
    )
