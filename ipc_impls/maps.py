"""Reference shared maps: fixed slots in a file mapped MAP_SHARED under flock(2), and SQLite.

Both create their store in ``setup``, exclusively and 0600, at a fresh path inside
the example's private directory (0700), and pickle as that path only, so spawned
workers and fresh interpreters open them by name.  Both claim ``locked_update``,
``named_attach`` and ``thread_safe`` (one handle per thread: every handle has
its own open file description or connection, and flock(2) locks of different
descriptions exclude each other even within one process).

What is honestly *not* promised (and not claimed): durability across a power cut (no
fsync), sharing one handle between threads, and, for the slot map, a whole value
after a writer is killed in the middle of ``set`` (it has no journal; SQLite has).
"""

from __future__ import annotations

import contextlib
import fcntl
import mmap
import os
import sqlite3
import struct
from typing import Any, FrozenSet, Iterator, List, Optional, Tuple

from ipc_specs.harness.resources import Scope
from ipc_specs.maps import protocol as p

_CLAIMS = frozenset({p.LOCKED_UPDATE, p.NAMED_ATTACH, p.THREAD_SAFE})
_PRIVATE = os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC  # never through a planted name


def check_key(key: str) -> bytes:
    raw = key.encode("ascii", "strict") if isinstance(key, str) else b""
    if not 1 <= len(raw) <= p.MAX_KEY_LEN:
        raise ValueError(f"a key is 1 to {p.MAX_KEY_LEN} ASCII characters, got {key!r}")
    return raw


def check_value(value: bytes, limit: int) -> bytes:
    value = bytes(value)
    if len(value) > limit:
        raise ValueError(f"value of {len(value)} bytes is longer than the map's {limit}")
    return value


# --- fixed slots in a shared buffer ------------------------------------------------------
class SlotTable:
    """``capacity`` slots of (used, key length, value length, key, value) in a buffer.

    The table itself knows nothing of locks: every caller holds the map's lock
    (flock(2)), so a reader never sees a slot half-written.
    """

    MAGIC = b"ipcmap1\0"
    HEADER = struct.Struct("<8sII")  # magic, capacity, max value size
    SLOT = struct.Struct("<BBxxI")  # used, key length, value length

    def __init__(self, buf: Any) -> None:
        self.buf = buf
        magic, capacity, max_value = self.HEADER.unpack_from(buf, 0)
        if magic != self.MAGIC:
            raise ValueError("not a slot map")
        self.capacity: int = capacity
        self.max_value: int = max_value
        self.slot_size: int = self.SLOT.size + p.MAX_KEY_LEN + self.max_value

    @classmethod
    def size_for(cls, capacity: int, max_value: int) -> int:
        return cls.HEADER.size + capacity * (cls.SLOT.size + p.MAX_KEY_LEN + max_value)

    @classmethod
    def format(cls, buf: Any, capacity: int, max_value: int) -> None:
        cls.HEADER.pack_into(buf, 0, cls.MAGIC, capacity, max_value)

    def offset(self, slot: int) -> int:
        return self.HEADER.size + slot * self.slot_size

    def _slot(self, slot: int) -> Tuple[int, bytes, int]:
        at = self.offset(slot)
        used, klen, vlen = self.SLOT.unpack_from(self.buf, at)
        key = bytes(self.buf[at + self.SLOT.size:at + self.SLOT.size + klen]) if used else b""
        return used, key, vlen

    def find(self, key: bytes) -> Tuple[int, int]:
        """(slot holding ``key`` or -1, first free slot or -1)."""
        free = -1
        for slot in range(self.capacity):
            used, k, _ = self._slot(slot)
            if used and k == key:
                return slot, free
            if not used and free < 0:
                free = slot
        return -1, free

    def value(self, slot: int) -> bytes:
        _, _, vlen = self._slot(slot)
        start = self.offset(slot) + self.SLOT.size + p.MAX_KEY_LEN
        return bytes(self.buf[start:start + vlen])

    def store(self, slot: int, key: bytes, value: bytes) -> None:
        at = self.offset(slot)
        start = at + self.SLOT.size + p.MAX_KEY_LEN
        self.buf[at + self.SLOT.size:at + self.SLOT.size + len(key)] = key
        self.buf[start:start + len(value)] = value
        self.SLOT.pack_into(self.buf, at, 1, len(key), len(value))

    def clear(self, slot: int) -> None:
        self.SLOT.pack_into(self.buf, self.offset(slot), 0, 0, 0)

    def keys(self) -> List[str]:
        found = (self._slot(s) for s in range(self.capacity))
        return [k.decode("ascii") for used, k, _ in found if used]


class SlotMapHandle:
    """A handle over a slot table; ``lock_fd`` carries its flock(2) lock."""

    #: Reads lock exclusively too.  flock(2) grants a shared lock even while a writer waits,
    #: so readers whose shared locks keep overlapping (looping readers on several cores) keep
    #: the writer waiting as long as they do; an exclusive lock is free at every release.
    READ_LOCK = fcntl.LOCK_EX

    def __init__(self, buf: Any, lock_fd: int, closer: Any) -> None:
        self.table = SlotTable(buf)
        self.lock_fd = lock_fd
        self._closer = closer
        self._depth = 0  # > 0 inside locked(): the exclusive lock is already ours

    @contextlib.contextmanager
    def _hold(self, op: int) -> Iterator[None]:
        if self._depth:
            yield
            return
        fcntl.flock(self.lock_fd, op)
        try:
            yield
        finally:
            fcntl.flock(self.lock_fd, fcntl.LOCK_UN)

    def get(self, key: str) -> Optional[bytes]:
        raw = check_key(key)
        with self._hold(self.READ_LOCK):
            slot, _ = self.table.find(raw)
            return self.table.value(slot) if slot >= 0 else None

    def set(self, key: str, value: bytes) -> None:
        raw, value = check_key(key), check_value(value, self.table.max_value)
        with self._hold(fcntl.LOCK_EX):
            slot, free = self.table.find(raw)
            if slot < 0 and free < 0:
                raise p.MapFull(f"the map holds its {self.table.capacity} keys; {key!r} is a new one")
            self.table.store(slot if slot >= 0 else free, raw, value)

    def delete(self, key: str) -> bool:
        raw = check_key(key)
        with self._hold(fcntl.LOCK_EX):
            slot, _ = self.table.find(raw)
            if slot >= 0:
                self.table.clear(slot)
            return slot >= 0

    def keys(self) -> List[str]:
        with self._hold(self.READ_LOCK):
            return self.table.keys()

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        with self._hold(fcntl.LOCK_EX):
            self._depth += 1
            try:
                yield
            finally:
                self._depth -= 1

    def close(self) -> None:
        self._closer()


class MmapMapChannel:
    """A slot table in a file of the example's private directory; the file is also the lock."""

    handle_cls = SlotMapHandle

    def __init__(self, path: str, capacity: int, max_value: int) -> None:
        self.path = path
        fd = os.open(path, os.O_RDWR | _PRIVATE, 0o600)
        try:
            os.ftruncate(fd, SlotTable.size_for(capacity, max_value))  # a sparse file of zeros: every slot free
            with mmap.mmap(fd, 0) as mm:
                SlotTable.format(mm, capacity, max_value)
        finally:
            os.close(fd)

    def open(self) -> SlotMapHandle:
        fd = os.open(self.path, os.O_RDWR | os.O_NOFOLLOW | os.O_CLOEXEC)
        try:
            mm = mmap.mmap(fd, 0)  # MAP_SHARED: every store is at once in every mapping
        except BaseException:
            os.close(fd)
            raise

        def close() -> None:
            mm.close()
            os.close(fd)

        return self.handle_cls(mm, fd, close)

    def detach(self) -> None:
        pass  # nothing inherited: every process opens by path

    def teardown(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)


class MmapMapBackend:
    name = "mmap-flock-map"
    kind = "map"
    wiring = "named"
    capacity = 64
    max_value_size = 2 * mmap.PAGESIZE
    capabilities: FrozenSet[str] = _CLAIMS

    def setup(self, scope: Scope) -> MmapMapChannel:
        return MmapMapChannel(scope.path("map"), self.capacity, self.max_value_size)


# --- SQLite -----------------------------------------------------------------------------
#: How long a writer waits for another's transaction (sqlite3 ``timeout``), in seconds: far
#: longer than any transaction here takes, and the harness's deadline still bounds a hang.
BUSY_TIMEOUT_S = 10.0
SCHEMA = "CREATE TABLE kv (key TEXT PRIMARY KEY, value BLOB NOT NULL)"


class SqliteMapHandle:
    """One connection in autocommit mode; writes and locked() bodies are BEGIN IMMEDIATE
    transactions, so each takes the database's write lock before it reads."""

    def __init__(self, path: str, capacity: int, max_value: int) -> None:
        self.db = sqlite3.connect(path, timeout=BUSY_TIMEOUT_S, isolation_level=None)
        self.capacity = capacity
        self.max_value = max_value
        self._depth = 0

    @contextlib.contextmanager
    def _write(self) -> Iterator[None]:
        if self._depth:
            yield  # already inside locked()'s transaction
            return
        self.db.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        self.db.execute("COMMIT")

    def get(self, key: str) -> Optional[bytes]:
        check_key(key)
        row = self.db.execute("SELECT value FROM kv WHERE key = ?", (key,)).fetchone()
        return None if row is None else bytes(row[0])

    def set(self, key: str, value: bytes) -> None:
        check_key(key)
        value = check_value(value, self.max_value)
        with self._write():
            present = self.db.execute("SELECT 1 FROM kv WHERE key = ?", (key,)).fetchone()
            if present is None and self.db.execute("SELECT count(*) FROM kv").fetchone()[0] >= self.capacity:
                raise p.MapFull(f"the map holds its {self.capacity} keys; {key!r} is a new one")
            self.db.execute("INSERT OR REPLACE INTO kv (key, value) VALUES (?, ?)", (key, value))

    def delete(self, key: str) -> bool:
        check_key(key)
        with self._write():
            return self.db.execute("DELETE FROM kv WHERE key = ?", (key,)).rowcount > 0

    def keys(self) -> List[str]:
        return [str(k) for (k,) in self.db.execute("SELECT key FROM kv")]

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        with self._write():
            self._depth += 1
            try:
                yield
            finally:
                self._depth -= 1

    def close(self) -> None:
        self.db.close()


class SqliteMapChannel:
    """A database in the example's private directory, in WAL mode (readers never wait for the writer)."""

    handle_cls = SqliteMapHandle

    def __init__(self, path: str, capacity: int, max_value: int) -> None:
        self.path = path
        self.capacity = capacity
        self.max_value = max_value
        os.close(os.open(path, os.O_RDWR | _PRIVATE, 0o600))  # exclusively ours before SQLite opens it
        db = sqlite3.connect(path, timeout=BUSY_TIMEOUT_S, isolation_level=None)
        try:
            db.execute("PRAGMA journal_mode=WAL")  # persistent: every later connection uses WAL
            db.execute(SCHEMA)
        finally:
            db.close()

    def open(self) -> SqliteMapHandle:
        return self.handle_cls(self.path, self.capacity, self.max_value)

    def detach(self) -> None:
        pass

    def teardown(self) -> None:
        for suffix in ("", "-wal", "-shm", "-journal"):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.path + suffix)


class SqliteMapBackend:
    name = "sqlite-map"
    kind = "map"
    wiring = "named"
    capacity = 128
    max_value_size = 65536
    capabilities: FrozenSet[str] = _CLAIMS

    def setup(self, scope: Scope) -> SqliteMapChannel:
        return SqliteMapChannel(scope.path("map"), self.capacity, self.max_value_size)


BACKENDS: List[Any] = [MmapMapBackend(), SqliteMapBackend()]
