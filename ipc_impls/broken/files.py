"""Broken file exchange: each one is a mistake that works in a demo and fails the spec.

Every class overrides as little of a reference backend as it takes to embody
one piece of folk knowledge gone wrong; the docstring says what and why.
"""

from __future__ import annotations

import atexit
import fcntl
import os
import threading
from typing import Any, Iterable, List

from ipc_specs.files import protocol as p

from ..files import (
    AppendLogBackend,
    AtomicPublishBackend,
    FilesChannel,
    FlockBackend,
    FlockLock,
    LockfBackend,
    LockfChannel,
    TempFileExchangeBackend,
    _write_all,
)
from . import Exhibit


def _variant(name: str, base: type, channel_cls: type, **attrs: Any) -> Any:
    """A backend claiming what ``base`` claims, whose channels are ``channel_cls``."""
    return type(channel_cls.__name__ + "Backend", (base,), {"name": name, "channel_class": channel_cls, **attrs})()


class InPlacePublish(FilesChannel):
    """Publishes by rewriting the file in place (open with "w", write, close): a reader
    in between finds it truncated or half written."""

    def publish(self, chunks: Iterable[bytes]) -> None:
        fd = os.open(self.published, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
        try:
            _write_all(fd, chunks)
        finally:
            os.close(fd)


class WriteToFinalName(FilesChannel):
    """The seed article's exchange: each worker writes its result straight into its
    per-PID file, and the collector reads whatever files exist, finished or not."""

    def submit(self, chunks: Iterable[bytes]) -> str:
        name = f"result-{os.getpid()}"
        fd = os.open(os.path.join(self.directory, name), os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
        try:
            _write_all(fd, chunks)
        finally:
            os.close(fd)
        return name


class NoAppendLog:
    """Opens the log for writing without O_APPEND ("we only ever add to it"): every writer
    has its own offset from 0 and overwrites the others' records."""

    def __init__(self, path: str) -> None:
        self.fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, 0o600)

    def append(self, record: bytes) -> None:
        os.write(self.fd, record)

    def close(self) -> None:
        os.close(self.fd)


class NoAppendChannel(FilesChannel):
    def open_log(self) -> Any:
        return NoAppendLog(self.log)


class WorldReadableChannel(FilesChannel):
    """Creates the published file like any other file, open(path, "wb") and the usual 0644
    ("permissions are the umask's business"): anyone on the machine can read it.  (The
    chmod makes the 0644 that umask 022 gives explicit, so the exhibit does not depend on
    the umask of whoever runs it.)"""

    def publish(self, chunks: Iterable[bytes]) -> None:
        tmp = self.published + ".tmp"
        with open(tmp, "wb") as f:
            os.chmod(tmp, 0o644)
            for chunk in chunks:
                f.write(chunk)
        os.replace(tmp, self.published)


class ThreadingLock:
    """A threading.Lock as a cross-process lock (the article's threading.Semaphore): after
    fork each process has its own copy, and none excludes another."""

    shared = threading.Lock()

    def __init__(self, path: str) -> None:
        pass

    def acquire(self, blocking: bool = True) -> bool:
        return self.shared.acquire(blocking)

    def release(self) -> None:
        self.shared.release()

    def close(self) -> None:
        pass


class ThreadingLockChannel(FilesChannel):
    lock_class = ThreadingLock


class LockfBelievedFlock(LockfChannel):
    """Uses lockf and trusts it like flock: a library that opens and closes the same
    file (to read a config, to log) silently drops the lock."""


class FlockBelievedLockf(FilesChannel):
    """Uses flock and expects "close any descriptor" to unlock, as with record locks: the
    lock stays with the open file description and the other process waits."""


class RemovedOnRelease(FlockLock):
    """Deletes the lock file on release ("leave no stale lock file"), so the next acquire
    recreates it: a client that opened the old file while it was held gets the old inode's
    lock when it is released, and a newcomer locks the new inode at the same time."""

    def __init__(self, path: str) -> None:
        super().__init__(path)
        self.path = path

    def release(self) -> None:
        try:
            os.unlink(self.path)
        except FileNotFoundError:
            pass
        super().release()


class RemovedOnReleaseChannel(FilesChannel):
    lock_class = RemovedOnRelease


class SidecarLock(FlockLock):
    """Locks a sidecar file (``lock_path + ".lck"``) rather than the path it names: its own
    clients exclude each other, but anyone who locks ``lock_path`` itself is let in."""

    def __init__(self, path: str) -> None:
        super().__init__(path + ".lck")
        os.close(os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600))  # the advertised file exists


class SidecarChannel(FilesChannel):
    lock_class = SidecarLock


class TruncatingLock(FlockLock):
    """Clears the lock file before trying (open(path, "w"), the classic PID-file code), so
    a contender that then fails has already erased the holder's PID."""

    def __init__(self, path: str) -> None:
        super().__init__(path)
        self.path = path

    def acquire(self, blocking: bool = True, timeout: float = -1) -> bool:
        with open(self.path, "w"):
            pass
        return super().acquire(blocking, timeout)


class TruncatingChannel(FilesChannel):
    lock_class = TruncatingLock


class UnlinkStaleLock(FlockLock):
    """Takes a failed try for a stale lock file and removes it, so that "next time" works:
    the holder keeps a lock on a file nobody else will open again."""

    def __init__(self, path: str) -> None:
        super().__init__(path)
        self.path = path

    def acquire(self, blocking: bool = True, timeout: float = -1) -> bool:
        got = super().acquire(blocking, timeout)
        if not got:
            try:
                os.unlink(self.path)
            except FileNotFoundError:
                pass
        return got


class UnlinkStaleChannel(FilesChannel):
    lock_class = UnlinkStaleLock


class CleanupOnUnheldRelease(FlockLock):
    """release() when this object holds nothing "cleans up" by removing the lock file (the
    caller's finally: after a failed try): the holder's file is gone, the next comer
    creates a new one and locks it."""

    def __init__(self, path: str) -> None:
        super().__init__(path)
        self.path = path
        self.held = False

    def acquire(self, blocking: bool = True, timeout: float = -1) -> bool:
        self.held = super().acquire(blocking, timeout)
        return self.held

    def release(self) -> None:
        if not self.held:
            os.unlink(self.path)
            return
        self.held = False
        super().release()


class CleanupOnUnheldReleaseChannel(FilesChannel):
    lock_class = CleanupOnUnheldRelease


def _remove_quietly(path: str) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass


class AtexitRemovesLock(FlockLock):
    """Registers atexit(os.remove, lock file) on open, "so that a crash never leaves a
    stale lock": a contender that gave up and exits normally removes the holder's file."""

    def __init__(self, path: str) -> None:
        super().__init__(path)
        atexit.register(_remove_quietly, path)


class AtexitRemovesLockChannel(FilesChannel):
    lock_class = AtexitRemovesLock


class ReopeningLock(FlockLock):
    """Opens a new description of the file for every acquire (so that threads exclude each
    other) yet claims re-entrancy: the holder's second acquire conflicts with its first."""

    def __init__(self, path: str) -> None:
        super().__init__(path)
        self.held: List[int] = []

    def acquire(self, blocking: bool = True, timeout: float = -1) -> bool:
        inner = FlockLock(f"/proc/self/fd/{self.fd}")
        if inner.acquire(blocking, timeout):
            self.held.append(inner.fd)
            return True
        inner.close()
        return False

    def release(self) -> None:
        fd = self.held.pop()
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)

    def close(self) -> None:
        for fd in self.held + [self.fd]:
            os.close(fd)
        self.held = []


class ReopeningChannel(FilesChannel):
    lock_class = ReopeningLock


class TruncatedTimeoutLock(FlockLock):
    """Takes the timeout in whole seconds (``int(timeout)``, as a C API of seconds would):
    every sub-second timed acquire gives up at once."""

    def acquire(self, blocking: bool = True, timeout: float = -1) -> bool:
        return super().acquire(blocking, int(timeout) if timeout >= 0 else timeout)


class TruncatedTimeoutChannel(FilesChannel):
    lock_class = TruncatedTimeoutLock


_LOCKF_CLAIMS = LockfBackend.capabilities - {p.LOCK_OWNED_BY_PROCESS}


EXHIBITS: List[Exhibit] = [
    Exhibit(_variant("broken-in-place-publish", AtomicPublishBackend, InPlacePublish),
            "reader_never_sees_partial_publish",
            "Rewriting a file in place exposes a truncated, half-written file; write a temp file and os.replace it."),
    Exhibit(_variant("broken-article-exchange", TempFileExchangeBackend, WriteToFinalName),
            "exchange_collector_sees_only_complete_results",
            "A file that exists is not a file that is finished: write under a temp name, then rename."),
    Exhibit(_variant("broken-no-append-log", AppendLogBackend, NoAppendChannel), "appended_records_never_lost_or_torn",
            "Without O_APPEND every writer has its own offset, and concurrent writers overwrite each other."),
    Exhibit(_variant("broken-world-readable", AtomicPublishBackend, WorldReadableChannel),
            "files_created_private_and_removed",
            "open(path, 'w') leaves permissions to the umask (0644); create private files with mode 0600."),
    Exhibit(_variant("broken-threading-lock", FlockBackend, ThreadingLockChannel),
            "exclusive_lock_excludes_other_processes",
            "A threading.Lock is copied by fork: each process locks its own copy and nothing is excluded."),
    Exhibit(_variant("broken-lockf-as-flock", LockfBackend, LockfBelievedFlock,
                     capabilities=frozenset({p.LOCK, p.LOCK_OWNED_BY_OPEN_FILE, p.PRIVATE_FILES})),
            "flock_survives_closing_another_descriptor",
            "lockf locks belong to the process: closing any descriptor of the file, anywhere in it, drops them."),
    Exhibit(_variant("broken-flock-as-lockf", FlockBackend, FlockBelievedLockf,
                     capabilities=frozenset({p.LOCK, p.LOCK_OWNED_BY_PROCESS, p.PRIVATE_FILES})),
            "lockf_released_by_closing_any_descriptor",
            "flock locks belong to the open file description: closing another descriptor does not unlock."),
    Exhibit(_variant("broken-lock-truncated-timeout", FlockBackend, TruncatedTimeoutChannel),
            "exclusive_lock_excludes_other_processes",
            "int(timeout) turns every sub-second timed acquire into a try that fails at once."),
    Exhibit(_variant("broken-lock-file-removed-on-release", FlockBackend, RemovedOnReleaseChannel),
            "lock_excludes_flock_and_lockf_clients_on_its_path",
            "Deleting the lock file on release lets a waiter on the old file and a newcomer on a new one both hold."),
    Exhibit(_variant("broken-sidecar-lock", FlockBackend, SidecarChannel),
            "lock_excludes_flock_and_lockf_clients_on_its_path",
            "A lock on another inode than the path it names excludes only the clients that know the secret."),
    Exhibit(_variant("broken-flock-claims-lockf-clients", FlockBackend, FilesChannel,
                     capabilities=FlockBackend.capabilities | {p.INTEROPERATES_WITH_LOCKF}),
            "lock_excludes_flock_and_lockf_clients_on_its_path",
            "On Linux flock and fcntl record locks do not see each other: an flock lock excludes no lockf client."),
    Exhibit(_variant("broken-truncating-contender", FlockBackend, TruncatingChannel),
            "failed_acquire_leaves_lock_and_file_untouched",
            "Opening the lock file with 'w' before trying erases the holder's PID even when the try fails."),
    Exhibit(_variant("broken-unlink-on-failed-acquire", FlockBackend, UnlinkStaleChannel),
            "failed_acquire_leaves_lock_and_file_untouched",
            "A lock you cannot take is not stale: unlinking it lets the next process lock a new file."),
    Exhibit(_variant("broken-unheld-release-unlinks", FlockBackend, CleanupOnUnheldReleaseChannel),
            "failed_contender_cleanup_keeps_holder_excluding",
            "release() by a process that holds nothing must do nothing, not remove the holder's lock file."),
    Exhibit(_variant("broken-atexit-removes-lock-file", FlockBackend, AtexitRemovesLockChannel),
            "failed_contender_cleanup_keeps_holder_excluding",
            "An atexit handler that removes the lock file runs in every process that opened it, holder or not."),
    Exhibit(_variant("broken-lockf-unclaimed-record-lock", LockfBackend, LockfChannel, capabilities=_LOCKF_CLAIMS),
            "flock_survives_closing_another_descriptor",
            "A lockf lock is dropped by closing any descriptor of the file: claim record-lock semantics or use flock."),
    Exhibit(_variant("broken-reentrant-claim-deadlocks", FlockBackend, ReopeningChannel,
                     capabilities=FlockBackend.capabilities | {p.LOCK_REENTRANT}),
            "reentrant_lock_admits_its_holder_again",
            "A lock that opens a new description per acquire conflicts with itself: it is not re-entrant."),
    Exhibit(_variant("broken-lockf-claims-thread-exclusion", LockfBackend, LockfChannel,
                     capabilities=LockfBackend.capabilities | {p.LOCK_EXCLUDES_THREADS}),
            "lock_excludes_threads_of_its_process",
            "Record locks belong to the process: a second thread's lockf on the same file succeeds at once."),
]
