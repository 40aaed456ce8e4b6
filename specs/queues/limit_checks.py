"""Invariants of a queue's limits and lifetime: full and empty queues, the
maximum message size, removal of the name, datagram truncation and EOF.

Timing is judged only by lower bounds that causality guarantees: a timed-out
operation waited at least its timeout, and a blocked send cannot complete
before a receiver has started to make room.
"""

from __future__ import annotations

from typing import Any, List, Optional

from hypothesis import strategies as st

from ..harness.faults import INTERRUPTS
from ..harness.history import describe_wait, waited_at_least
from ..harness.run import Case, Role, patience
from ..invariant import Level, Unresolved, expect, invariant, short_repr
from ..strategies import Blob, anchored_integers
from . import roles
from .common import data_of, err_name, max_size, op_end, preflight
from .protocol import (
    BOUNDED_CAPACITY,
    DATAGRAM,
    EIDRM,
    EMSGSIZE,
    EOF_ON_CLOSE,
    MAX_MESSAGE_SIZE,
    NONBLOCKING,
    REMOVE_WAKES_RECEIVERS,
    TIMEOUTS,
    UNLINK,
    capacity,
)

FAMILY = "queue"
#: Fill at most this many messages: enough to cross any boundary, few enough to read a history.
MAX_FILL = 64


def _modes(case: Case) -> st.SearchStrategy[Optional[int]]:
    """None: blocking; 0: non-blocking; n > 0: timed (integer ms)."""
    modes: List[st.SearchStrategy[Optional[int]]] = [st.none()]
    if case.claims(NONBLOCKING):
        modes.append(st.just(0))
    if case.claims(TIMEOUTS):
        modes.append(st.integers(1, 60))
    return st.one_of(*modes)


def _probe_timeout(case: Case) -> Optional[int]:
    """How to ask "anything left?" without blocking: at once, or after 1 ms."""
    return 0 if case.claims(NONBLOCKING) else (1 if case.claims(TIMEOUTS) else None)


def _waited_at_least(case: Case, out: Any, proc: str, op: str, index: int, timeout_ms: int) -> None:
    start, end = op_end(out.history, proc, op, index)
    expect(end is not None and waited_at_least(start, end, timeout_ms), case.invariant.id,
           got=f"{op}(timeout_ms={timeout_ms}) gave up after "
               f"{describe_wait(start, end) if end is not None else 'no return'}",
           expected=f"a wait of at least {timeout_ms} ms before failing", call=op,
           history=out.history.format([start] + ([end] if end else [])))


@invariant(
    "full_queue_blocks_or_rejects_sender", family=FAMILY, level=Level.MUST,
    rule="A send to a full queue blocks until a receiver makes room, fails at once with queue.Full when "
         "non-blocking, and fails with queue.Full after waiting at least the timeout when timed; a failed send "
         "enqueues nothing and loses nothing.",
    source="mq_send(3): 'If the message queue is already full (i.e., the number of messages on the queue equals the "
           "queue's mq_maxmsg attribute), then, by default, mq_send() blocks until sufficient space becomes "
           "available' and, with O_NONBLOCK, 'the call instead fails immediately with the error EAGAIN'; mq_send(3) "
           "ETIMEDOUT; msgsnd(2): 'If IPC_NOWAIT is specified in msgflg, then the call instead fails with the error "
           "EAGAIN.'; LTP open_posix_testsuite mq_send assertions 5, 7, 10; Python docs queue.Queue.put",
    requires=[BOUNDED_CAPACITY],
    faults=[INTERRUPTS],
)
def full_queue_blocks_or_rejects_sender(backend: object, case: Case) -> None:
    limits = preflight(case)
    top = max_size(limits, 512)
    sizes = [s for s in range(top + 1) if (capacity(limits, s) or 0) <= MAX_FILL]
    if not sizes:
        raise Unresolved(f"{case.backend.name}: no message size fills the queue within {MAX_FILL} messages")

    def body(size: int, seed: int, timeout_ms: Optional[int], delay_ms: int) -> None:
        count = int(capacity(limits, size) or 0)
        fillers = [bytes([i % 256]) + Blob(size, seed).data[1:] if size else b"" for i in range(count + 1)]
        blocking = timeout_ms is None
        take = count + 1 if blocking else count
        out = case.run([Role("S", roles.fill_then_send, (fillers, timeout_ms)),
                        Role("R", roles.take_later, (delay_ms, take, not blocking, _probe_timeout(case)))])
        sent, taken = out.value("S"), out.value("R")
        h = out.history
        extra = sent[-1]
        if blocking:
            start, end = op_end(h, "S", "send", count)
            took = h.of("R", "take")[0]
            expect(extra[0] == "ok" and end is not None and end.t_ns >= took.t_ns, case.invariant.id,
                   got=f"the send into the full queue {err_name(extra)} at {h.ms(end):.3f} ms" if end else "no end",
                   expected=f"it to block until the receiver started taking at {h.ms(took):.3f} ms",
                   call="send", history=h.format([start, took] + ([end] if end else [])))
        else:
            expect(extra[:2] == ("err", "Full"), case.invariant.id,
                   got=f"send(timeout_ms={timeout_ms}) into a full queue of {count} {err_name(extra)}",
                   expected="queue.Full", call="send", history=h.format())
            if timeout_ms:
                _waited_at_least(case, out, "S", "send", count, timeout_ms)
        want = fillers[:take] + (["raised Empty"] if _probe_timeout(case) is not None else [])
        got = data_of(taken)
        expect(got == want, case.invariant.id, got=f"the receiver got {[short_repr(g, 20) for g in got]}",
               expected=f"{[short_repr(w, 20) for w in want]}: each message exactly once, nothing more",
               call="receive", history=h.format(h.of("R")[-4:]))

    # Pinned: the largest message that fills the queue, capacity + 1 of them, blocking.
    case.explore(body, size=st.sampled_from(sizes), seed=st.integers(0, 99), timeout_ms=_modes(case),
                 delay_ms=st.integers(20, 120), pinned=[{"size": sizes[-1], "seed": 0, "timeout_ms": None,
                                                         "delay_ms": 20}])


@invariant(
    "empty_queue_blocks_or_rejects_receiver", family=FAMILY, level=Level.MUST,
    rule="A receive from an empty queue blocks until a message is sent, fails at once with queue.Empty when "
         "non-blocking, and fails with queue.Empty after waiting at least the timeout when timed; a failed "
         "receive consumes nothing, and nothing is delivered twice.",
    source="mq_receive(3): 'If the queue is empty, then, by default, mq_receive() blocks until a message becomes "
           "available' and, with O_NONBLOCK, 'the call instead fails immediately with the error EAGAIN'; "
           "mq_receive(3) ETIMEDOUT; msgrcv(2) ENOMSG: 'IPC_NOWAIT was specified in msgflg and no message of the "
           "requested type existed on the message queue.'; LTP open_posix_testsuite mq_receive assertions 5, 7, 10; "
           "Python docs queue.Queue.get",
    faults=[INTERRUPTS],
)
def empty_queue_blocks_or_rejects_receiver(backend: object, case: Case) -> None:
    limits = preflight(case)

    def body(timeout_ms: Optional[int], delay_ms: int, data: List[bytes]) -> None:
        blocking = timeout_ms is None
        expected = len(data) - 1 if blocking else len(data)
        out = case.run([Role("R", roles.receive_then_drain, (timeout_ms, expected, _probe_timeout(case))),
                        Role("S", roles.send_later, (delay_ms, data, not blocking))])
        out.value("S")
        results = out.value("R")
        h = out.history
        first = results[0]
        if blocking:
            start, end = op_end(h, "R", "receive", 0)
            sent = h.of("S", "send_now")[0]
            expect(first[0] == "ok" and end is not None and end.t_ns >= sent.t_ns, case.invariant.id,
                   got=f"the receive on the empty queue {err_name(first)}" + (f" at {h.ms(end):.3f} ms" if end else ""),
                   expected=f"it to block until the sender sent at {h.ms(sent):.3f} ms", call="receive",
                   history=h.format([start, sent] + ([end] if end else [])))
        else:
            expect(first[:2] == ("err", "Empty"), case.invariant.id,
                   got=f"receive(timeout_ms={timeout_ms}) on an empty queue {err_name(first)}",
                   expected="queue.Empty", call="receive", history=h.format())
            if timeout_ms:
                _waited_at_least(case, out, "R", "receive", 0, timeout_ms)
        got = data_of(results if blocking else results[1:])
        want = list(data) + (["raised Empty"] if _probe_timeout(case) is not None else [])
        expect(got == want, case.invariant.id, got=f"the receiver got {[short_repr(g, 20) for g in got]}",
               expected=f"{[short_repr(w, 20) for w in want]}: each message exactly once, nothing more",
               call="receive", history=h.format(h.of("R")[-4:]))

    room = min(capacity(limits, 64) or 4, 4)
    case.explore(body, timeout_ms=_modes(case), delay_ms=st.integers(20, 120),
                 data=st.lists(st.binary(min_size=1, max_size=64), min_size=1, max_size=room))


@invariant(
    "maximum_size_accepted_one_byte_more_rejected", family=FAMILY, level=Level.MUST,
    rule="A message of exactly max_message_size bytes is accepted; one byte more (or any larger size) raises "
         "ValueError, sends nothing and leaves the queue as it was.",
    source="mq_send(3) EMSGSIZE: 'msg_len was greater than the mq_msgsize attribute of the message queue.'; "
           "msgsnd(2) EINVAL: 'invalid msgsz value (less than 0 or greater than the system value MSGMAX)'; LTP "
           "open_posix_testsuite mq_send assertion 14; posix_ipc tests (test_max_message_size)",
    requires=[MAX_MESSAGE_SIZE],
)
def maximum_size_accepted_one_byte_more_rejected(backend: object, case: Case) -> None:
    limits = preflight(case)
    top = int(limits.max_message_size or 0)

    def body(excess: int, seed: int, marker: bytes) -> None:
        exact, over = Blob(top, seed).data, Blob(top + excess, seed + 1).data
        ops = [("send", exact, None, None), ("send", over, None, None), ("send", marker, None, None),
               ("recv", 0, None, None), ("recv", 0, None, None)]
        out = case.run([Role("Q", roles.script, (ops,))])
        r = out.value("Q")
        expect(r[0][0] == "ok", case.invariant.id, got=f"send of exactly {top} bytes {err_name(r[0])}",
               expected="accepted", call="send", history=out.history.format())
        expect(r[1][:2] == ("err", "ValueError"), case.invariant.id,
               got=f"send of {top + excess} bytes {err_name(r[1])}",
               expected=f"ValueError (the maximum is {top})", call="send", history=out.history.format())
        got = data_of(r[3:])
        expect(got == [exact, marker], case.invariant.id, got=[short_repr(g) for g in got],
               expected=f"the {top}-byte message then the marker {marker!r}: the rejected one left no trace",
               call="receive", history=out.history.format())

    case.explore(body, excess=anchored_integers(1, 4096, [1, 2]), seed=st.integers(0, 99),
                 marker=st.binary(min_size=1, max_size=8),
                 pinned=[{"excess": 1, "seed": 0, "marker": b"m"}])  # the maximum, and one byte more


@invariant(
    "unlinked_queue_lives_on_for_open_handles", family=FAMILY, level=Level.MUST,
    rule="After the name is removed, open handles still send and receive; opening the name without create "
         "raises FileNotFoundError; a new queue under the same name is a different, empty queue.",
    source="mq_unlink(3): 'The message queue name is removed immediately. The queue itself is destroyed once any "
           "other processes that have the queue open close their descriptors referring to the queue.'; "
           "mq_overview(7); LTP open_posix_testsuite mq_unlink assertions 1, 2",
    requires=[UNLINK, NONBLOCKING],
    placements=["fork"],
)
def unlinked_queue_lives_on_for_open_handles(backend: object, case: Case) -> None:
    preflight(case)

    def body(before: bytes, after: bytes) -> None:
        out = case.run([Role("Q", roles.unlink_script, (before, after))])
        seen = out.value("Q")
        labels = ["send before unlink", "send after unlink", "receive on the old handle", "open after unlink",
                  "receive on the new queue", "receive on the old handle"]
        want: List[Any] = [("ok", None), ("ok", None), ("ok", before), ("err", "FileNotFoundError"),
                           ("err", "Empty"), ("ok", after)]
        for label, g, w in zip(labels, seen, want):
            g2 = g if g == "opened" else (g[0], g[1][0] if g[0] == "ok" and g[1] is not None else g[1])
            expect(g2 == w, case.invariant.id, got=f"{label}: {g2!r}", expected=repr(w), call=label,
                   history=out.history.format())

    case.explore(body, scale=0.5, before=st.binary(max_size=32), after=st.binary(max_size=32))


@invariant(
    "removing_queue_wakes_blocked_receiver", family=FAMILY, level=Level.MUST,
    rule="Removing a System V queue while a receiver is blocked in receive() makes that receive fail with "
         "EIDRM instead of blocking forever.",
    source="msgrcv(2) EIDRM: 'While the process was sleeping to receive a message, the message queue was removed.'; "
           "LTP testcases/kernel/syscalls/ipc/msgrcv/msgrcv06.c",
    requires=[REMOVE_WAKES_RECEIVERS],
)
def removing_queue_wakes_blocked_receiver(backend: object, case: Case) -> None:
    preflight(case)

    def body(delay_ms: int) -> None:
        out = case.run([Role("R", roles.blocked_receiver), Role("X", roles.remover, (delay_ms,), opens=False)])
        out.value("X")
        r = out.value("R")
        expect(r[0] == "err" and r[2] == EIDRM, case.invariant.id, got=f"the blocked receive {err_name(r)}",
               expected=f"OSError with errno EIDRM ({EIDRM})", call="receive", history=out.history.format())

    case.explore(body, scale=0.5, delay_ms=st.integers(0, 80))


@invariant(
    "oversize_datagram_is_reported_not_truncated", family=FAMILY, level=Level.MUST,
    rule="The kernel cuts a datagram longer than the receive buffer without an error (a plain recv returns "
         "the first bytes as if they were the whole message); the backend must detect the cut (recvmsg "
         "reports MSG_TRUNC in its flags) and report it as OSError(EMSGSIZE) instead of returning the cut "
         "bytes; the next datagram arrives whole.",
    source="recv(2): 'If a message is too long to fit in the supplied buffer, excess bytes may be discarded "
           "depending on the type of socket the message is received from'; recv(2), flags returned by "
           "recvmsg(), MSG_TRUNC: 'indicates that the trailing portion of a datagram was discarded because the "
           "datagram was larger than the buffer supplied'; unix(7): SOCK_DGRAM 'preserves message "
           "boundaries'; CPython Lib/test/test_socket.py testRecvmsgTrunc",
    requires=[DATAGRAM],
)
def oversize_datagram_is_reported_not_truncated(backend: object, case: Case) -> None:
    preflight(case)

    def body(size: int, short: int, seed: int, after: bytes) -> None:
        big = Blob(size, seed).data
        bufsize = max(0, size - short)
        ops = [("send", big, None, None), ("send", after, None, None),
               ("recv", 0, None, bufsize), ("recv", 0, None, None)]
        out = case.run([Role("Q", roles.script, (ops,))])
        r = out.value("Q")
        expect(r[2][0] == "err" and r[2][2] == EMSGSIZE, case.invariant.id,
               got=f"receive(bufsize={bufsize}) of a {size}-byte datagram {err_name(r[2])}",
               expected=f"OSError(EMSGSIZE): recvmsg's MSG_TRUNC flag says {short} bytes were cut off",
               call="receive",
               history=out.history.format())
        expect(data_of(r[3:]) == [after], case.invariant.id, got=err_name(r[3]),
               expected=f"the next datagram {after!r} whole", call="receive", history=out.history.format())

    case.explore(body, size=st.integers(1, 4096), short=st.integers(1, 64), seed=st.integers(0, 99),
                 after=st.binary(min_size=1, max_size=16))


@invariant(
    "receive_reports_eof_after_senders_close", family=FAMILY, level=Level.MUST,
    rule="Once every sender has closed, the receiver gets every message and then EOFError, not a zero-length "
         "message and not a block.",
    source="unix(7): SOCK_SEQPACKET 'for a sequenced-packet socket that is connection-oriented'; recv(2): 'When a "
           "stream socket peer has performed an orderly shutdown, the return value will be 0 (the traditional "
           "\"end-of-file\" return).'; Python docs multiprocessing Connection.recv_bytes: 'Raises EOFError if there is"
           " nothing left to receive and the other end has closed.'",
    requires=[EOF_ON_CLOSE],
    faults=[INTERRUPTS],
)
def receive_reports_eof_after_senders_close(backend: object, case: Case) -> None:
    preflight(case)

    def body(data: List[bytes]) -> None:
        # EOFError must follow the sender's close at once: a run asleep past a few
        # seconds with nothing recorded is a receiver that never hears of it.
        out = case.run([Role("R", roles.receive_until_eof, (len(data),)),
                        Role("S", roles.senders_then_close, (data,))], deadline=patience())
        out.value("S")
        got = data_of(out.value("R"))
        want = list(data) + ["raised EOFError"]
        expect(got == want, case.invariant.id, got=[short_repr(g, 20) for g in got],
               expected=f"{[short_repr(w, 20) for w in want]}", call="receive", history=out.history.format())

    case.explore(body, data=st.lists(st.binary(min_size=1, max_size=64), max_size=6))
