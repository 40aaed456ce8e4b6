"""The file-exchange contract: processes that talk through files in a private directory.

A file channel owns one private directory (``channel.directory``, 0700) and
offers whichever of four mechanisms its backend claims: a result exchange
(each worker leaves one file, a collector reads them: the seed article's per-PID
temp files), an atomically published file, an append-only log, and a lock.
Payloads reach the backend as an iterable of chunks, so a slow writer (the
role pauses between chunks) shows whether a reader can catch a file half-written.
"""

from __future__ import annotations

from typing import Dict, Iterable, Optional

try:
    from typing import Protocol
except ImportError:  # pragma: no cover
    from typing_extensions import Protocol  # type: ignore

from ..backend import Kind, register_kind

EXCHANGE = "exchange"
ATOMIC_PUBLISH = "atomic_publish"
APPEND_LOG = "append_log"
LOCK = "lock"
LOCK_OWNED_BY_OPEN_FILE = "lock_owned_by_open_file"
LOCK_OWNED_BY_PROCESS = "lock_owned_by_process"
PRIVATE_FILES = "private_files"
LOCK_TIMEOUTS = "lock_timeouts"
INTEROPERATES_WITH_FLOCK = "interoperates_with_flock"
INTEROPERATES_WITH_LOCKF = "interoperates_with_lockf"
LOCK_FILE_HOLDS_DATA = "lock_file_holds_data"
LOCK_REENTRANT = "lock_reentrant"
LOCK_EXCLUDES_THREADS = "lock_excludes_threads"

FILE = register_kind(
    Kind(
        name="file",
        summary="processes exchanging data through files in a private directory",
        capabilities={
            EXCHANGE: "submit(chunks) leaves one result file per worker; poll() returns only complete results",
            ATOMIC_PUBLISH: "publish(chunks) replaces the published file so a reader sees the old or the new "
            "contents whole, never a mix or a prefix",
            APPEND_LOG: "open_log().append(record) adds one record (the check draws up to 16 KiB) with O_APPEND "
            "in one complete write; records of concurrent writers are never lost or torn (local filesystems "
            "only: open(2) warns that O_APPEND may corrupt files on NFS)",
            LOCK: "open_lock().acquire() is an exclusive lock between processes on channel.lock_path",
            LOCK_OWNED_BY_OPEN_FILE: "the lock belongs to the open file description (flock(2)): closing another "
            "descriptor of the same file keeps it",
            LOCK_OWNED_BY_PROCESS: "the lock belongs to the process (fcntl(2) record locks, lockf): closing ANY "
            "descriptor of the file in that process releases it",
            LOCK_TIMEOUTS: "open_lock().acquire(True, timeout=s) returns False after waiting at least s seconds "
            "for a lock another process holds",
            INTEROPERATES_WITH_FLOCK: "the lock is an flock(2) LOCK_EX on channel.lock_path itself: a plain "
            "fcntl.flock client of that path is excluded by it and excludes it",
            INTEROPERATES_WITH_LOCKF: "the lock is a POSIX record lock (fcntl.lockf) on channel.lock_path itself: a "
            "plain fcntl.lockf client of that path is excluded by it and excludes it",
            LOCK_FILE_HOLDS_DATA: "the holder may keep data in channel.lock_path (a PID): the backend never "
            "truncates, rewrites, unlinks or replaces that file",
            LOCK_REENTRANT: "the holder may acquire its lock again without waiting; the lock is free again only "
            "after as many releases (threading.RLock)",
            LOCK_EXCLUDES_THREADS: "lock objects opened by two threads of one process exclude each other as "
            "processes do (without it, threads of one process may share the lock: fcntl(2) record locks)",
            PRIVATE_FILES: "every file it creates is mode 0600 and every directory 0700, and cleanup() removes "
            "them all",
        },
        channel_members=("cleanup",),
    )
)


class LogWriter(Protocol):
    def append(self, record: bytes) -> None:
        """Add ``record`` (up to 16 KiB in the check) at the end of the log as one complete write."""

    def close(self) -> None: ...


class FileLock(Protocol):
    def acquire(self, blocking: bool = True, timeout: float = -1) -> bool:
        """Take the exclusive lock; with ``blocking=False`` return False at once if another holds it;
        with a ``timeout`` of s >= 0 seconds (``lock_timeouts``), False after waiting at least s."""

    def release(self) -> None:
        """Give the lock up.  Called by a process that does not hold it (its acquire failed),
        it may raise, but must leave the holder's lock and the lock file alone."""

    def close(self) -> None:
        """Close the lock's descriptor (which releases the lock)."""


class FileChannel(Protocol):
    directory: str  # the channel's private directory (0700)
    lock_path: str  # the file the lock is taken on (``lock``)

    def submit(self, chunks: Iterable[bytes]) -> str:
        """Leave this process's result and return its name (``exchange``)."""

    def poll(self) -> Dict[str, bytes]:
        """Every result visible now, by name; each one complete (``exchange``)."""

    def publish(self, chunks: Iterable[bytes]) -> None:
        """Replace the published contents (``atomic_publish``)."""

    def read_published(self) -> Optional[bytes]:
        """The published contents, or None before the first publish (``atomic_publish``)."""

    def open_log(self) -> LogWriter: ...

    def read_log(self) -> bytes: ...

    def open_lock(self) -> FileLock: ...

    def cleanup(self) -> None:
        """Remove every file and directory the channel created (callable from any process)."""

    def detach(self) -> None: ...

    def teardown(self) -> None: ...
