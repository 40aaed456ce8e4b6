"""Broken shared memory: each one is a mistake that works in a demo and fails the spec.

Every class overrides as little of a reference backend as it takes to embody
one piece of folk knowledge gone wrong; the docstring says what and why.
"""

from __future__ import annotations

import mmap
import os
import signal
from typing import Any, FrozenSet, List

from ipc_specs.harness.resources import Scope
from ipc_specs.shm import protocol as p

from ..shm import (
    FileMmapBackend,
    FileMmapChannel,
    MmapSegment,
    MpShmBackend,
    PosixIpcBackend,
    PosixIpcChannel,
    SysvChannel,
    SysvIpcBackend,
)
from . import Exhibit


def _file_variant(name: str, channel_cls: type, **attrs: Any) -> Any:
    """A backend claiming what ``mmap-file`` claims, whose channels are ``channel_cls``."""
    setup = lambda self, scope: channel_cls(scope.path("shm"))  # noqa: E731
    return type(channel_cls.__name__ + "Backend", (FileMmapBackend,), {"name": name, "setup": setup, **attrs})()


# --- write_visible_to_other_processes_after_sync --------------------------------------------
class MapPrivateChannel(FileMmapChannel):
    """Maps the file with ACCESS_COPY (MAP_PRIVATE) "so a bad write cannot corrupt the file":
    every process then writes into its own copy-on-write pages and nobody sees anybody."""

    def _map(self, fd: int, read_only: bool) -> mmap.mmap:
        return mmap.mmap(fd, 0, access=mmap.ACCESS_COPY)


class CopyingAttachChannel(FileMmapChannel):
    """Attaches by reading the whole file into a bytearray ("one read is faster than page
    faults") and writes back through the file: later writes of others are never seen."""

    def attach(self, *, read_only: bool = False) -> Any:
        return CopySegment(self.path)


class CopySegment:
    def __init__(self, path: str) -> None:
        self.path = path
        with open(path, "rb") as f:
            self.copy = bytearray(f.read())

    def read(self, offset: int, n: int) -> bytes:
        return bytes(self.copy[offset:offset + n])

    def write(self, offset: int, data: bytes) -> None:
        self.copy[offset:offset + len(data)] = data
        fd = os.open(self.path, os.O_WRONLY | os.O_CLOEXEC)
        try:
            os.pwrite(fd, data, offset)
        finally:
            os.close(fd)

    def length(self) -> int:
        return len(self.copy)

    def close(self) -> None:
        pass


# --- locked_increments_are_exact ------------------------------------------------------------
class CachedReadSegment(MmapSegment):
    """Writes through the mapping but answers reads from a snapshot taken at attach time
    ("memory is fast, but a local copy is faster"): the lock orders the increments, yet
    each process adds 1 to its own stale value."""

    def __init__(self, mm: mmap.mmap) -> None:
        super().__init__(mm)
        self.cache = bytearray(mm[:])

    def read(self, offset: int, n: int) -> bytes:
        return bytes(self.cache[offset:offset + n])

    def write(self, offset: int, data: bytes) -> None:
        super().write(offset, data)
        self.cache[offset:offset + len(data)] = data


class CachedReadChannel(FileMmapChannel):
    def attach(self, *, read_only: bool = False) -> MmapSegment:
        return CachedReadSegment(super().attach(read_only=read_only).mm)


# --- new_segment_has_requested_size_and_fill ---------------------------------------------------
class ZeroOracleSysvBackend(SysvIpcBackend):
    """Expects a fresh System V segment to be zeroed, as POSIX ones are; sysv_ipc fills it
    with init_character, a space by default."""

    name = "broken-sysv-zero-fill-oracle"
    fill_byte = 0


class PageRoundingChannel(FileMmapChannel):
    """Rounds every segment up to whole pages "because the kernel does anyway" and hands out
    the padding too, while claiming the exact size."""

    def create(self, size: int) -> None:
        page = mmap.PAGESIZE
        super().create(-(-size // page) * page)


# --- attach_by_name_sees_creators_bytes ----------------------------------------------------
class PerPidNameChannel(FileMmapChannel):
    """Derives the backing file's name from the pid, as the seed article's temp files do:
    every process that attaches makes (and sees) its own, empty segment."""

    def attach(self, *, read_only: bool = False) -> MmapSegment:
        own = f"{self.path}.{os.getppid() if os.getpid() == self._creator else os.getpid()}"
        if not os.path.exists(own):
            size = os.stat(self.path).st_size
            fd = os.open(own, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
            os.ftruncate(fd, size)
            os.close(fd)
        fd = os.open(own, os.O_RDWR | os.O_CLOEXEC)
        try:
            return MmapSegment(self._map(fd, read_only))
        finally:
            os.close(fd)

    _creator = -1

    def create(self, size: int) -> None:
        super().create(size)
        self._creator = os.getpid()


# --- read_only_attachment_rejects_writes ------------------------------------------------------
class WritableReadOnlyChannel(PosixIpcChannel):
    """Ignores read_only ("the caller promised not to write"): the mapping is writable."""

    def attach(self, *, read_only: bool = False) -> MmapSegment:
        return super().attach(read_only=False)


class WritableReadOnlyBackend(PosixIpcBackend):
    name = "broken-writable-read-only"

    def setup(self, scope: Scope) -> PosixIpcChannel:
        channel = WritableReadOnlyChannel("/" + scope.name())
        scope.register("posix_shm", channel.name, channel.teardown)
        return channel


# --- unlinked_segment_stays_mapped_but_cannot_be_attached -------------------------------------
class DetachNotRemoveChannel(SysvChannel):
    """Calls detach() to "delete" a System V segment: detaching only unmaps it here; the
    segment lives on (kernel persistence) until someone sends IPC_RMID."""

    def unlink(self) -> None:
        self.attach().close()


class DetachNotRemoveBackend(SysvIpcBackend):
    name = "broken-sysv-detach-not-remove"

    def setup(self, scope: Scope) -> SysvChannel:
        return DetachNotRemoveChannel(scope, self.init_character)


# --- truncated_object_kills_toucher_with_sigbus -----------------------------------------------
class SigbusIgnoringChannel(FileMmapChannel):
    """Installs a Python handler for SIGBUS "so a shrunken file cannot kill us": the C-level
    handler returns, the faulting load runs again, faults again, forever."""

    def attach(self, *, read_only: bool = False) -> MmapSegment:
        signal.signal(signal.SIGBUS, lambda signum, frame: None)
        return super().attach(read_only=read_only)


# --- the multiprocessing resource tracker ----------------------------------------------------
class TrackedClaimsSurvivalBackend(MpShmBackend):
    """Uses SharedMemory(name) in a helper script and expects the segment to outlive it; the
    helper's resource tracker unlinks it at exit (3.9-3.13 with the default track=True)."""

    name = "broken-mp-tracked-attacher"
    capabilities: FrozenSet[str] = MpShmBackend.capabilities - {p.ATTACHER_TRACKER_UNLINKS} | {
        p.SURVIVES_ATTACHER_EXIT}


class ExpectsTrackerPosixBackend(PosixIpcBackend):
    """Relies on "the segment goes away when the last user exits" for a posix_ipc segment:
    nothing tracks it, so it outlives every attacher (kernel persistence)."""

    name = "broken-posix-ipc-expects-tracker"
    capabilities: FrozenSet[str] = PosixIpcBackend.capabilities - {p.SURVIVES_ATTACHER_EXIT} | {
        p.ATTACHER_TRACKER_UNLINKS}


EXHIBITS: List[Exhibit] = [
    Exhibit(_file_variant("broken-map-private", MapPrivateChannel), "write_visible_to_other_processes_after_sync",
            "MAP_PRIVATE (mmap.ACCESS_COPY) pages are copy-on-write: no other process ever sees the writes."),
    Exhibit(_file_variant("broken-copying-attach", CopyingAttachChannel),
            "write_visible_to_other_processes_after_sync",
            "A copy taken at attach time is not shared memory: later writes of others never reach it."),
    Exhibit(_file_variant("broken-cached-reads", CachedReadChannel), "locked_increments_are_exact",
            "A lock orders the increments only if every read goes to the shared bytes, not a cache."),
    Exhibit(ZeroOracleSysvBackend(), "new_segment_has_requested_size_and_fill",
            "A fresh sysv_ipc segment is full of init_character (a space), not zeros."),
    Exhibit(_file_variant("broken-page-rounded", PageRoundingChannel), "new_segment_has_requested_size_and_fill",
            "Rounding to whole pages hands out bytes nobody asked for; an exact-size claim must hold."),
    Exhibit(_file_variant("broken-per-pid-name", PerPidNameChannel), "attach_by_name_sees_creators_bytes",
            "A name derived from the pid names a different object in every process.", placement="spawn"),
    Exhibit(WritableReadOnlyBackend(), "read_only_attachment_rejects_writes",
            "A read-only attach that maps read-write protects nothing."),
    Exhibit(DetachNotRemoveBackend(), "unlinked_segment_stays_mapped_but_cannot_be_attached",
            "detach() only unmaps a System V segment; it lives on until IPC_RMID (remove())."),
    Exhibit(_file_variant("broken-sigbus-handler", SigbusIgnoringChannel), "truncated_object_kills_toucher_with_sigbus",
            "A Python handler cannot recover from SIGBUS: the faulting access repeats forever.", hangs=True),
    Exhibit(TrackedClaimsSurvivalBackend(), "segment_survives_unrelated_attacher_exit",
            "An unrelated interpreter's SharedMemory(name) registers it with its own tracker, which "
            "unlinks it at exit (use track=False on 3.13+)."),
    Exhibit(ExpectsTrackerPosixBackend(), "tracked_attacher_exit_unlinks_segment",
            "Kernel shared memory has no owner: without a tracker nothing removes it when processes exit."),
]
