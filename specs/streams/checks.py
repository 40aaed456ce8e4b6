"""Invariants every byte stream is judged by (pipes, FIFOs, stream sockets).

Each check draws whole examples with Hypothesis in the parent, runs the roles
in the case's placement, and judges only what the rule promises: per-writer
order and completeness, never the global order of concurrent writers, and
timing only as causality (an EOF cannot come before the last close).
"""

from __future__ import annotations

from typing import Dict, List, Optional, Sequence

from hypothesis import strategies as st

from .. import limits
from ..harness.faults import INTERRUPTS, KILLS
from ..harness.history import INVOKE
from ..harness.outcome import Outcome
from ..harness.run import KILL_KEY, Case, Role, patience
from ..invariant import Level, describe_bytes_mismatch, expect, invariant, short_repr
from ..strategies import Blob, anchored_integers, delays_ms, read_sizes, write_plans
from . import roles
from .protocol import (
    ATOMIC_PIPE_BUF,
    BOUNDED_BUFFER,
    EOF_ON_CLOSE,
    EPIPE,
    HALF_CLOSE,
    MULTI_WRITER,
    WRITER_DEATH_IS_CLOSE,
)

FAMILY = "stream"


def _writers(case: Case) -> st.SearchStrategy[int]:
    return st.integers(1, 8) if case.claims(MULTI_WRITER) else st.just(1)


def _check_substreams(case: Case, got: bytes, plans: Sequence[Sequence[Blob]], history: str,
                      victim: Optional[str] = None) -> None:
    """Each writer's bytes, pulled apart by residue class, equal what it wrote, in order.

    A writer SIGKILLed by the ``kills`` fault (``victim``) may have written only part of
    its plan: its bytes must be a prefix of it, never a byte it did not write.
    """
    k = len(plans)
    expected = [b"".join(roles.writer_plan_bytes(p, i, k)) for i, p in enumerate(plans)]
    total = sum(len(e) for e in expected)
    expect(len(got) == total or (victim is not None and len(got) < total), case.invariant.id,
           got=f"{len(got)} bytes in all",
           expected=f"{total} bytes (every byte of every writer exactly once)"
           + (f", less what {victim} had not written when it was killed" if victim else ""),
           call="read", history=history)
    for i, want in enumerate(expected):
        mine = got.translate(None, bytes(b for b in range(256) if b % k != i)) if k > 1 else got
        killed = victim == f"W{i}"
        if mine != want and not (killed and want.startswith(mine)):
            expect(False, case.invariant.id, got=f"W{i}'s bytes: {describe_bytes_mismatch(mine, want)}",
                   expected=f"W{i}'s bytes in write order" + (", or a prefix (it was killed)" if killed else ""),
                   call="read", history=history)


def _stream_example(case: Case, plans: List[List[Blob]], read_size: int, close_delays: Sequence[int],
                    eof_rereads: int = 0) -> Outcome:
    k = len(plans)
    total = sum(b.size for p in plans for b in p)
    until_eof = case.claims(EOF_ON_CLOSE)
    # The kills fault may pick a writer only where the backend says what a death means.
    killable = until_eof and case.claims(WRITER_DEATH_IS_CLOSE)
    writers = [Role(f"W{i}", roles.write_then_close, (p, i, k, 0, close_delays[i % len(close_delays)]),
                    killable=killable)
               for i, p in enumerate(plans)]
    reader = Role("R", roles.read_all, (read_size, total, until_eof, eof_rereads))
    # EOF must come once the last writer closed, a few drawn milliseconds in: a run whose
    # roles all sleep without recording anything well past that is a missing EOF.
    return case.run([reader] + writers, deadline=patience(max(close_delays, default=0) / 1000))


@invariant(
    "bytes_arrive_complete_and_in_order", family=FAMILY, level=Level.MUST,
    rule="Every byte each writer writes reaches the reader exactly once and in that writer's order; "
         "reads may return any part of the stream, so a correct reader loops.",
    source="pipe(7): 'The communication channel provided by a pipe is a byte stream: there is no concept of message "
           "boundaries'; POSIX write() (paraphrase: a write to a pipe appends to it; a blocking write returns only "
           "once every byte is written)",
    faults=[INTERRUPTS, KILLS],
)
def bytes_arrive_complete_and_in_order(backend: object, case: Case) -> None:
    cap = limits.pipe_capacity()

    def body(plans: List[List[Blob]], read_size: int) -> None:
        out = _stream_example(case, plans, read_size, [0])
        got, _ = out.value("R")
        for p in out.roles:
            if p != out.victim:
                out.value(p)
        _check_substreams(case, got, plans, out.history.format(), out.victim)

    # Pinned: one write of PIPE_BUF + 1 (the first size the kernel may split), read a
    # PIPE_BUF at a time; and one of capacity + 1 (a write that must block part-way).
    pb = limits.pipe_buf()
    case.explore(body, plans=_writers(case).flatmap(
        lambda k: st.lists(write_plans(max_size=3 * cap), min_size=k, max_size=k)), read_size=read_sizes(),
        pinned=[{"plans": [[Blob(pb + 1, 1)]], "read_size": pb},
                {"plans": [[Blob(cap + 1, 2)]], "read_size": 65536}])


@invariant(
    "eof_after_last_writer_closes", family=FAMILY, level=Level.MUST,
    rule="The reader gets EOF (b'') only after every writer in every process has closed its end (a "
         "writer's death closes it too), after every buffered byte, and every later read is EOF again.",
    source="pipe(7): 'If all file descriptors referring to the write end of a pipe have been closed, then an attempt"
           " to read(2) from the pipe will see end-of-file (read(2) will return 0)'; LTP "
           "testcases/kernel/syscalls/pipe/pipe13.c, pipe14.c",
    requires=[EOF_ON_CLOSE],
    faults=[INTERRUPTS, KILLS],
)
def eof_after_last_writer_closes(backend: object, case: Case) -> None:
    def body(plans: List[List[Blob]], close_delays: List[int], read_size: int) -> None:
        out = _stream_example(case, plans, read_size, close_delays, eof_rereads=2)
        got, again = out.value("R")
        h = out.history
        eof = h.of("R", "saw_eof")
        # Judge the EOF first: a writer failing after the reader left is a consequence.
        for w in (p for p in out.roles if p != "R"):
            close = h.of(w, "close", INVOKE)
            expect(bool(eof) and (not close or eof[0].t_ns >= close[0].t_ns), case.invariant.id,
                   got=f"EOF at {h.ms(eof[0]):.3f} ms" if eof else "no EOF",
                   expected=f"EOF only after {w} closed" + (f" at {h.ms(close[0]):.3f} ms" if close else ""),
                   call="read", history=h.format(eof + close))
        for p in out.roles:
            if p != out.victim:
                out.value(p)
        _check_substreams(case, got, plans, h.format(eof), out.victim)
        expect(again == 2, case.invariant.id, got=f"{again} of 2 reads after EOF returned b''",
               expected="every read after EOF to return b'' again", call="read", history=h.format(eof))

    # Pinned: a writer killed long before it would close.  Drawn kills often land after
    # a small plan's close, and then there is no death to judge.
    killed_early = {"plans": [[Blob(100, 1)]], "close_delays": [200], "read_size": 64, KILL_KEY: (0, 0)}
    case.explore(body, plans=_writers(case).flatmap(
        lambda k: st.lists(write_plans(max_size=2 * limits.pipe_buf(), max_writes=3), min_size=k, max_size=k)),
        close_delays=st.lists(delays_ms(max_ms=40), min_size=1, max_size=8), read_size=read_sizes(),
        # ... and a writer that writes nothing but an empty write: EOF comes only at its close.
        pinned=[killed_early, {"plans": [[Blob(0)]], "close_delays": [20], "read_size": 1}])


@invariant(
    "small_writes_never_interleave", family=FAMILY, level=Level.MUST,
    rule="A write of at most PIPE_BUF bytes by one writer lands in the stream as one contiguous run, "
         "never interleaved with bytes of concurrent writers (larger writes may interleave).",
    source="pipe(7), section PIPE_BUF: 'POSIX.1 says that writes of less than PIPE_BUF bytes must be atomic: the "
           "output data is written to the pipe as a contiguous sequence'; POSIX write(): 'Write requests of "
           "{PIPE_BUF} bytes or less shall not be interleaved with data from other processes doing writes on the "
           "same pipe'; LTP testcases/kernel/syscalls/pipe/pipe11.c",
    requires=[MULTI_WRITER, ATOMIC_PIPE_BUF],
    faults=[INTERRUPTS],
)
def small_writes_never_interleave(backend: object, case: Case) -> None:
    pb = limits.pipe_buf()

    def body(writers: int, records: int, size: int) -> None:
        total = writers * records * size
        rs = [Role(f"W{i}", roles.write_records, (i, records, size, writers)) for i in range(writers)]
        out = case.run([Role("R", roles.read_all, (65536, total, case.claims(EOF_ON_CLOSE)))] + rs)
        got, _ = out.value("R")
        for p in out.roles:
            out.value(p)
        expect(len(got) == total, case.invariant.id, got=f"{len(got)} bytes", expected=f"{total} bytes",
               call="read", history=out.history.format())
        seq: Dict[int, int] = {}
        for off in range(0, total, size):
            rec = got[off:off + size]
            tag = rec[0]
            expect(rec.count(tag) == size, case.invariant.id,
                   got=f"record at offset {off} torn: {short_repr(rec)}",
                   expected=f"{size} identical bytes (one write of {size} <= PIPE_BUF={pb})",
                   call="write", history=out.history.format())
            w, n = divmod(tag, 16)
            expect(n == seq.get(w, 0) % 16, case.invariant.id, got=f"W{w} record {n} (mod 16) at offset {off}",
                   expected=f"W{w} record {seq.get(w, 0) % 16} (per-writer order)", call="read",
                   history=out.history.format())
            seq[w] = seq.get(w, 0) + 1

    case.explore(body, writers=st.integers(2, 8), records=st.integers(1, 40),
                 size=anchored_integers(2, pb, [2, 512, pb - 1, pb]),
                 # Pinned: records of exactly PIPE_BUF, the largest that must stay whole.
                 pinned=[{"writers": 4, "records": 20, "size": pb}])


@invariant(
    "full_buffer_blocks_writer_until_reader_drains", family=FAMILY, level=Level.MUST,
    rule="A writer that has filled the buffer blocks until the reader drains it, then resumes; "
         "payloads far above the capacity arrive whole while a reader drains concurrently.",
    source="pipe(7): 'If a process attempts to write to a full pipe (see below), then write(2) blocks until "
           "sufficient data has been read from the pipe to allow the write to complete'; pipe(7), section Pipe "
           "capacity",
    requires=[BOUNDED_BUFFER],
    faults=[INTERRUPTS],
)
def full_buffer_blocks_writer_until_reader_drains(backend: object, case: Case) -> None:
    def body(extra: int, chunk: int, delay_ms: int) -> None:
        out = case.run([Role("W", roles.fill_then_close, (extra, chunk)),
                        Role("R", roles.drain_late, (extra, delay_ms, case.claims(EOF_ON_CLOSE)))])
        got = out.value("R")
        total = out.value("W")
        h = out.history
        wrote = h.of("W", "wrote_all")
        drain = h.of("R", "start_drain")
        expect(got == total, case.invariant.id, got=f"{got} bytes read", expected=f"{total} bytes",
               call="read", history=h.format(wrote + drain))
        # Causality, not speed: more bytes than the buffer holds cannot all be
        # written before the reader has started to take them out.
        expect(wrote[0].t_ns >= drain[0].t_ns, case.invariant.id,
               got=f"{total} bytes written by {h.ms(wrote[0]):.3f} ms, before the reader read anything",
               expected=f"the writer blocked until the reader started draining at {h.ms(drain[0]):.3f} ms "
                        f"({extra} bytes above the capacity bound)", call="write", history=h.format(wrote + drain))

    case.explore(body, scale=0.5, extra=st.integers(1, 3 * limits.pipe_capacity()),
                 chunk=st.sampled_from([limits.pipe_buf(), 65536, 1 << 20]), delay_ms=st.integers(100, 250),
                 # Pinned: capacity + 1 bytes, the least that must block.
                 pinned=[{"extra": 1, "chunk": limits.pipe_buf(), "delay_ms": 100}])


@invariant(
    "write_without_reader_raises_broken_pipe", family=FAMILY, level=Level.MUST,
    rule="A write after every reader has closed raises BrokenPipeError (EPIPE): it neither succeeds "
         "silently nor kills the writer with SIGPIPE (CPython ignores SIGPIPE at start-up).",
    source="pipe(7): 'If all file descriptors referring to the read end of a pipe have been closed, then a write(2) "
           "will cause a SIGPIPE signal to be generated for the calling process. If the calling process is ignoring "
           "this signal, then write(2) fails with the error EPIPE.'; Python docs signal, section 'Note on SIGPIPE'; "
           "LTP testcases/kernel/syscalls/pipe/pipe08.c",
    requires=[EPIPE],
)
def write_without_reader_raises_broken_pipe(backend: object, case: Case) -> None:
    def body(data: bytes) -> None:
        out = case.run([Role("R", roles.open_then_close_reader), Role("W", roles.write_after_reader_closed, (data,))])
        out.value("R")
        result = out.value("W")
        expect(result == "BrokenPipeError", case.invariant.id, got=result,
               expected="BrokenPipeError from the write", call="write", history=out.history.format())

    case.explore(body, data=st.binary(min_size=1, max_size=64))


@invariant(
    "zero_length_write_is_not_eof", family=FAMILY, level=Level.MUST,
    rule="Writing b'' adds nothing to the stream and does not end it: the reader sees no extra bytes and no "
         "EOF from it, and bytes written after it still arrive. (What the write itself returns is not "
         "specified for pipes, so it is not checked.)",
    source="write(2): 'If count is zero and fd refers to a file other than a regular file, the results are not "
           "specified.' (so the check judges only the stream, not what the write returns); pipe(7): 'If all file "
           "descriptors referring to the write end of a pipe have been closed, then an attempt to read(2) from the "
           "pipe will see end-of-file' (an empty write closes nothing)",
)
def zero_length_write_is_not_eof(backend: object, case: Case) -> None:
    def body(before: Blob, after: Blob, read_size: int) -> None:
        plan = [before, Blob(0), after, Blob(0)]
        out = _stream_example(case, [plan], read_size, [0])
        got, _ = out.value("R")
        out.value("W0")
        _check_substreams(case, got, [plan], out.history.format())

    blob = st.builds(Blob, st.integers(0, 2 * limits.pipe_buf()), st.integers(0, 99))
    case.explore(body, before=blob, after=st.builds(Blob, st.integers(1, 2 * limits.pipe_buf()), st.integers(0, 99)),
                 read_size=read_sizes(),
                 # Pinned: the empty write first, one byte after it, read a byte at a time.
                 pinned=[{"before": Blob(0), "after": Blob(1, 0), "read_size": 1}])


@invariant(
    "write_rejects_text", family=FAMILY, level=Level.MUST,
    rule="A write of str raises TypeError and transfers nothing: text must be encoded explicitly "
         "(the Python 2 idiom os.write(fd, str(s)) fails on Python 3).",
    source="Python docs os.write(fd, str): 'Write the bytestring in str to file descriptor fd'; CPython "
           "Lib/test/test_os.py FileTests.test_write",
    placements=["fork"],
)
def write_rejects_text(backend: object, case: Case) -> None:
    def body(text: str, after: bytes) -> None:
        out = case.run([Role("W", roles.write_text, (text, after)),
                        Role("R", roles.read_all, (4096, len(after), case.claims(EOF_ON_CLOSE)))])
        verdict = out.value("W")
        got, _ = out.value("R")
        expect(verdict == "TypeError", case.invariant.id, got=f"write({text!r}) {verdict}",
               expected="TypeError", call="write", history=out.history.format())
        expect(got == after, case.invariant.id, got=got, expected=f"only the bytes written afterwards {after!r}",
               call="read", history=out.history.format())

    case.explore(body, scale=0.5, text=st.text(min_size=1, max_size=20), after=st.binary(min_size=1, max_size=20))


@invariant(
    "shutdown_gives_peer_eof_while_reverse_still_works", family=FAMILY, level=Level.MUST,
    rule="After shutdown(SHUT_WR) the peer reads every byte then EOF, and can still send back, "
         "which the shut-down side reads.",
    source="shutdown(2): 'If how is SHUT_WR, further transmissions will be disallowed.'; recv(2): 'When a stream "
           "socket peer has performed an orderly shutdown, the return value will be 0'; unix(7), tcp(7)",
    requires=[HALF_CLOSE],
)
def shutdown_gives_peer_eof_while_reverse_still_works(backend: object, case: Case) -> None:
    def body(data: bytes, reply: bytes) -> None:
        out = case.run([Role("W", roles.half_close_writer, (data,)), Role("R", roles.half_close_reader, (reply,))])
        got = out.value("R")
        back = out.value("W")
        expect(got == data, case.invariant.id, got=got, want=data, expected="W's bytes then EOF", call="read",
               history=out.history.format())
        expect(back == reply, case.invariant.id, got=back, want=reply, expected="R's reply",
               call="read", history=out.history.format())

    case.explore(body, scale=0.5, data=st.binary(max_size=8192), reply=st.binary(min_size=1, max_size=8192))

