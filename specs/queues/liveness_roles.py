"""Role bodies for the liveness checks (``liveness_checks``): batches, long waits, a message
racing a timeout, consumers opened early, threads sharing one endpoint, a killed peer."""

from __future__ import annotations

import os
import threading
import time
from typing import Any, List, Optional, Sequence

from ..harness.worker import Proc
from . import roles
from .roles import Result, apply, outcome

#: The message that follows the racing one: per-producer order puts it behind.
AFTER = b"\xffAFTER"


def _one(end: Any, timeout_ms: Optional[int], many: bool) -> Result:
    """One receive, or ``receive_many(1)`` (which must return a list of exactly one)."""
    if not many:
        return apply(end, ("recv", 0, timeout_ms, None))
    try:
        got = end.receive_many(1, timeout_ms=timeout_ms)
    except Exception as exc:  # noqa: BLE001 - judged as data, like apply()
        return outcome(exc)
    return ("ok", tuple(got[0])) if len(got) == 1 else ("ok", ("receive_many(1) returned", len(got)))


def batch_waiter(proc: Proc, index: int, timeout_ms: int, many: bool) -> Result:
    end = proc.open("open", sender=False)
    proc.signal(f"waiting-{index}")
    got = _one(end, timeout_ms, many)
    end.close()
    return got


def batch_sender(proc: Proc, waiters: int, delay_ms: int, messages: Sequence[bytes]) -> None:
    """Once every waiter is about to wait (and ``delay_ms`` more, so that they block), one batch."""
    end = proc.open("open", receiver=False)
    for i in range(waiters):
        proc.wait_for(f"waiting-{i}")
    proc.sleep_ms(delay_ms)
    end.send_many(list(messages))
    end.close()  # flushes a feeder thread: the batch is in the queue once close returns
    proc.note("batch_in_queue")


def long_receiver(proc: Proc, wait_ms: int, fill: int) -> List[Result]:
    """An untimed receive on an empty queue; with ``fill``, then drain a full queue late.
    A receive that gave up by itself ends the example (the sender stops waiting too), so
    that a failing backend costs one wait, not two."""
    end = proc.open("open")
    proc.signal("receiving")
    results = [apply(end, ("recv", 0, None, None))]
    proc.signal("first-done")
    if fill and results[0][0] == "ok":
        proc.wait_for("full")
        proc.wait_for_at_most("last-send-returned", wait_ms)  # early only if the send gave up
        proc.note("drain")
        results += [apply(end, ("recv", 0, None, None)) for _ in range(fill + 1)]
    end.close()
    return results


def long_sender(proc: Proc, wait_ms: int, first: bytes, fillers: Sequence[bytes]) -> List[Result]:
    """After ``wait_ms``, the first message; then fill the queue and send one more (untimed).
    Nothing is owed to a receiver that returned before the first message was sent: then
    the first message is sent at once and the queue is not filled."""
    end = proc.open("open")
    proc.wait_for("receiving")
    gave_up = proc.wait_for_at_most("first-done", wait_ms)
    proc.note("send_now")
    results = [apply(end, ("send", first, None, None))]
    if fillers and not gave_up:
        proc.wait_for("first-done")
        results += [apply(end, ("send", f, None, None)) for f in fillers[:-1]]
        proc.signal("full")
        results.append(apply(end, ("send", fillers[-1], None, None)))
        proc.signal("last-send-returned")
    end.close()
    return results


def racing_receiver(proc: Proc, timeout_ms: int) -> List[Result]:
    """A timed receive, then untimed ones until the message that follows the racing one."""
    end = proc.open("open", sender=False)
    proc.signal("receiving")
    results = [apply(end, ("recv", 0, timeout_ms, None))]
    while len(results) < 4:  # the racing message and the one after it; a third is reported
        last = results[-1]
        if (last[0] == "ok" and last[1][0] == AFTER) or (len(results) > 1 and last[0] != "ok"):
            break
        results.append(apply(end, ("recv", 0, None, None)))
    end.close()
    return results


def racing_sender(proc: Proc, at_us: int, message: bytes) -> None:
    """Send ``message`` ``at_us`` after the receiver said it starts its timed receive."""
    end = proc.open("open", receiver=False)
    proc.wait_for("receiving")
    due = time.monotonic() + at_us / 1e6
    while time.monotonic() < due:  # sleep most of the way, spin the last half millisecond
        time.sleep(max(0.0, due - time.monotonic() - 0.0005))
    proc.note("send_now")
    end.send(message)
    end.send(AFTER)
    end.close()


def early_consumer(proc: Proc, count: int) -> List[Result]:
    """Open before anything is sent, then poll (non-blocking) once the producer is done."""
    end = proc.open("open", sender=False)
    proc.signal("opened")
    proc.wait_for("sent")
    results = [apply(end, ("recv", 0, 0, None)) for _ in range(count)]
    end.close()
    return results


def late_producer(proc: Proc, messages: Sequence[bytes]) -> None:
    end = proc.open("open", receiver=False)
    proc.wait_for("opened")
    for m in messages:
        end.send(m)
    end.close()  # flushes: every message is in the queue before "sent"
    proc.signal("sent")


def shared_consumer(proc: Proc, threads: int) -> List[List[str]]:
    """``threads`` threads receive from ONE endpoint until each gets a STOP; each keeps what it got."""
    end = proc.open("open", sender=False)
    got: List[List[str]] = [[] for _ in range(threads)]

    def work(i: int) -> None:
        try:
            while True:
                data, _ = end.receive()
                if data == roles.STOP:
                    return
                producer = roles.end_of(data)
                if producer is not None:
                    proc.signal(f"end-P{producer}")
                    continue
                msg = roles.parse(data)
                got[i].append(f"P{msg[0]}#{msg[1]}" if msg else f"raw {data[:16]!r}")
        except Exception as exc:  # noqa: BLE001 - reported as what this thread got
            got[i].append(f"raised {type(exc).__name__}: {exc}"[:120])

    workers = [threading.Thread(target=work, args=(i,), name=f"consumer-{i}", daemon=True) for i in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    end.close()
    return got


# --- a killed producer or consumer ---------------------------------------------------------------
def _dead(proc: Proc, role: str) -> bool:
    """Whether ``role``'s process is gone (a zombie, or reaped): its pid is in a file it wrote."""
    try:
        with open(os.path.join(proc.task.directory, f"pid-{role}")) as f:
            pid = int(f.read())
    except FileNotFoundError:
        return False  # not started yet
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rpartition(")")[2].split()[0] in ("Z", "X")
    except FileNotFoundError:
        return True  # reaped


def _note_pid(proc: Proc) -> None:
    path = proc.task.file("pid")
    fd = os.open(path + ".tmp", os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
    os.write(fd, str(os.getpid()).encode())
    os.close(fd)
    os.rename(path + ".tmp", path)  # whole or absent, never half written


def crash_producer(proc: Proc, producer: int, count: int) -> None:
    """Send ``count`` messages, noting each one whose send returned (acknowledged)."""
    _note_pid(proc)
    end = proc.open("open", receiver=False)
    proc.arm_kill()
    for seq in range(count):
        end.send(roles.message(producer, seq, b""))
        proc.note("acked", f"P{producer}#{seq}")
    end.close()
    proc.signal(f"done-P{producer}")


def crash_consumer(proc: Proc, producers: Sequence[str], timeout_ms: int, after: str = "") -> int:
    """Bounded receives (timed, or non-blocking with a pause) until one finds nothing after every
    producer has finished (signalled done, or died).  With ``after``, start once that consumer
    has finished its first receive (or died in it): a kill drawn for that consumer then finds
    it inside receive with no rival, holding whatever the backend holds there."""
    _note_pid(proc)
    end = proc.open("open", sender=False)
    while after and not (os.path.exists(os.path.join(proc.task.directory, f"ev-first-{after}"))
                         or _dead(proc, after)):
        proc.sleep_ms(1)
    proc.arm_kill()  # the kill delay counts from here: the drawn 0-20 ms land inside the receives
    count, first_done = 0, False
    while True:
        finished = all(os.path.exists(os.path.join(proc.task.directory, f"ev-done-{p}")) or _dead(proc, p)
                       for p in producers)  # looked at BEFORE the receive: then an Empty means drained
        r = apply(end, ("recv", 0, timeout_ms, None))
        if r[0] == "ok":
            msg = roles.parse(r[1][0])
            proc.note("got", f"P{msg[0]}#{msg[1]}" if msg else f"raw {r[1][0][:16]!r}")
            count += 1
        if not first_done:
            first_done = True
            proc.signal(f"first-{proc.name}")
        if r[0] == "ok":
            continue
        if r[1] != "Empty":
            raise RuntimeError(f"receive {r[1]} (errno {r[2]})")
        elif finished:
            break
        elif timeout_ms == 0:
            proc.sleep_ms(2)
    end.close()
    return count


# --- a graceful close with data in flight ------------------------------------------------------
def closing_sender(proc: Proc, producer: int, fillers: Sequence[bytes]) -> None:
    """Send, close, and end the process: what close() left unflushed dies with it."""
    _note_pid(proc)
    end = proc.open("open", receiver=False)
    for seq, filler in enumerate(fillers):
        end.send(roles.message(producer, seq, filler))
    end.close()
    proc.signal(f"done-P{producer}")


def late_receiver(proc: Proc, producers: Sequence[str], total: int, delay_ms: int, after_exit: bool,
                  timeout_ms: Optional[int]) -> int:
    """Start late (``delay_ms``, or once every sender has exited), then receive until ``total``
    arrived or, bounded receives permitting, one finds nothing after every sender is gone."""
    end = proc.open("open", sender=False)
    gone = [False]

    def all_gone() -> bool:
        gone[0] = gone[0] or all(os.path.exists(os.path.join(proc.task.directory, f"ev-done-{p}"))
                                 and _dead(proc, p) for p in producers)
        return gone[0]

    while after_exit and not all_gone():
        proc.sleep_ms(1)
    proc.sleep_ms(delay_ms)
    proc.note("start")
    count = 0
    while count < total:
        finished = timeout_ms is not None and all_gone()  # before the receive: then Empty means drained
        r = apply(end, ("recv", 0, timeout_ms, None))
        if r[0] == "ok":
            msg = roles.parse(r[1][0])
            proc.note("got", f"P{msg[0]}#{msg[1]}" if msg else f"raw {r[1][0][:16]!r}")
            count += 1
        elif r[1] != "Empty" or finished:
            break
        elif timeout_ms == 0:
            proc.sleep_ms(2)
    end.close()
    return count
