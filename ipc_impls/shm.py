"""Reference shared-memory backends: anonymous and file-backed ``mmap``,
``multiprocessing.shared_memory``, ``posix_ipc`` and ``sysv_ipc`` segments.

Each backend states its claims in ``capabilities`` and its ``fill_byte``.  Named
objects are created exclusively with mode 0600 under a name from
``scope.name()`` and registered with the scope right away; channels pickle as
their name only, so spawned workers and fresh interpreters attach by name.

What is honestly *not* claimed:

* ``mmap-anonymous``: no name (fork only), so no attach by name, unlink,
  truncation or read-only attach (Python cannot mprotect an inherited mapping).
* ``mp-shared-memory``: no read-only attach (the API has none), and it does not
  survive an unrelated attacher's exit: with the default tracking the
  attacher's resource tracker unlinks it (every version 3.9-3.13, gh-82300).
  ``mp-shared-memory-untracked`` (3.13+, ``track=False``) survives instead.
* ``sysv-ipc``: not truncatable (a System V segment has a fixed size).
"""

from __future__ import annotations

import mmap
import os
import sys
from multiprocessing import resource_tracker, shared_memory
from typing import Any, Dict, FrozenSet, List, Optional

import posix_ipc
import sysv_ipc

from ipc_specs.harness.resources import Scope
from ipc_specs.shm import protocol as p

_NAMED_ALL = frozenset({p.NAMED_ATTACH, p.EXACT_SIZE, p.READ_ONLY_ATTACH, p.UNLINKABLE, p.TRUNCATABLE,
                        p.SURVIVES_ATTACHER_EXIT})


class MmapSegment:
    """A mapping as ``mmap.mmap``; ACCESS_READ mappings raise TypeError on write."""

    def __init__(self, mm: mmap.mmap) -> None:
        self.mm = mm

    def read(self, offset: int, n: int) -> bytes:
        return self.mm[offset:offset + n]

    def write(self, offset: int, data: bytes) -> None:
        self.mm[offset:offset + len(data)] = data

    def length(self) -> int:
        return len(self.mm)

    def close(self) -> None:
        self.mm.close()


class _Named:
    """Channels attached by name: picklable as their name, the creator's handles stay home."""

    _local = ("_scope", "_handle")

    def __getstate__(self) -> Dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if k not in self._local}

    def __setstate__(self, state: Dict[str, Any]) -> None:
        self.__dict__.update(state)
        for k in self._local:
            self.__dict__.setdefault(k, None)

    def detach(self) -> None:
        pass  # nothing is inherited: every process attaches by name


# --- anonymous mmap, inherited across fork ------------------------------------------------
class AnonMmapChannel:
    def __init__(self) -> None:
        self.mm: Optional[mmap.mmap] = None

    def create(self, size: int) -> None:
        self.mm = mmap.mmap(-1, size)  # MAP_SHARED|MAP_ANONYMOUS: a forked child shares it

    def attach(self, *, read_only: bool = False) -> MmapSegment:
        assert self.mm is not None, "an anonymous mapping is reached only by inheriting it"
        mm, self.mm = self.mm, None  # handed over: detach must not close it
        return MmapSegment(mm)

    def detach(self) -> None:
        if self.mm is not None:
            self.mm.close()
            self.mm = None

    def teardown(self) -> None:
        self.detach()


class AnonMmapBackend:
    name = "mmap-anonymous"
    kind = "shm"
    wiring = "inherit"
    fill_byte = 0
    capabilities: FrozenSet[str] = frozenset({p.EXACT_SIZE})

    def setup(self, scope: Scope) -> AnonMmapChannel:
        return AnonMmapChannel()


# --- a file in the example's private directory, mapped MAP_SHARED --------------------------
class FileMmapChannel(_Named):
    def __init__(self, path: str) -> None:
        self.path = path

    def create(self, size: int) -> None:
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
        try:
            os.ftruncate(fd, size)  # the new bytes read as zeros
        finally:
            os.close(fd)

    def _map(self, fd: int, read_only: bool) -> mmap.mmap:
        return mmap.mmap(fd, 0, access=mmap.ACCESS_READ if read_only else mmap.ACCESS_WRITE)

    def attach(self, *, read_only: bool = False) -> MmapSegment:
        fd = os.open(self.path, (os.O_RDONLY if read_only else os.O_RDWR) | os.O_CLOEXEC)
        try:
            return MmapSegment(self._map(fd, read_only))  # the mapping outlives the fd
        finally:
            os.close(fd)

    def unlink(self) -> None:
        os.unlink(self.path)

    def exists(self) -> bool:
        return os.path.exists(self.path)

    def truncate(self, size: int) -> None:
        os.truncate(self.path, size)

    def teardown(self) -> None:
        try:
            os.unlink(self.path)
        except FileNotFoundError:
            pass


class FileMmapBackend:
    name = "mmap-file"
    kind = "shm"
    wiring = "named"
    fill_byte = 0
    capabilities: FrozenSet[str] = _NAMED_ALL

    def setup(self, scope: Scope) -> FileMmapChannel:
        return FileMmapChannel(scope.path("shm"))  # inside the 0700 example directory


# --- multiprocessing.shared_memory ------------------------------------------------------------
def _dev_shm(name: str) -> str:
    # Linux keeps POSIX shm objects as files of the tmpfs at /dev/shm (shm_overview(7)).
    return os.path.join("/dev/shm", name)


class MpSegment:
    def __init__(self, shm: shared_memory.SharedMemory) -> None:
        self.shm = shm

    @property
    def _buf(self) -> memoryview:
        buf = self.shm.buf
        assert buf is not None, "segment already closed"
        return buf

    def read(self, offset: int, n: int) -> bytes:
        return bytes(self._buf[offset:offset + n])

    def write(self, offset: int, data: bytes) -> None:
        self._buf[offset:offset + len(data)] = data

    def length(self) -> int:
        return int(self.shm.size)

    def close(self) -> None:
        self.shm.close()


class MpShmChannel(_Named):
    def __init__(self, name: str, track: bool) -> None:
        self.name = name
        self.track = track
        self._handle: Optional[shared_memory.SharedMemory] = None

    def _open(self, **kw: Any) -> shared_memory.SharedMemory:
        if not self.track:
            kw["track"] = False  # 3.13+ only; the untracked backend exists only there
        return shared_memory.SharedMemory(name=self.name, **kw)

    def create(self, size: int) -> None:
        self._handle = self._open(create=True, size=size)  # O_CREAT|O_EXCL, mode 0600

    def attach(self, *, read_only: bool = False) -> MpSegment:
        return MpSegment(self._open())

    def unlink(self) -> None:
        shm = self._open()
        try:
            shm.unlink()
        finally:
            shm.close()

    def exists(self) -> bool:
        return os.path.exists(_dev_shm(self.name))  # asking by attaching would register it again

    def truncate(self, size: int) -> None:
        os.truncate(_dev_shm(self.name), size)

    def teardown(self) -> None:
        handle, self._handle = self._handle, None
        if handle is not None:
            handle.close()
            try:
                handle.unlink()
            except FileNotFoundError:
                pass
        if self.track:
            # Workers that attached registered the name with the tracker they share with us;
            # one unregister clears every registration (the tracker keeps a set), and the
            # register first makes sure there is one to clear, so no warning is left for exit.
            resource_tracker.register("/" + self.name, "shared_memory")
            resource_tracker.unregister("/" + self.name, "shared_memory")


class MpShmBackend:
    name = "mp-shared-memory"
    kind = "shm"
    wiring = "named"
    fill_byte = 0
    track = True
    capabilities: FrozenSet[str] = frozenset(
        {p.NAMED_ATTACH, p.EXACT_SIZE, p.UNLINKABLE, p.TRUNCATABLE, p.ATTACHER_TRACKER_UNLINKS})

    def setup(self, scope: Scope) -> MpShmChannel:
        channel = MpShmChannel(scope.name(), self.track)
        scope.register("posix_shm", channel.name, lambda: p.remove_posix_shm(channel.name))
        return channel


class MpShmUntrackedBackend(MpShmBackend):
    """``track=False`` (3.13+): nobody but the caller unlinks the segment."""

    name = "mp-shared-memory-untracked"
    min_python = (3, 13)  # SharedMemory(track=False); the catalogue lists it apart
    track = False
    capabilities: FrozenSet[str] = frozenset(
        {p.NAMED_ATTACH, p.EXACT_SIZE, p.UNLINKABLE, p.TRUNCATABLE, p.SURVIVES_ATTACHER_EXIT})


# --- posix_ipc ------------------------------------------------------------------------------
class PosixIpcChannel(_Named):
    def __init__(self, name: str) -> None:
        self.name = name

    def create(self, size: int) -> None:
        shm = posix_ipc.SharedMemory(self.name, posix_ipc.O_CREX, mode=0o600, size=size)
        shm.close_fd()

    def _open(self, read_only: bool = False) -> Any:
        try:
            return posix_ipc.SharedMemory(self.name, read_only=read_only)
        except posix_ipc.ExistentialError as exc:
            raise FileNotFoundError(str(exc)) from None

    def attach(self, *, read_only: bool = False) -> MmapSegment:
        shm = self._open(read_only)
        try:
            return MmapSegment(mmap.mmap(shm.fd, shm.size, access=mmap.ACCESS_READ if read_only else mmap.ACCESS_WRITE))
        finally:
            shm.close_fd()

    def unlink(self) -> None:
        try:
            posix_ipc.unlink_shared_memory(self.name)
        except posix_ipc.ExistentialError as exc:
            raise FileNotFoundError(str(exc)) from None

    def exists(self) -> bool:
        try:
            self._open().close_fd()
        except FileNotFoundError:
            return False
        return True

    def truncate(self, size: int) -> None:
        shm = self._open()
        try:
            os.ftruncate(shm.fd, size)
        finally:
            shm.close_fd()

    def teardown(self) -> None:
        p.remove_posix_shm(self.name)


class PosixIpcBackend:
    name = "posix-ipc-shm"
    kind = "shm"
    wiring = "named"
    fill_byte = 0
    capabilities: FrozenSet[str] = _NAMED_ALL

    def setup(self, scope: Scope) -> PosixIpcChannel:
        channel = PosixIpcChannel("/" + scope.name())
        scope.register("posix_shm", channel.name, channel.teardown)
        return channel


# --- sysv_ipc ------------------------------------------------------------------------------
class SysvSegment:
    def __init__(self, shm: Any) -> None:
        self.shm = shm

    def read(self, offset: int, n: int) -> bytes:
        return bytes(self.shm.read(n, offset)) if n else b""  # read(0) would mean "to the end"

    def write(self, offset: int, data: bytes) -> None:
        self.shm.write(data, offset)

    def length(self) -> int:
        return int(self.shm.size)

    def close(self) -> None:
        self.shm.detach()


class SysvChannel(_Named):
    """Named by its key; IPC_CREX with a key sysv_ipc draws at random, as shmget(2) allows."""

    def __init__(self, scope: Scope, init: bytes) -> None:
        self._scope: Optional[Scope] = scope
        self.init = init
        self.key = self.id = -1

    def create(self, size: int) -> None:
        assert self._scope is not None, "create runs in the parent"
        shm = sysv_ipc.SharedMemory(None, sysv_ipc.IPC_CREX, mode=0o600, size=size, init_character=self.init)
        self.key, self.id = shm.key, shm.id
        self._scope.register("sysv_shm", str(self.id), self.teardown)
        shm.detach()

    def attach(self, *, read_only: bool = False) -> SysvSegment:
        try:
            shm = sysv_ipc.SharedMemory(self.key)  # by key: a removed segment's key is gone
        except sysv_ipc.ExistentialError as exc:
            raise FileNotFoundError(str(exc)) from None
        if read_only:
            shm.detach()
            shm.attach(None, sysv_ipc.SHM_RDONLY)
        return SysvSegment(shm)

    def unlink(self) -> None:
        seg = self.attach()
        seg.shm.remove()  # IPC_RMID: destroyed at the last detach
        seg.close()

    def exists(self) -> bool:
        # By id, not key: Linux still lets a removed segment be attached by id until its last detach.
        try:
            sysv_ipc.attach(self.id).detach()
        except (sysv_ipc.ExistentialError, ValueError):
            return False
        return True

    def teardown(self) -> None:
        try:
            sysv_ipc.remove_shared_memory(self.id)
        except (sysv_ipc.ExistentialError, ValueError):
            pass


class SysvIpcBackend:
    name = "sysv-ipc-shm"
    kind = "shm"
    wiring = "named"
    init_character = b" "  # sysv_ipc's default: a new segment is full of spaces, not zeros
    fill_byte = ord(init_character)
    capabilities: FrozenSet[str] = frozenset(
        {p.NAMED_ATTACH, p.EXACT_SIZE, p.READ_ONLY_ATTACH, p.UNLINKABLE, p.SURVIVES_ATTACHER_EXIT})

    def setup(self, scope: Scope) -> SysvChannel:
        return SysvChannel(scope, self.init_character)


BACKENDS: List[Any] = [AnonMmapBackend(), FileMmapBackend(), MpShmBackend(), PosixIpcBackend(), SysvIpcBackend()]
if sys.version_info >= (3, 13):
    BACKENDS.append(MpShmUntrackedBackend())
