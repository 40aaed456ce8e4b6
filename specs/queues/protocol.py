"""The message-queue contract: POSIX and System V queues, datagram sockets,
``multiprocessing`` queues and anything like them.

A queue channel carries whole messages: every receive returns exactly one
message that was sent, never part of one and never two glued together
(mq_receive(3), msgrcv(2), unix(7) SOCK_DGRAM/SOCK_SEQPACKET).

Writing an adapter (about 40 lines)
-----------------------------------
A backend is an object with ``name``, ``kind = "queue"``, ``capabilities``,
``wiring`` and ``setup(scope)`` (see :mod:`ipc_specs.backend`).  ``setup``
returns a :class:`QueueChannel`; its ``open()`` returns a :class:`QueueEndpoint`
with ``send``, ``receive`` and ``close``.  The conventions are those of the
standard library's :mod:`queue` module:

* a send that cannot enqueue in time raises ``queue.Full``; a receive that
  finds nothing in time raises ``queue.Empty``;
* ``timeout_ms=None`` blocks, ``0`` never waits, ``n > 0`` waits at least ``n`` ms;
* a message longer than ``limits().max_message_size``, a priority outside
  ``0…limits().max_priority`` or a message type < 1 raises ``ValueError`` and
  changes nothing;
* ``receive`` returns ``(data, tag)``: the priority (POSIX), the message type
  (System V) or 0.

Only what the backend claims in ``capabilities`` is ever exercised: a backend
that does not claim ``timeouts`` is never called with ``timeout_ms > 0``.
"""

from __future__ import annotations

import errno
from dataclasses import dataclass
from typing import List, Optional, Sequence, Tuple

try:
    from typing import Protocol
except ImportError:  # pragma: no cover
    from typing_extensions import Protocol  # type: ignore

from ..backend import Kind, register_kind

PRIORITIES = "priorities"
TYPE_SELECTION = "type_selection"
BOUNDED_CAPACITY = "bounded_capacity"
MAX_MESSAGE_SIZE = "max_message_size"
NONBLOCKING = "nonblocking"
TIMEOUTS = "timeouts"
SYNCHRONOUS_SEND = "synchronous_send"
EMPTY_MESSAGES = "empty_messages"
MULTI_PROCESS = "multi_process"
THREAD_SAFE = "thread_safe"
UNLINK = "unlink"
REMOVE_WAKES_RECEIVERS = "remove_wakes_receivers"
EOF_ON_CLOSE = "eof_on_close"
DATAGRAM = "datagram"
BATCHES = "batches"
CRASH_SAFE = "crash_safe"

QUEUE = register_kind(
    Kind(
        name="queue",
        summary="a message queue: every receive returns exactly one whole message that was sent",
        capabilities={
            PRIORITIES: "send(tag=p) with 0 <= p <= limits().max_priority; receive returns the oldest message "
            "of the highest priority (mq_receive(3))",
            TYPE_SELECTION: "send(tag=t) with t >= 1; receive(select=t) picks by type as msgrcv(2) does",
            BOUNDED_CAPACITY: "a send blocks while the queue is full; limits() says exactly when it is full",
            MAX_MESSAGE_SIZE: "limits().max_message_size bytes are accepted, one more raises ValueError",
            NONBLOCKING: "timeout_ms=0 fails at once with queue.Full / queue.Empty instead of waiting",
            TIMEOUTS: "timeout_ms=n > 0 waits at least n ms, then fails with queue.Full / queue.Empty",
            SYNCHRONOUS_SEND: "a message is in the queue when send returns (no feeder thread in between)",
            EMPTY_MESSAGES: "a zero-length message is delivered as a message (not taken for EOF)",
            MULTI_PROCESS: "several processes may send and receive on the channel at once",
            THREAD_SAFE: "endpoints may be opened and used from several threads of one process, and one "
            "endpoint shared by threads; without multi_process: safe for threads, not for concurrent processes",
            UNLINK: "channel.remove() unlinks the name: open endpoints keep working, open() then raises "
            "FileNotFoundError, channel.recreate() makes a new empty queue under the same name",
            REMOVE_WAKES_RECEIVERS: "channel.remove() destroys the queue at once: a receiver blocked in "
            "receive() raises OSError(EIDRM)",
            EOF_ON_CLOSE: "once every sender has closed and the queue is drained, receive raises EOFError",
            DATAGRAM: "receive(bufsize=n) reads into an n-byte buffer; a longer message raises "
            "OSError(EMSGSIZE) (MSG_TRUNC) and is not returned cut",
            BATCHES: "endpoints have send_many(messages) and receive_many(max_count) (see Batching): a batch "
            "is its messages sent one after another, each a message of its own for any receiver",
            CRASH_SAFE: "a process SIGKILLed inside send or receive leaves the queue usable by the others, and "
            "every message whose send returned is still delivered (not claimed by multiprocessing queues, "
            "whose locks a killed process keeps)",
        },
        channel_members=("open", "limits"),
    )
)

#: errno of a receive woken because the queue was removed (msgrcv(2) EIDRM).
EIDRM = errno.EIDRM
#: errno of a datagram that did not fit the receive buffer.
EMSGSIZE = errno.EMSGSIZE


@dataclass(frozen=True)
class QueueLimits:
    """What a channel holds; ``None`` means "no such limit is claimed".

    The queue is full when one more message would make the count exceed
    ``max_messages`` or the payload bytes exceed ``max_bytes`` (System V
    charges both against msg_qbytes, msgsnd(2)).
    """

    max_messages: Optional[int] = None
    max_bytes: Optional[int] = None
    max_message_size: Optional[int] = None
    max_priority: Optional[int] = None


def fits(limits: QueueLimits, queued: Sequence[int], size: int) -> bool:
    """Whether a message of ``size`` bytes fits behind messages of sizes ``queued``."""
    if limits.max_messages is not None and len(queued) + 1 > limits.max_messages:
        return False
    return limits.max_bytes is None or sum(queued) + size <= limits.max_bytes


def capacity(limits: QueueLimits, size: int) -> Optional[int]:
    """How many messages of ``size`` bytes an empty queue takes (None: unbounded)."""
    cap = limits.max_messages
    if limits.max_bytes is not None:
        by_bytes = limits.max_bytes // size if size else limits.max_bytes
        cap = by_bytes if cap is None else min(cap, by_bytes)
    return cap


Received = Tuple[bytes, int]


class QueueEndpoint(Protocol):
    """One process's (or thread's) handle on the queue."""

    def send(self, data: bytes, *, tag: Optional[int] = None, timeout_ms: Optional[int] = None) -> None:
        """Enqueue ``data`` as one message.

        ``tag`` is the priority (``priorities``) or the message type
        (``type_selection``); ``None`` means the backend's default (0, or type 1).
        Raises ``queue.Full`` when the queue is still full after ``timeout_ms``,
        ``ValueError`` for an oversize message or a bad tag (nothing is sent).
        """

    def receive(self, *, select: int = 0, timeout_ms: Optional[int] = None,
                bufsize: Optional[int] = None) -> Received:
        """Dequeue one whole message and return ``(data, tag)``.

        ``select`` follows msgrcv(2) for ``type_selection`` backends (0: first
        message; t > 0: first of type t; t < 0: first of the lowest type <= |t|).
        Raises ``queue.Empty`` when nothing (suitable) arrived within
        ``timeout_ms``, ``EOFError`` at end of channel (``eof_on_close``).
        """

    def close(self) -> None:
        """Release the handle; returns once every message it sent is in the queue."""


class Batching(Protocol):
    """Extra endpoint members of ``batches`` backends."""

    def send_many(self, messages: Sequence[bytes], *, timeout_ms: Optional[int] = None) -> None:
        """Enqueue each of ``messages`` as one message of its own, in order, as that many
        ``send`` calls would (``timeout_ms`` bounds each one); every waiting receiver can
        take one of them.  Another producer's messages may come between them."""

    def receive_many(self, max_count: int, *, timeout_ms: Optional[int] = None) -> List[Received]:
        """Wait as ``receive`` does for one message, then return it with up to
        ``max_count - 1`` more that are already queued (without waiting for them)."""


class QueueChannel(Protocol):
    def open(self, *, sender: bool = True, receiver: bool = True) -> QueueEndpoint:
        """An endpoint for this process; ``sender``/``receiver`` say which directions it uses
        (a one-way channel such as a pipe hands over only those ends)."""

    def limits(self) -> QueueLimits:
        """The channel's limits, fixed when it was set up."""

    def detach(self) -> None:
        """Drop this process's references to ends it did not open."""

    def teardown(self) -> None:
        """Release everything; called once, in the parent, after the example."""


class Removable(Protocol):
    """Extra channel members of ``unlink`` and ``remove_wakes_receivers`` backends."""

    def remove(self) -> None:
        """Unlink (POSIX) or destroy (System V) the named queue."""

    def recreate(self) -> None:
        """Create a new queue under the same name, exclusively (``unlink`` only)."""


def msgrcv_model(queue: List[Tuple[bytes, int]], select: int) -> Optional[int]:
    """Index of the message msgrcv(2) takes for ``select`` from ``(data, type)`` pairs in
    arrival order, or None (ENOMSG)."""
    if select == 0:
        return 0 if queue else None
    if select > 0:
        return next((i for i, (_, t) in enumerate(queue) if t == select), None)
    eligible = [t for _, t in queue if t <= -select]
    if not eligible:
        return None
    lowest = min(eligible)  # the LOWEST type <= |select|, not the first such message
    return next(i for i, (_, t) in enumerate(queue) if t == lowest)
