"""The byte-stream contract: pipes, FIFOs, stream sockets and anything like them.

A stream channel has one reading end and a writing end that one or more
processes write into.  Bytes carry no boundaries: a read may return part of a
write or several writes at once, and only the concatenation is meaningful
(pipe(7): "a pipe has no concept of message boundaries").
"""

from __future__ import annotations

from typing import Any

try:
    from typing import Protocol
except ImportError:  # pragma: no cover
    from typing_extensions import Protocol  # type: ignore

from ..backend import Kind, register_kind

MULTI_WRITER = "multi_writer"
ATOMIC_PIPE_BUF = "atomic_pipe_buf"
EOF_ON_CLOSE = "eof_on_close"
BOUNDED_BUFFER = "bounded_buffer"
EPIPE = "epipe"
BLOCKING_OPEN = "blocking_open"
NONBLOCKING_OPEN = "nonblocking_open"
REOPEN_AFTER_EOF = "reopen_after_eof"
DISCARDS_ON_LAST_CLOSE = "discards_on_last_close"
HALF_CLOSE = "half_close"
WRITER_DEATH_IS_CLOSE = "writer_death_is_close"

STREAM = register_kind(
    Kind(
        name="stream",
        summary="a one-way byte stream: writers write bytes, one reader reads them in order",
        capabilities={
            MULTI_WRITER: "several processes may hold the write end and write concurrently",
            ATOMIC_PIPE_BUF: "a write of at most PIPE_BUF bytes never interleaves with other writers' bytes",
            EOF_ON_CLOSE: "the reader gets b'' once every writer in every process has closed, after all data",
            WRITER_DEATH_IS_CLOSE: "a writer killed at any point, even inside a write, counts as one that "
            "closed: what it wrote arrives, then EOF (the kills fault is drawn only with this claim)",
            BOUNDED_BUFFER: "a write blocks while the buffer is full; channel.capacity_bound() bounds the "
            "bytes it can hold",
            EPIPE: "a write with no reader left raises BrokenPipeError at once",
            BLOCKING_OPEN: "opening one end blocks until the other end is opened (fifo(7))",
            NONBLOCKING_OPEN: "open_*(nonblocking=True) follows fifo(7): write-open fails with ENXIO without "
            "a reader; nonblocking reads raise BlockingIOError while an idle writer exists",
            REOPEN_AFTER_EOF: "after EOF a new writer can open, and the same reader gets its bytes",
            DISCARDS_ON_LAST_CLOSE: "bytes still unread when every end closes are gone",
            HALF_CLOSE: "writer.shutdown() gives the reader EOF while the reader can still write back",
            "thread_safe": "ends may be opened and used from several threads of one process",
        },
        channel_members=("open_reader", "open_writer"),
    )
)


class ByteWriter(Protocol):
    def write(self, data: bytes) -> int:
        """Write all of ``data`` (blocking) and return ``len(data)``.

        Opened with ``nonblocking=True``: return how many bytes were taken, or
        raise ``BlockingIOError``.  Text (``str``) must be rejected with ``TypeError``.
        """

    def close(self) -> None: ...


class ByteReader(Protocol):
    def read(self, n: int) -> bytes:
        """Return 1 to ``n`` bytes, or ``b''`` at end of stream; block while empty
        (opened with ``nonblocking=True``: raise ``BlockingIOError`` instead)."""

    def close(self) -> None: ...


class StreamChannel(Protocol):
    def open_reader(self, *, nonblocking: bool = False) -> ByteReader: ...

    def open_writer(self, *, nonblocking: bool = False) -> ByteWriter: ...

    def detach(self) -> None:
        """Drop this process's references to ends it did not open (close inherited fds)."""

    def teardown(self) -> None:
        """Release everything; called once, in the parent, after the example."""


class HalfClosable(Protocol):
    """Extra members of ends whose backend claims ``half_close``."""

    def shutdown(self) -> None: ...

    def read(self, n: int) -> bytes: ...

    def write(self, data: bytes) -> int: ...


def capacity_bound(channel: Any) -> int:
    """The channel's claim of how many bytes it can buffer (``bounded_buffer``)."""
    return int(channel.capacity_bound())
