"""Broken message queues: each one is a mistake that works in a demo and fails the spec.

Every class overrides as little of a reference backend as it takes to embody
one piece of folk knowledge gone wrong; the docstring says what and why.
"""

from __future__ import annotations

import queue
import socket
import struct
import threading
from typing import Any, FrozenSet, List, Optional, Tuple

import posix_ipc
import sysv_ipc

from ipc_specs.harness.faults import INTERRUPTS
from ipc_specs.harness.resources import Scope
from ipc_specs.queues import protocol as p
from ipc_specs.queues.protocol import Received

from ..queues import (
    PosixChannel,
    PosixEndpoint,
    PosixMqBackend,
    SocketChannel,
    SocketEndpoint,
    SysvChannel,
    SysvEndpoint,
    SysvMqBackend,
    UnixDgramBackend,
    UnixSeqpacketBackend,
)
from . import Exhibit


# A variant's channel classes live at module level, as a named channel's class must: spawn and
# forkserver workers get the channel by pickle, which finds a class by its module and name.
class VariantPosixChannel(PosixChannel):
    """``posix-mq``'s channel whose endpoints are ``endpoint_cls``."""

    endpoint_cls: type = PosixEndpoint

    def open(self, *, sender: bool = True, receiver: bool = True) -> Any:
        return self.endpoint_cls(super().open(sender=sender, receiver=receiver).mq)


class VariantSysvChannel(SysvChannel):
    """``sysv-mq``'s channel whose endpoints are ``endpoint_cls``."""

    endpoint_cls: type = SysvEndpoint

    def open(self, *, sender: bool = True, receiver: bool = True) -> Any:
        return self.endpoint_cls(super().open(sender=sender, receiver=receiver).mq)


def _posix_variant(name: str, endpoint_cls: type) -> Any:
    """A backend claiming what ``posix-mq`` claims, whose endpoints are ``endpoint_cls``."""

    def setup(self: Any, scope: Scope) -> Any:
        ch = PosixMqBackend.setup(self, scope)
        channel = VariantPosixChannel(ch.name, ch.max_messages, ch.max_message_size)
        channel.endpoint_cls = endpoint_cls
        return channel

    return type(endpoint_cls.__name__ + "Backend", (PosixMqBackend,), {"name": name, "setup": setup})()


def _sysv_variant(name: str, endpoint_cls: type) -> Any:
    """A backend claiming what ``sysv-mq`` claims, whose endpoints are ``endpoint_cls``."""

    def setup(self: Any, scope: Scope) -> Any:
        ch = SysvMqBackend.setup(self, scope)
        channel = VariantSysvChannel(ch.key, ch.msqid, ch.qbytes, ch.max_message_size)
        channel.endpoint_cls = endpoint_cls
        return channel

    return type(endpoint_cls.__name__ + "Backend", (SysvMqBackend,), {"name": name, "setup": setup})()


# --- each_receive_returns_one_whole_message -------------------------------------------------
class StreamRecv1024(SocketEndpoint):
    """The seed article's pitfall: ``conn.recv(1024)`` on a SOCK_STREAM socket taken as one
    whole message.  A stream has no boundaries: two sends arrive glued, a big one split."""

    def send(self, data: bytes, *, tag: Optional[int] = None, timeout_ms: Optional[int] = None) -> None:
        assert self.tx is not None
        self.tx.sendall(data)

    def receive(self, *, select: int = 0, timeout_ms: Optional[int] = None,
                bufsize: Optional[int] = None) -> Received:
        assert self.rx is not None
        return self.rx.recv(1024), 0


class StreamChannel(SocketChannel):
    def open(self, *, sender: bool = True, receiver: bool = True) -> Any:
        e = super().open(sender=sender, receiver=receiver)
        return StreamRecv1024(e.tx, e.rx, e.bufsize, False, None)


class StreamAsQueueBackend:
    name = "broken-stream-recv-1024"
    kind = "queue"
    wiring = "inherit"
    capabilities: FrozenSet[str] = frozenset({p.SYNCHRONOUS_SEND})

    def setup(self, scope: Scope) -> SocketChannel:
        tx, rx = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        return StreamChannel(tx, rx, 65536, empty_is_eof=False)


class Framed(SocketEndpoint):
    """A length-framed queue over a stream socket, read correctly: the header, then the body,
    each in a loop (one ``recv`` returns what has arrived, not what was asked for).  The
    twins built on it change one thing."""

    LENGTH = struct.Struct("!Q")

    def send(self, data: bytes, *, tag: Optional[int] = None, timeout_ms: Optional[int] = None) -> None:
        assert self.tx is not None
        self.tx.sendall(self.LENGTH.pack(len(data)) + data)

    def receive(self, *, select: int = 0, timeout_ms: Optional[int] = None,
                bufsize: Optional[int] = None) -> Received:
        (n,) = self.LENGTH.unpack(self._exactly(self.LENGTH.size))
        return self._body(n), 0

    def _body(self, n: int) -> bytes:
        return self._exactly(n)

    def _exactly(self, n: int) -> bytes:
        assert self.rx is not None
        got = b""
        while len(got) < n:
            chunk = self.rx.recv(n - len(got))
            if not chunk:
                raise EOFError("peer closed")
            got += chunk
        return got


class OneRecvBody(Framed):
    """Frames each message with its length, reads the header whole, then takes ONE
    ``recv(n)`` as the body.  Every message below the socket's buffer arrives in one piece,
    so it works in every demo; a larger one is cut where the buffer ends and the rest of
    it is read as the next message's header."""

    def _body(self, n: int) -> bytes:
        assert self.rx is not None
        return self.rx.recv(n) if n else b""  # one recv is not n bytes


class FramedChannel(SocketChannel):
    endpoint_cls: type = OneRecvBody

    def open(self, *, sender: bool = True, receiver: bool = True) -> Any:
        e = super().open(sender=sender, receiver=receiver)
        return self.endpoint_cls(e.tx, e.rx, 0, False, None)

    def limits(self) -> p.QueueLimits:
        return p.QueueLimits()  # no size limit: a length prefix frames any size


class FramedSocketpairBackend:
    """A length-framed queue over ``socket.socketpair()``; it claims what a correct one
    (reading the body in a loop) would: what ``mp-pipe-queue-adapter`` claims."""

    name = "broken-framed-one-recv"
    kind = "queue"
    wiring = "inherit"
    capabilities: FrozenSet[str] = frozenset({p.SYNCHRONOUS_SEND, p.EMPTY_MESSAGES, p.EOF_ON_CLOSE})

    def setup(self, scope: Scope) -> SocketChannel:
        tx, rx = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        return FramedChannel(tx, rx, 0, empty_is_eof=False)


# --- every_message_delivered_exactly_once ---------------------------------------------------
class RedeliversFirst(PosixEndpoint):
    """"At-least-once is safer": puts the first message it receives back on the queue in case
    the caller crashes before handling it.  Nobody acknowledges, so it is delivered twice."""

    redelivered = False

    def receive(self, *, select: int = 0, timeout_ms: Optional[int] = None) -> Received:
        data, prio = super().receive(select=select, timeout_ms=timeout_ms)
        if not self.redelivered:
            self.redelivered = True
            again = posix_ipc.MessageQueue(self.mq.name, read=False)  # a consumer may hold a read-only handle
            again.send(data, priority=prio)
            again.close()
        return data, prio


# --- each_producers_messages_arrive_in_its_order --------------------------------------------
class NewestFirst(PosixEndpoint):
    """Gives each later message a higher priority "so fresh data wins": within one producer
    the queue becomes a stack (LIFO), although every message was meant as equal."""

    count = 0

    def send(self, data: bytes, *, tag: Optional[int] = None, timeout_ms: Optional[int] = None) -> None:
        self.count += 1
        super().send(data, tag=min(self.count, posix_ipc.QUEUE_PRIORITY_MAX), timeout_ms=timeout_ms)


# --- oldest_highest_priority_message_first --------------------------------------------------
class IgnoresPriority(PosixEndpoint):
    """Drops the priority argument (as a port to a plain FIFO would): urgent messages wait."""

    def send(self, data: bytes, *, tag: Optional[int] = None, timeout_ms: Optional[int] = None) -> None:
        super().send(data, tag=0, timeout_ms=timeout_ms)

    def receive(self, *, select: int = 0, timeout_ms: Optional[int] = None) -> Received:
        data, _ = super().receive(select=select, timeout_ms=timeout_ms)
        return data, 0


class ClampsPriority(PosixEndpoint):
    """Clamps an out-of-range priority into 0…QUEUE_PRIORITY_MAX "to be forgiving": the
    caller's bug (EINVAL in C) is hidden and the message is sent at the wrong priority."""

    def send(self, data: bytes, *, tag: Optional[int] = None, timeout_ms: Optional[int] = None) -> None:
        tag = max(0, min(tag or 0, posix_ipc.QUEUE_PRIORITY_MAX))
        super().send(data, tag=tag, timeout_ms=timeout_ms)


# --- receive_by_type_follows_msgrcv ---------------------------------------------------------
class FirstTypeAtMost(SysvEndpoint):
    """Implements receive(type=-t) as "the first message whose type is <= t": what sysv_ipc's
    own test expects, but msgrcv(2) takes the first message of the LOWEST such type."""

    def receive(self, *, select: int = 0, timeout_ms: Optional[int] = None) -> Received:
        if select >= 0:
            return super().receive(select=select, timeout_ms=timeout_ms)
        queued: List[Any] = []
        while True:  # single-process emulation: take everything, pick, put the rest back
            try:
                queued.append(self.mq.receive(block=False))
            except sysv_ipc.BusyError:
                break
        pick = next((i for i, (_, t) in enumerate(queued) if t <= -select), None)
        found: Optional[Tuple[bytes, int]] = queued.pop(pick) if pick is not None else None
        for data, t in queued:
            self.mq.send(data, type=t)
        if found is None:
            raise queue.Empty
        return found


# --- queue_behaves_like_its_model -----------------------------------------------------------
class EmptyIsBlank(PosixEndpoint):
    """Returns ``(b"", 0)`` instead of raising when a non-blocking receive finds nothing
    ("no message" = "empty message"): the caller cannot tell a real empty message apart."""

    def receive(self, *, select: int = 0, timeout_ms: Optional[int] = None) -> Received:
        try:
            return super().receive(select=select, timeout_ms=timeout_ms)
        except queue.Empty:
            return b"", 0


# --- full_queue_blocks_or_rejects_sender ----------------------------------------------------
class SwallowsFull(PosixEndpoint):
    """Catches queue.Full from a non-blocking or timed send and carries on "best effort": the
    message is silently dropped whenever the receiver is slower than the sender."""

    def send(self, data: bytes, *, tag: Optional[int] = None, timeout_ms: Optional[int] = None) -> None:
        try:
            super().send(data, tag=tag, timeout_ms=timeout_ms)
        except queue.Full:
            pass


# --- empty_queue_blocks_or_rejects_receiver -------------------------------------------------
class ThreadedTimeout(PosixEndpoint):
    """Implements a timed receive by a helper thread doing a blocking receive and giving up
    waiting for it.  The abandoned thread still takes the next message; "so nothing is lost"
    it both keeps it for the next call and puts it back: a duplicate."""

    def __init__(self, mq: Any) -> None:
        super().__init__(mq)
        self.stash: List[Received] = []

    def receive(self, *, select: int = 0, timeout_ms: Optional[int] = None) -> Received:
        if self.stash:
            return self.stash.pop(0)
        if timeout_ms is None:
            return super().receive(select=select)
        got: List[Received] = []
        done = threading.Event()

        def helper() -> None:
            got.append(self.mq.receive())
            if not done.is_set():
                return
            self.stash.append(got[0])
            self.mq.send(got[0][0], priority=got[0][1])

        threading.Thread(target=helper, daemon=True).start()
        threading.Event().wait(timeout_ms / 1000)
        if got:
            return got[0]
        done.set()
        raise queue.Empty


# --- maximum_size_accepted_one_byte_more_rejected -------------------------------------------
class Truncates(PosixEndpoint):
    """Cuts an oversize message to the maximum "so the send never fails": the receiver gets a
    message that was never sent, with its tail silently gone."""

    def send(self, data: bytes, *, tag: Optional[int] = None, timeout_ms: Optional[int] = None) -> None:
        super().send(data[:self.mq.max_message_size], tag=tag, timeout_ms=timeout_ms)


# --- unlinked_queue_lives_on_for_open_handles -----------------------------------------------
class NeverUnlinks(PosixChannel):
    """remove() does nothing "because other processes may still need the queue": the name
    lives on until reboot (kernel persistence), and anyone can still open it."""

    def remove(self) -> None:
        pass

    def recreate(self) -> None:
        pass


class NeverUnlinksBackend(PosixMqBackend):
    name = "broken-never-unlinks"

    def setup(self, scope: Scope) -> PosixChannel:
        ch = super().setup(scope)
        return NeverUnlinks(ch.name, ch.max_messages, ch.max_message_size)


# --- removing_queue_wakes_blocked_receiver --------------------------------------------------
class RemovedIsEmpty(SysvEndpoint):
    """Maps every sysv_ipc error to queue.Empty ("nothing to read"): a removed queue (EIDRM)
    looks like a quiet one, and a worker polls a queue that no longer exists."""

    def receive(self, *, select: int = 0, timeout_ms: Optional[int] = None) -> Received:
        try:
            return super().receive(select=select, timeout_ms=timeout_ms)
        except OSError:
            raise queue.Empty from None


# --- oversize_datagram_is_reported_not_truncated --------------------------------------------
class IgnoresMsgTrunc(SocketEndpoint):
    """Reads datagrams with ``recv(bufsize)``: a longer datagram comes back cut, and the
    kernel's MSG_TRUNC flag, which only recvmsg reports, is never looked at."""

    def receive(self, *, select: int = 0, timeout_ms: Optional[int] = None,
                bufsize: Optional[int] = None) -> Received:
        assert self.rx is not None
        return self.rx.recv(self.bufsize if bufsize is None else bufsize), 0


def _socket_variant(base: Any, name: str, endpoint_cls: type) -> Any:
    def setup(self: Any, scope: Scope) -> Any:
        ch = base.setup(self, scope)
        opener = ch.open

        def open_(*, sender: bool = True, receiver: bool = True) -> Any:
            e = opener(sender=sender, receiver=receiver)
            return endpoint_cls(e.tx, e.rx, e.bufsize, e.empty_is_eof, e.max_size)

        ch.open = open_
        return ch

    return type(endpoint_cls.__name__ + "Backend", (base,), {"name": name, "setup": setup})()


# --- receive_reports_eof_after_senders_close ------------------------------------------------
class EofAsEmptyMessage(SocketEndpoint):
    """Returns the b'' that recv gives at EOF as a zero-length message: the consumer loops on
    "empty messages" forever instead of learning that every sender is gone."""

    def receive(self, *, select: int = 0, timeout_ms: Optional[int] = None,
                bufsize: Optional[int] = None) -> Received:
        assert self.rx is not None
        return self.rx.recv(self.bufsize), 0


# --- every_message_delivered_exactly_once, under the interrupts fault -----------------------
class SignalKillsReceive(PosixEndpoint):
    """Calls posix_ipc as its examples do: a signal that lands while ``receive()`` waits
    raises ``posix_ipc.SignalError`` (EINTR), and the consumer's loop dies with it,
    leaving messages nobody takes.  C extensions do not get PEP 475's retry for free."""

    def receive(self, *, select: int = 0, timeout_ms: Optional[int] = None) -> Received:
        try:
            data, prio = self.mq.receive(timeout=None if timeout_ms is None else timeout_ms / 1000)
        except posix_ipc.BusyError:
            raise queue.Empty from None
        return data, prio


EXHIBITS: List[Exhibit] = [
    Exhibit(_posix_variant("broken-signal-kills-receive", SignalKillsReceive), "every_message_delivered_exactly_once",
            "posix_ipc raises SignalError when a signal cuts a wait short: retry the receive, do not give up.",
            fault=INTERRUPTS),
    Exhibit(StreamAsQueueBackend(), "each_receive_returns_one_whole_message",
            "recv(1024) on a stream socket is not a message: streams need framing and a read loop."),
    Exhibit(FramedSocketpairBackend(), "each_receive_returns_one_whole_message",
            "A length prefix frames a message, but one recv(n) still returns at most what the socket buffer held."),
    Exhibit(_posix_variant("broken-redelivers-first", RedeliversFirst), "every_message_delivered_exactly_once",
            "Re-queuing a message 'to be safe' without acknowledgements delivers it twice."),
    Exhibit(_posix_variant("broken-newest-first", NewestFirst), "each_producers_messages_arrive_in_its_order",
            "Raising the priority of newer messages turns a queue into a stack within one producer."),
    Exhibit(_posix_variant("broken-ignores-priority", IgnoresPriority), "oldest_highest_priority_message_first",
            "Dropping the priority argument makes urgent messages wait behind old ones."),
    Exhibit(_posix_variant("broken-clamps-priority", ClampsPriority), "oldest_highest_priority_message_first",
            "An out-of-range priority is a caller bug (EINVAL); clamping it hides the bug."),
    Exhibit(_sysv_variant("broken-first-type-at-most", FirstTypeAtMost), "receive_by_type_follows_msgrcv",
            "msgrcv with a negative type takes the LOWEST type <= |t|, not the first message <= |t|."),
    Exhibit(_posix_variant("broken-empty-is-blank", EmptyIsBlank), "queue_behaves_like_its_model",
            "'Nothing there' must be an exception, not an empty message a sender could also send."),
    Exhibit(_posix_variant("broken-swallows-full", SwallowsFull), "full_queue_blocks_or_rejects_sender",
            "Swallowing queue.Full on a timed or non-blocking send silently drops messages."),
    Exhibit(_posix_variant("broken-threaded-timeout", ThreadedTimeout), "empty_queue_blocks_or_rejects_receiver",
            "A timeout built from an abandoned blocking call still consumes the next message."),
    Exhibit(_posix_variant("broken-truncates-oversize", Truncates), "maximum_size_accepted_one_byte_more_rejected",
            "Cutting an oversize message to fit delivers data that was never sent."),
    Exhibit(NeverUnlinksBackend(), "unlinked_queue_lives_on_for_open_handles",
            "A POSIX queue lives until unlinked (kernel persistence): not unlinking leaks it."),
    Exhibit(_sysv_variant("broken-removed-is-empty", RemovedIsEmpty), "removing_queue_wakes_blocked_receiver",
            "EIDRM means the queue is gone for good; reporting it as 'empty' makes consumers poll a ghost."),
    Exhibit(_socket_variant(UnixDgramBackend, "broken-ignores-msg-trunc", IgnoresMsgTrunc),
            "oversize_datagram_is_reported_not_truncated",
            "recv() silently cuts a long datagram; only recvmsg's MSG_TRUNC tells you."),
    Exhibit(_socket_variant(UnixSeqpacketBackend, "broken-eof-as-empty-message", EofAsEmptyMessage),
            "receive_reports_eof_after_senders_close",
            "On a SOCK_SEQPACKET socket b'' after the peer closed is EOF, not a message."),
]
