"""Broken shared maps: each one is a mistake that works in a demo and fails the spec.

Most override one method of the reference slot map (``mmap-flock-map``); the
docstring says what and why.  Two are maps of their own: a pickled dict in a
file, the most common hand-rolled "shared dict", and a slot map on
``multiprocessing.shared_memory`` with its default resource tracking.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import pickle
import sqlite3
import threading
from multiprocessing import resource_tracker, shared_memory
from typing import Any, ContextManager, Dict, FrozenSet, Iterator, List, Optional

from ipc_specs.harness.resources import Scope
from ipc_specs.maps import protocol as p
from ipc_specs.shm.protocol import remove_posix_shm

from ..maps import (
    _PRIVATE,
    BUSY_TIMEOUT_S,
    MmapMapBackend,
    MmapMapChannel,
    SlotMapHandle,
    SlotTable,
    SqliteMapBackend,
    SqliteMapChannel,
    SqliteMapHandle,
    check_key,
    check_value,
)
from . import Exhibit


def _variant(name: str, channel_cls: type) -> Any:
    """A backend claiming what ``mmap-flock-map`` claims, whose channels are ``channel_cls``."""
    setup = lambda self, scope: channel_cls(scope.path("map"), self.capacity, self.max_value_size)  # noqa: E731
    return type(channel_cls.__name__ + "Backend", (MmapMapBackend,), {"name": name, "setup": setup})()


# --- concurrent_assignments_of_distinct_keys_all_survive ------------------------------------
class PickleFileHandle:
    """The whole map is a pickled dict: every set loads it, changes one key and writes it
    back through a temp file and os.replace ("the replace is atomic, so it is safe").
    Each file is whole, but two setters that load the same version each write back a
    dict without the other's key."""

    def __init__(self, path: str, capacity: int, max_value: int) -> None:
        self.path, self.capacity, self.max_value = path, capacity, max_value

    def _load(self) -> Dict[str, bytes]:
        with open(self.path, "rb") as f:
            loaded: Dict[str, bytes] = pickle.load(f)
            return loaded

    def _save(self, d: Dict[str, bytes]) -> None:
        tmp = f"{self.path}.{os.getpid()}.{threading.get_ident()}.tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
        with os.fdopen(fd, "wb") as f:
            pickle.dump(d, f)
        os.replace(tmp, self.path)

    def get(self, key: str) -> Optional[bytes]:
        check_key(key)
        return self._load().get(key)

    def set(self, key: str, value: bytes) -> None:
        check_key(key)
        value = check_value(value, self.max_value)
        d = self._load()
        if key not in d and len(d) >= self.capacity:
            raise p.MapFull(f"the map holds its {self.capacity} keys")
        d[key] = value
        self._save(d)

    def delete(self, key: str) -> bool:
        check_key(key)
        d = self._load()
        present = d.pop(key, None) is not None
        if present:
            self._save(d)
        return present

    def keys(self) -> List[str]:
        return list(self._load())

    def locked(self) -> ContextManager[None]:
        raise NotImplementedError("locked_update is not claimed")

    def close(self) -> None:
        pass


class PickleFileChannel:
    def __init__(self, path: str, capacity: int, max_value: int) -> None:
        self.path, self.capacity, self.max_value = path, capacity, max_value
        with os.fdopen(os.open(path, os.O_WRONLY | _PRIVATE, 0o600), "wb") as f:
            pickle.dump({}, f)

    def open(self) -> PickleFileHandle:
        return PickleFileHandle(self.path, self.capacity, self.max_value)

    def detach(self) -> None:
        pass

    def teardown(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)  # stray temp files go with the example's directory


class PickleFileMapBackend:
    name = "broken-pickle-file-map"
    kind = "map"
    wiring = "named"
    capacity = 64
    max_value_size = 4096
    capabilities: FrozenSet[str] = frozenset({p.NAMED_ATTACH})

    def setup(self, scope: Scope) -> PickleFileChannel:
        return PickleFileChannel(scope.path("map"), self.capacity, self.max_value_size)


# --- open_handle_sees_completed_assignments ---------------------------------------------------
class CachedSlotHandle(SlotMapHandle):
    """Reads the whole map into a dict at open and answers get from it ("memory is fast, a
    dict is faster"); its own sets go through and into the dict, nobody else's ever do."""

    def __init__(self, buf: Any, lock_fd: int, closer: Any) -> None:
        super().__init__(buf, lock_fd, closer)
        with self._hold(self.READ_LOCK):
            self.cache = {k: self.table.value(self.table.find(k.encode())[0]) for k in self.table.keys()}

    def get(self, key: str) -> Optional[bytes]:
        check_key(key)
        return self.cache.get(key)

    def set(self, key: str, value: bytes) -> None:
        super().set(key, value)
        self.cache[key] = bytes(value)

    def delete(self, key: str) -> bool:
        self.cache.pop(key, None)
        return super().delete(key)


class CachedMapChannel(MmapMapChannel):
    handle_cls = CachedSlotHandle


class SnapshotReadHandle(SqliteMapHandle):
    """Reads through a second connection that stays in one read transaction ("a transaction
    per get is slow; BEGIN once"): in WAL mode that transaction keeps reading the snapshot
    taken at its first read, and never sees a later commit."""

    def __init__(self, path: str, capacity: int, max_value: int) -> None:
        super().__init__(path, capacity, max_value)
        self.reader = sqlite3.connect(path, timeout=BUSY_TIMEOUT_S, isolation_level=None)
        self.reader.execute("BEGIN")

    def get(self, key: str) -> Optional[bytes]:
        check_key(key)
        row = self.reader.execute("SELECT value FROM kv WHERE key = ?", (key,)).fetchone()
        return None if row is None else bytes(row[0])

    def close(self) -> None:
        self.reader.close()
        super().close()


class SnapshotReadChannel(SqliteMapChannel):
    handle_cls = SnapshotReadHandle


class SnapshotReadBackend(SqliteMapBackend):
    name = "broken-sqlite-map-one-read-transaction"

    def setup(self, scope: Scope) -> SqliteMapChannel:
        return SnapshotReadChannel(scope.path("map"), self.capacity, self.max_value_size)


# --- locked_read_modify_write_is_exact ---------------------------------------------------------
class UnlockedUpdateHandle(SlotMapHandle):
    """locked() locks nothing: "each get and each set is atomic already".  Each is, but the
    pair is not: two processes read the same count and both write count + 1."""

    def locked(self) -> ContextManager[None]:  # type: ignore[override]
        return contextlib.nullcontext()


class UnlockedUpdateChannel(MmapMapChannel):
    handle_cls = UnlockedUpdateHandle


class EarlyReleaseHandle(SlotMapHandle):
    """Takes the lock inside locked() itself, in a with block around the return ("so it is
    always released"): it is released as locked() returns, before the caller's body runs."""

    def locked(self) -> ContextManager[None]:  # type: ignore[override]
        with self._hold(fcntl.LOCK_EX):
            return contextlib.nullcontext()


class EarlyReleaseChannel(MmapMapChannel):
    handle_cls = EarlyReleaseHandle


class LockfHandle(SlotMapHandle):
    """Locks with fcntl.lockf (POSIX record locks) instead of flock ("lockf works over NFS"),
    and claims thread_safe: record locks belong to the process, so a thread's lock never
    excludes another thread of the same process."""

    @contextlib.contextmanager
    def _hold(self, op: int) -> Iterator[None]:
        if self._depth:
            yield
            return
        fcntl.lockf(self.lock_fd, op)
        try:
            yield
        finally:
            fcntl.lockf(self.lock_fd, fcntl.LOCK_UN)


class LockfChannel(MmapMapChannel):
    handle_cls = LockfHandle


# --- reader_never_sees_a_torn_value ------------------------------------------------------------
class CopyOutsideLockHandle(SlotMapHandle):
    """Takes the lock only to find the slot, then copies the value in small pieces
    after releasing it ("the slot is ours now; readers need not wait for the copy"):
    a reader in between gets the new length with part old, part new bytes."""

    def set(self, key: str, value: bytes) -> None:
        raw, value = check_key(key), check_value(value, self.table.max_value)
        with self._hold(fcntl.LOCK_EX):
            slot, free = self.table.find(raw)
            slot = slot if slot >= 0 else free
            if slot < 0:
                raise p.MapFull("full")
            at = self.table.offset(slot)
            self.table.SLOT.pack_into(self.table.buf, at, 1, len(raw), len(value))
            self.table.buf[at + SlotTable.SLOT.size:at + SlotTable.SLOT.size + len(raw)] = raw
        start = at + SlotTable.SLOT.size + p.MAX_KEY_LEN
        for off in range(0, len(value), 256):  # a small buffer, "to stay in the cache"
            self.table.buf[start + off:start + min(off + 256, len(value))] = value[off:off + 256]


class CopyOutsideLockChannel(MmapMapChannel):
    handle_cls = CopyOutsideLockHandle


# --- get_returns_the_last_value_set_or_none_once_deleted --------------------------------------
class EmptyIsAbsentHandle(SlotMapHandle):
    """Returns ``value or None`` ("an empty value means no value"): b"" is a value."""

    def get(self, key: str) -> Optional[bytes]:
        return super().get(key) or None


class EmptyIsAbsentChannel(MmapMapChannel):
    handle_cls = EmptyIsAbsentHandle


# --- over_limit_assignment_is_rejected_not_truncated ---------------------------------------------
class TruncatingHandle(SlotMapHandle):
    """Cuts a value to the slot size ("make it fit") instead of refusing it."""

    def set(self, key: str, value: bytes) -> None:
        super().set(key, bytes(value)[:self.table.max_value])


class TruncatingChannel(MmapMapChannel):
    handle_cls = TruncatingHandle


class DroppingHandle(SlotMapHandle):
    """Swallows MapFull ("a full cache may drop entries"): a map is not a cache."""

    def set(self, key: str, value: bytes) -> None:
        with contextlib.suppress(p.MapFull):
            super().set(key, value)


class DroppingChannel(MmapMapChannel):
    handle_cls = DroppingHandle


# --- attacher_exit_leaves_the_map_intact ----------------------------------------------------------
class TrackedShmMapChannel:
    """The slot map on ``multiprocessing.shared_memory`` with its default tracking, locked by
    flock(2) on a file beside it.  Every process that attaches registers the block with its
    own resource tracker, which unlinks it when that process exits (gh-82300), even by
    os._exit: the map is gone for everyone."""

    def __init__(self, name: str, lock_path: str, capacity: int, max_value: int) -> None:
        self.name, self.lock_path = name, lock_path
        os.close(os.open(lock_path, os.O_RDWR | _PRIVATE, 0o600))
        shm = shared_memory.SharedMemory(name=name, create=True, size=SlotTable.size_for(capacity, max_value))
        try:
            SlotTable.format(shm.buf, capacity, max_value)
        finally:
            shm.close()

    def open(self) -> SlotMapHandle:
        shm = shared_memory.SharedMemory(name=self.name)  # track=True: this process's tracker owns it now
        fd = os.open(self.lock_path, os.O_RDWR | os.O_NOFOLLOW | os.O_CLOEXEC)

        def close() -> None:
            handle.table.buf = None  # drop the view before the block is closed
            shm.close()
            os.close(fd)

        handle = SlotMapHandle(shm.buf, fd, close)
        return handle

    def detach(self) -> None:
        pass

    def teardown(self) -> None:
        remove_posix_shm(self.name)
        # Our tracker (shared with forked workers) holds registrations of the block: one
        # unregister clears them all, and the register first makes sure there is one.
        resource_tracker.register("/" + self.name, "shared_memory")
        resource_tracker.unregister("/" + self.name, "shared_memory")


class TrackedShmMapBackend:
    name = "broken-tracked-shared-memory-map"
    kind = "map"
    wiring = "named"
    capacity = 64
    max_value_size = MmapMapBackend.max_value_size
    capabilities: FrozenSet[str] = frozenset({p.NAMED_ATTACH, p.LOCKED_UPDATE})

    def setup(self, scope: Scope) -> TrackedShmMapChannel:
        name = scope.name()
        scope.register("posix_shm", name, lambda: remove_posix_shm(name))
        return TrackedShmMapChannel(name, scope.path("map-lock"), self.capacity, self.max_value_size)


EXHIBITS: List[Exhibit] = [
    Exhibit(PickleFileMapBackend(), "concurrent_assignments_of_distinct_keys_all_survive",
            "os.replace makes each write of a pickled dict whole, but a load-change-save by two processes at "
            "once keeps only one of their keys."),
    Exhibit(_variant("broken-cached-map", CachedMapChannel), "open_handle_sees_completed_assignments",
            "A handle that answers from a dict read at open never sees what other processes set later."),
    Exhibit(SnapshotReadBackend(), "open_handle_sees_completed_assignments",
            "A read transaction kept open across gets reads one WAL snapshot forever: end it after each read."),
    Exhibit(_variant("broken-unlocked-update-map", UnlockedUpdateChannel), "locked_read_modify_write_is_exact",
            "An atomic get and an atomic set do not make an atomic increment: the pair needs one lock."),
    Exhibit(_variant("broken-map-lock-released-early", EarlyReleaseChannel), "locked_read_modify_write_is_exact",
            "A lock taken in a with block around return is released before the caller's body runs."),
    Exhibit(_variant("broken-lockf-map", LockfChannel), "locked_read_modify_write_is_exact",
            "fcntl record locks (lockf) belong to the process, so they do not exclude its other threads.",
            placement="thread"),
    Exhibit(_variant("broken-copy-outside-lock-map", CopyOutsideLockChannel), "reader_never_sees_a_torn_value",
            "A value copied after the lock is released can be read half old, half new."),
    Exhibit(_variant("broken-empty-is-absent-map", EmptyIsAbsentChannel),
            "get_returns_the_last_value_set_or_none_once_deleted",
            "value or None turns the empty value into a missing key."),
    Exhibit(_variant("broken-truncating-map", TruncatingChannel), "over_limit_assignment_is_rejected_not_truncated",
            "Cutting a value to fit its slot stores something nobody wrote; refuse it instead."),
    Exhibit(_variant("broken-full-map-drops-key", DroppingChannel), "over_limit_assignment_is_rejected_not_truncated",
            "A full map that swallows a new key loses data silently; a map is not a cache."),
    Exhibit(TrackedShmMapBackend(), "attacher_exit_leaves_the_map_intact",
            "SharedMemory(name) registers the block with the attacher's resource tracker, which unlinks it "
            "when that process exits (use track=False on 3.13+)."),
]
