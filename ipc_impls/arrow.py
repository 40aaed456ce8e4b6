"""Reference Arrow table stores: the IPC stream and file formats, written into
``multiprocessing.shared_memory.SharedMemory`` or into a file in /dev/shm that
readers open with ``pyarrow.memory_map``.

pyarrow is imported lazily, inside the worker that puts or gets: the parent
only names the store (and reserves and journals the name), so it never starts
pyarrow's threads before it forks.

Claims: ``zero_copy``, ``read_only_views`` and ``live_view`` — all four stores
read through a mapping without copying, hand Arrow an immutable view of it, and
rewrite in place.  (``live_view`` of the memory-map stores rests on Linux: pyarrow
maps read-only files MAP_PRIVATE, whose unwritten pages show the file's current bytes.)
Not claimed: ``thread_safe`` (the zero-copy proof measures the process-wide Arrow
allocation counter, which other threads would disturb).
"""

from __future__ import annotations

import os
import sys
from multiprocessing import resource_tracker
from multiprocessing.shared_memory import SharedMemory
from typing import Any, FrozenSet, Optional, Tuple

from ipc_specs.arrow import protocol as p
from ipc_specs.harness.resources import NAME_PREFIX, Scope, register_remover

SHM_DIR = "/dev/shm"  # shm_overview(7): POSIX shared memory objects live in this tmpfs on Linux


def _pa() -> Any:
    import pyarrow

    return pyarrow


# --- cleanup ------------------------------------------------------------------------------
def _unlink(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


def remove_shm(name: str) -> None:
    """Unlink POSIX shared memory ``name`` (what ``SharedMemory.unlink`` does), if it exists."""
    if name.startswith(NAME_PREFIX) and "/" not in name:
        _unlink(os.path.join(SHM_DIR, name))


def remove_shm_file(path: str) -> None:
    # A journal is a file on disk: refuse to unlink anything that is not one of ours.
    if os.path.dirname(path) == SHM_DIR and os.path.basename(path).startswith(NAME_PREFIX):
        _unlink(path)


register_remover("arrow_shm", remove_shm)
register_remover("arrow_shm_file", remove_shm_file)


# --- Arrow IPC ------------------------------------------------------------------------------
def ipc_write(fmt: str, sink: Any, table: Any) -> None:
    pa = _pa()
    new = pa.ipc.new_stream if fmt == "stream" else pa.ipc.new_file
    with new(sink, table.schema) as writer:
        for batch in table.to_batches():
            writer.write_batch(batch)


def ipc_size(fmt: str, table: Any) -> int:
    """Bytes the IPC form of ``table`` takes, measured without writing it anywhere."""
    sink = _pa().MockOutputStream()
    ipc_write(fmt, sink, table)
    return int(sink.size())


def ipc_read(fmt: str, source: Any) -> Any:
    """Read every batch; from a buffer or memory map this makes views, not copies."""
    ipc = _pa().ipc
    return (ipc.open_stream(source) if fmt == "stream" else ipc.open_file(source)).read_all()


# --- SharedMemory ---------------------------------------------------------------------------
def untracked_shm(name: str, *, create: bool = False, size: int = 0) -> SharedMemory:
    """``SharedMemory`` that the resource tracker leaves alone.

    Before 3.13 every process that creates *or attaches* registers the segment,
    and its tracker unlinks it when that process exits (gh-82300): a writer or
    reader worker exiting would destroy the table for everyone.  The parent owns
    the name (journalled by the scope) and unlinks it at teardown.
    """
    if sys.version_info >= (3, 13):
        return SharedMemory(name, create=create, size=size, track=False)  # type: ignore[call-arg]
    shm = SharedMemory(name, create=create, size=size)
    resource_tracker.unregister(shm._name, "shared_memory")  # type: ignore[attr-defined]
    return shm


class ShmWriter:
    def __init__(self, name: str, fmt: str) -> None:
        self.name, self.fmt = name, fmt
        self.shm: Optional[SharedMemory] = None

    def put(self, table: Any) -> None:
        # O_CREAT|O_EXCL, mode 0600: SharedMemory(create=True) never opens an existing name.
        self.shm = untracked_shm(self.name, create=True, size=ipc_size(self.fmt, table))
        self._write(table)

    def _write(self, table: Any) -> None:
        assert self.shm is not None
        pa = _pa()
        sink = pa.FixedSizeBufferWriter(pa.py_buffer(self.shm.buf))
        ipc_write(self.fmt, sink, table)
        sink.close()

    def rewrite(self, table: Any) -> None:
        assert self.shm is not None, "rewrite before put"
        size = ipc_size(self.fmt, table)
        if size != self.shm.size:
            raise ValueError(f"rewrite needs the same IPC size: {size} != {self.shm.size} bytes")
        self._write(table)

    def close(self) -> None:
        if self.shm is not None:
            self.shm.close()  # the segment stays until the parent unlinks it
            self.shm = None


class ShmReader:
    def __init__(self, name: str, fmt: str) -> None:
        self.name, self.fmt = name, fmt
        self.shm: Optional[SharedMemory] = None
        self.view: Any = None

    def _source(self) -> Any:
        """What Arrow reads from: an immutable Buffer over a *read-only* memoryview of
        the segment (``shm.buf`` itself is writable, and so would the table be)."""
        assert self.shm is not None and self.shm.buf is not None
        return _pa().py_buffer(self.shm.buf.toreadonly())

    def get(self) -> Any:
        self.shm = untracked_shm(self.name)
        self.view = self._source()
        return ipc_read(self.fmt, self.view)

    def region(self) -> Tuple[int, int]:
        assert self.shm is not None, "region() before get()"
        whole = _pa().py_buffer(self.shm.buf)
        return int(whole.address), int(whole.size)

    def close(self) -> None:
        self.view = None
        if self.shm is not None:
            self.shm.close()  # BufferError if a table from get() is still alive
            self.shm = None


class ShmStore:
    """Picklable: a name and a format, so it reaches spawned workers."""

    def __init__(self, name: str, fmt: str) -> None:
        self.name, self.fmt = name, fmt

    def open_writer(self) -> ShmWriter:
        return ShmWriter(self.name, self.fmt)

    def open_reader(self) -> ShmReader:
        return ShmReader(self.name, self.fmt)

    def detach(self) -> None:
        pass

    def teardown(self) -> None:
        remove_shm(self.name)


# --- a file in /dev/shm, read with pyarrow.memory_map -------------------------------------------
class MmapWriter:
    def __init__(self, path: str, fmt: str) -> None:
        self.path, self.fmt = path, fmt
        self.mm: Any = None

    def put(self, table: Any) -> None:
        size = ipc_size(self.fmt, table)
        fd = os.open(self.path, os.O_RDWR | os.O_NOFOLLOW | os.O_CLOEXEC)  # created 0600 by the parent
        try:
            os.ftruncate(fd, size)
        finally:
            os.close(fd)
        self.mm = _pa().memory_map(self.path, "r+")
        ipc_write(self.fmt, self.mm, table)

    def rewrite(self, table: Any) -> None:
        assert self.mm is not None, "rewrite before put"
        size = ipc_size(self.fmt, table)
        if size != self.mm.size():
            raise ValueError(f"rewrite needs the same IPC size: {size} != {self.mm.size()} bytes")
        self.mm.seek(0)
        ipc_write(self.fmt, self.mm, table)

    def close(self) -> None:
        if self.mm is not None:
            self.mm.close()
            self.mm = None


class MmapReader:
    def __init__(self, path: str, fmt: str) -> None:
        self.path, self.fmt = path, fmt
        self.mm: Any = None
        self.whole: Optional[Tuple[int, int]] = None

    def get(self) -> Any:
        # pyarrow maps mode "r" PROT_READ|MAP_PRIVATE.  POSIX leaves it unspecified whether a
        # private mapping shows later changes to the file (mmap(2)); on Linux pages never
        # written through it are the page-cache pages, so an in-place rewrite still shows.
        self.mm = _pa().memory_map(self.path, "r")
        everything = self.mm.read_buffer()  # a view of the whole mapping: its address is the base
        self.whole = (int(everything.address), int(everything.size))
        self.mm.seek(0)
        return ipc_read(self.fmt, self._source())

    def _source(self) -> Any:
        """What Arrow reads from: the memory map itself, so reads are slices of it."""
        return self.mm

    def region(self) -> Tuple[int, int]:
        assert self.whole is not None, "region() before get()"
        return self.whole

    def close(self) -> None:
        if self.mm is not None:
            self.mm.close()
            self.mm = None


class MmapStore:
    def __init__(self, path: str, fmt: str) -> None:
        self.path, self.fmt = path, fmt

    def open_writer(self) -> MmapWriter:
        return MmapWriter(self.path, self.fmt)

    def open_reader(self) -> MmapReader:
        return MmapReader(self.path, self.fmt)

    def detach(self) -> None:
        pass

    def teardown(self) -> None:
        remove_shm_file(self.path)


# --- backends -------------------------------------------------------------------------------
ZERO_COPY_CLAIMS: FrozenSet[str] = frozenset({p.ZERO_COPY, p.READ_ONLY_VIEWS, p.LIVE_VIEW})


class ShmBackend:
    """IPC bytes in a ``SharedMemory`` segment the writer creates under a name the parent
    reserved and journalled before any process could create it."""

    kind = "arrow"
    wiring = "named"
    capabilities = ZERO_COPY_CLAIMS

    def __init__(self, fmt: str) -> None:
        self.fmt = fmt
        self.name = f"arrow-{fmt}-shm"

    def setup(self, scope: Scope) -> Any:
        name = scope.name()
        scope.register("arrow_shm", name, lambda: remove_shm(name))
        return ShmStore(name, self.fmt)


class MmapBackend:
    """IPC bytes in a file in /dev/shm, created here exclusively with mode 0600."""

    kind = "arrow"
    wiring = "named"
    capabilities = ZERO_COPY_CLAIMS

    def __init__(self, fmt: str) -> None:
        self.fmt = fmt
        self.name = f"arrow-{fmt}-mmap"

    def setup(self, scope: Scope) -> Any:
        path = os.path.join(SHM_DIR, scope.name())
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_RDWR | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
        os.close(fd)
        scope.register("arrow_shm_file", path, lambda: remove_shm_file(path))
        return MmapStore(path, self.fmt)


BACKENDS = [ShmBackend("stream"), ShmBackend("file"), MmapBackend("stream"), MmapBackend("file")]
