"""How one payload crosses a backend's channel, per family, through the conformance API only.

A *link* lives in one benchmark process and moves whole payloads of one size in one
direction: ``send(payload)`` on the sending side, ``recv()`` on the receiving side.
Everything goes through the same backend API the conformance run uses (``open_*``,
``write``/``read``, ``send``/``receive``, ``attach``/``write``/``read``,
``put``/``get``); no backend has code of its own to be benchmarked.

What each family needs besides its channel, and why:

* stream: nothing.  The receiver reads ``min(left, READ_CHUNK)`` bytes at a time, the
  same for every stream backend and for the bare-pipe baseline.
* queue: nothing; every receive returns one whole message.
* shm: the contract has no synchronisation of its own (a segment is just memory), so
  the turn is handed over through a bare ``os.pipe`` token: the writer writes the
  payload into the segment, sends one byte, the reader reads the payload out.  A
  receive is therefore a copy in, a copy out and a pipe round trip.
* arrow: a store is published once (``put`` creates its segment exclusively), so every
  message uses a fresh store from a pool the parent set up; the receiver ``get``s the
  table, checks its length and drops it (zero copy: it does not touch the bytes).
"""

from __future__ import annotations

import os
from typing import Any, List, Optional

#: Largest single read a stream receiver asks for (a pipe returns at most its capacity anyway).
READ_CHUNK = 1 << 20


class Link:
    size: int

    def send(self, payload: bytes) -> None:
        raise NotImplementedError

    def recv(self) -> None:
        raise NotImplementedError

    def close(self) -> None:
        pass


def _read_exactly(read: Any, size: int) -> None:
    left = size
    while left:
        chunk = read(min(left, READ_CHUNK))
        if not chunk:
            raise EOFError(f"end of stream with {left} of {size} bytes still to come")
        left -= len(chunk)


class StreamLink(Link):
    def __init__(self, channel: Any, sending: bool, size: int) -> None:
        self.size = size
        self.end = channel.open_writer() if sending else channel.open_reader()

    def send(self, payload: bytes) -> None:
        self.end.write(payload)

    def recv(self) -> None:
        _read_exactly(self.end.read, self.size)

    def close(self) -> None:
        self.end.close()


class BarePipeLink(Link):
    """The baseline: ``os.write``/``os.read`` on a raw pipe, the same loops as :class:`StreamLink`."""

    def __init__(self, fd: int, size: int) -> None:
        self.fd, self.size = fd, size

    def send(self, payload: bytes) -> None:
        view = memoryview(payload)
        done = 0
        while done < len(view):
            done += os.write(self.fd, view[done:])

    def recv(self) -> None:
        _read_exactly(lambda n: os.read(self.fd, n), self.size)

    def close(self) -> None:
        os.close(self.fd)


class QueueLink(Link):
    def __init__(self, channel: Any, sending: bool, size: int) -> None:
        self.size = size
        self.end = channel.open(sender=sending, receiver=not sending)

    def send(self, payload: bytes) -> None:
        self.end.send(payload)

    def recv(self) -> None:
        data, _ = self.end.receive()
        if len(data) != self.size:
            raise AssertionError(f"got={len(data)} bytes, but should be {self.size} [receive]")

    def close(self) -> None:
        self.end.close()


class ShmLink(Link):
    """Segment plus a token pipe and an acknowledgement pipe.

    Sending: ``token_fd`` is the token pipe's write end, ``ack_fd`` the ack pipe's read end;
    receiving, the other ends.  The writer waits for the previous payload's ack before it
    overwrites the segment (one segment holds one payload: the contract has no more).
    """

    def __init__(self, channel: Any, sending: bool, size: int, token_fd: int, ack_fd: int) -> None:
        self.size, self.token_fd, self.ack_fd = size, token_fd, ack_fd
        self.segment = channel.attach()
        self.pending = False

    def send(self, payload: bytes) -> None:
        if self.pending and os.read(self.ack_fd, 1) != b"a":
            raise EOFError("the reader's ack pipe closed")
        self.segment.write(0, payload)
        os.write(self.token_fd, b"t")
        self.pending = True

    def recv(self) -> None:
        if os.read(self.token_fd, 1) != b"t":
            raise EOFError("the writer's token pipe closed")
        data = self.segment.read(0, self.size)
        os.write(self.ack_fd, b"a")
        if len(data) != self.size:
            raise AssertionError(f"got={len(data)} bytes, but should be {self.size} [read]")

    def close(self) -> None:
        self.segment.close()
        os.close(self.token_fd)
        os.close(self.ack_fd)


class ArrowLink(Link):
    """Each message is one store from ``stores``; both sides walk the pool in step."""

    def __init__(self, stores: List[Any], sending: bool, size: int, token_fd: int) -> None:
        self.stores, self.size, self.token_fd = stores, size, token_fd
        self.next = 0
        self.table: Optional[Any] = None

    def _store(self) -> Any:
        if self.next >= len(self.stores):
            raise RuntimeError(f"arrow store pool of {len(self.stores)} exhausted")
        store = self.stores[self.next]
        self.next += 1
        return store

    def send(self, payload: bytes) -> None:
        if self.table is None or self.table.num_rows != len(payload):
            self.table = table_of(payload)
        writer = self._store().open_writer()
        writer.put(self.table)
        writer.close()
        os.write(self.token_fd, b"t")

    def recv(self) -> None:
        if os.read(self.token_fd, 1) != b"t":
            raise EOFError("the writer's token pipe closed")
        reader = self._store().open_reader()
        table = reader.get()
        rows = table.num_rows
        del table  # the mapping cannot close while a view of it lives
        reader.close()
        if rows != self.size:
            raise AssertionError(f"got={rows} rows, but should be {self.size} [get]")

    def close(self) -> None:
        self.table = None
        os.close(self.token_fd)


def table_of(payload: bytes) -> Any:
    """A one-column uint8 table whose values are ``payload`` (built without copying it)."""
    import pyarrow as pa

    array = pa.Array.from_buffers(pa.uint8(), len(payload), [None, pa.py_buffer(payload)])
    return pa.Table.from_arrays([array], names=["payload"])
