"""Broken file exchange: each one is a mistake that works in a demo and fails the spec.

Every class overrides as little of a reference backend as it takes to embody
one piece of folk knowledge gone wrong; the docstring says what and why.
"""

from __future__ import annotations

import os
import threading
from typing import Any, Iterable, List

from ipc_specs.files import protocol as p

from ..files import (
    AppendLogBackend,
    AtomicPublishBackend,
    FilesChannel,
    FlockBackend,
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
]


