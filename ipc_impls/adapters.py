"""Adapters for IPC objects that are not ours, shipped as examples of validating
a third-party backend: each claims only what the wrapped object really offers.

``multiprocessing.Pipe(duplex=False)`` as a byte stream
    ``send_bytes``/``recv_bytes`` frame messages over an ``os.pipe``.  The
    adapter turns them back into a stream: ``read(n)`` keeps the rest of a
    message for the next call, skips zero-length messages (they are not EOF),
    and maps ``EOFError`` to ``b''``.
    Not claimed: ``multi_writer`` (a message above PIPE_BUF from two
    processes interleaves inside the frames and corrupts them),
    ``atomic_pipe_buf``, FIFO semantics, ``half_close``, and ``thread_safe``
    (a Connection must not be shared by threads).
"""

from __future__ import annotations

import fcntl
import multiprocessing
from multiprocessing.connection import Connection
from typing import FrozenSet, Optional

from ipc_specs.harness.resources import Scope
from ipc_specs.streams import protocol as p

from ._endpoints import BytesLike, require_bytes

F_GETPIPE_SZ = getattr(fcntl, "F_GETPIPE_SZ", 1032)


class ConnWriter:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def write(self, data: BytesLike) -> int:
        require_bytes(data)
        self.conn.send_bytes(data)
        return len(data)

    def close(self) -> None:
        self.conn.close()


class ConnReader:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.pending = b""

    def read(self, n: int) -> bytes:
        while not self.pending:
            try:
                self.pending = self.conn.recv_bytes()
            except EOFError:
                return b""
        out, self.pending = self.pending[:n], self.pending[n:]
        return out

    def close(self) -> None:
        self.conn.close()


class MpPipeChannel:
    def __init__(self) -> None:
        r, w = multiprocessing.Pipe(duplex=False)
        self.r: Optional[Connection] = r
        self.w: Optional[Connection] = w
        self.capacity = fcntl.fcntl(w.fileno(), F_GETPIPE_SZ)

    def open_reader(self, *, nonblocking: bool = False) -> ConnReader:
        assert self.r is not None
        end, self.r = self.r, None  # handed over: detach must not close it
        return ConnReader(end)

    def open_writer(self, *, nonblocking: bool = False) -> ConnWriter:
        assert self.w is not None
        end, self.w = self.w, None
        return ConnWriter(end)

    def capacity_bound(self) -> int:
        return self.capacity

    def detach(self) -> None:
        for end in (self.r, self.w):
            if end is not None:
                end.close()
        self.r = self.w = None

    def teardown(self) -> None:
        self.detach()


class MpPipeStreamAdapter:
    name = "mp-pipe-adapter"
    kind = "stream"
    wiring = "inherit"
    # Not WRITER_DEATH_IS_CLOSE: a writer killed inside send_bytes leaves half a frame,
    # and recv_bytes then raises OSError('got end of file during message') instead of
    # returning EOF, which is how the framing reports a torn message.
    capabilities: FrozenSet[str] = frozenset({p.EOF_ON_CLOSE, p.BOUNDED_BUFFER, p.EPIPE})

    def setup(self, scope: Scope) -> MpPipeChannel:
        return MpPipeChannel()


BACKENDS = [MpPipeStreamAdapter()]
