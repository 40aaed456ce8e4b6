"""Invariants of named FIFOs (fifo(7)): how opening, EOF and unread data behave
when the channel is a name in the filesystem rather than an inherited fd."""

from __future__ import annotations

from typing import List

from hypothesis import strategies as st

from .. import limits
from ..harness.faults import INTERRUPTS
from ..harness.history import OK
from ..harness.run import Case, Role
from ..invariant import Level, expect, invariant, short_repr, shown_against
from . import roles
from .protocol import BLOCKING_OPEN, DISCARDS_ON_LAST_CLOSE, NONBLOCKING_OPEN, REOPEN_AFTER_EOF

FAMILY = "stream"


@invariant(
    "blocking_open_waits_for_peer", family=FAMILY, level=Level.MUST,
    rule="A blocking open of one end of a FIFO does not return before some process opens the other end.",
    source="fifo(7): 'Normally, opening the FIFO blocks until the other end is opened also.'",
    requires=[BLOCKING_OPEN],
    faults=[INTERRUPTS],
)
def blocking_open_waits_for_peer(backend: object, case: Case) -> None:
    def body(first: str, delay_ms: int) -> None:
        second = "writer" if first == "reader" else "reader"
        out = case.run([Role("A", roles.timed_open, (first, 0)), Role("B", roles.timed_open, (second, delay_ms))])
        out.values()
        h = out.history
        a_open = [e for e in h.of("A", f"open_{first}") if e.phase == OK]
        b_call = h.of("B", f"open_{second}")[0]
        expect(a_open[0].t_ns >= b_call.t_ns, case.invariant.id,
               got=f"open_{first} returned at {h.ms(a_open[0]):.3f} ms",
               expected=f"no return before the {second} opened at {h.ms(b_call):.3f} ms",
               call=f"open_{first}", history=h.format(a_open + [b_call]))

    case.explore(body, scale=0.5, first=st.sampled_from(["reader", "writer"]), delay_ms=st.integers(20, 120))


@invariant(
    "nonblocking_write_open_without_reader_fails_enxio", family=FAMILY, level=Level.MUST,
    rule="A nonblocking open for writing fails with ENXIO while no process has the FIFO open for "
         "reading, and succeeds once one has.",
    source="fifo(7): 'opening for write-only fails with ENXIO (no such device or address) unless the other end has "
           "already been opened'; open(2) ENXIO: 'O_NONBLOCK | O_WRONLY is set, the named file is a FIFO, and no "
           "process has the FIFO open for reading.'",
    requires=[NONBLOCKING_OPEN],
    placements=["fork"],
)
def nonblocking_write_open_without_reader_fails_enxio(backend: object, case: Case) -> None:
    def body(_: int) -> None:
        out = case.run([Role("P", roles.nonblocking_opens)])
        first, second = out.value("P")
        expect(first == roles.ENXIO, case.invariant.id,
               got="the open succeeded" if first is None else f"errno {first}",
               expected=f"OSError with errno ENXIO ({roles.ENXIO})", call="open_writer(nonblocking=True)",
               history=out.history.format())
        expect(second, case.invariant.id, got="the open failed with a reader present",
               expected="success once a reader exists", call="open_writer(nonblocking=True)",
               history=out.history.format())

    case.explore(body, scale=0.25, _=st.just(0))


@invariant(
    "nonblocking_read_tells_eof_from_empty", family=FAMILY, level=Level.MUST,
    rule="A nonblocking read returns b'' (EOF) while no writer exists, raises BlockingIOError (EAGAIN) "
         "while a writer exists but the FIFO is empty, and returns data once written.",
    source="read(2) EAGAIN: 'The file descriptor fd refers to a file other than a socket and has been marked "
           "nonblocking (O_NONBLOCK), and the read would block.'; pipe(7): 'If all file descriptors referring to the"
           " write end of a pipe have been closed, then an attempt to read(2) from the pipe will see end-of-file "
           "(read(2) will return 0)'; fifo(7)",
    requires=[NONBLOCKING_OPEN],
    placements=["fork"],
)
def nonblocking_read_tells_eof_from_empty(backend: object, case: Case) -> None:
    def body(data: bytes) -> None:
        out = case.run([Role("P", roles.nonblocking_reads, (data,))])
        seen = out.value("P")
        want = [b"", "EAGAIN", data, b""]
        labels = ["with no writer", "with an idle writer", "after a write", "after the writer closed"]
        for got, exp, label in zip(seen, want, labels):
            expect(got == exp, case.invariant.id, got=f"{shown_against(got, exp)} {label}",
                   expected=short_repr(exp) if exp != "EAGAIN" else "BlockingIOError (EAGAIN)", call="read",
                   history=out.history.format())

    case.explore(body, scale=0.5, data=st.binary(min_size=1, max_size=limits.pipe_buf()))


@invariant(
    "eof_is_not_sticky_for_fifos", family=FAMILY, level=Level.MUST,
    rule="After EOF a new writer can open the FIFO and the same reader, still open, reads its bytes: "
         "each writer session arrives whole, separated by EOF.",
    source="fifo(7): 'It can be opened by multiple processes for reading or writing.'; pipe(7) (paraphrase: read "
           "returns 0, end of file, only while no descriptor refers to the write end, so a new writer ends it)",
    requires=[REOPEN_AFTER_EOF],
)
def eof_is_not_sticky_for_fifos(backend: object, case: Case) -> None:
    def body(sessions: List[bytes]) -> None:
        out = case.run([Role("R", roles.reader_sessions, (len(sessions),)),
                        Role("W", roles.writer_sessions, (sessions,))])
        got = out.value("R")
        out.value("W")
        expect(got == sessions, case.invariant.id, got=[short_repr(g) for g in got],
               expected=f"{[short_repr(s) for s in sessions]} (one entry per writer session)", call="read",
               history=out.history.format())

    case.explore(body, sessions=st.lists(st.binary(min_size=1, max_size=2048), min_size=1, max_size=5))


@invariant(
    "unread_bytes_vanish_at_last_close", family=FAMILY, level=Level.MUST,
    rule="Bytes still unread when every end of a FIFO is closed are discarded: a FIFO has no contents "
         "in the filesystem, so a new reader starts empty.",
    source="fifo(7): 'the kernel passes all data internally without writing it to the filesystem. Thus, the FIFO "
           "special file has no contents on the filesystem'",
    requires=[DISCARDS_ON_LAST_CLOSE, NONBLOCKING_OPEN],
    placements=["fork"],
)
def unread_bytes_vanish_at_last_close(backend: object, case: Case) -> None:
    def body(data: bytes) -> None:
        out = case.run([Role("P", roles.write_close_reopen, (data,))])
        after = out.value("P")
        expect(after == b"", case.invariant.id, got=after, expected="b'' (the unread bytes are gone)",
               call="read", history=out.history.format())

    case.explore(body, scale=0.5, data=st.binary(min_size=1, max_size=limits.pipe_buf()))
