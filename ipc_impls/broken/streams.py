"""Broken byte streams: each one is a mistake that works in a demo and fails the spec.

Every class overrides as little of a reference backend as it takes to embody
one piece of folk knowledge gone wrong; the docstring says what and why.
"""

from __future__ import annotations

import ctypes
import errno
import multiprocessing
import os
import queue
import signal
import threading
import time
from typing import Any, FrozenSet, List, Optional

from ipc_specs.harness.faults import INTERRUPTS, KILLS
from ipc_specs.harness.resources import Scope
from ipc_specs.streams import protocol as p

from .._endpoints import BytesLike, FdReader, FdWriter, SocketEnd, require_bytes
from ..streams import FifoBackend, FifoChannel, PipeBackend, PipeChannel, UnixStreamBackend
from . import Exhibit


def _pipe_variant(name: str, channel_cls: type) -> Any:
    """A backend claiming what ``os-pipe`` claims, whose channels are ``channel_cls``."""
    return type(channel_cls.__name__ + "Backend", (PipeBackend,),
                {"name": name, "setup": lambda self, scope: channel_cls()})()


def _fifo_variant(name: str, channel_cls: type) -> Any:
    """A backend claiming what ``fifo`` claims, whose channels are ``channel_cls``."""

    def setup(self: Any, scope: Scope) -> Any:
        path = scope.path("fifo")
        os.mkfifo(path, 0o600)
        return channel_cls(path)

    return type(channel_cls.__name__ + "Backend", (FifoBackend,), {"name": name, "setup": setup})()


# --- bytes_arrive_complete_and_in_order ---------------------------------------------
class IgnoresPartialWrites(FdWriter):
    """Puts the pipe in O_NONBLOCK "so a full pipe cannot stall us", retries on EAGAIN,
    and ignores the count os.write returns: above PIPE_BUF a nonblocking write can be
    partial (pipe(7)), and the rest of the buffer is silently dropped."""

    def write(self, data: BytesLike) -> int:
        require_bytes(data)
        os.set_blocking(self.fd, False)
        while True:
            try:
                os.write(self.fd, data)
                return len(data)
            except BlockingIOError:
                time.sleep(0.0005)


class PartialWritePipe(PipeChannel):
    def open_writer(self, *, nonblocking: bool = False) -> FdWriter:
        return IgnoresPartialWrites(super().open_writer().fd)


class EintrEndsRead(FdReader):
    """Reads through the C library (``libc.read`` via ctypes, as C extensions do) and
    maps EINTR to b'': the pre-PEP 475 idiom ``except InterruptedError: return b''``.
    Left alone it is a perfect reader; a signal that lands while it waits for data
    ends the stream early.  Caught only when the suite draws the interrupts fault."""

    libc = ctypes.CDLL(None, use_errno=True)

    def read(self, n: int) -> bytes:
        buf = ctypes.create_string_buffer(max(n, 1))
        got = self.libc.read(self.fd, buf, n)
        if got < 0:
            err = ctypes.get_errno()
            if err == errno.EINTR:
                return b""
            raise OSError(err, os.strerror(err))
        return buf.raw[:got]


class EintrEndsReadPipe(PipeChannel):
    def open_reader(self, *, nonblocking: bool = False) -> FdReader:
        return EintrEndsRead(super().open_reader().fd)


class RegisteredWriter(FdWriter):
    def __init__(self, fd: int, active: Any) -> None:
        super().__init__(fd)
        self.active = active

    def close(self) -> None:
        super().close()
        with self.active.get_lock():
            self.active.value -= 1


class RegistryReader(FdReader):
    """Trusts a count of open writers over the kernel's EOF: b'' while the count is
    above zero is taken for "a writer between two writes", and read again."""

    def __init__(self, fd: int, active: Any) -> None:
        super().__init__(fd)
        self.active = active

    def read(self, n: int) -> bytes:
        while True:
            chunk = os.read(self.fd, n)
            if chunk or self.active.value == 0:
                return chunk
            time.sleep(0.001)


class WriterRegistryPipe(PipeChannel):
    """Writers sign in and out of a shared counter (a ``multiprocessing.Value``), and
    the reader ends when it is back to zero.  Until a writer dies: the kernel closes
    its end, so EOF is there, but it never signs out, and the reader waits for ever.
    Caught only when the suite draws the kills fault."""

    def __init__(self) -> None:
        super().__init__()
        self.active = multiprocessing.Value("i", 0)

    def open_writer(self, *, nonblocking: bool = False) -> FdWriter:
        with self.active.get_lock():
            self.active.value += 1
        return RegisteredWriter(super().open_writer().fd, self.active)

    def open_reader(self, *, nonblocking: bool = False) -> FdReader:
        return RegistryReader(super().open_reader().fd, self.active)


class SplitsLines(FdReader):
    """The seed article's FIFO reader: ``read(1024)``, split on newlines, hand on the
    pieces.  A line cut by a chunk boundary becomes two, and the newlines that ended
    each chunk's pieces are gone: the reader's bytes are no longer the writer's."""

    def read(self, n: int) -> bytes:
        chunk = os.read(self.fd, 1024)
        return b"".join(piece for piece in chunk.split(b"\n") if piece) if chunk else b""


class LineSplittingFifo(FifoChannel):
    def open_reader(self, *, nonblocking: bool = False) -> FdReader:
        return SplitsLines(super().open_reader(nonblocking=nonblocking).fd)


class TenthsWriter(FdWriter):
    """Python 2 arithmetic carried over: the payload is written in ten parts whose
    bounds are computed with ``n / 10``.  On Python 3 that is a float, and slicing
    with it raises TypeError as soon as a payload is written at all."""

    def write(self, data: BytesLike) -> int:
        require_bytes(data)
        n = len(data)
        view = memoryview(data)
        for i in range(10):
            os.write(self.fd, view[i * n / 10:(i + 1) * n / 10])  # type: ignore[index]  # the bug itself
        return n


class PythonTwoSplitPipe(PipeChannel):
    def open_writer(self, *, nonblocking: bool = False) -> FdWriter:
        return TenthsWriter(super().open_writer().fd)


class OneReadIsTheMessage(FdReader):
    """``os.read(r, 1024)`` taken as the whole payload of a pipe: one read, then "done"
    (EOF).  Works while payloads are short and the writer is quick."""

    done = False

    def read(self, n: int) -> bytes:
        if self.done:
            return b""
        self.done = True
        return os.read(self.fd, 1024)


class SingleReadPipe(PipeChannel):
    def open_reader(self, *, nonblocking: bool = False) -> FdReader:
        return OneReadIsTheMessage(super().open_reader(nonblocking=nonblocking).fd)


# --- eof_after_last_writer_closes ----------------------------------------------------
class StrayWriteEnd(PipeChannel):
    """The parent forgets ``os.close(w)`` after fork: its copy of the write end keeps the
    pipe open, so the reader never sees EOF and blocks forever."""

    def detach(self) -> None:
        if self.r is not None:
            os.close(self.r)
        self.r = None  # …and self.w stays open in every process that forked with it


POISON = b"\xffEND\xff"


class PoisonPillWriter(FdWriter):
    def close(self) -> None:
        os.write(self.fd, POISON)
        super().close()


class PoisonPillReader(FdReader):
    def __init__(self, fd: int) -> None:
        super().__init__(fd)
        self.buf = b""
        self.eof = self.done = False

    def read(self, n: int) -> bytes:
        while not self.done:
            cut = self.buf.find(POISON)
            if cut == 0:
                self.done = True  # the first marker ends the stream for this consumer
                break
            # Hold back a tail that could be the start of a marker split across reads.
            safe = cut if cut > 0 else len(self.buf) - (len(POISON) - 1)
            if safe > 0 or (self.eof and self.buf):
                take = min(n, safe if safe > 0 else len(self.buf))
                out, self.buf = self.buf[:take], self.buf[take:]
                return out
            if self.eof:
                break
            chunk = os.read(self.fd, 65536)
            self.eof = not chunk
            self.buf += chunk
        return b""


class PoisonPillPipe(PipeChannel):
    """Each producer writes an end marker when it closes, and the consumer stops at the
    first marker it sees: right with one producer, EOF too early with several."""

    def open_writer(self, *, nonblocking: bool = False) -> FdWriter:
        return PoisonPillWriter(super().open_writer().fd)

    def open_reader(self, *, nonblocking: bool = False) -> FdReader:
        return PoisonPillReader(super().open_reader().fd)


# --- small_writes_never_interleave ---------------------------------------------------
class ChunkedWriter(FdWriter):
    """Splits every write into 1 KiB pieces "to be gentle with the pipe": a record of up
    to PIPE_BUF bytes is no longer one write, so concurrent writers tear it."""

    def write(self, data: BytesLike) -> int:
        require_bytes(data)
        view = memoryview(data)
        for i in range(0, len(view), 1024):
            os.write(self.fd, view[i:i + 1024])
            os.sched_yield()
        return len(view)


class ChunkedWritePipe(PipeChannel):
    def open_writer(self, *, nonblocking: bool = False) -> FdWriter:
        return ChunkedWriter(super().open_writer().fd)


# --- nonblocking_small_write_is_all_or_nothing ----------------------------------------
class PiecemealNonblockingWriter(FdWriter):
    """Hands a nonblocking write to the kernel in 512-byte pieces "to be gentle", and
    when a piece meets EAGAIN reports what went in so far: a small write comes out
    partial, which pipe(7) rules out for writes of at most PIPE_BUF bytes."""

    def write(self, data: BytesLike) -> int:
        require_bytes(data)
        if not self.nonblocking:
            return super().write(data)
        view, done = memoryview(data), 0
        while done < len(view):
            try:
                done += os.write(self.fd, view[done:done + 512])
            except BlockingIOError:
                if done:
                    return done
                raise
        return done


class PiecemealNonblockingPipe(PipeChannel):
    def open_writer(self, *, nonblocking: bool = False) -> FdWriter:
        end = super().open_writer(nonblocking=nonblocking)
        return PiecemealNonblockingWriter(end.fd, nonblocking)


# --- full_buffer_blocks_writer_until_reader_drains -----------------------------------
class BackgroundWriter(FdWriter):
    """Hands every write to a background thread and returns at once: the writer never
    blocks, so its memory grows without bound while the reader is slow."""

    def __init__(self, fd: int) -> None:
        super().__init__(fd)
        self.q: queue.Queue[Optional[bytes]] = queue.Queue()
        self.thread = threading.Thread(target=self._drain, daemon=True)
        self.thread.start()

    def _drain(self) -> None:
        while True:
            item = self.q.get()
            if item is None:
                return
            FdWriter.write(self, item)

    def write(self, data: BytesLike) -> int:
        require_bytes(data)
        self.q.put(bytes(data))
        return len(data)

    def close(self) -> None:
        self.q.put(None)
        self.thread.join()
        super().close()


class UnboundedPipe(PipeChannel):
    def open_writer(self, *, nonblocking: bool = False) -> FdWriter:
        return BackgroundWriter(super().open_writer().fd)


# --- write_without_reader_raises_broken_pipe -----------------------------------------
class SwallowsEpipe(FdWriter):
    """Catches BrokenPipeError "because the reader may just be slow" and reports success."""

    def write(self, data: BytesLike) -> int:
        try:
            return super().write(data)
        except BrokenPipeError:
            return len(data)


class EpipeSwallowingPipe(PipeChannel):
    def open_writer(self, *, nonblocking: bool = False) -> FdWriter:
        return SwallowsEpipe(super().open_writer().fd)


class SigpipeDefaultPipe(PipeChannel):
    """Restores SIGPIPE to SIG_DFL, as C programs have it: the writer is killed by the
    signal instead of getting an error it could handle."""

    def open_writer(self, *, nonblocking: bool = False) -> FdWriter:
        signal.signal(signal.SIGPIPE, signal.SIG_DFL)
        return super().open_writer()


# --- zero_length_write_is_not_eof ----------------------------------------------------
class EmptyWriteCloses(FdWriter):
    """Uses a zero-length write as its "I am done" marker and closes the stream there;
    later writes are dropped."""

    closed = False

    def write(self, data: BytesLike) -> int:
        require_bytes(data)
        if not data and not self.closed:
            os.close(self.fd)
            self.closed = True
        if self.closed:
            return len(data)
        return super().write(data)

    def close(self) -> None:
        if not self.closed:
            super().close()


class EmptyWriteClosesPipe(PipeChannel):
    def open_writer(self, *, nonblocking: bool = False) -> FdWriter:
        return EmptyWriteCloses(super().open_writer().fd)


# --- write_rejects_text --------------------------------------------------------------
class EncodesText(FdWriter):
    """Accepts str and encodes it with the locale's codec: the Python 2 habit
    ``os.write(fd, str(s))`` keeps "working" and hides the encoding choice."""

    def write(self, data: Any) -> int:
        if isinstance(data, str):
            data = data.encode(errors="replace")
        return super().write(data)


class TextAcceptingPipe(PipeChannel):
    def open_writer(self, *, nonblocking: bool = False) -> FdWriter:
        return EncodesText(super().open_writer().fd)


# --- shutdown_gives_peer_eof_while_reverse_still_works -------------------------------
class CloseInsteadOfShutdown(SocketEnd):
    """Calls close() where shutdown(SHUT_WR) was meant: the peer sees EOF, but the
    reply can no longer be read."""

    def shutdown(self) -> None:
        self.sock.close()


class FullCloseSocketBackend(UnixStreamBackend):
    name = "broken-close-not-shutdown"

    def setup(self, scope: Scope) -> Any:
        return CloseInsteadOfShutdownChannel(super().setup(scope))


class CloseInsteadOfShutdownChannel:
    """Wraps a socket channel so that its writers close where they should shut down."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner

    def open_writer(self, *, nonblocking: bool = False) -> SocketEnd:
        return CloseInsteadOfShutdown(self.inner.open_writer().sock)

    def open_reader(self, *, nonblocking: bool = False) -> Any:
        return self.inner.open_reader()

    def capacity_bound(self) -> Any:
        return self.inner.capacity_bound()

    def detach(self) -> None:
        self.inner.detach()

    def teardown(self) -> None:
        self.inner.teardown()


# --- FIFO open semantics --------------------------------------------------------------
class RdwrFifo(FifoChannel):
    """Opens both ends O_RDWR "to avoid blocking in open": open never waits for a peer,
    and the reader, being a writer too, never sees EOF."""

    def _open(self, mode: int, nonblocking: bool) -> int:
        return os.open(self.path, os.O_RDWR | os.O_CLOEXEC | (os.O_NONBLOCK if nonblocking else 0))


class EnxioFallbackFifo(FifoChannel):
    """Falls back to O_RDWR when a nonblocking write-open fails with ENXIO, so the
    caller never learns that nobody is reading."""

    def _open(self, mode: int, nonblocking: bool) -> int:
        try:
            return super()._open(mode, nonblocking)
        except OSError as exc:
            if exc.errno != errno.ENXIO:
                raise
            return super()._open(os.O_RDWR, nonblocking)


class EagainIsEof(FdReader):
    """Treats EAGAIN ("nothing yet") as EOF ("nothing ever again")."""

    def read(self, n: int) -> bytes:
        try:
            return super().read(n)
        except BlockingIOError:
            return b""


class EagainAsEofFifo(FifoChannel):
    def open_reader(self, *, nonblocking: bool = False) -> FdReader:
        return EagainIsEof(super().open_reader(nonblocking=nonblocking).fd)


class ClosesAtFirstEof(FdReader):
    """Closes the FIFO at the first EOF and reports EOF forever after: the next writer's
    blocking open then waits for a reader that will never come."""

    gone = False

    def read(self, n: int) -> bytes:
        if self.gone:
            return b""
        data = super().read(n)
        if not data:
            os.close(self.fd)
            self.gone = True
        return data

    def close(self) -> None:
        if not self.gone:
            super().close()


class StickyEofFifo(FifoChannel):
    def open_reader(self, *, nonblocking: bool = False) -> FdReader:
        return ClosesAtFirstEof(super().open_reader(nonblocking=nonblocking).fd)


class RegularFileFifo(FifoChannel):
    """A "FIFO" that is a regular file: unread bytes outlive every close, so a new
    reader sees a previous session's data."""

    def _open(self, mode: int, nonblocking: bool) -> int:
        extra = os.O_APPEND | os.O_CREAT if mode == os.O_WRONLY else 0
        return os.open(self.path, mode | extra | os.O_CLOEXEC, 0o600)


class RegularFileFifoBackend(FifoBackend):
    name = "broken-regular-file-fifo"
    capabilities: FrozenSet[str] = frozenset({p.NONBLOCKING_OPEN, p.DISCARDS_ON_LAST_CLOSE})

    def setup(self, scope: Scope) -> FifoChannel:
        return RegularFileFifo(scope.path("file"))


EXHIBITS: List[Exhibit] = [
    Exhibit(_pipe_variant("broken-writer-registry", WriterRegistryPipe), "eof_after_last_writer_closes",
            "A count of live writers kept in user space never hears of a writer's death; the kernel's EOF "
            "does.", hangs=True, fault=KILLS),
    Exhibit(_pipe_variant("broken-eintr-ends-read", EintrEndsReadPipe), "bytes_arrive_complete_and_in_order",
            "A signal during a blocking read is EINTR, to retry (PEP 475); taken for EOF it cuts the stream short.",
            fault=INTERRUPTS),
    Exhibit(_pipe_variant("broken-ignores-partial-writes", PartialWritePipe), "bytes_arrive_complete_and_in_order",
            "A nonblocking write above PIPE_BUF may be partial; ignoring its count loses bytes."),
    Exhibit(_fifo_variant("broken-newline-splitting-fifo", LineSplittingFifo), "bytes_arrive_complete_and_in_order",
            "Splitting each read(1024) on newlines cuts lines at chunk boundaries: frame with readline()."),
    Exhibit(_pipe_variant("broken-python2-tenths", PythonTwoSplitPipe), "bytes_arrive_complete_and_in_order",
            "n / 10 is a float on Python 3: slice bounds computed with it raise instead of splitting."),
    Exhibit(_pipe_variant("broken-single-read-pipe", SingleReadPipe), "bytes_arrive_complete_and_in_order",
            "One os.read(r, 1024) is not the whole payload: read until EOF or until the length you expect."),
    Exhibit(_pipe_variant("broken-stray-write-end", StrayWriteEnd), "eof_after_last_writer_closes",
            "Every process that forked with the write end must close it, or EOF never comes.", hangs=True),
    Exhibit(_pipe_variant("broken-poison-pill", PoisonPillPipe), "eof_after_last_writer_closes",
            "One end marker per producer, and a consumer that stops at the first, ends too early."),
    Exhibit(_pipe_variant("broken-nonblocking-pieces", PiecemealNonblockingPipe),
            "nonblocking_small_write_is_all_or_nothing",
            "A nonblocking write sent in pieces comes back partial: give the kernel small writes whole."),
    Exhibit(_pipe_variant("broken-chunked-writes", ChunkedWritePipe), "small_writes_never_interleave",
            "Only a single write of at most PIPE_BUF bytes is atomic; splitting it tears records."),
    Exhibit(_pipe_variant("broken-unbounded-buffer", UnboundedPipe), "full_buffer_blocks_writer_until_reader_drains",
            "A writer that never blocks buffers without bound instead of feeling back-pressure."),
    Exhibit(_pipe_variant("broken-swallows-epipe", EpipeSwallowingPipe), "write_without_reader_raises_broken_pipe",
            "Swallowing BrokenPipeError turns 'nobody is listening' into silent data loss."),
    Exhibit(_pipe_variant("broken-sigpipe-default", SigpipeDefaultPipe), "write_without_reader_raises_broken_pipe",
            "With SIGPIPE at SIG_DFL a write to a closed pipe kills the writer instead of raising."),
    Exhibit(_pipe_variant("broken-empty-write-closes", EmptyWriteClosesPipe), "zero_length_write_is_not_eof",
            "A zero-length write is not a close marker: bytes written after it must still arrive."),
    Exhibit(_pipe_variant("broken-accepts-text", TextAcceptingPipe), "write_rejects_text",
            "os.write(fd, str(s)) is a Python 2 habit: encode explicitly, or a TypeError is right."),
    Exhibit(FullCloseSocketBackend(), "shutdown_gives_peer_eof_while_reverse_still_works",
            "close() is not shutdown(SHUT_WR): it also throws away the way back."),
    Exhibit(_fifo_variant("broken-rdwr-fifo", RdwrFifo), "blocking_open_waits_for_peer",
            "Opening a FIFO O_RDWR to avoid blocking hides whether a peer exists (and EOF with it)."),
    Exhibit(_fifo_variant("broken-enxio-fallback-fifo", EnxioFallbackFifo),
            "nonblocking_write_open_without_reader_fails_enxio",
            "ENXIO is the answer 'nobody is reading'; papering over it with O_RDWR hides that."),
    Exhibit(_fifo_variant("broken-eagain-as-eof-fifo", EagainAsEofFifo),
            "nonblocking_read_tells_eof_from_empty",
            "EAGAIN means 'nothing yet', b'' means 'no writer': confusing them ends streams early."),
    Exhibit(_fifo_variant("broken-sticky-eof-fifo", StickyEofFifo), "eof_is_not_sticky_for_fifos",
            "EOF on a FIFO ends one writer session, not the FIFO: a server must keep reading.", hangs=True),
    Exhibit(RegularFileFifoBackend(), "unread_bytes_vanish_at_last_close",
            "A FIFO has no contents on disk; a regular file standing in for one keeps stale data."),
]
