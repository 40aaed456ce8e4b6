"""Reference semaphores and locks: ``multiprocessing`` (inherited by fork),
``posix_ipc`` and ``sysv_ipc`` semaphores and an ``fcntl.flock`` lock (opened by name).

Each backend claims only what its object really does.  What they do NOT claim:

* multiprocessing: not ``named`` (the semaphore is unlinked at creation and reaches
  workers only by fork), not ``holder_death_releases`` (a worker killed while holding a
  ``Lock`` leaves it locked for good); ``Lock`` is not ``counting`` and has no public value.
* posix_ipc: not ``holder_death_releases`` (only sem_post increments, sem_overview(7)).
* sysv_ipc: not ``named`` (IPC_RMID destroys the object under every open handle, which
  then fail with EIDRM); ``timeouts`` only where the module was built with semtimedop
  (``SEMAPHORE_TIMEOUT_SUPPORTED``: without it ``acquire(timeout)`` ignores the timeout and
  blocks); ``holder_death_releases`` only in the SEM_UNDO variant.
* flock: not ``counting`` (one holder), no ``timeouts`` (flock(2) has none), no ``value_readable``;
  ``release_by_holder_only`` (each handle releases only the descriptions it locked), which
  ``multiprocessing.Lock`` is not (any process may release it, as its docs say).
"""

from __future__ import annotations

import fcntl
import multiprocessing
import os
import secrets
from multiprocessing.synchronize import SEM_VALUE_MAX  # type: ignore[attr-defined]  # not in typeshed
from typing import Any, Callable, Dict, FrozenSet, List, Optional

import posix_ipc
import sysv_ipc

from ipc_impls._eintr import retry_interrupted
from ipc_specs.harness.resources import Scope, register_remover
from ipc_specs.semaphores import protocol as p

POSIX_KIND, SYSV_KIND = "posix_sem", "sysv_sem"


# --- multiprocessing (inherited) ------------------------------------------------------------
class MpHandle:
    def __init__(self, sem: Any) -> None:
        self.sem = sem

    def acquire(self) -> None:
        self.sem.acquire()

    def try_acquire(self) -> bool:
        return bool(self.sem.acquire(False))

    def acquire_timeout(self, timeout_ms: int) -> bool:
        return bool(self.sem.acquire(True, timeout_ms / 1000))

    def release(self) -> None:
        self.sem.release()

    def value(self) -> int:
        return int(self.sem.get_value())

    def close(self) -> None:
        pass  # the object belongs to the channel; fork gave every process its own reference


class MpChannel:
    def __init__(self, factory: Callable[[int], Any]) -> None:
        self.factory = factory
        self.sem: Any = None

    def create(self, value: int) -> None:
        self.sem = self.factory(value)

    def open(self) -> MpHandle:
        return MpHandle(self.sem)

    def detach(self) -> None:
        pass  # a semaphore holds no descriptor that could keep anything open

    def teardown(self) -> None:
        self.sem = None


def _lock(value: int) -> Any:
    if value != 1:
        raise ValueError(f"a lock is created free (value 1), not {value}")
    return multiprocessing.Lock()


class MpSemaphoreBackend:
    name = "mp-semaphore"
    kind = "semaphore"
    wiring = "inherit"
    max_value = SEM_VALUE_MAX
    overflow_error = "ValueError"  # CPython: 'semaphore or lock released too many times'
    capabilities: FrozenSet[str] = frozenset({p.COUNTING, p.VALUE_READABLE, p.TIMEOUTS, p.THREAD_SAFE})

    def setup(self, scope: Scope) -> MpChannel:
        return MpChannel(multiprocessing.Semaphore)


class MpBoundedSemaphoreBackend(MpSemaphoreBackend):
    name = "mp-bounded-semaphore"
    capabilities = MpSemaphoreBackend.capabilities | {p.BOUNDED}

    def setup(self, scope: Scope) -> MpChannel:
        return MpChannel(multiprocessing.BoundedSemaphore)


class MpLockBackend(MpSemaphoreBackend):
    name = "mp-lock"
    max_value = 1
    capabilities = frozenset({p.BOUNDED, p.TIMEOUTS, p.THREAD_SAFE})

    def setup(self, scope: Scope) -> MpChannel:
        return MpChannel(_lock)


# --- POSIX named semaphores --------------------------------------------------------------
class PosixHandle:
    def __init__(self, sem: posix_ipc.Semaphore) -> None:
        self.sem = sem

    def acquire(self) -> None:
        retry_interrupted(lambda _: self.sem.acquire(), None)

    def try_acquire(self) -> bool:
        try:
            self.sem.acquire(0)  # posix_ipc: a timeout of 0 is sem_trywait
        except posix_ipc.BusyError:
            return False
        return True

    def acquire_timeout(self, timeout_ms: int) -> bool:
        try:
            retry_interrupted(self.sem.acquire, timeout_ms / 1000)
        except posix_ipc.BusyError:
            return False
        return True

    def release(self) -> None:
        self.sem.release()  # OSError(EOVERFLOW) at SEM_VALUE_MAX

    def value(self) -> int:
        return int(self.sem.value)

    def close(self) -> None:
        self.sem.close()


def _unlink_posix(name: str) -> None:
    try:
        posix_ipc.unlink_semaphore(name)
    except posix_ipc.ExistentialError:
        pass


register_remover(POSIX_KIND, _unlink_posix)


class PosixChannel:
    """A name; workers (spawned ones too: the channel pickles as its name) open it themselves."""

    def __init__(self, name: str, scope: Optional[Scope]) -> None:
        self.name = name
        self._scope = scope

    def __getstate__(self) -> Dict[str, Any]:
        return {"name": self.name, "_scope": None}

    def _make(self, value: int) -> posix_ipc.Semaphore:
        return posix_ipc.Semaphore(self.name, posix_ipc.O_CREX, 0o600, value)

    def create(self, value: int) -> None:
        assert self._scope is not None, "create() runs in the parent"
        sem = self._make(value)
        self._scope.register(POSIX_KIND, self.name, lambda: _unlink_posix(self.name))
        sem.close()

    def open(self) -> PosixHandle:
        return PosixHandle(posix_ipc.Semaphore(self.name))

    def unlink(self) -> None:
        posix_ipc.unlink_semaphore(self.name)

    def reuse_name(self, value: int) -> PosixHandle:
        # Same name, so the cleanup registered by create() removes this one too.
        return PosixHandle(self._make(value))

    def detach(self) -> None:
        pass

    def teardown(self) -> None:
        pass  # the scope unlinks the name


class PosixSemaphoreBackend:
    name = "posix-semaphore"
    kind = "semaphore"
    wiring = "named"
    max_value = posix_ipc.SEMAPHORE_VALUE_MAX
    overflow_error = "OSError(EOVERFLOW)"  # sem_post(3)
    capabilities: FrozenSet[str] = frozenset(
        {p.COUNTING, p.VALUE_READABLE, p.NAMED, p.THREAD_SAFE}
        | ({p.TIMEOUTS} if posix_ipc.SEMAPHORE_TIMEOUT_SUPPORTED else set())
    )

    def setup(self, scope: Scope) -> PosixChannel:
        return PosixChannel("/" + scope.name(), scope)


# --- System V semaphores -----------------------------------------------------------------
class SysvHandle:
    def __init__(self, sem: sysv_ipc.Semaphore, undo: bool) -> None:
        self.sem = sem
        sem.undo = undo  # SEM_UNDO on every semop of this handle

    def acquire(self) -> None:
        retry_interrupted(lambda _: self.sem.acquire(), None)

    def try_acquire(self) -> bool:
        # block=False is IPC_NOWAIT.  Not acquire(0): without semtimedop the module
        # ignores the timeout, and acquire(0) blocks.
        self.sem.block = False
        try:
            self.sem.acquire()
        except sysv_ipc.BusyError:
            return False
        finally:
            self.sem.block = True
        return True

    def acquire_timeout(self, timeout_ms: int) -> bool:
        try:
            retry_interrupted(self.sem.acquire, timeout_ms / 1000)
        except sysv_ipc.BusyError:
            return False
        return True

    def release(self) -> None:
        self.sem.release()  # ValueError at SEMVMX

    def value(self) -> int:
        return int(self.sem.value)

    def close(self) -> None:
        pass  # a SysV semaphore is an id, not a descriptor


def _remove_sysv(ident: str) -> None:
    """Remove the semaphore now holding our key, if it is still ours (uid, mode 0600).

    By key rather than id: the key is what the example knows, and an exclusive
    re-creation under the same key (a gallery backend does it) is removed too.
    """
    try:
        sem = sysv_ipc.Semaphore(int(ident))
    except sysv_ipc.ExistentialError:
        return
    if sem.uid == os.getuid() and sem.mode & 0o777 == 0o600:
        try:
            sem.remove()
        except sysv_ipc.ExistentialError:
            pass


register_remover(SYSV_KIND, _remove_sysv)


def create_sysv(value: int) -> sysv_ipc.Semaphore:
    """A new semaphore under a random key, created exclusively; retried on collision."""
    while True:
        key = 1 + secrets.randbelow(0x7FFFFFFE)  # never IPC_PRIVATE (0)
        try:
            return sysv_ipc.Semaphore(key, sysv_ipc.IPC_CREX, 0o600, value)
        except sysv_ipc.ExistentialError:
            continue


class SysvChannel:
    def __init__(self, scope: Optional[Scope], undo: bool) -> None:
        self.key = 0
        self.undo = undo
        self._scope = scope

    def __getstate__(self) -> Dict[str, Any]:
        return {"key": self.key, "undo": self.undo, "_scope": None}

    def create(self, value: int) -> None:
        assert self._scope is not None, "create() runs in the parent"
        sem = create_sysv(value)
        self.key = sem.key
        self._scope.register(SYSV_KIND, str(sem.key), lambda: _remove_sysv(str(sem.key)))

    def open(self) -> SysvHandle:
        return SysvHandle(sysv_ipc.Semaphore(self.key), self.undo)

    def detach(self) -> None:
        pass

    def teardown(self) -> None:
        pass  # the scope removes it


class SysvSemaphoreBackend:
    name = "sysv-semaphore"
    kind = "semaphore"
    wiring = "named"
    max_value = sysv_ipc.SEMAPHORE_VALUE_MAX  # SEMVMX, 32767 on Linux
    overflow_error = "ValueError"  # sysv_ipc: 'must remain between 0 and SEMVMX'
    undo = False
    capabilities: FrozenSet[str] = frozenset(
        {p.COUNTING, p.VALUE_READABLE, p.THREAD_SAFE}
        | ({p.TIMEOUTS} if sysv_ipc.SEMAPHORE_TIMEOUT_SUPPORTED else set())
    )

    def setup(self, scope: Scope) -> SysvChannel:
        return SysvChannel(scope, self.undo)


class SysvUndoSemaphoreBackend(SysvSemaphoreBackend):
    """Every acquire and release with SEM_UNDO: the kernel reverses a process's net
    change when it exits, so a killed holder's units come back (semop(2))."""

    name = "sysv-semaphore-undo"
    undo = True
    capabilities = SysvSemaphoreBackend.capabilities | {p.HOLDER_DEATH_RELEASES}


# --- flock(2) lock on a file ---------------------------------------------------------------
class FlockHandle:
    """An exclusive flock lock, one open file description per acquire.

    flock(2) locks belong to open file descriptions, and a second LOCK_EX on the
    same one is a no-op, not a wait.  So each acquire reopens the file through
    /proc/self/fd (a new description of the same inode, which works after the path
    is unlinked too), and a second acquire by the same holder waits like a lock must.
    """

    def __init__(self, path: str) -> None:
        self.fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        self.held: List[int] = []

    def _reopen(self) -> int:
        return os.open(f"/proc/self/fd/{self.fd}", os.O_RDONLY | os.O_CLOEXEC)

    def _lock(self, flags: int) -> bool:
        fd = self._reopen()
        try:
            fcntl.flock(fd, flags)
        except BlockingIOError:
            os.close(fd)
            return False
        except BaseException:
            os.close(fd)
            raise
        self.held.append(fd)
        return True

    def acquire(self) -> None:
        self._lock(fcntl.LOCK_EX)

    def try_acquire(self) -> bool:
        return self._lock(fcntl.LOCK_EX | fcntl.LOCK_NB)

    def acquire_timeout(self, timeout_ms: int) -> bool:
        raise NotImplementedError("flock(2) has no timeout")

    def release(self) -> None:
        if not self.held:
            raise ValueError("lock released too many times (this handle does not hold it)")
        fd = self.held.pop()
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)

    def value(self) -> int:
        raise NotImplementedError("a flock lock has no readable value")

    def close(self) -> None:
        for fd in self.held + [self.fd]:
            os.close(fd)  # closing a held description unlocks it
        self.held = []


class FlockChannel:
    def __init__(self, path: str) -> None:
        self.path = path

    def _make(self) -> None:
        os.close(os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY | os.O_CLOEXEC, 0o600))

    def create(self, value: int) -> None:
        if value != 1:
            raise ValueError(f"a lock is created free (value 1), not {value}")
        self._make()

    def open(self) -> FlockHandle:
        return FlockHandle(self.path)

    def unlink(self) -> None:
        os.unlink(self.path)

    def reuse_name(self, value: int) -> FlockHandle:
        self.create(value)
        return FlockHandle(self.path)

    def detach(self) -> None:
        pass

    def teardown(self) -> None:
        pass  # the file lives in the example's private directory


class FlockLockBackend:
    name = "flock-semaphore"
    kind = "semaphore"
    wiring = "named"
    max_value = 1
    overflow_error = "ValueError"
    capabilities: FrozenSet[str] = frozenset({p.BOUNDED, p.HOLDER_DEATH_RELEASES, p.NAMED, p.THREAD_SAFE,
                                              p.RELEASE_BY_HOLDER_ONLY})

    def setup(self, scope: Scope) -> FlockChannel:
        return FlockChannel(scope.path("lock"))


BACKENDS = [
    MpSemaphoreBackend(),
    MpBoundedSemaphoreBackend(),
    MpLockBackend(),
    PosixSemaphoreBackend(),
    SysvSemaphoreBackend(),
    SysvUndoSemaphoreBackend(),
    FlockLockBackend(),
]
