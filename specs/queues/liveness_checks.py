"""Invariants where real queue libraries break off the happy path: a batch meeting several
waiting receivers, an untimed call that waits longer than a library's hidden default, a
message landing at a timed receive's deadline, a consumer opened before the producers,
threads sharing one endpoint, and a producer or consumer SIGKILLed in the middle.

Timing is judged by causality only: a receiver that timed out is at fault only when the
batch was in the queue before its own deadline (its start plus its timeout) had passed; an
untimed call is at fault only when it gave up by itself.
"""

from __future__ import annotations

from typing import Any, Dict, List

from hypothesis import strategies as st

from ..harness.faults import INTERRUPTS, KILLS
from ..harness.history import before_deadline
from ..harness.run import KILL_KEY, Case, Role
from ..invariant import Level, Unsupported, expect, invariant, short_repr
from ..strategies import anchored_integers
from . import linearize as lin
from . import liveness_roles as lr
from . import roles
from .common import concurrent, data_of, err_name, max_size, preflight, unbounded_top
from .protocol import (
    BATCHES,
    BOUNDED_CAPACITY,
    CRASH_SAFE,
    MULTI_PROCESS,
    NONBLOCKING,
    SYNCHRONOUS_SEND,
    THREAD_SAFE,
    TIMEOUTS,
    capacity,
)

FAMILY = "queue"
#: A batch receiver's timeout: far longer than waking takes, so only a receiver that was never
#: handed its message runs into it (and it is judged only if the batch came before it ran out).
BATCH_TIMEOUT_MS = 2000
#: The untimed wait: past the 10 s and 15 s defaults that libraries hide behind "block".
LONG_WAIT_MS = 16_000
#: A survivor's timed receive while a peer may be dying: short, it is called again and again.
CRASH_POLL_MS = 20


@invariant(
    "batches_wake_every_waiting_receiver", family=FAMILY, level=Level.MUST,
    rule="With k receivers blocked on an empty queue, one send_many of k messages hands each of them one: "
         "none of them times out once the batch was in the queue before its deadline.",
    source="Python docs queue.Queue.put and multiprocessing.Queue.put (paraphrase: each put makes one item "
           "available to one waiting get); mq_send(3): a message sent to a queue with waiting receivers is "
           "received by one of them; ipc_specs.queues.protocol.Batching (a batch is its messages sent one "
           "after another)",
    requires=[BATCHES, TIMEOUTS],
)
def batches_wake_every_waiting_receiver(backend: object, case: Case) -> None:
    limits = preflight(case)
    room = min(capacity(limits, 16) or 4, 4)
    waiters = st.integers(2, room) if concurrent(case) and room >= 2 else st.just(1)

    def body(k: int, delay_ms: int, many: bool) -> None:
        batch = [b"batch-%d" % i for i in range(k)]
        out = case.run([Role(f"R{i}", lr.batch_waiter, (i, BATCH_TIMEOUT_MS, many)) for i in range(k)]
                       + [Role("S", lr.batch_sender, (k, delay_ms, batch))])
        out.value("S")
        h = out.history
        in_queue = h.of("S", "batch_in_queue")[0]
        got: List[Any] = []
        for i in range(k):
            r = out.value(f"R{i}")
            call = "receive_many" if many else "receive"
            start = h.of(f"R{i}", call)[0]
            deadline_ns = start.t_ns + BATCH_TIMEOUT_MS * 1_000_000
            judged = before_deadline(start, in_queue, BATCH_TIMEOUT_MS)  # else it came too late to be owed
            expect(r[0] == "ok" or not judged, case.invariant.id,
                   got=f"R{i}'s {call}(timeout_ms={BATCH_TIMEOUT_MS}) {err_name(r)}",
                   expected=f"one of the {k} messages: the batch was in the queue at {h.ms(in_queue):.3f} ms, "
                            f"before R{i}'s deadline at {(deadline_ns - h.t0_ns) / 1e6:.3f} ms",
                   call=call, history=h.format([start, in_queue] + h.of(f"R{i}", call)[1:2]))
            if r[0] == "ok":
                got.append(r[1][0])
        expect(len(set(got)) == len(got) and set(got) <= set(batch), case.invariant.id,
               got=f"the receivers got {[short_repr(g, 20) for g in got]}",
               expected=f"distinct messages of the batch {batch}", call="receive", history=h.format())

    case.explore(body, k=waiters, delay_ms=st.integers(0, 40),
                 many=st.booleans())


@invariant(
    "untimed_calls_outwait_library_defaults", family=FAMILY, level=Level.MUST,
    rule="An untimed receive on an empty queue (and an untimed send to a full one) waits as long as it "
         "takes, here 16 s, longer than the defaults libraries hide behind 'block'; it never gives up by "
         "itself with queue.Empty or queue.Full.",
    source="Python docs queue.Queue.get: 'If optional args block is true and timeout is None (the default), "
           "block if necessary until an item is available.'; mq_receive(3) and mq_send(3) (paraphrase: without "
           "O_NONBLOCK the call blocks until a message, or room, is available); msgrcv(2), msgsnd(2)",
    placements=["fork"],
)
def untimed_calls_outwait_library_defaults(backend: object, case: Case) -> None:
    """One example in every profile, in the fork placement only, pinned rather than drawn: it
    costs 16 s (32 s for a backend claiming bounded_capacity: a full queue waits 16 s more),
    spent asleep, so it occupies a worker without loading the machine."""
    limits = preflight(case)
    size = max_size(limits, 64)
    fill = capacity(limits, size) if case.claims(BOUNDED_CAPACITY) else None
    if fill is not None and fill > 64:
        fill = None  # a queue this deep is not filled here (the limit checks fill it)

    def body(wait_ms: int) -> None:
        first = b"f" * size
        fillers = [bytes([i % 256]) * size for i in range(fill + 1)] if fill else []
        out = case.run([Role("R", lr.long_receiver, (wait_ms, fill or 0)),
                        Role("S", lr.long_sender, (wait_ms, first, fillers))],
                       deadline=2 * wait_ms / 1000 + case.harness.deadline_s)
        h = out.history
        got, sent = out.value("R"), out.value("S")
        send_now = h.of("S", "send_now")[0]
        end = h.of("R", "receive")[1] if len(h.of("R", "receive")) > 1 else None
        expect(got[0][0] == "ok" and got[0][1][0] == first, case.invariant.id,
               got=f"the untimed receive on the empty queue {err_name(got[0])}"
                   + (f" at {h.ms(end):.3f} ms" if end else ""),
               expected=f"to wait for the message sent at {h.ms(send_now):.3f} ms", call="receive",
               history=h.format(h.of("R", "receive")[:2] + [send_now]))
        if not fill:
            return
        drain = h.of("R", "drain")[0]
        last_send = h.of("S", "send")[-2:]
        expect(sent[-1] == ("ok", None) and last_send[-1].t_ns >= drain.t_ns, case.invariant.id,
               got=f"the untimed send into the full queue {err_name(sent[-1])} at {h.ms(last_send[-1]):.3f} ms",
               expected=f"to wait until the receiver began draining at {h.ms(drain):.3f} ms",
               call="send", history=h.format(last_send + [drain]))
        expect(data_of(got[1:]) == fillers, case.invariant.id, got=f"the drain got {len(got) - 1} messages: "
               f"{[short_repr(g, 12) for g in data_of(got[1:])]}", expected=f"the {len(fillers)} messages sent",
               call="receive", history=h.format(h.of("R")[-4:]))

    case.explore(body, scale=0.01, wait_ms=st.just(LONG_WAIT_MS))


@invariant(
    "message_racing_a_timeout_is_received_once", family=FAMILY, level=Level.MUST,
    rule="A message sent just before or just after a timed receive's deadline is received exactly once: by "
         "that receive, or (if it raised queue.Empty) by a later one; never taken and then dropped.",
    source="Python docs queue.Queue.get: 'raise the Empty exception if no item was available within that time' "
           "(paraphrase: Empty means nothing was taken); mq_timedreceive(3) ETIMEDOUT: 'The call timed out "
           "before a message could be transferred.'",
    requires=[TIMEOUTS],
)
def message_racing_a_timeout_is_received_once(backend: object, case: Case) -> None:
    preflight(case)

    def body(timeout_ms: int, offset_us: int) -> None:
        message = b"racing"
        at_us = max(0, timeout_ms * 1000 + offset_us)
        out = case.run([Role("R", lr.racing_receiver, (timeout_ms,)),
                        Role("S", lr.racing_sender, (at_us, message))])
        out.value("S")
        got = data_of(out.value("R"))
        want_a, want_b = [message, lr.AFTER], ["raised Empty", message, lr.AFTER]
        expect(got in (want_a, want_b), case.invariant.id,
               got=f"the timed receive, then the later ones, got {[short_repr(g, 20) for g in got]}",
               expected=f"{[short_repr(w) for w in want_a]} or {[short_repr(w) for w in want_b]}: the message "
                        f"sent {offset_us / 1000:+.3f} ms from the {timeout_ms} ms deadline, exactly once",
               call="receive", history=out.history.format())

    case.explore(body, timeout_ms=st.integers(5, 30),
                 offset_us=anchored_integers(-3000, 12000, [-200, -50, 0, 50, 200, 1000, 3000], deep=False))


@invariant(
    "consumer_opened_early_sees_later_messages", family=FAMILY, level=Level.MUST,
    rule="A consumer that opened its endpoint before the producer sent anything gets every message with "
         "non-blocking receives once the producer has finished: nothing it saw at open is cached.",
    source="mq_receive(3): 'If the queue is empty, then, by default, mq_receive() blocks' and with O_NONBLOCK "
           "'fails immediately with the error EAGAIN' (paraphrase: the queue's state at the call decides); "
           "Python docs queue.Queue.get: 'Return an item if one is immediately available'",
    requires=[NONBLOCKING],
)
def consumer_opened_early_sees_later_messages(backend: object, case: Case) -> None:
    if case.placement == "thread" and not case.claims(SYNCHRONOUS_SEND):
        # A feeder-thread queue shared by threads cannot be flushed by one thread's close()
        # (closing it would close it for all): "the producer has finished" cannot be known.
        raise Unsupported("without synchronous_send, threads cannot tell when a producer's messages are queued")
    limits = preflight(case)
    room = min(capacity(limits, 16) or 4, 4)

    def body(messages: List[bytes]) -> None:
        out = case.run([Role("C", lr.early_consumer, (len(messages),)),
                        Role("P", lr.late_producer, (messages,))])
        out.value("P")
        got = data_of(out.value("C"))
        expect(got == list(messages), case.invariant.id,
               got=f"non-blocking receives after the producer finished got {[short_repr(g, 20) for g in got]}",
               expected=f"{[short_repr(m, 20) for m in messages]}, sent after the consumer opened",
               call="receive", history=out.history.format())

    case.explore(body, messages=st.lists(st.binary(min_size=1, max_size=16), min_size=1, max_size=room))


@invariant(
    "threads_sharing_an_endpoint_take_each_message_once", family=FAMILY, level=Level.MUST,
    rule="Several threads receiving from one shared endpoint object (where thread_safe is claimed) each get "
         "whole messages, and every message is taken by exactly one of them.",
    source="Python docs multiprocessing, 'Exchanging objects between processes': 'Queues are thread and "
           "process safe.'; Python docs multiprocessing.connection.Connection (paraphrase: a Connection is not "
           "thread safe, so a backend claiming thread safety must lock it); mq_receive(3)",
    requires=[THREAD_SAFE],
)
def threads_sharing_an_endpoint_take_each_message_once(backend: object, case: Case) -> None:
    limits = preflight(case)
    producers = st.integers(1, 3) if concurrent(case) else st.just(1)
    cap = max(0, min(64, (limits.max_message_size or 64)) - roles.HEADER.size)
    fillers = producers.flatmap(lambda k: st.lists(st.lists(st.binary(max_size=cap), max_size=12),
                                                   min_size=k, max_size=k))

    def body(fillers: List[List[bytes]], threads: int) -> None:
        rs = [Role(f"P{i}", roles.produce, (i, f)) for i, f in enumerate(fillers)]
        rs += [Role("C", lr.shared_consumer, (threads,)), Role("S", roles.stopper, (len(fillers), threads))]
        out = case.run(rs)
        for p in out.roles:
            out.value(p)
        sent: Dict[int, int] = {i: len(f) for i, f in enumerate(fillers)}
        receipts = []
        for t, items in enumerate(out.value("C")):
            for item in items:
                ident = item[1:].split("#") if item.startswith("P") else None
                msg = (int(ident[0]), int(ident[1])) if ident else None
                receipts.append(lin.Receipt(f"C.thread{t}", msg, 0.0, 0.0, item))
        found = lin.first_contradiction(receipts, sent, check_order=False)
        expect(found is None, case.invariant.id, got=found[0] if found else "",
               expected=f"every message taken by exactly one of the {threads} threads sharing the endpoint",
               call="receive", history=out.history.format())

    # Pinned: many more messages than drawn (the first thread to start can take a dozen
    # before the others run), the largest, with the most threads: unlocked readers then
    # compete for frames every time (drawn examples alone missed such a twin 1 run in 20).
    # And a few of the largest: a body past the kernel's buffers takes several reads, and
    # a thread blocked in its own read takes the bytes between two of them, whatever the
    # load (small frames alone escaped a gallery run under a load average of 8).
    producers_n = 3 if concurrent(case) else 1
    top = max_size(limits, unbounded_top())
    most = [[bytes(cap)] * 200] * producers_n
    largest = [[bytes(max(0, top - roles.HEADER.size))] * 4] * producers_n
    case.explore(body, fillers=fillers, threads=st.integers(2, 4),
                 pinned=[{"fillers": most, "threads": 4}, {"fillers": largest, "threads": 4}])


@invariant(
    "killed_peer_leaves_queue_usable_and_acknowledged_messages_delivered", family=FAMILY, level=Level.MUST,
    rule="When a producer or a consumer is SIGKILLed inside send or receive, the survivors' timed and "
         "non-blocking operations still return, and every message whose send had returned is still "
         "received (less the one a killed consumer may have been taking).",
    source="mq_overview(7) and msgrcv(2) (paraphrase: the queue is a kernel object; a message is "
           "transferred whole by one system call, so a process's death cannot leave it half-taken or "
           "locked); Python docs multiprocessing, 'Pipes and Queues', warning: 'If a process is killed using "
           "Process.terminate() or os.kill() while it is trying to use a Queue, then the data in the queue "
           "is likely to become corrupted.' (why crash_safe is a claim, not a given)",
    requires=[CRASH_SAFE, MULTI_PROCESS],
    faults=[KILLS],
)
def killed_peer_leaves_queue_usable_and_acknowledged_messages_delivered(backend: object, case: Case) -> None:
    if not (case.claims(TIMEOUTS) or case.claims(NONBLOCKING)):
        raise Unsupported("backend claims neither timeouts nor nonblocking: a survivor cannot poll")
    preflight(case)
    wait_ms = CRASH_POLL_MS if case.claims(TIMEOUTS) else 0

    def body(counts: List[int]) -> None:
        producers = ["P0", "P1"]
        out = case.run([Role("P0", lr.crash_producer, (0, counts[0])),
                        Role("P1", lr.crash_producer, (1, counts[1]), killable=True),
                        Role("C0", lr.crash_consumer, (producers, wait_ms, "C1")),
                        Role("C1", lr.crash_consumer, (producers, wait_ms), killable=True)])
        for p in out.roles:
            if p != out.victim:
                out.value(p)  # a survivor that hung or raised is the violation
        h = out.history
        acked = {e.detail for p in producers for e in h.of(p, "acked")}
        got = [e.detail for c in ("C0", "C1") for e in h.of(c, "got")]
        twice = sorted({g for g in got if got.count(g) > 1})
        sent = {f"P{i}#{s}" for i in range(2) for s in range(counts[i])}
        strange = sorted(set(got) - sent)
        lost = sorted(acked - set(got))
        killed = out.victim if out.victim and out.roles[out.victim].status != "ok" else None
        allowed = 1 if killed == "C1" else 0
        expect(not twice and not strange and len(lost) <= allowed, case.invariant.id,
               got=f"received twice {twice}, never sent {strange}, acknowledged but lost {lost}"
                   + (f" ({killed} was killed)" if killed else ""),
               expected="every acknowledged message received once"
                        + (", less at most the one C1 was taking when killed" if allowed else ""),
               call="receive", history=h.format([e for c in ("C0", "C1") for e in h.of(c, "got")][-6:]))

    count = st.integers(0, 12)
    # Pinned: the consumer C1 killed while it waits inside receive on an empty queue, and while busy.
    pinned = [{"counts": [0, 0], KILL_KEY: (1, 1)}, {"counts": [0, 0], KILL_KEY: (1, 5)},
              {"counts": [6, 6], KILL_KEY: (1, 1)}]
    case.explore(body, counts=st.lists(count, min_size=2, max_size=2), examples=pinned)


def _fits_unread(case: Case, limits: Any, size: int) -> int:
    """How many messages of ``size`` bytes the queue surely holds with nobody reading."""
    if case.claims(BOUNDED_CAPACITY):
        return min(int(capacity(limits, size) or 0), 64)
    return max(1, min(8, _max_dgram_qlen() - 2))  # below any kernel buffer, AF_UNIX datagram queues too


def _max_dgram_qlen() -> int:
    """How many datagrams an AF_UNIX socket queues for a receiver (read at run time)."""
    try:
        with open("/proc/sys/net/unix/max_dgram_qlen") as f:
            return int(f.read())
    except (OSError, ValueError):
        return 10  # the kernel's default


@invariant(
    "messages_sent_before_close_arrive_after_the_sender_exits", family=FAMILY, level=Level.MUST,
    rule="Every message a sender sent before close() returned arrives, even when the sender's process has "
         "exited before the receiver starts or while a slow receiver still has them to take, and even with "
         "signals arriving during close.",
    source="Python docs multiprocessing, 'Joining processes that use queues': 'a process that has put items "
           "in a queue will wait before terminating until all the buffered items are fed by the \"feeder\" "
           "thread to the underlying pipe' (unless cancel_join_thread() is called); close(2) and socket(7) "
           "SO_LINGER (paraphrase: a normal close leaves queued data to be sent; a zero linger time discards "
           "it); ipc_specs.queues.protocol (close returns once every message it sent is in the queue)",
    placements=["fork"],
    faults=[INTERRUPTS],
)
def messages_sent_before_close_arrive_after_the_sender_exits(backend: object, case: Case) -> None:
    """Fork only: a pool worker or a thread does not exit after its role.  The slow receiver's
    pinned example costs 1.5 s; drawn ones at most a few hundred ms."""
    limits = preflight(case)
    top = max_size(limits, 1024)
    poll = CRASH_POLL_MS if case.claims(TIMEOUTS) else (0 if case.claims(NONBLOCKING) else None)
    senders = st.integers(1, 2) if case.claims(MULTI_PROCESS) else st.just(1)

    def body(counts: List[int], size: int, delay_ms: int, after_exit: bool) -> None:
        size = min(size, top)
        if after_exit:  # everything must fit the queue while nobody reads, or a sender waits for ever
            fit = _fits_unread(case, limits, size)
            counts = [min(c, max(0, fit - sum(counts[:i]))) for i, c in enumerate(counts)]
        fillers = [[bytes([seq % 251]) * max(0, size - roles.HEADER.size) for seq in range(c)] for c in counts]
        names = [f"P{i}" for i in range(len(counts))]
        out = case.run([Role(n, lr.closing_sender, (i, f)) for i, (n, f) in enumerate(zip(names, fillers))]
                       + [Role("R", lr.late_receiver, (names, sum(counts), delay_ms, after_exit, poll))])
        for role in out.roles:
            out.value(role)
        receipts = [lin.Receipt("R", _ident(e.detail), 0.0, 0.0, e.detail) for e in out.history.of("R", "got")]
        found = lin.first_contradiction(receipts, dict(enumerate(counts)), check_order=False)
        start = out.history.of("R", "start")[0]
        expect(found is None, case.invariant.id, got=found[0] if found else "",
               expected="every message sent before close() returned, received once, "
                        + ("after every sender had exited" if after_exit else f"by a receiver {delay_ms} ms late"),
               call="receive", history=out.history.format([start] + out.history.of("R", "got")[-3:]))

    # Pinned: more than a pipe holds, and a receiver that starts 1.5 s late.
    slow = {"counts": [200], "size": 1024, "delay_ms": 1500, "after_exit": False}
    case.explore(body, counts=senders.flatmap(lambda k: st.lists(st.integers(0, 200), min_size=k, max_size=k)),
                 size=anchored_integers(roles.HEADER.size, 1024, [roles.HEADER.size, 64, 1024], deep=False),
                 delay_ms=st.sampled_from([0, 20, 200]), after_exit=st.booleans(), examples=[slow])


def _ident(detail: str) -> Any:
    ident = detail[1:].split("#") if detail.startswith("P") else None
    return (int(ident[0]), int(ident[1])) if ident else None
