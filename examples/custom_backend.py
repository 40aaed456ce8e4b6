"""A complete third-party stream backend, checked two ways.

The backend wraps ``socket.socketpair()``: a connected AF_UNIX stream pair,
created in the parent and inherited by forked workers (``wiring = "inherit"``).
It claims only what a socketpair really offers.

Run the whole suite on it from this directory::

    ipc-conformance --backend custom_backend:SocketpairBackend

or call the checks from plain unittest, without pytest::

    python custom_backend.py
"""

from __future__ import annotations

import socket
import unittest
from typing import FrozenSet, Optional, Union

import ipc_specs

BytesLike = Union[bytes, bytearray, memoryview]


class End:
    """One end of the pair; every worker gets its own ``dup`` so closes are per process."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock

    def write(self, data: BytesLike) -> int:
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise TypeError(f"a bytes-like object is required, not {type(data).__name__!r}")
        self.sock.sendall(data)
        return len(data)

    def read(self, n: int) -> bytes:
        return self.sock.recv(n)

    def shutdown(self) -> None:
        self.sock.shutdown(socket.SHUT_WR)

    def close(self) -> None:
        self.sock.close()


class SocketpairChannel:
    def __init__(self) -> None:
        a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        self.a: Optional[socket.socket] = a  # the writing side
        self.b: Optional[socket.socket] = b  # the reading side

    def open_writer(self, *, nonblocking: bool = False) -> End:
        assert self.a is not None
        return End(self.a.dup())

    def open_reader(self, *, nonblocking: bool = False) -> End:
        assert self.b is not None
        return End(self.b.dup())

    def capacity_bound(self) -> int:
        # An upper bound, not the capacity: the kernel counts overhead per buffer
        # and may overshoot by one, so twice the two buffers is a safe claim.
        assert self.a is not None and self.b is not None
        snd = self.a.getsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF)
        rcv = self.b.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF)
        return 2 * (snd + rcv)

    def detach(self) -> None:
        """Drop this process's inherited ends; each opener keeps its own dup."""
        for s in (self.a, self.b):
            if s is not None:
                s.close()
        self.a = self.b = None

    def teardown(self) -> None:
        self.detach()


class SocketpairBackend:
    name = "socketpair"
    kind = "stream"
    wiring = "inherit"
    capabilities: FrozenSet[str] = frozenset(
        {"multi_writer", "eof_on_close", "bounded_buffer", "epipe", "half_close", "thread_safe"}
    )

    def setup(self, scope: object) -> SocketpairChannel:
        return SocketpairChannel()


class SocketpairConformance(unittest.TestCase):
    """The same checks the pytest plugin runs, called from unittest."""

    backend = SocketpairBackend()

    def test_every_claimed_stream_invariant(self) -> None:
        for inv in ipc_specs.all_invariants("stream"):
            for placement in ("fork", "thread"):
                with self.subTest(invariant=inv.id, placement=placement):
                    try:
                        ipc_specs.check(self.backend, inv.id, placement=placement)
                    except ipc_specs.Unsupported as exc:
                        self.skipTest(f"unsupported: {exc}")


if __name__ == "__main__":
    unittest.main()
