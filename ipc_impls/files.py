"""Reference file-exchange backends: the seed article's per-PID temp-file exchange done
right, atomic publish, an O_APPEND log, and flock / lockf locks (and a re-entrant,
counted flock lock).

All share :class:`FilesChannel`, which works in a private directory made at setup
(0700, inside the example's directory) and creates every file 0600; each backend
claims only the mechanism it stands for.  Not claimed by any: durability across a
crash (fsync is done, but the suite cannot pull the plug), ``thread_safe`` (lockf
locks do not exclude threads of one process).
"""

from __future__ import annotations

import fcntl
import os
import shutil
import tempfile
import time
from typing import Dict, FrozenSet, Iterable, List, Optional

from ipc_specs.files import protocol as p
from ipc_specs.harness.resources import Scope

RESULT_PREFIX = "result-"


def _write_all(fd: int, chunks: Iterable[bytes]) -> None:
    for chunk in chunks:
        view = memoryview(chunk)
        while view:
            view = view[os.write(fd, view):]


def _fsync_dir(directory: str) -> None:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)  # makes the rename itself durable
    finally:
        os.close(fd)


class AppendLog:
    def __init__(self, path: str) -> None:
        self.fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o600)

    def append(self, record: bytes) -> None:
        n = os.write(self.fd, record)  # one write: O_APPEND seeks and writes as one step
        if n != len(record):
            raise OSError(f"short append: {n} of {len(record)} bytes")

    def close(self) -> None:
        os.close(self.fd)


#: How often a timed acquire retries: neither flock(2) nor fcntl(2) has a timed wait, so a
#: timeout is a loop of non-blocking tries (as the filelock package does).
POLL_S = 0.001


class FlockLock:
    """flock(2): owned by the open file description.  The file is opened without O_TRUNC
    and never written, unlinked or replaced: its contents are the user's (a PID)."""

    def __init__(self, path: str) -> None:
        self.fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)

    def _lock(self, op: int, blocking: bool) -> bool:
        try:
            fcntl.flock(self.fd, op | (0 if blocking else fcntl.LOCK_NB))
        except BlockingIOError:
            return False
        return True

    def acquire(self, blocking: bool = True, timeout: float = -1) -> bool:
        if not blocking or timeout < 0:
            return self._lock(fcntl.LOCK_EX, blocking)
        deadline = time.monotonic() + timeout
        while not self._lock(fcntl.LOCK_EX, False):
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            time.sleep(min(POLL_S, left))
        return True

    def release(self) -> None:
        fcntl.flock(self.fd, fcntl.LOCK_UN)

    def close(self) -> None:
        os.close(self.fd)


class LockfLock(FlockLock):
    """lockf(3) (fcntl F_SETLK record locks): owned by the process."""

    def _lock(self, op: int, blocking: bool) -> bool:
        try:
            fcntl.lockf(self.fd, op | (0 if blocking else fcntl.LOCK_NB))
        except OSError as exc:  # EACCES or EAGAIN, depending on the system (fcntl(2))
            if blocking or exc.errno not in (11, 13):
                raise
            return False
        return True

    def release(self) -> None:
        fcntl.lockf(self.fd, fcntl.LOCK_UN)


class ReentrantFlockLock(FlockLock):
    """A counted flock lock, as threading.RLock (and the filelock package) count: the first
    acquire takes the flock, later ones by the same object only count, and the lock is
    given up at the last release.  A release of nothing raises, as RLock's does."""

    def __init__(self, path: str) -> None:
        super().__init__(path)
        self.depth = 0

    def acquire(self, blocking: bool = True, timeout: float = -1) -> bool:
        if self.depth or super().acquire(blocking, timeout):
            self.depth += 1
            return True
        return False

    def release(self) -> None:
        if not self.depth:
            raise RuntimeError("cannot release un-acquired lock")
        self.depth -= 1
        if not self.depth:
            super().release()


class FilesChannel:
    """Everything in ``directory``: results ``result-<pid>``, ``published``, ``log``, ``lock``."""

    lock_class: type = FlockLock

    def __init__(self, directory: str) -> None:
        self.directory = directory
        self.published = os.path.join(directory, "published")
        self.log = os.path.join(directory, "log")
        self.lock_path = os.path.join(directory, "lock")

    # --- writing a whole file: temp file in the same directory, fsync, rename -----------------
    def _replace(self, final: str, chunks: Iterable[bytes]) -> None:
        fd, tmp = tempfile.mkstemp(dir=self.directory, prefix=".tmp-")  # 0600, same filesystem
        try:
            _write_all(fd, chunks)
            os.fsync(fd)
        except BaseException:
            os.close(fd)
            os.unlink(tmp)
            raise
        os.close(fd)
        os.replace(tmp, final)
        _fsync_dir(self.directory)

    def submit(self, chunks: Iterable[bytes]) -> str:
        name = f"{RESULT_PREFIX}{os.getpid()}"
        self._replace(os.path.join(self.directory, name), chunks)
        return name

    def poll(self) -> Dict[str, bytes]:
        found: Dict[str, bytes] = {}
        for name in os.listdir(self.directory):
            if name.startswith(RESULT_PREFIX):  # temp files have another prefix: never half a result
                with open(os.path.join(self.directory, name), "rb") as f:
                    found[name] = f.read()
        return found

    def publish(self, chunks: Iterable[bytes]) -> None:
        self._replace(self.published, chunks)

    def read_published(self) -> Optional[bytes]:
        try:
            with open(self.published, "rb") as f:  # the open pins one version's inode
                return f.read()
        except FileNotFoundError:
            return None

    def open_log(self) -> AppendLog:
        return AppendLog(self.log)

    def read_log(self) -> bytes:
        with open(self.log, "rb") as f:
            return f.read()

    def open_lock(self) -> FlockLock:
        lock: FlockLock = self.lock_class(self.lock_path)
        return lock

    def cleanup(self) -> None:
        shutil.rmtree(self.directory, ignore_errors=True)

    def detach(self) -> None:
        pass  # named: every process opens by path

    def teardown(self) -> None:
        self.cleanup()


class LockfChannel(FilesChannel):
    lock_class = LockfLock


class ReentrantFlockChannel(FilesChannel):
    lock_class = ReentrantFlockLock


class _FilesBackend:
    kind = "file"
    wiring = "named"
    channel_class: type = FilesChannel

    def setup(self, scope: Scope) -> FilesChannel:
        directory = scope.path("files")
        os.mkdir(directory, 0o700)
        channel: FilesChannel = self.channel_class(directory)
        return channel


class TempFileExchangeBackend(_FilesBackend):
    name = "temp-file-exchange"
    capabilities: FrozenSet[str] = frozenset({p.EXCHANGE, p.PRIVATE_FILES})


class AtomicPublishBackend(_FilesBackend):
    name = "atomic-publish"
    capabilities: FrozenSet[str] = frozenset({p.ATOMIC_PUBLISH, p.PRIVATE_FILES})


class AppendLogBackend(_FilesBackend):
    name = "o-append-log"
    capabilities: FrozenSet[str] = frozenset({p.APPEND_LOG, p.PRIVATE_FILES})


#: What both locks promise besides their owner: a timed acquire, a file whose data is the
#: user's.  Neither is re-entrant (a second acquire of the same object is a no-op that one
#: release undoes: flock(2) converts the lock, fcntl(2) replaces it).
_LOCK_CLAIMS = frozenset({p.LOCK, p.LOCK_TIMEOUTS, p.LOCK_FILE_HOLDS_DATA, p.PRIVATE_FILES})


class FlockBackend(_FilesBackend):
    """flock(2) locks of two open file descriptions conflict, even within one process, so
    it excludes threads; it does not see lockf clients (flock(2): no interaction)."""

    name = "flock-lock"
    capabilities: FrozenSet[str] = _LOCK_CLAIMS | {p.LOCK_OWNED_BY_OPEN_FILE, p.INTEROPERATES_WITH_FLOCK,
                                                   p.LOCK_EXCLUDES_THREADS}


class LockfBackend(_FilesBackend):
    """Record locks belong to the process: a second thread's lockf succeeds (no
    ``lock_excludes_threads``), and closing any descriptor of the file drops them."""

    name = "lockf-lock"
    channel_class = LockfChannel
    capabilities: FrozenSet[str] = _LOCK_CLAIMS | {p.LOCK_OWNED_BY_PROCESS, p.INTEROPERATES_WITH_LOCKF}


class ReentrantFlockBackend(FlockBackend):
    name = "flock-rlock"
    channel_class = ReentrantFlockChannel
    capabilities = FlockBackend.capabilities | {p.LOCK_REENTRANT}


BACKENDS: List[_FilesBackend] = [TempFileExchangeBackend(), AtomicPublishBackend(), AppendLogBackend(),
                                 FlockBackend(), LockfBackend(), ReentrantFlockBackend()]
