"""Role bodies for stream examples.

They are module-level functions so that spawned workers can unpickle them, and
they return plain data (bytes, tuples) for the check to judge in the parent.
The ends they get from ``proc.open_*`` record every call in the history.
"""

from __future__ import annotations

import errno
from typing import Any, List, Optional, Sequence, Tuple

from ..harness.worker import Proc
from ..strategies import Blob


def tag_table(writer: int, writers: int) -> bytes:
    """A byte translation that maps any byte into writer ``writer``'s residue class.

    With several writers, each writer's bytes are ≡ writer (mod writers), so the
    reader can pull every writer's sub-stream apart and check it on its own:
    no global order between concurrent writers is ever assumed.
    """
    if writers == 1:
        return bytes(range(256))
    span = 256 // writers
    return bytes((b % span) * writers + writer for b in range(256))


def writer_plan_bytes(plan: Sequence[Blob], writer: int, writers: int) -> List[bytes]:
    table = tag_table(writer, writers)
    return [b.data.translate(table) for b in plan]


def write_then_close(proc: Proc, plan: Sequence[Blob], writer: int, writers: int,
                     pause_ms: int = 0, close_delay_ms: int = 0) -> None:
    w = proc.open_writer()
    proc.signal(f"open-W{writer}")
    if proc.may_be_killed:
        # Its death closes its end: if every other writer had not opened yet, a FIFO's
        # reader would see EOF and leave, and a later writer's open would block for ever.
        for other in range(writers):
            proc.wait_for(f"open-W{other}")
    proc.arm_kill()
    for chunk in writer_plan_bytes(plan, writer, writers):
        w.write(chunk)
        proc.sleep_ms(pause_ms)
    # For a FIFO, EOF means "no writer has it open now": a writer that opened after
    # the others closed would find the reader gone.  So nobody closes before all opened.
    for other in range(writers):
        proc.wait_for(f"open-W{other}")
    proc.sleep_ms(close_delay_ms)
    w.close()


def read_all(proc: Proc, read_size: int, expected: int, until_eof: bool,
             eof_rereads: int = 0) -> Tuple[bytes, int]:
    """Read until EOF (or, without EOF semantics, until ``expected`` bytes).

    Returns the bytes and the number of extra ``b''`` reads seen after EOF.
    The read size grows with the payload so histories stay a few hundred lines.
    """
    r = proc.open_reader()
    size = max(read_size, expected // 256, 1)
    parts: List[bytes] = []
    got = 0
    while until_eof or got < expected:
        chunk = r.read(size)
        if not chunk:
            proc.note("saw_eof")
            break
        parts.append(chunk)
        got += len(chunk)
    again = sum(1 for _ in range(eof_rereads) if r.read(size) == b"") if until_eof else 0
    r.close()
    return b"".join(parts), again


def fill_then_close(proc: Proc, extra: int, chunk: int) -> int:
    """Write ``extra`` bytes more than the channel can hold, announcing the start."""
    total = int(proc.channel.capacity_bound()) + extra  # read before open: detach may drop the fds
    w = proc.open_writer()
    proc.signal("writer-open")
    block = bytes(range(256)) * (chunk // 256 + 1)
    sent = 0
    while sent < total:
        n = min(chunk, total - sent)
        w.write(block[:n])
        sent += n
    proc.note("wrote_all")
    w.close()
    return total


def drain_late(proc: Proc, extra: int, delay_ms: int, until_eof: bool) -> int:
    total = int(proc.channel.capacity_bound()) + extra
    r = proc.open_reader()
    proc.wait_for("writer-open")
    proc.sleep_ms(delay_ms)
    proc.note("start_drain")
    got = 0
    while until_eof or got < total:
        chunk = r.read(65536)
        if not chunk:
            break
        got += len(chunk)
    r.close()
    return got


def write_after_reader_closed(proc: Proc, data: bytes) -> str:
    w = proc.open_writer()
    proc.signal("writer-open")
    proc.wait_for("reader-closed")
    try:
        n = w.write(data)
    except BrokenPipeError:
        return "BrokenPipeError"
    finally:
        try:
            w.close()
        except OSError:
            pass
    return f"write returned {n}"


def open_then_close_reader(proc: Proc) -> None:
    r = proc.open_reader()
    proc.wait_for("writer-open")
    r.close()
    proc.signal("reader-closed")


def write_text(proc: Proc, text: str, after: bytes) -> str:
    w = proc.open_writer()
    try:
        w.write(text)
        verdict = "accepted"
    except TypeError:
        verdict = "TypeError"
    w.write(after)
    w.close()
    return verdict


def timed_open(proc: Proc, side: str, delay_ms: int) -> None:
    proc.sleep_ms(delay_ms)
    end = proc.open_reader() if side == "reader" else proc.open_writer()
    proc.signal(f"{side}-open")
    other = "writer" if side == "reader" else "reader"
    proc.wait_for(f"{other}-open")
    end.close()


def nonblocking_opens(proc: Proc) -> Tuple[Optional[int], bool]:
    """fifo(7): a nonblocking write-open without a reader fails; with one it succeeds."""
    try:
        w = proc.open_writer(nonblocking=True)
        w.close()
        first: Optional[int] = None
    except OSError as exc:
        first = exc.errno
    r = proc.open_reader(nonblocking=True)
    try:
        w = proc.open_writer(nonblocking=True)
        w.close()
        second = True
    except OSError:
        second = False
    r.close()
    return first, second


def nonblocking_reads(proc: Proc, data: bytes) -> List[Any]:
    """EOF (b'') with no writer, EAGAIN with an idle writer, then data, then EOF again."""
    seen: List[Any] = []
    r = proc.open_reader(nonblocking=True)
    seen.append(_try_read(r, 1))
    w = proc.open_writer(nonblocking=True)
    seen.append(_try_read(r, 1))
    w.write(data)
    got = b""
    while len(got) < len(data):
        chunk = _try_read(r, len(data))
        if not isinstance(chunk, bytes) or not chunk:
            break
        got += chunk
    seen.append(got)
    w.close()
    seen.append(_try_read(r, 1))
    r.close()
    return seen


def _try_read(r: Any, n: int) -> Any:
    try:
        return r.read(n)
    except BlockingIOError:
        return "EAGAIN"


def write_close_reopen(proc: Proc, data: bytes) -> Any:
    r = proc.open_reader(nonblocking=True)
    w = proc.open_writer(nonblocking=True)
    w.write(data)
    w.close()
    r.close()
    r2 = proc.open_reader(nonblocking=True)
    after = _try_read(r2, max(1, len(data)))
    r2.close()
    return after


def writer_sessions(proc: Proc, sessions: Sequence[bytes]) -> None:
    for i, data in enumerate(sessions):
        w = proc.open_writer()
        proc.signal(f"opened-{i}")
        w.write(data)
        w.close()
        proc.wait_for(f"drained-{i}")


def reader_sessions(proc: Proc, count: int) -> List[bytes]:
    r = proc.open_reader()
    got: List[bytes] = []
    for i in range(count):
        # A blocking read with no writer returns b'' at once (fifo(7)), so wait for
        # the session's writer before reading, or its bytes look like a second EOF.
        proc.wait_for(f"opened-{i}")
        parts = []
        while True:
            chunk = r.read(65536)
            if not chunk:
                break
            parts.append(chunk)
        got.append(b"".join(parts))
        proc.signal(f"drained-{i}")
    r.close()
    return got


def half_close_writer(proc: Proc, data: bytes) -> bytes:
    w = proc.open_writer()
    w.write(data)
    w.shutdown()
    back = []
    while True:
        chunk = w.read(65536)
        if not chunk:
            break
        back.append(chunk)
    w.close()
    return b"".join(back)


def half_close_reader(proc: Proc, reply: bytes) -> bytes:
    r = proc.open_reader()
    got = []
    while True:
        chunk = r.read(65536)
        if not chunk:
            break
        got.append(chunk)
    r.write(reply)
    r.close()
    return b"".join(got)


ENXIO = errno.ENXIO


def record_tag(writer: int, seq: int) -> int:
    """The uniform byte of record ``seq`` of ``writer``: who wrote it and (mod 16) when."""
    return writer * 16 + seq % 16


def write_records(proc: Proc, writer: int, records: int, size: int, writers: int) -> None:
    w = proc.open_writer()
    proc.signal(f"open-W{writer}")
    for seq in range(records):
        w.write(bytes([record_tag(writer, seq)]) * size)
    for other in range(writers):  # see write_then_close
        proc.wait_for(f"open-W{other}")
    w.close()


# --- nonblocking small writes ------------------------------------------------------------
def _try_write(w: Any, data: bytes) -> Any:
    try:
        return w.write(data)
    except BlockingIOError:
        return "EAGAIN"


def fill_then_try_small_writes(proc: Proc, prefill: int, attempts: Sequence[int], page: int) -> List[Any]:
    """Fill the pipe with page-sized nonblocking writes, wait until the reader has taken
    some bytes, write ``prefill`` bytes, then try each write of ``attempts`` bytes."""
    proc.wait_for("reader-open")  # a FIFO refuses a nonblocking write-open without a reader
    w = proc.open_writer(nonblocking=True)
    block = bytes(range(256)) * (page // 256)
    while True:  # page-sized writes fill one pipe buffer each, until none is free
        taken = _try_write(w, block)
        if taken == "EAGAIN" or taken == 0:
            break
    proc.signal("full")
    proc.wait_for("drained")
    if prefill:
        _try_write(w, b"p" * prefill)  # part of a buffer in use: room for less than a page
    results = [(n, _try_write(w, b"a" * n)) for n in attempts]
    proc.signal("attempted")
    w.close()
    return results


def drain_some(proc: Proc, drain: int) -> int:
    """Take exactly ``drain`` bytes out of the full pipe, then hold it open."""
    r = proc.open_reader(nonblocking=True)
    proc.signal("reader-open")
    proc.wait_for("full")
    got = 0
    while got < drain:
        chunk = _try_read(r, drain - got)
        if chunk == "EAGAIN" or not chunk:
            break
        got += len(chunk)
    proc.signal("drained")
    proc.wait_for("attempted")
    r.close()
    return got
