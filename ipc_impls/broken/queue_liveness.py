"""Broken message queues that keep every promise on the happy path and break one where real
libraries do: a batch, a long wait, a message landing at a timeout's edge, an endpoint
shared by threads, a consumer opened before the producers, a consumer killed mid-receive.
"""

from __future__ import annotations

import multiprocessing
import os
import queue
import socket
import struct
import threading
import time
from multiprocessing.connection import Connection
from typing import Any, FrozenSet, List, Optional, Sequence

from ipc_specs.harness.faults import KILLS
from ipc_specs.harness.resources import Scope
from ipc_specs.queues import protocol as p
from ipc_specs.queues.protocol import Received

from ..mp_queues import MpQueueAdapter, MpQueueChannel, MpQueueEndpoint
from ..queues import PosixChannel, PosixEndpoint, PosixMqBackend, SocketChannel
from . import Exhibit
from .queues import Framed, FramedChannel

#: What a library might take for "long enough": the wait an untimed call really gets.
LIBRARY_DEFAULT_MS = 10_000


# --- batches_wake_every_waiting_receiver ------------------------------------------------------
class BatchAsOneItem(MpQueueEndpoint):
    """Puts a batch on the queue as ONE item (a list) to save lock round trips; the receiver
    that gets it keeps the rest for its own next calls.  One waiter wakes with the whole
    batch, and the others time out although a message was sent for each of them."""

    def __init__(self, q: Any, owner_pid: int) -> None:
        super().__init__(q, owner_pid)
        self.kept: List[bytes] = []

    def send_many(self, messages: Sequence[bytes], *, timeout_ms: Optional[int] = None) -> None:
        block, timeout = (timeout_ms is None or timeout_ms > 0), (None if timeout_ms is None else timeout_ms / 1000)
        self.q.put([bytes(m) for m in messages], block, timeout)

    def receive(self, *, select: int = 0, timeout_ms: Optional[int] = None) -> Received:
        if self.kept:
            return self.kept.pop(0), 0
        item, tag = super().receive(select=select, timeout_ms=timeout_ms)
        if not isinstance(item, list):
            return item, tag
        self.kept = item[1:]
        return item[0], tag


class BatchChannel(MpQueueChannel):
    def open(self, *, sender: bool = True, receiver: bool = True) -> BatchAsOneItem:
        return BatchAsOneItem(self.q, self.owner_pid)


class BatchAsOneItemBackend(MpQueueAdapter):
    name = "broken-batch-as-one-item"

    def setup(self, scope: Scope) -> BatchChannel:
        return BatchChannel(self.maxsize)


# --- untimed_calls_outwait_library_defaults ---------------------------------------------------
class UntimedIsTenSeconds(PosixEndpoint):
    """Turns "block" into a generous 10 s timeout "so nothing hangs forever": an untimed
    receive on a queue that stays empty longer, or a send to a queue that stays full, raises
    queue.Empty or queue.Full although the caller asked to wait."""

    def send(self, data: bytes, *, tag: Optional[int] = None, timeout_ms: Optional[int] = None) -> None:
        super().send(data, tag=tag, timeout_ms=LIBRARY_DEFAULT_MS if timeout_ms is None else timeout_ms)

    def receive(self, *, select: int = 0, timeout_ms: Optional[int] = None) -> Received:
        return super().receive(select=select, timeout_ms=LIBRARY_DEFAULT_MS if timeout_ms is None else timeout_ms)


# --- message_racing_a_timeout_is_received_once ------------------------------------------------
class ReadsThenTimesOut(PosixEndpoint):
    """Waits in 10 ms ticks and checks its deadline after each one: a message that arrives in
    the last tick, after the deadline, has been taken from the queue when the receive gives
    up with queue.Empty, and is lost."""

    TICK_MS = 10

    def receive(self, *, select: int = 0, timeout_ms: Optional[int] = None) -> Received:
        if not timeout_ms:
            return super().receive(select=select, timeout_ms=timeout_ms)
        try:
            return super().receive(timeout_ms=0)
        except queue.Empty:
            pass
        deadline = time.monotonic() + timeout_ms / 1000
        while True:
            try:
                got = super().receive(timeout_ms=self.TICK_MS)
            except queue.Empty:
                if time.monotonic() >= deadline:
                    raise
                continue
            if time.monotonic() >= deadline:
                raise queue.Empty  # "too late: the caller has given up" -- with the message in hand
            return got


# --- consumer_opened_early_sees_later_messages ------------------------------------------------
class CachesEmptyAtOpen(PosixEndpoint):
    """Asks the kernel once, at open, whether the queue is empty (mq_getattr's message count)
    and answers non-blocking receives from that until it learns otherwise (its own send, a
    blocking receive that returned): a poller opened before the producers never sees them."""

    def __init__(self, mq: Any) -> None:
        super().__init__(mq)
        self.known_empty = mq.current_messages == 0

    def send(self, data: bytes, *, tag: Optional[int] = None, timeout_ms: Optional[int] = None) -> None:
        self.known_empty = False
        super().send(data, tag=tag, timeout_ms=timeout_ms)

    def receive(self, *, select: int = 0, timeout_ms: Optional[int] = None) -> Received:
        if timeout_ms == 0 and self.known_empty:
            raise queue.Empty
        got = super().receive(select=select, timeout_ms=timeout_ms)
        self.known_empty = False
        return got


# --- threads_sharing_an_endpoint_take_each_message_once ---------------------------------------
class UnlockedReader:
    """A pipe carrying ``send_bytes`` frames, with a lock around each send and none around
    receives "because only one process receives".  Each frame is read as a header, then a
    body: two threads sharing the endpoint split one frame, and the second reads part of a
    body as the next header."""

    def __init__(self, r: Connection, w: Connection, lock: Any) -> None:
        self.r, self.w, self.lock = r, w, lock

    def send(self, data: bytes, *, tag: Optional[int] = None, timeout_ms: Optional[int] = None) -> None:
        with self.lock:
            self.w.send_bytes(data)

    def receive(self, *, select: int = 0, timeout_ms: Optional[int] = None) -> Received:
        return self.r.recv_bytes(), 0

    def close(self) -> None:
        pass  # the ends are the channel's, shared by every endpoint of this process


class UnlockedReaderChannel:
    def __init__(self) -> None:
        self.r, self.w = multiprocessing.Pipe(duplex=False)
        self.lock = multiprocessing.Lock()

    def open(self, *, sender: bool = True, receiver: bool = True) -> UnlockedReader:
        return UnlockedReader(self.r, self.w, self.lock)

    def limits(self) -> p.QueueLimits:
        return p.QueueLimits()

    def detach(self) -> None:
        pass  # one receiving process, any number of senders: every process keeps both ends

    def teardown(self) -> None:
        self.r.close()
        self.w.close()


class UnlockedReaderBackend:
    """Claims threads, not several receiving processes: what it would keep with a receive lock."""

    name = "broken-unlocked-reader"
    kind = "queue"
    wiring = "inherit"
    capabilities: FrozenSet[str] = frozenset({p.SYNCHRONOUS_SEND, p.EMPTY_MESSAGES, p.THREAD_SAFE})

    def setup(self, scope: Scope) -> UnlockedReaderChannel:
        return UnlockedReaderChannel()


# --- killed_peer_leaves_queue_usable_and_acknowledged_messages_delivered ----------------------
class LockedAcrossReceive(PosixEndpoint):
    """Serialises receivers with a ``multiprocessing.Lock`` held across the kernel call "so that
    two consumers never race".  It works until a consumer is killed while it holds the lock:
    nothing ever releases it, and every other receive, timed or not, waits for ever."""

    def __init__(self, mq: Any, lock: Any) -> None:
        super().__init__(mq)
        self.lock = lock

    def receive(self, *, select: int = 0, timeout_ms: Optional[int] = None) -> Received:
        with self.lock:
            return super().receive(select=select, timeout_ms=timeout_ms)


class LockedChannel(PosixChannel):
    def __init__(self, name: str, max_messages: int, max_message_size: int) -> None:
        super().__init__(name, max_messages, max_message_size)
        self.lock = multiprocessing.Lock()  # inherited by forked workers (hence inherit wiring)

    def open(self, *, sender: bool = True, receiver: bool = True) -> LockedAcrossReceive:
        return LockedAcrossReceive(super().open(sender=sender, receiver=receiver).mq, self.lock)


class LockedAcrossReceiveBackend(PosixMqBackend):
    name = "broken-locked-across-receive"
    wiring = "inherit"

    def setup(self, scope: Scope) -> LockedChannel:
        ch = super().setup(scope)
        return LockedChannel(ch.name, ch.max_messages, ch.max_message_size)


# --- messages_sent_before_close_arrive_after_the_sender_exits -------------------------------
class GivesUpFlushing(MpQueueEndpoint):
    """Closes like the reference (close, then wait for the feeder thread to flush) but waits at
    most a second "so that a vanished reader cannot hang the exit".  A receiver slower than that
    loses whatever the feeder still held when the sender exited."""

    GRACE_S = 1.0

    def close(self) -> None:
        if os.getpid() == self.owner_pid:
            return
        self.q.close()
        flusher = threading.Thread(target=self.q.join_thread, daemon=True)
        flusher.start()
        flusher.join(self.GRACE_S)
        if flusher.is_alive():
            self.q.cancel_join_thread()  # give up: what the feeder holds dies with the process


class GivesUpFlushingChannel(MpQueueChannel):
    def open(self, *, sender: bool = True, receiver: bool = True) -> GivesUpFlushing:
        return GivesUpFlushing(self.q, self.owner_pid)

    def limits(self) -> p.QueueLimits:
        return p.QueueLimits()  # unbounded


class LingerZeroFramed(Framed):
    """A length-framed queue over TCP on 127.0.0.1, framed and read correctly, whose close()
    sets SO_LINGER to (on, 0 s): the folk cure for "Address already in use" and sockets left
    in TIME_WAIT.  A zero linger time makes close() reset the connection, and whatever the
    kernel still held for a receiver that had not made room for it is discarded (socket(7)):
    a fast receiver gets everything, a late one loses the tail and reads ECONNRESET."""

    def close(self) -> None:
        if self.tx is not None:
            self.tx.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        super().close()


class LingerZeroChannel(FramedChannel):
    endpoint_cls = LingerZeroFramed


class LingerZeroTcpBackend:
    """Claims what a framed stream queue keeps: one sender, EOF once it closed."""

    name = "broken-linger-zero-tcp"
    kind = "queue"
    wiring = "inherit"
    capabilities: FrozenSet[str] = frozenset({p.SYNCHRONOUS_SEND, p.EMPTY_MESSAGES, p.EOF_ON_CLOSE})

    def setup(self, scope: Scope) -> SocketChannel:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as listener:
            listener.bind(("127.0.0.1", 0))  # loopback only, ephemeral port
            listener.listen(1)
            tx = socket.create_connection(listener.getsockname())
            rx, _ = listener.accept()
        return LingerZeroChannel(tx, rx, 0, empty_is_eof=False)


class GivesUpFlushingBackend(MpQueueAdapter):
    """An unbounded multiprocessing.Queue: a put never waits, so much can be in flight at close."""

    name = "broken-gives-up-flushing"
    capabilities = MpQueueAdapter.capabilities - {p.BOUNDED_CAPACITY}

    def __init__(self) -> None:
        super().__init__(maxsize=0)

    def setup(self, scope: Scope) -> GivesUpFlushingChannel:
        return GivesUpFlushingChannel(self.maxsize)


class UnlockedReaderThreadsBackend(UnlockedReaderBackend):
    """The same reader, checked for its claim in the thread placement: several consumer threads,
    each with an endpoint of its own, still share the one pipe end and split its frames."""

    name = "broken-unlocked-reader-threads"


class VariantChannel(PosixChannel):
    """A posix-mq channel whose endpoints are ``endpoint_cls`` (module level: picklable for
    spawned and forkserver workers, unlike a class made inside a function)."""

    def __init__(self, name: str, max_messages: int, max_message_size: int, endpoint_cls: type) -> None:
        super().__init__(name, max_messages, max_message_size)
        self.endpoint_cls = endpoint_cls

    def open(self, *, sender: bool = True, receiver: bool = True) -> Any:
        return self.endpoint_cls(super().open(sender=sender, receiver=receiver).mq)


class VariantBackend(PosixMqBackend):
    def __init__(self, name: str, endpoint_cls: type) -> None:
        super().__init__()
        self.name = name
        self.endpoint_cls = endpoint_cls

    def setup(self, scope: Scope) -> VariantChannel:
        ch = super().setup(scope)
        return VariantChannel(ch.name, ch.max_messages, ch.max_message_size, self.endpoint_cls)


EXHIBITS: List[Exhibit] = [
    Exhibit(BatchAsOneItemBackend(), "batches_wake_every_waiting_receiver",
            "A batch put as one item wakes one receiver, which keeps the rest while the others time out."),
    Exhibit(VariantBackend("broken-untimed-is-ten-seconds", UntimedIsTenSeconds),
            "untimed_calls_outwait_library_defaults",
            "Blocking means no timeout at all: a 'generous' hidden timeout still fails a caller who waits longer."),
    Exhibit(VariantBackend("broken-reads-then-times-out", ReadsThenTimesOut),
            "message_racing_a_timeout_is_received_once",
            "Check the deadline before taking a message, never after: a message taken late must still be returned."),
    Exhibit(VariantBackend("broken-caches-empty-at-open", CachesEmptyAtOpen),
            "consumer_opened_early_sees_later_messages",
            "An emptiness seen at open is stale at once: ask the queue on every receive."),
    # Not marked hangs: a split frame ends in a hang (a thread waits for a body that never
    # comes) or in a message never sent (the bytes read as an empty one), as the race falls.
    Exhibit(UnlockedReaderBackend(), "threads_sharing_an_endpoint_take_each_message_once",
            "A framed reader shared by threads needs a lock around each whole message, or threads split frames."),
    Exhibit(VariantBackend("broken-poller-caches-empty", CachesEmptyAtOpen), "every_message_delivered_exactly_once",
            "A consumer that polls with non-blocking receives must see what arrives after it opened.", hangs=True),
    Exhibit(UnlockedReaderThreadsBackend(), "every_message_delivered_exactly_once",
            "Safe for threads means safe for several threads at once, which a thread-placement check must draw.",
            placement="thread", hangs=True),
    Exhibit(LockedAcrossReceiveBackend(), "killed_peer_leaves_queue_usable_and_acknowledged_messages_delivered",
            "A user-space lock held across a blocking call dies locked with its holder: kernel queues need none.",
            hangs=True, fault=KILLS),
    Exhibit(GivesUpFlushingBackend(), "messages_sent_before_close_arrive_after_the_sender_exits",
            "A close that stops flushing after a grace period drops what a slow receiver had not yet taken."),
    Exhibit(LingerZeroTcpBackend(), "messages_sent_before_close_arrive_after_the_sender_exits",
            "SO_LINGER of zero turns close() into a reset: what a slow receiver had not taken is discarded."),
]
