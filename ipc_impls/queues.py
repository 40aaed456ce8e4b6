"""Reference message queues: POSIX (posix_ipc), System V (sysv_ipc), and AF_UNIX
SOCK_SEQPACKET / SOCK_DGRAM sockets.

Named kernel objects are created exclusively, mode 0600, under a name from
``scope.name()`` and registered for removal at once.  Limits come from the
running kernel (``/proc/sys/fs/mqueue/*``, ``kernel/msgmnb``, ``kernel/msgmax``);
a configuration the machine forbids raises ``Unresolved`` naming the limit.
"""

from __future__ import annotations

import errno
import queue
import socket
from typing import Any, FrozenSet, List, Optional, Sequence

import posix_ipc
import sysv_ipc

from ipc_impls._eintr import retry_interrupted
from ipc_specs.harness.resources import Scope, register_remover
from ipc_specs.invariant import Unresolved
from ipc_specs.limits import probe
from ipc_specs.queues import protocol as p
from ipc_specs.queues.protocol import QueueLimits, Received


def _seconds(timeout_ms: Optional[int]) -> Optional[float]:
    return None if timeout_ms is None else timeout_ms / 1000


def receive_many(end: Any, max_count: int, timeout_ms: Optional[int]) -> List[Received]:
    """The first message as ``end.receive`` waits for it, then what is already queued."""
    got = [end.receive(timeout_ms=timeout_ms)]
    while len(got) < max_count:
        try:
            got.append(end.receive(timeout_ms=0))
        except queue.Empty:
            break
    return got


def _limit(name: str) -> int:
    value = probe()[name]
    if not isinstance(value, int):
        raise Unresolved(f"{name} cannot be read on this machine")
    return value


# --- POSIX ---------------------------------------------------------------------------------
def _unlink_posix(name: str) -> None:
    try:
        posix_ipc.unlink_message_queue(name)
    except posix_ipc.ExistentialError:
        pass


register_remover("posix_mq", _unlink_posix)


class PosixEndpoint:
    def __init__(self, mq: Any) -> None:
        self.mq = mq

    def send(self, data: bytes, *, tag: Optional[int] = None, timeout_ms: Optional[int] = None) -> None:
        try:
            retry_interrupted(lambda left: self.mq.send(data, timeout=left, priority=tag or 0), _seconds(timeout_ms))
        except posix_ipc.BusyError:
            raise queue.Full from None

    def receive(self, *, select: int = 0, timeout_ms: Optional[int] = None) -> Received:
        try:
            data, prio = retry_interrupted(lambda left: self.mq.receive(timeout=left), _seconds(timeout_ms))
        except posix_ipc.BusyError:
            raise queue.Empty from None
        return data, prio

    def send_many(self, messages: Sequence[bytes], *, timeout_ms: Optional[int] = None) -> None:
        for data in messages:  # one mq_send each: each wakes one waiting receiver
            self.send(data, timeout_ms=timeout_ms)

    def receive_many(self, max_count: int, *, timeout_ms: Optional[int] = None) -> List[Received]:
        return receive_many(self, max_count, timeout_ms)

    def close(self) -> None:
        self.mq.close()


class PosixChannel:
    def __init__(self, name: str, max_messages: int, max_message_size: int) -> None:
        self.name = name
        self.max_messages = max_messages
        self.max_message_size = max_message_size

    def open(self, *, sender: bool = True, receiver: bool = True) -> PosixEndpoint:
        try:
            return PosixEndpoint(posix_ipc.MessageQueue(self.name, read=receiver, write=sender))
        except posix_ipc.ExistentialError as exc:
            raise FileNotFoundError(errno.ENOENT, str(exc), self.name) from None

    def limits(self) -> QueueLimits:
        return QueueLimits(max_messages=self.max_messages, max_message_size=self.max_message_size,
                           max_priority=posix_ipc.QUEUE_PRIORITY_MAX)

    def remove(self) -> None:
        posix_ipc.unlink_message_queue(self.name)

    def recreate(self) -> None:
        create_posix(self.name, self.max_messages, self.max_message_size).close()

    def detach(self) -> None:
        pass

    def teardown(self) -> None:
        _unlink_posix(self.name)


def create_posix(name: str, max_messages: int, max_message_size: int) -> Any:
    return posix_ipc.MessageQueue(name, posix_ipc.O_CREX, mode=0o600, max_messages=max_messages,
                                  max_message_size=max_message_size)


class PosixMqBackend:
    """posix_ipc.MessageQueue; by default as large as /proc/sys/fs/mqueue allows (up to 4 KiB messages)."""

    name = "posix-mq"
    kind = "queue"
    wiring = "named"
    capabilities: FrozenSet[str] = frozenset({
        p.PRIORITIES, p.BOUNDED_CAPACITY, p.MAX_MESSAGE_SIZE, p.NONBLOCKING, p.TIMEOUTS, p.SYNCHRONOUS_SEND,
        p.EMPTY_MESSAGES, p.MULTI_PROCESS, p.THREAD_SAFE, p.UNLINK, p.BATCHES, p.CRASH_SAFE})

    def __init__(self, max_messages: Optional[int] = None, max_message_size: Optional[int] = None) -> None:
        self.max_messages = max_messages
        self.max_message_size = max_message_size

    def setup(self, scope: Scope) -> PosixChannel:
        msg_max, size_max = _limit("mq_msg_max"), _limit("mq_msgsize_max")
        count = self.max_messages or min(msg_max, 10)
        size = self.max_message_size or min(size_max, 4096)
        # Without CAP_SYS_RESOURCE the kernel refuses attributes above these limits (mq_overview(7)).
        if count > msg_max and not probe()["cap_sys_resource"]:
            raise Unresolved(f"/proc/sys/fs/mqueue/msg_max={msg_max} < max_messages={count}")
        if size > size_max and not probe()["cap_sys_resource"]:
            raise Unresolved(f"/proc/sys/fs/mqueue/msgsize_max={size_max} < max_message_size={size}")
        name = "/" + scope.name()
        create_posix(name, count, size).close()
        scope.register("posix_mq", name, lambda: _unlink_posix(name))
        return PosixChannel(name, count, size)


# --- System V --------------------------------------------------------------------------------
def _remove_sysv(ident: str) -> None:
    try:
        sysv_ipc.remove_message_queue(int(ident))
    except sysv_ipc.ExistentialError:
        pass


register_remover("sysv_mq", _remove_sysv)


class SysvEndpoint:
    def __init__(self, mq: Any) -> None:
        self.mq = mq

    def send(self, data: bytes, *, tag: Optional[int] = None, timeout_ms: Optional[int] = None) -> None:
        if timeout_ms not in (None, 0):
            raise ValueError("System V queues have no timed send")
        try:
            retry_interrupted(lambda _: self.mq.send(data, block=timeout_ms is None, type=1 if tag is None else tag),
                              None)
        except sysv_ipc.BusyError:
            raise queue.Full from None
        except sysv_ipc.ExistentialError as exc:
            raise OSError(errno.EIDRM, str(exc)) from None

    def receive(self, *, select: int = 0, timeout_ms: Optional[int] = None) -> Received:
        if timeout_ms not in (None, 0):
            raise ValueError("System V queues have no timed receive")
        try:
            data, mtype = retry_interrupted(lambda _: self.mq.receive(block=timeout_ms is None, type=select), None)
        except sysv_ipc.BusyError:
            raise queue.Empty from None
        except sysv_ipc.ExistentialError as exc:  # removed while we slept (EIDRM)
            raise OSError(errno.EIDRM, str(exc)) from None
        return data, mtype

    def close(self) -> None:
        pass  # a System V queue has no per-process handle to close


class SysvChannel:
    def __init__(self, key: int, msqid: int, qbytes: int, max_message_size: int) -> None:
        self.key = key
        self.msqid = msqid
        self.qbytes = qbytes
        self.max_message_size = max_message_size

    def open(self, *, sender: bool = True, receiver: bool = True) -> SysvEndpoint:
        try:
            return SysvEndpoint(sysv_ipc.MessageQueue(self.key, max_message_size=self.max_message_size))
        except sysv_ipc.ExistentialError as exc:
            raise FileNotFoundError(errno.ENOENT, str(exc)) from None

    def limits(self) -> QueueLimits:
        # msgsnd(2): full when the bytes or the number of messages would exceed msg_qbytes.
        return QueueLimits(max_messages=self.qbytes, max_bytes=self.qbytes, max_message_size=self.max_message_size)

    def remove(self) -> None:
        sysv_ipc.remove_message_queue(self.msqid)

    def detach(self) -> None:
        pass

    def teardown(self) -> None:
        _remove_sysv(str(self.msqid))


class SysvMqBackend:
    """sysv_ipc.MessageQueue with a small msg_qbytes so that filling it takes few messages."""

    name = "sysv-mq"
    kind = "queue"
    wiring = "named"
    # No timeouts: msgsnd/msgrcv have none (only IPC_NOWAIT).  No unlink: IPC_RMID destroys at once.
    capabilities: FrozenSet[str] = frozenset({
        p.TYPE_SELECTION, p.BOUNDED_CAPACITY, p.MAX_MESSAGE_SIZE, p.NONBLOCKING, p.SYNCHRONOUS_SEND,
        p.EMPTY_MESSAGES, p.MULTI_PROCESS, p.THREAD_SAFE, p.REMOVE_WAKES_RECEIVERS, p.CRASH_SAFE})

    def __init__(self, qbytes: int = 1024, max_message_size: int = 256) -> None:
        self.qbytes = qbytes
        self.max_message_size = max_message_size

    def setup(self, scope: Scope) -> SysvChannel:
        msgmnb, msgmax = _limit("msgmnb"), _limit("msgmax")
        if self.qbytes > msgmnb and not probe()["cap_sys_resource"]:
            raise Unresolved(f"/proc/sys/kernel/msgmnb={msgmnb} < msg_qbytes={self.qbytes}")
        if self.max_message_size > min(msgmax, self.qbytes):
            raise Unresolved(f"/proc/sys/kernel/msgmax={msgmax} (or msg_qbytes={self.qbytes}) "
                             f"< max_message_size={self.max_message_size}")
        mq = sysv_ipc.MessageQueue(None, sysv_ipc.IPC_CREX, mode=0o600, max_message_size=self.max_message_size)
        scope.register("sysv_mq", str(mq.id), lambda: _remove_sysv(str(mq.id)))
        mq.max_size = self.qbytes
        return SysvChannel(mq.key, mq.id, self.qbytes, self.max_message_size)


# --- AF_UNIX datagram and seqpacket sockets ---------------------------------------------------
class SocketEndpoint:
    """One process's copies of the sending and receiving sockets."""

    def __init__(self, tx: Optional[socket.socket], rx: Optional[socket.socket], bufsize: int,
                 empty_is_eof: bool, max_size: Optional[int]) -> None:
        self.tx, self.rx, self.bufsize = tx, rx, bufsize
        self.empty_is_eof, self.max_size = empty_is_eof, max_size

    def send(self, data: bytes, *, tag: Optional[int] = None, timeout_ms: Optional[int] = None) -> None:
        assert self.tx is not None, "endpoint opened without sender=True"
        if self.max_size is not None and len(data) > self.max_size:
            raise ValueError(f"message of {len(data)} bytes exceeds the maximum {self.max_size}")
        if self.empty_is_eof and not data:
            raise ValueError("a zero-length SOCK_SEQPACKET record cannot be told from EOF")
        self.tx.send(data)

    def receive(self, *, select: int = 0, timeout_ms: Optional[int] = None,
                bufsize: Optional[int] = None) -> Received:
        assert self.rx is not None, "endpoint opened without receiver=True"
        data, _, flags, _ = self.rx.recvmsg(self.bufsize if bufsize is None else bufsize)
        if flags & socket.MSG_TRUNC:
            raise OSError(errno.EMSGSIZE, "datagram truncated: longer than the receive buffer (MSG_TRUNC)")
        if self.empty_is_eof and not data:
            raise EOFError("peer closed")
        return data, 0

    def close(self) -> None:
        for s in (self.tx, self.rx):
            if s is not None:
                s.close()


class SocketChannel:
    def __init__(self, tx: socket.socket, rx: socket.socket, max_size: int, empty_is_eof: bool) -> None:
        self.tx: Optional[socket.socket] = tx
        self.rx: Optional[socket.socket] = rx
        self.max_size = max_size
        self.empty_is_eof = empty_is_eof

    def open(self, *, sender: bool = True, receiver: bool = True) -> SocketEndpoint:
        assert self.tx is not None and self.rx is not None, "channel already detached here"
        return SocketEndpoint(self.tx.dup() if sender else None, self.rx.dup() if receiver else None,
                              self.max_size, self.empty_is_eof, self.max_size)

    def limits(self) -> QueueLimits:
        return QueueLimits(max_message_size=self.max_size)

    def detach(self) -> None:
        for s in (self.tx, self.rx):
            if s is not None:
                s.close()
        self.tx = self.rx = None

    def teardown(self) -> None:
        self.detach()


class UnixDgramBackend:
    """A SOCK_DGRAM socket bound in the example's private directory; senders share a
    socket connected to it.  Not claimed: capacity (the kernel's limit mixes
    max_dgram_qlen and SO_SNDBUF accounting, so it is not exact), non-blocking/timed
    operations (not offered by this adapter)."""

    name = "unix-dgram"
    kind = "queue"
    wiring = "inherit"
    capabilities: FrozenSet[str] = frozenset({
        p.MAX_MESSAGE_SIZE, p.SYNCHRONOUS_SEND, p.EMPTY_MESSAGES, p.MULTI_PROCESS, p.THREAD_SAFE, p.DATAGRAM})
    max_size = 16384

    def setup(self, scope: Scope) -> SocketChannel:
        path = scope.path("dgram")
        rx = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        rx.bind(path)
        tx = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        tx.connect(path)
        return SocketChannel(tx, rx, self.max_size, empty_is_eof=False)


class UnixSeqpacketBackend:
    """A connected SOCK_SEQPACKET pair through a listener in the private directory.
    Not claimed: empty_messages (a zero-length record reads exactly like EOF, so the
    adapter refuses to send one), capacity, timeouts."""

    name = "unix-seqpacket"
    kind = "queue"
    wiring = "inherit"
    capabilities: FrozenSet[str] = frozenset({
        p.MAX_MESSAGE_SIZE, p.SYNCHRONOUS_SEND, p.MULTI_PROCESS, p.THREAD_SAFE, p.EOF_ON_CLOSE})
    max_size = 16384

    def setup(self, scope: Scope) -> SocketChannel:
        path = scope.path("seqpacket")
        with socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET) as listener:
            listener.bind(path)
            listener.listen(1)
            tx = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
            tx.connect(path)
            rx, _ = listener.accept()
        return SocketChannel(tx, rx, self.max_size, empty_is_eof=True)


BACKENDS = [PosixMqBackend(), SysvMqBackend(), UnixSeqpacketBackend(), UnixDgramBackend()]
