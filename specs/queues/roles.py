"""Role bodies for queue examples: module-level, returning plain picklable data.

Most single-process examples run a *script*: a list of operations
``("send", data, tag, timeout_ms)`` / ``("recv", select, timeout_ms, bufsize)``
whose outcomes come back as ``("ok", value)`` or ``("err", exception name, errno)``.
Multi-process examples tag each message with its producer and sequence number
and note every delivery in the history (``got P1#3``), which is what
:mod:`.linearize` judges.  Consumers are stopped without assuming any order
between producers: each producer ends with its own end marker, and only once
every end marker has been taken (so, by each producer's own order, all of its
data too) does a stopper send one STOP per consumer.
"""

from __future__ import annotations

import queue
import struct
from typing import Any, List, Optional, Sequence, Tuple

from ..harness.worker import Proc

Op = Tuple[Any, ...]
Result = Tuple[Any, ...]
HEADER = struct.Struct(">BH")  # producer, sequence number
STOP = b"\xffSTOP"
END = b"\xffEND"  # + the producer's number: the last message each producer sends


def outcome(exc: BaseException) -> Result:
    return ("err", type(exc).__name__, getattr(exc, "errno", None))


def apply(end: Any, op: Op) -> Result:
    """Run one script operation; exceptions become data."""
    try:
        if op[0] == "send":
            _, data, tag, timeout_ms = op
            end.send(data, tag=tag, timeout_ms=timeout_ms)
            return ("ok", None)
        _, select, timeout_ms, bufsize = op
        kwargs = {"bufsize": bufsize} if bufsize is not None else {}
        return ("ok", end.receive(select=select, timeout_ms=timeout_ms, **kwargs))
    except (queue.Full, queue.Empty, ValueError, OSError, EOFError) as exc:
        return outcome(exc)


def script(proc: Proc, ops: Sequence[Op]) -> List[Result]:
    end = proc.open("open")
    results = [apply(end, op) for op in ops]
    end.close()
    return results


def message(producer: int, seq: int, filler: bytes) -> bytes:
    return HEADER.pack(producer, seq) + filler


def end_of(data: bytes) -> Optional[int]:
    """The producer whose end marker ``data`` is, or None."""
    return data[len(END)] if len(data) == len(END) + 1 and data.startswith(END) else None


def parse(data: bytes) -> Optional[Tuple[int, int]]:
    if len(data) < HEADER.size or data == STOP or end_of(data) is not None:
        return None
    p, s = HEADER.unpack_from(data)
    return int(p), int(s)


def produce(proc: Proc, producer: int, fillers: Sequence[bytes]) -> None:
    end = proc.open("open", receiver=False)
    for seq, filler in enumerate(fillers):
        end.send(message(producer, seq, filler))
    end.send(END + bytes([producer]))
    end.close()  # flushes (multiprocessing.Queue's feeder thread) before "done"
    proc.signal(f"done-P{producer}")


def consume(proc: Proc, poll: bool = False) -> int:
    """Receive until a STOP message; note each delivery for the history judge, and say
    when a producer's end marker is taken.  ``poll``: non-blocking receives, 1 ms apart
    while the queue is empty, as a polling consumer does."""
    end = proc.open("open", sender=False)
    count = 0
    while True:
        if poll:
            try:
                data, _ = end.receive(timeout_ms=0)
            except queue.Empty:
                proc.sleep_ms(1)
                continue
        else:
            data, _ = end.receive()
        if data == STOP:
            break
        producer = end_of(data)
        if producer is not None:
            proc.signal(f"end-P{producer}")
            continue
        msg = parse(data)
        proc.note("got", f"P{msg[0]}#{msg[1]}" if msg else f"raw {data[:16]!r}")
        count += 1
    end.close()
    return count


def stopper(proc: Proc, producers: int, consumers: int) -> None:
    """Once every producer's end marker was taken, one STOP per consumer.  Not as soon as the
    producers are done: a message need not queue behind what other processes sent before it
    (only each producer's own order is promised), so an early STOP could overtake their data."""
    end = proc.open("open", receiver=False)
    for p in range(producers):
        proc.wait_for(f"end-P{p}")
    for _ in range(consumers):
        end.send(STOP)
    end.close()


def fill_then_send(proc: Proc, fillers: Sequence[bytes], timeout_ms: Optional[int]) -> List[Result]:
    """Fill the queue, then one more send: blocking, non-blocking (0) or timed."""
    end = proc.open("open")
    results = [apply(end, ("send", f, None, None)) for f in fillers[:-1]]
    proc.signal("full")
    results.append(apply(end, ("send", fillers[-1], None, timeout_ms)))
    proc.signal("extra-done")
    end.close()
    return results


def take_later(proc: Proc, delay_ms: int, count: int, wait_extra: bool,
               probe_ms: Optional[int]) -> List[Result]:
    """After the queue is full (and ``delay_ms``), receive ``count`` messages, then
    probe (``probe_ms``) that nothing is left."""
    end = proc.open("open")
    proc.wait_for("full")
    proc.sleep_ms(delay_ms)
    if wait_extra:
        proc.wait_for("extra-done")
    proc.note("take")
    results = [apply(end, ("recv", 0, None, None)) for _ in range(count)]
    if probe_ms is not None:
        results.append(apply(end, ("recv", 0, probe_ms, None)))
    end.close()
    return results


def receive_then_drain(proc: Proc, timeout_ms: Optional[int], expected: int,
                       probe_ms: Optional[int]) -> List[Result]:
    """A receive on the empty queue (blocking or timed), ``expected`` more, then a probe."""
    end = proc.open("open")
    proc.signal("ready")
    results = [apply(end, ("recv", 0, timeout_ms, None))]
    proc.signal("first-done")
    results += [apply(end, ("recv", 0, None, None)) for _ in range(expected)]
    if probe_ms is not None:
        results.append(apply(end, ("recv", 0, probe_ms, None)))
    end.close()
    return results


def send_later(proc: Proc, delay_ms: int, data: Sequence[bytes], wait_first: bool) -> None:
    end = proc.open("open")
    proc.wait_for("ready")
    proc.sleep_ms(delay_ms)
    if wait_first:
        proc.wait_for("first-done")
    proc.note("send_now")
    for d in data:
        end.send(d)
    end.close()


def blocked_receiver(proc: Proc) -> Result:
    end = proc.open("open", sender=False)
    proc.signal("receiving")
    return apply(end, ("recv", 0, None, None))


def remover(proc: Proc, delay_ms: int) -> None:
    proc.wait_for("receiving")
    proc.sleep_ms(delay_ms)  # give the receiver time to block; a receive begun later fails too
    proc.call("remove", proc.channel.remove)


def unlink_script(proc: Proc, before: bytes, after: bytes) -> List[Any]:
    """POSIX unlink: the old handle still works, reopening fails, a new queue is empty."""
    end = proc.open("open")
    seen: List[Any] = [apply(end, ("send", before, None, None))]
    proc.call("remove", proc.channel.remove)
    seen.append(apply(end, ("send", after, None, None)))
    seen.append(apply(end, ("recv", 0, None, None)))
    try:
        proc.call("open", proc.channel.open).close()
        seen.append("opened")
    except OSError as exc:
        seen.append(outcome(exc))
    proc.call("recreate", proc.channel.recreate)
    fresh = proc.call("open", proc.channel.open)
    seen.append(apply(fresh, ("recv", 0, 0, None)))
    seen.append(apply(end, ("recv", 0, 0, None)))
    fresh.close()
    end.close()
    return seen


def senders_then_close(proc: Proc, data: Sequence[bytes]) -> None:
    end = proc.open("open", receiver=False)
    for d in data:
        end.send(d)
    end.close()


def receive_until_eof(proc: Proc, limit: int) -> List[Result]:
    end = proc.open("open", sender=False)
    results: List[Result] = []
    for _ in range(limit + 2):
        r = apply(end, ("recv", 0, None, None))
        results.append(r)
        if r[0] == "err":
            break
    end.close()
    return results
