"""Invariants of message delivery: boundaries, exactly-once, per-producer order,
priorities and System V type selection.

Single-process rules run a script of operations in one worker; delivery with
several producers and consumers is judged from the recorded history by
:mod:`.linearize`, which never assumes a global order between producers.
"""

from __future__ import annotations

import heapq
from typing import Any, Dict, List, Optional, Sequence, Tuple

from hypothesis import strategies as st

from ..harness.faults import INTERRUPT_PERIODS_US, INTERRUPTS
from ..harness.history import INVOKE, OK
from ..harness.run import INTERRUPT_KEY, Case, Role
from ..invariant import Level, describe_bytes_mismatch, expect, invariant, short_repr
from ..strategies import Blob, anchored_integers
from . import linearize as lin
from . import roles
from .common import concurrent, data_of, err_name, max_size, payloads, preflight, unbounded_top
from .protocol import (
    EMPTY_MESSAGES,
    NONBLOCKING,
    PRIORITIES,
    TYPE_SELECTION,
    QueueLimits,
    capacity,
    msgrcv_model,
)

FAMILY = "queue"


@invariant(
    "each_receive_returns_one_whole_message", family=FAMILY, level=Level.MUST,
    rule="Every receive returns exactly one whole sent message, byte for byte: never part of one, never two "
         "glued together; zero-length messages (where claimed) and NUL bytes round-trip.",
    source="mq_receive(3): 'mq_receive() removes the oldest message with the highest priority from the message "
           "queue'; msgrcv(2); unix(7): SOCK_SEQPACKET 'preserves message boundaries'; pipe(7) and socket(7) "
           "(paraphrase: a byte stream has no message boundaries, so recv(1024) is not a message)",
)
def each_receive_returns_one_whole_message(backend: object, case: Case) -> None:
    limits = preflight(case)

    def body(messages: List[Blob]) -> None:
        sent = [m.data for m in messages]
        out = case.run([Role("R", roles.script, ([("recv", 0, None, None)] * len(sent),)),
                        Role("S", roles.senders_then_close, (sent,))])
        got = data_of(out.value("R"))  # before S's: a sender may fail only because R stopped reading
        for i, (g, want) in enumerate(zip(got, sent)):
            shown = describe_bytes_mismatch(g, want) if isinstance(g, bytes) else f"{g} ({len(want)} bytes sent)"
            expect(g == want, case.invariant.id, got=f"receive #{i}: {shown}",
                   expected=f"the whole message #{i}", call="receive",
                   history=out.history.format(out.history.of("R", "receive")[2 * i:2 * i + 2]))
        out.value("S")

    # Pinned: a message at the largest size drawn (the claimed maximum, or above every kernel
    # buffer when none is claimed) between the smallest ones (zero-length where claimed).
    top, low = _size_range(case, limits)
    case.explore(body, messages=st.lists(payloads(case, limits), min_size=1, max_size=8),
                 pinned=[{"messages": [Blob(low, 1), Blob(top, 2), Blob(low, 3)]}])


def _delivery_example(case: Case, fillers: List[List[bytes]], consumers: int,
                      poll: bool) -> Tuple[Any, Dict[int, int]]:
    producers = len(fillers)
    rs = [Role(f"P{i}", roles.produce, (i, f)) for i, f in enumerate(fillers)]
    rs += [Role(f"C{j}", roles.consume, (poll,)) for j in range(consumers)]
    rs.append(Role("S", roles.stopper, (producers, consumers)))
    out = case.run(rs)
    for p in out.roles:
        out.value(p)
    return out, {i: len(f) for i, f in enumerate(fillers)}


def receipts(out: Any) -> List[lin.Receipt]:
    """Every delivery noted by a consumer, with the interval of its receive call."""
    h = out.history
    found: List[lin.Receipt] = []
    for proc in out.roles:
        invoked: Optional[Any] = None
        for e in h.of(proc):
            if e.op == "receive" and e.phase == INVOKE:
                invoked = e
            elif e.op == "receive" and e.phase == OK and invoked is not None:
                returned = e
            elif e.op == "got" and invoked is not None:
                ident = e.detail[1:].split("#") if e.detail.startswith("P") else None
                msg = (int(ident[0]), int(ident[1])) if ident else None
                found.append(lin.Receipt(proc, msg, h.ms(invoked), h.ms(returned), e.detail))
    return found


def _size_range(case: Case, limits: QueueLimits) -> Tuple[int, int]:
    """The largest and smallest payload sizes :func:`payloads` draws."""
    top = max_size(limits, unbounded_top())
    return top, 0 if case.claims(EMPTY_MESSAGES) else 1


def _fillers(case: Case, limits: QueueLimits) -> st.SearchStrategy[List[List[bytes]]]:
    producers = st.integers(1, 4) if concurrent(case) else st.just(1)
    cap = max(0, min(64, (limits.max_message_size or 64)) - roles.HEADER.size)
    filler = st.binary(max_size=cap)
    return producers.flatmap(lambda k: st.lists(st.lists(filler, max_size=12), min_size=k, max_size=k))


def _polls(case: Case) -> st.SearchStrategy[bool]:
    """Consumers that block in receive, or (where non-blocking receives are claimed) poll."""
    return st.booleans() if case.claims(NONBLOCKING) else st.just(False)


#: A consumer blocked on an empty queue under a dense storm of interrupts (where the fault is
#: drawn): a signal surely lands inside a waiting receive, which C extensions report as
#: an error (EINTR) that the backend must retry.  Drawn storms are sparser and may miss it.
INTERRUPTED_WAIT: Dict[str, Any] = dict(fillers=[[b"", b"x"]], consumers=1, poll=False,
                                        **{INTERRUPT_KEY: min(p for p in INTERRUPT_PERIODS_US if p)})


def _judge_delivery(case: Case, out: Any, sent: Dict[int, int], check_order: bool) -> None:
    found = lin.first_contradiction(receipts(out), sent, check_order=check_order)
    if found is None:
        return
    text, involved = found
    focus = [e for r in involved for e in out.history.of(r.consumer, "got") if e.detail == r.raw]
    expect(False, case.invariant.id, got=text,
           expected="every sent message received exactly once" + (", each producer's in its order" if check_order
                                                                     else ""),
           call="receive", history=out.history.format(focus))


@invariant(
    "every_message_delivered_exactly_once", family=FAMILY, level=Level.MUST,
    rule="With any number of producers and consumers, every sent message is received by exactly one consumer: "
         "none lost, none duplicated, none that was never sent.",
    source="mq_receive(3): 'removes the oldest message'; msgrcv(2) (paraphrase: a received message is removed from "
           "the queue); Python docs multiprocessing, 'Exchanging objects between processes': 'Queues are thread and "
           "process safe.'",
    faults=[INTERRUPTS],
)
def every_message_delivered_exactly_once(backend: object, case: Case) -> None:
    limits = preflight(case)

    def body(fillers: List[List[bytes]], consumers: int, poll: bool) -> None:
        out, sent = _delivery_example(case, fillers, consumers, poll)
        _judge_delivery(case, out, sent, check_order=False)

    case.explore(body, pinned=[INTERRUPTED_WAIT], fillers=_fillers(case, limits),
                 consumers=st.integers(1, 3) if concurrent(case) else st.just(1), poll=_polls(case))


@invariant(
    "each_producers_messages_arrive_in_its_order", family=FAMILY, level=Level.MUST,
    rule="Messages of one producer (at one priority) are handed out in the order it sent them, whichever "
         "consumers take them; no order between different producers is assumed.",
    source="mq_send(3): 'Messages are placed on the queue in decreasing order of priority, with newer messages of "
           "the same priority being placed after older messages with the same priority.'; msgrcv(2): 'If msgtyp is "
           "0, then the first message in the queue is read.'; unix(7): UNIX domain datagram sockets 'are always "
           "reliable and don't reorder datagrams'",
    faults=[INTERRUPTS],
)
def each_producers_messages_arrive_in_its_order(backend: object, case: Case) -> None:
    limits = preflight(case)

    def body(fillers: List[List[bytes]], consumers: int, poll: bool) -> None:
        out, sent = _delivery_example(case, fillers, consumers, poll)
        _judge_delivery(case, out, sent, check_order=True)

    case.explore(body, fillers=_fillers(case, limits),
                 consumers=st.integers(1, 3) if concurrent(case) else st.just(1), poll=_polls(case))


def _priority_model(sent: Sequence[Tuple[bytes, int]]) -> List[Tuple[bytes, int]]:
    """A heap keyed by (-priority, arrival): the oldest message of the highest priority first."""
    heap = [(-p, i, d) for i, (d, p) in enumerate(sent)]
    heapq.heapify(heap)
    return [(d, -p) for p, _, d in (heapq.heappop(heap) for _ in range(len(heap)))]


@invariant(
    "oldest_highest_priority_message_first", family=FAMILY, level=Level.MUST,
    rule="Receives return messages as a stable sort of the sent ones by descending priority (FIFO within a "
         "priority); a priority outside 0…max_priority raises ValueError and sends nothing.",
    source="mq_receive(3): 'removes the oldest message with the highest priority'; mq_send(3): 'newer messages "
           "of the same priority being placed after older messages with the same priority'; mq_overview(7): "
           "'Message priorities range from 0 (low) to sysconf(_SC_MQ_PRIO_MAX) - 1 (high)'; POSIX mq_send() "
           "(paraphrase: msg_prio must be less than {MQ_PRIO_MAX}, else EINVAL); LTP mq_send assertions 3, 4, "
           "13; posix_ipc QUEUE_PRIORITY_MAX",
    requires=[PRIORITIES],
)
def oldest_highest_priority_message_first(backend: object, case: Case) -> None:
    limits = preflight(case)
    top = int(limits.max_priority or 0)
    room = capacity(limits, 16) or 16
    prio = anchored_integers(0, top, [0, 1, top - 1, top], deep=False)  # small ones collide: FIFO within one
    outside = st.sampled_from([-1, top + 1, -(2**15), top + 1000])

    def body(sent: List[Tuple[bytes, int]], rejected: List[Tuple[int, int]]) -> None:
        ops: List[Tuple[Any, ...]] = [("send", d, p, None) for d, p in sent]
        for at, p in sorted(rejected, reverse=True):
            ops.insert(min(at, len(ops)), ("reject", b"bad", p, None))
        bad = [i for i, o in enumerate(ops) if o[0] == "reject"]
        ops = [("send",) + o[1:] for o in ops] + [("recv", 0, None, None)] * len(sent)
        out = case.run([Role("Q", roles.script, (ops,))])
        results = out.value("Q")
        for p, r in [(ops[i][2], results[i]) for i in bad]:
            expect(r[:2] == ("err", "ValueError"), case.invariant.id, got=f"send(tag={p}) {err_name(r)}",
                   expected=f"ValueError (priorities are 0…{top})", call="send", history=out.history.format())
        got = [tuple(r[1]) if r[0] == "ok" else err_name(r) for r in results[len(ops) - len(sent):]]
        want = _priority_model(sent)
        for i, (g, w) in enumerate(zip(got, want)):
            expect(g == w, case.invariant.id, got=f"receive #{i} gave {short_repr(g)}",
                   expected=f"{short_repr(w)}: the oldest message of the highest priority left",
                   call="receive", history=out.history.format())

    case.explore(body, sent=st.lists(st.tuples(st.binary(max_size=16), prio), min_size=1, max_size=room),
                 rejected=st.lists(st.tuples(st.integers(0, 10), outside), max_size=2))


@invariant(
    "receive_by_type_follows_msgrcv", family=FAMILY, level=Level.MUST,
    rule="receive(select=0) takes the first message, select=t>0 the first of type t, select=t<0 the first "
         "message of the lowest type <= |t|; nothing suitable means queue.Empty; types < 1 are rejected.",
    source="msgrcv(2): 'If msgtyp is less than 0, then the first message in the queue with the lowest type less than"
           " or equal to the absolute value of msgtyp will be read.'; msgsnd(2): 'The mtype field must have a "
           "strictly positive integer value.'; LTP testcases/kernel/syscalls/ipc/msgrcv/msgrcv07.c, "
           "msgsnd/msgsnd02.c",
    requires=[TYPE_SELECTION, NONBLOCKING],
)
def receive_by_type_follows_msgrcv(backend: object, case: Case) -> None:
    preflight(case)
    send = st.tuples(st.just("send"), st.binary(max_size=8), st.integers(-1, 6), st.just(0))
    recv = st.tuples(st.just("recv"), st.one_of(st.integers(-7, -1), st.integers(-7, 7)), st.just(0), st.none())
    # Some sends first, so that selections meet queues holding several types.
    ops = st.builds(lambda a, b: a + b, st.lists(send, min_size=1, max_size=8),
                    st.lists(st.one_of(recv, send), min_size=1, max_size=16))

    def body(ops: List[Tuple[Any, ...]]) -> None:
        out = case.run([Role("Q", roles.script, (ops,))])
        results = out.value("Q")
        model: List[Tuple[bytes, int]] = []
        for i, (o, r) in enumerate(zip(ops, results)):
            if o[0] == "send":
                want: Any = ("ok", None) if o[2] >= 1 else ("err", "ValueError")
                if o[2] >= 1:
                    model.append((o[1], o[2]))
                shown = f"send(type={o[2]})"
            else:
                shown = f"receive(select={o[1]}) with types {[t for _, t in model]} queued"
                k = msgrcv_model(model, o[1])
                want = ("err", "Empty") if k is None else ("ok", model.pop(k))
            got = r[:2] if r[0] == "err" else ("ok", tuple(r[1]) if r[1] is not None else None)
            expect(got == want, case.invariant.id, got=f"op #{i} {shown} {err_name(r)}",
                   expected=f"{want[1] if want[0] == 'err' else 'to return ' + short_repr(want[1])} (msgrcv(2))",
                   call="receive" if o[0] == "recv" else "send", history=out.history.format())

    case.explore(body, ops=ops)


@invariant(
    "queue_behaves_like_its_model", family=FAMILY, level=Level.MUST,
    rule="Over any sequence of sends and receives (blocking, non-blocking, timed; filling to capacity; "
         "oversize sends) the queue returns what a model queue (FIFO, priority heap or per-type FIFOs) returns.",
    source="mq_send(3), mq_receive(3), msgsnd(2), msgrcv(2); Python docs queue.Queue.put and get (queue.Full, "
           "queue.Empty)",
)
def queue_behaves_like_its_model(backend: object, case: Case) -> None:
    from ..harness.run import PROFILES
    from .machine import run_machine

    limits = preflight(case)
    examples = int(PROFILES[case.harness.profile]["max_examples"]) * 2

    def body(seed: int) -> None:
        out = case.run([Role("M", run_machine, (case.capabilities, limits, seed, examples, case.harness.shrink))])
        failure = out.value("M")
        if failure is None:
            return
        steps = "\n".join(f"  {i:2}. {s}" for i, s in enumerate(failure["steps"]))
        got, _, should = failure["error"].partition(", but should be ")
        expect(False, case.invariant.id, got=got, expected=should or "what the model queue does",
               call=failure["steps"][-1].split(" -> ")[0] if failure["steps"] else "machine",
               history=f"steps of the smallest failing run (seed {seed}):\n{steps}")

    case.explore(body, scale=0.01, seed=st.integers(0, 2**32 - 1))
