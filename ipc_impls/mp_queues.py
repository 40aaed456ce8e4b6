"""Adapters for ``multiprocessing`` objects used as message queues: examples of
validating objects that are not ours.  Each claims only what the object offers.

``multiprocessing.Queue(maxsize)``
    Bounded, non-blocking and timed put/get, several producers and consumers,
    threads; batches as loops of put/get.  Not claimed: ``synchronous_send`` (a
    feeder thread moves items to the pipe after ``put`` returns, so a
    ``get_nowait`` right after a ``put`` may find nothing), priorities, types, a
    size limit, opening by name (it reaches workers only by inheritance),
    ``crash_safe`` (a process killed inside ``get`` keeps the queue's read lock:
    the docs warn that the queue "is likely to become corrupted").
``multiprocessing.SimpleQueue``
    Locked put/get for several processes and threads; no capacity, no
    non-blocking or timed operations, no ``crash_safe`` (the same locks).
``multiprocessing.Pipe(duplex=False)`` with ``send_bytes``/``recv_bytes``
    One sender, one receiver, framed messages, EOFError once the sender is
    gone.  Not claimed: ``multi_process`` (large messages from two writers
    interleave inside the pipe and corrupt the frames) and ``thread_safe``.
"""

from __future__ import annotations

import multiprocessing
import os
from multiprocessing.connection import Connection
from typing import Any, FrozenSet, List, Optional, Sequence

from ipc_specs.harness.resources import Scope
from ipc_specs.queues import protocol as p
from ipc_specs.queues.protocol import QueueLimits, Received

from .queues import receive_many

#: How long teardown waits for a queue's feeder thread to close its pipe.
FEEDER_GRACE_S = 5.0


def _get_timeout(timeout_ms: Optional[int]) -> tuple[bool, Optional[float]]:
    return (timeout_ms is None or timeout_ms > 0), (None if timeout_ms is None else timeout_ms / 1000)


class MpQueueEndpoint:
    def __init__(self, q: Any, owner_pid: int) -> None:
        self.q = q
        self.owner_pid = owner_pid

    def send(self, data: bytes, *, tag: Optional[int] = None, timeout_ms: Optional[int] = None) -> None:
        block, timeout = _get_timeout(timeout_ms)
        self.q.put(bytes(data), block, timeout)  # raises queue.Full itself

    def receive(self, *, select: int = 0, timeout_ms: Optional[int] = None) -> Received:
        block, timeout = _get_timeout(timeout_ms)
        return self.q.get(block, timeout), 0  # raises queue.Empty itself

    def send_many(self, messages: Sequence[bytes], *, timeout_ms: Optional[int] = None) -> None:
        for data in messages:  # one put each: each releases the queue's item semaphore once
            self.send(data, timeout_ms=timeout_ms)

    def receive_many(self, max_count: int, *, timeout_ms: Optional[int] = None) -> List[Received]:
        return receive_many(self, max_count, timeout_ms)

    def close(self) -> None:
        # In a worker process, wait for the feeder thread to flush what we put: the
        # harness ends workers with os._exit, which would drop unflushed items.
        if os.getpid() != self.owner_pid:
            self.q.close()
            self.q.join_thread()


class MpQueueChannel:
    def __init__(self, maxsize: int, start_method: str = "fork") -> None:
        # From the context the workers start with: multiprocessing shares a queue (its
        # locks) only with processes of the context that made it.
        self.q: Any = multiprocessing.get_context(start_method).Queue(maxsize)
        self.maxsize = maxsize
        self.owner_pid = os.getpid()

    def open(self, *, sender: bool = True, receiver: bool = True) -> MpQueueEndpoint:
        return MpQueueEndpoint(self.q, self.owner_pid)

    def limits(self) -> QueueLimits:
        return QueueLimits(max_messages=self.maxsize)

    def detach(self) -> None:
        pass  # the queue's pipe and locks are shared by design; nothing to drop

    def teardown(self) -> None:
        self.q.close()
        # The feeder thread closes the pipe's write end when it ends, a moment after
        # close(); until then a leak audit sees two descriptors left open (this is what
        # the soak caught, under load).  With the read end closed, its writes fail with
        # EPIPE, so it ends promptly; the bound only guards against the unforeseen.
        feeder = getattr(self.q, "_thread", None)  # CPython's feeder thread (3.9-3.13)
        if feeder is not None:
            feeder.join(FEEDER_GRACE_S)
        self.q.cancel_join_thread()  # the parent never waits for items nobody will read


class MpQueueAdapter:
    name = "mp-queue-adapter"
    kind = "queue"
    #: Handed to every worker at its start, as multiprocessing hands a Queue to a Process.
    wiring = "process-arg"
    capabilities: FrozenSet[str] = frozenset({
        p.BOUNDED_CAPACITY, p.NONBLOCKING, p.TIMEOUTS, p.EMPTY_MESSAGES, p.MULTI_PROCESS, p.THREAD_SAFE, p.BATCHES})

    def __init__(self, maxsize: int = 8) -> None:
        self.maxsize = maxsize

    def setup(self, scope: Scope) -> MpQueueChannel:
        return MpQueueChannel(self.maxsize, scope.start_method)


class SimpleQueueEndpoint:
    def __init__(self, q: Any) -> None:
        self.q = q

    def send(self, data: bytes, *, tag: Optional[int] = None, timeout_ms: Optional[int] = None) -> None:
        self.q.put(bytes(data))

    def receive(self, *, select: int = 0, timeout_ms: Optional[int] = None) -> Received:
        return self.q.get(), 0

    def close(self) -> None:
        pass  # SimpleQueue writes synchronously; closing would break other threads' handles


class SimpleQueueChannel:
    def __init__(self) -> None:
        self.q: Any = multiprocessing.SimpleQueue()

    def open(self, *, sender: bool = True, receiver: bool = True) -> SimpleQueueEndpoint:
        return SimpleQueueEndpoint(self.q)

    def limits(self) -> QueueLimits:
        return QueueLimits()

    def detach(self) -> None:
        pass

    def teardown(self) -> None:
        self.q.close()


class MpSimpleQueueAdapter:
    name = "mp-simplequeue-adapter"
    kind = "queue"
    wiring = "inherit"
    capabilities: FrozenSet[str] = frozenset({p.SYNCHRONOUS_SEND, p.EMPTY_MESSAGES, p.MULTI_PROCESS, p.THREAD_SAFE})

    def setup(self, scope: Scope) -> SimpleQueueChannel:
        return SimpleQueueChannel()


class ConnEndpoint:
    def __init__(self, r: Optional[Connection], w: Optional[Connection]) -> None:
        self.r, self.w = r, w

    def send(self, data: bytes, *, tag: Optional[int] = None, timeout_ms: Optional[int] = None) -> None:
        assert self.w is not None, "endpoint opened without sender=True"
        self.w.send_bytes(data)

    def receive(self, *, select: int = 0, timeout_ms: Optional[int] = None) -> Received:
        assert self.r is not None, "endpoint opened without receiver=True"
        return self.r.recv_bytes(), 0  # EOFError once every copy of the write end is closed

    def close(self) -> None:
        for c in (self.r, self.w):
            if c is not None:
                c.close()


class MpPipeQueueChannel:
    def __init__(self) -> None:
        r, w = multiprocessing.Pipe(duplex=False)
        self.r: Optional[Connection] = r
        self.w: Optional[Connection] = w

    def open(self, *, sender: bool = True, receiver: bool = True) -> ConnEndpoint:
        # Hand the ends over, so that detach() does not close them under the endpoint.
        r, w = (self.r if receiver else None), (self.w if sender else None)
        if receiver:
            self.r = None
        if sender:
            self.w = None
        return ConnEndpoint(r, w)

    def limits(self) -> QueueLimits:
        return QueueLimits()

    def detach(self) -> None:
        for c in (self.r, self.w):
            if c is not None:
                c.close()
        self.r = self.w = None

    def teardown(self) -> None:
        self.detach()


class MpPipeQueueAdapter:
    name = "mp-pipe-queue-adapter"
    kind = "queue"
    wiring = "inherit"
    capabilities: FrozenSet[str] = frozenset({p.SYNCHRONOUS_SEND, p.EMPTY_MESSAGES, p.EOF_ON_CLOSE})

    def setup(self, scope: Scope) -> MpPipeQueueChannel:
        return MpPipeQueueChannel()


BACKENDS = [MpQueueAdapter(), MpSimpleQueueAdapter(), MpPipeQueueAdapter()]
