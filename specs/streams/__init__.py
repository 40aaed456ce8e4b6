"""Byte streams: pipes, FIFOs, stream sockets.  See ``protocol`` for the contract,
``checks``, ``fifo_checks`` and ``nonblocking_checks`` for the invariants, ``roles`` for what workers run."""

from . import checks, fifo_checks, nonblocking_checks  # noqa: F401  (register the invariants)
from .protocol import STREAM, ByteReader, ByteWriter, StreamChannel

__all__ = ["STREAM", "ByteReader", "ByteWriter", "StreamChannel"]
