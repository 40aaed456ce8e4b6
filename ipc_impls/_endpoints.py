"""File-descriptor and socket ends shared by the stream backends."""

from __future__ import annotations

import os
import socket
from typing import Union

BytesLike = Union[bytes, bytearray, memoryview]


def require_bytes(data: object) -> None:
    # os.write would raise too, but only after a socket's sendall has begun;
    # checking first keeps the "text is rejected, nothing is sent" rule uniform.
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise TypeError(f"a bytes-like object is required, not {type(data).__name__!r}")


class FdWriter:
    """The write end of a pipe or FIFO."""

    def __init__(self, fd: int, nonblocking: bool = False) -> None:
        self.fd = fd
        self.nonblocking = nonblocking

    def write(self, data: BytesLike) -> int:
        require_bytes(data)
        view = memoryview(data)
        if self.nonblocking:
            return os.write(self.fd, view)  # may be partial, or raise BlockingIOError
        done = 0
        while done < len(view):  # a blocking write can still be cut short by a signal
            done += os.write(self.fd, view[done:])
        return done

    def close(self) -> None:
        os.close(self.fd)


class FdReader:
    """The read end of a pipe or FIFO."""

    def __init__(self, fd: int) -> None:
        self.fd = fd

    def read(self, n: int) -> bytes:
        return os.read(self.fd, n)

    def close(self) -> None:
        os.close(self.fd)


class SocketEnd:
    """One end of a connected stream socket, usable in both directions."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock

    def write(self, data: BytesLike) -> int:
        require_bytes(data)
        self.sock.sendall(data)
        return len(data)

    def read(self, n: int) -> bytes:
        return self.sock.recv(n)

    def shutdown(self) -> None:
        self.sock.shutdown(socket.SHUT_WR)

    def close(self) -> None:
        self.sock.close()
