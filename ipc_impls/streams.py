"""Reference byte-stream backends: ``os.pipe``, FIFOs, AF_UNIX and TCP stream sockets.

Each class states its claims in ``capabilities``; the suite checks exactly
those.  Sockets are wired by inheritance: the parent connects a pair over a
real listening socket (a path in the example's private directory, or
127.0.0.1), and writers in forked workers share the connected end.
"""

from __future__ import annotations

import fcntl
import os
import socket
from typing import FrozenSet, Optional

from ipc_specs import limits
from ipc_specs.harness.resources import Scope
from ipc_specs.streams import protocol as p

from ._endpoints import FdReader, FdWriter, SocketEnd

F_GETPIPE_SZ = getattr(fcntl, "F_GETPIPE_SZ", 1032)


def _close(fd: Optional[int]) -> None:
    if fd is not None:
        try:
            os.close(fd)
        except OSError:
            pass


class PipeChannel:
    """``os.pipe()``; every opener gets its own ``dup`` so closes are per process/thread."""

    def __init__(self) -> None:
        self.r: Optional[int]
        self.w: Optional[int]
        self.r, self.w = os.pipe()
        self.capacity = fcntl.fcntl(self.w, F_GETPIPE_SZ)

    def open_reader(self, *, nonblocking: bool = False) -> FdReader:
        assert self.r is not None, "pipe already detached in this process"
        fd = os.dup(self.r)
        os.set_blocking(fd, not nonblocking)
        return FdReader(fd)

    def open_writer(self, *, nonblocking: bool = False) -> FdWriter:
        assert self.w is not None, "pipe already detached in this process"
        fd = os.dup(self.w)
        os.set_blocking(fd, not nonblocking)
        return FdWriter(fd, nonblocking)

    def capacity_bound(self) -> int:
        return self.capacity

    def detach(self) -> None:
        _close(self.r)
        _close(self.w)
        self.r = self.w = None

    def teardown(self) -> None:
        self.detach()


class PipeBackend:
    name = "os-pipe"
    kind = "stream"
    wiring = "inherit"
    capabilities: FrozenSet[str] = frozenset(
        {p.MULTI_WRITER, p.ATOMIC_PIPE_BUF, p.EOF_ON_CLOSE, p.WRITER_DEATH_IS_CLOSE, p.BOUNDED_BUFFER, p.EPIPE,
         "thread_safe"}
    )

    def setup(self, scope: Scope) -> PipeChannel:
        return PipeChannel()


class FifoChannel:
    """A FIFO opened by path in each worker; picklable, so it reaches spawned workers."""

    def __init__(self, path: str) -> None:
        self.path = path

    def _open(self, mode: int, nonblocking: bool) -> int:
        return os.open(self.path, mode | os.O_CLOEXEC | (os.O_NONBLOCK if nonblocking else 0))

    def open_reader(self, *, nonblocking: bool = False) -> FdReader:
        return FdReader(self._open(os.O_RDONLY, nonblocking))

    def open_writer(self, *, nonblocking: bool = False) -> FdWriter:
        return FdWriter(self._open(os.O_WRONLY, nonblocking), nonblocking)

    def capacity_bound(self) -> int:
        return limits.pipe_capacity()  # a FIFO gets the default pipe buffer at first open

    def detach(self) -> None:
        pass

    def teardown(self) -> None:
        try:
            os.unlink(self.path)
        except FileNotFoundError:
            pass


class FifoBackend:
    name = "fifo"
    kind = "stream"
    wiring = "named"
    capabilities: FrozenSet[str] = frozenset(
        {p.MULTI_WRITER, p.ATOMIC_PIPE_BUF, p.EOF_ON_CLOSE, p.WRITER_DEATH_IS_CLOSE, p.BOUNDED_BUFFER, p.EPIPE,
         p.BLOCKING_OPEN, p.NONBLOCKING_OPEN, p.REOPEN_AFTER_EOF, p.DISCARDS_ON_LAST_CLOSE, "thread_safe"}
    )

    def setup(self, scope: Scope) -> FifoChannel:
        path = scope.path("fifo")  # inside the example's 0700 directory
        os.mkfifo(path, 0o600)
        return FifoChannel(path)


class SocketChannel:
    """A connected stream socket pair: ``a`` is the writing side, ``b`` the reading side."""

    def __init__(self, a: socket.socket, b: socket.socket, slack: int) -> None:
        self.a: Optional[socket.socket] = a
        self.b: Optional[socket.socket] = b
        snd = a.getsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF)
        rcv = b.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF)
        # Kernel accounting charges skb overhead and may overshoot by one buffer,
        # so the claim is a generous upper bound, never the exact capacity.
        self.bound = slack * (snd + rcv)

    def open_writer(self, *, nonblocking: bool = False) -> SocketEnd:
        assert self.a is not None
        return SocketEnd(self.a.dup())

    def open_reader(self, *, nonblocking: bool = False) -> SocketEnd:
        assert self.b is not None
        return SocketEnd(self.b.dup())

    def capacity_bound(self) -> int:
        return self.bound

    def detach(self) -> None:
        for s in (self.a, self.b):
            if s is not None:
                s.close()
        self.a = self.b = None

    def teardown(self) -> None:
        self.detach()


class UnixStreamBackend:
    name = "unix-stream"
    kind = "stream"
    wiring = "inherit"
    capabilities: FrozenSet[str] = frozenset(
        {p.MULTI_WRITER, p.EOF_ON_CLOSE, p.WRITER_DEATH_IS_CLOSE, p.BOUNDED_BUFFER, p.EPIPE, p.HALF_CLOSE,
         "thread_safe"}
    )

    def setup(self, scope: Scope) -> SocketChannel:
        path = scope.path("sock")  # bound in the private directory, removed right after accept
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as listener:
            listener.bind(path)
            listener.listen(1)
            a = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            a.connect(path)
            b, _ = listener.accept()
        os.unlink(path)
        return SocketChannel(a, b, slack=2)


class TcpLoopbackBackend:
    """TCP on 127.0.0.1 with fixed buffer sizes (setting them turns off autotuning,
    which would otherwise let the buffer grow to megabytes)."""

    name = "tcp-loopback"
    kind = "stream"
    wiring = "inherit"
    # No EPIPE claim: after the peer closes, the first write is accepted and only the
    # peer's RST turns later writes into EPIPE/ECONNRESET (tcp(7)).
    capabilities: FrozenSet[str] = frozenset(
        {p.MULTI_WRITER, p.EOF_ON_CLOSE, p.WRITER_DEATH_IS_CLOSE, p.BOUNDED_BUFFER, p.HALF_CLOSE, "thread_safe"}
    )
    buffer = 65536

    def setup(self, scope: Scope) -> SocketChannel:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as listener:
            listener.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, self.buffer)
            listener.bind(("127.0.0.1", 0))  # loopback only, ephemeral port
            listener.listen(1)
            a = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            a.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, self.buffer)
            a.connect(listener.getsockname())
            b, _ = listener.accept()
        return SocketChannel(a, b, slack=2)


BACKENDS = [PipeBackend(), FifoBackend(), UnixStreamBackend(), TcpLoopbackBackend()]
