"""Role bodies for the lock examples: a holder, contenders (the backend's clients or plain
flock/lockf programs that know only the path), a third comer, and the probes of the
holder's file.  Every process notes ``inside`` after an acquire returned True and
``leaving`` before it releases, so that the check counts holders from the histories.
"""

from __future__ import annotations

import errno
import fcntl
import os
import threading
import time
from typing import Any, Callable, List, Optional, Sequence, Tuple

from ..harness.worker import Proc, Recorded

#: One acquire: ("try", 0), ("timed", ms) or ("block", 0).
Attempt = Tuple[str, int]
#: What identifies the lock file and what it holds: ((st_dev, st_ino) of the path or None
#: when the path is gone, the first bytes of the holder's file).
FileState = Tuple[Optional[Tuple[int, int]], bytes]

BACKEND, FLOCK, LOCKF = "backend", "flock", "lockf"
#: How the holder touches another descriptor of its lock file (``touch``): read it whole
#: (open, read, close), or append a line as a logging.FileHandler does.
TOUCHES = ("read", "append")


class PlainClient:
    """A program that knows only the path: fcntl.flock or fcntl.lockf on its own descriptor
    (opened O_CREAT, as such programs do).  A timed acquire polls, as the filelock package does."""

    def __init__(self, path: str, kind: str) -> None:
        self.fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        self.fn: Callable[[int, int], Any] = fcntl.flock if kind == FLOCK else fcntl.lockf

    def _lock(self, blocking: bool) -> bool:
        try:
            self.fn(self.fd, fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB))
        except OSError as exc:  # lockf: EACCES or EAGAIN (fcntl(2)); flock: EWOULDBLOCK
            if blocking or exc.errno not in (errno.EAGAIN, errno.EACCES):
                raise
            return False
        return True

    def acquire(self, blocking: bool = True, timeout: float = -1) -> bool:
        if not blocking or timeout < 0:
            return self._lock(blocking)
        deadline = time.monotonic() + timeout
        while not self._lock(False):
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.001)
        return True

    def release(self) -> None:
        self.fn(self.fd, fcntl.LOCK_UN)

    def close(self) -> None:
        os.close(self.fd)


def open_client(proc: Proc, client: str) -> Any:
    if client == BACKEND:
        return proc.open("open_lock")
    path = proc.channel.lock_path
    return Recorded(proc.call(f"open {client} client", PlainClient, path, client, detail=path), proc, client)


def take(lock: Any, attempt: Attempt) -> bool:
    how, ms = attempt
    if how == "try":
        return bool(lock.acquire(False))
    if how == "timed":
        return bool(lock.acquire(True, timeout=ms / 1000))
    return bool(lock.acquire(True))


def hold_for(proc: Proc, lock: Any, hold_ms: int) -> None:
    """Inside for ``hold_ms``, then out: the interval the check counts."""
    proc.note("inside")
    proc.sleep_ms(hold_ms)
    proc.note("leaving")
    lock.release()


def file_state(path: str, fd: int) -> FileState:
    try:
        st = os.stat(path)  # by path: the inode a newcomer would open
        ident: Optional[Tuple[int, int]] = (st.st_dev, st.st_ino)
    except FileNotFoundError:
        ident = None
    return ident, os.pread(fd, 4096, 0)  # through a descriptor kept open: closing one drops lockf locks


def touch_other_descriptor(path: str, how: str) -> None:
    """What a library does to the same file: read it, or log into it (open, write, close)."""
    if how == "read":
        with open(path, "rb") as f:
            f.read()
    else:
        with open(path, "ab") as f:
            f.write(b"log line\n")


def holder(proc: Proc, attempt: Attempt, data: bool, touch: str, waits: Sequence[str],
           hold_ms: int, later: Sequence[str] = ()) -> Tuple[bool, FileState, FileState]:
    """Take the free lock, optionally write a PID into the file and touch another descriptor,
    then hold until every event in ``waits``, look at the file again, signal ``checked`` and
    hold on until every event in ``later``; returns (taken, file before, file after)."""
    path = proc.channel.lock_path
    lock = proc.open("open_lock")
    if not take(lock, attempt):
        lock.close()
        return False, (None, b""), (None, b"")
    proc.note("inside")
    fd = os.open(path, (os.O_RDWR if data else os.O_RDONLY) | os.O_CLOEXEC)  # closed only after the release
    if data:
        proc.call("write pid", os.pwrite, fd, f"{os.getpid()}\n".encode(), 0)
    before = file_state(path, fd)
    if touch:
        proc.call("touch", touch_other_descriptor, path, touch, detail=touch)
    proc.signal("held")
    for event in waits:
        proc.wait_for(event)
    after = file_state(path, fd)
    proc.signal("checked")
    for event in later:
        proc.wait_for(event)
    proc.sleep_ms(hold_ms)
    proc.note("leaving")
    lock.release()
    proc.signal("released")
    lock.close()
    os.close(fd)
    return True, before, after


def contender(proc: Proc, i: int, client: str, attempt: Attempt, hold_ms: int) -> bool:
    """While the holder holds: one failed attempt (its result returned); then a blocking
    acquire that the holder's release lets through, held for ``hold_ms``."""
    proc.wait_for("held")
    lock = open_client(proc, client)
    first = take(lock, attempt)
    if first:
        hold_for(proc, lock, 0)
    proc.signal(f"tried-{i}")
    if lock.acquire(True):
        hold_for(proc, lock, hold_ms)
    lock.close()
    return first


def newcomer(proc: Proc, hold_ms: int) -> None:
    """A backend client that arrives once the holder released, while others may hold."""
    proc.wait_for("released")
    lock = proc.open("open_lock")
    if lock.acquire(True):
        hold_for(proc, lock, hold_ms)
    lock.close()


def failed_attempt(proc: Proc, i: int, attempt: Attempt, release: bool) -> bool:
    """A backend client that fails to take the held lock, then (``release``) calls release
    anyway, as a ``finally:`` would, and closes; a release that raises is allowed."""
    proc.wait_for("held")
    lock = proc.open("open_lock")
    got = take(lock, attempt)
    if got:
        hold_for(proc, lock, 0)
    elif release:
        try:
            lock.release()
        except Exception:  # noqa: BLE001  (recorded in the history; a refusal is fine)
            pass
    lock.close()
    proc.signal(f"done-{i}")
    return got


def probe(proc: Proc, waits: Sequence[str], then: str) -> Tuple[bool, bool]:
    """After ``waits``: a nonblocking try (the holder still holds); then, after the holder
    released, a blocking acquire.  It opens only after ``waits``, as a newcomer does (the
    file family has no thread placement, where every role must open before it waits)."""
    for event in waits:
        proc.wait_for(event)
    lock = proc.open("open_lock")
    first = bool(lock.acquire(False))
    if first:
        hold_for(proc, lock, 0)
    proc.signal(then)
    proc.wait_for("released")
    second = bool(lock.acquire(True))
    if second:
        hold_for(proc, lock, 0)
    lock.close()
    return first, second


def reenter(proc: Proc, again: Sequence[Attempt]) -> List[bool]:
    """Acquire, acquire ``again`` on the same object, release all but one; once the other
    process has tried, release the last."""
    lock = proc.open("open_lock")
    lock.acquire(True)
    got = [take(lock, a) for a in again]
    for ok in got:
        if ok:
            lock.release()
    proc.signal("held")
    proc.wait_for("probed")
    lock.release()
    proc.signal("released")
    lock.close()
    return got


def two_threads(proc: Proc, attempt: Attempt) -> Tuple[bool, bool]:
    """Thread A opens a lock and takes it; thread B opens another lock object in the same
    process and tries (must fail), then takes it blocking once A released."""
    ch = proc.channel
    out: List[bool] = []
    held, tried = threading.Event(), threading.Event()

    def a() -> None:
        lock = Recorded(ch.open_lock(), proc, "A")
        lock.acquire(True)
        held.set()
        tried.wait(proc.deadline - time.monotonic())
        lock.release()
        lock.close()

    t = threading.Thread(target=a, daemon=True)
    t.start()
    held.wait(proc.deadline - time.monotonic())
    lock = Recorded(ch.open_lock(), proc, "B")
    out.append(take(lock, attempt))
    if out[0]:
        lock.release()
    tried.set()
    t.join(proc.deadline - time.monotonic())
    out.append(bool(lock.acquire(True)))
    lock.release()
    lock.close()
    return out[0], out[1]
