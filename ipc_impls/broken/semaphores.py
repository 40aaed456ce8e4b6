"""Broken semaphores: each one is a mistake that works in a demo and fails the spec.

Every class overrides as little of a reference backend as it takes to embody
one piece of folk knowledge gone wrong; the docstring says what and why.
"""

from __future__ import annotations

import atexit
import multiprocessing
import os
import threading
from typing import Any, FrozenSet, List

import posix_ipc
import sysv_ipc

from ipc_specs.harness.faults import INTERRUPTS
from ipc_specs.harness.resources import Scope
from ipc_specs.semaphores import protocol as p

from ..semaphores import (
    FlockChannel,
    FlockHandle,
    FlockLockBackend,
    MpChannel,
    MpHandle,
    MpLockBackend,
    MpSemaphoreBackend,
    PosixChannel,
    PosixHandle,
    PosixSemaphoreBackend,
    SysvChannel,
    SysvHandle,
    SysvSemaphoreBackend,
    SysvUndoSemaphoreBackend,
)
from . import Exhibit


def _mp_variant(name: str, handle_cls: type) -> Any:
    """A backend claiming what ``mp-semaphore`` claims, whose handles are ``handle_cls``."""

    class Channel(MpChannel):
        def open(self) -> MpHandle:
            return handle_cls(self.sem)  # type: ignore[no-any-return]

    return type(handle_cls.__name__ + "Backend", (MpSemaphoreBackend,),
                {"name": name, "setup": lambda self, scope: Channel(multiprocessing.Semaphore)})()


class VariantPosixChannel(PosixChannel):
    """``posix-semaphore``'s channel whose handles are ``handle_cls``.  At module level, as a
    named channel's class must be: spawn and forkserver workers get the channel by pickle."""

    handle_cls: type = PosixHandle

    def open(self) -> PosixHandle:
        return self.handle_cls(super().open().sem)  # type: ignore[no-any-return]


def _posix_variant(name: str, handle_cls: type) -> Any:
    """A backend claiming what ``posix-semaphore`` claims, whose handles are ``handle_cls``."""

    def setup(self: Any, scope: Scope) -> VariantPosixChannel:
        channel = VariantPosixChannel("/" + scope.name(), scope)
        channel.handle_cls = handle_cls
        return channel

    return type(handle_cls.__name__ + "Backend", (PosixSemaphoreBackend,), {"name": name, "setup": setup})()


# --- holders_never_exceed_value --------------------------------------------------------------
class ThreadingSemaphoreHandle(MpHandle):
    def value(self) -> int:
        return int(self.sem._value)


class ThreadingSemaphoreBackend(MpSemaphoreBackend):
    """The seed article's ``threading.Semaphore`` "shared between processes": after fork
    every process has its own copy of the counter, so each lets its own ``value``
    holders in and all of them are inside at once.  Correct between threads only."""

    name = "broken-threading-semaphore"

    def setup(self, scope: Scope) -> MpChannel:
        class Channel(MpChannel):
            def open(self) -> MpHandle:
                return ThreadingSemaphoreHandle(self.sem)

        return Channel(threading.Semaphore)


# --- value_follows_acquires_and_releases -----------------------------------------------------
class CoalescingRelease(PosixHandle):
    """"Post only if nobody has been signalled yet": a release when the value is already
    positive is dropped, as with an Event or a flag standing in for a counter.  Two
    releases in a row make one unit; the second is never recorded."""

    def release(self) -> None:
        if self.sem.value == 0:
            self.sem.release()


# --- try_acquire_on_zero_fails_at_once ---------------------------------------------------------
class RetryingTryAcquire(MpHandle):
    """A "non-blocking" acquire that politely retries until it succeeds, because callers
    "never want a failure": it can no longer say "nothing is free", and blocks instead."""

    def try_acquire(self) -> bool:
        while not self.sem.acquire(False):
            threading.Event().wait(0.001)
        return True


# --- timed_acquire_on_zero_waits_at_least_its_timeout -------------------------------------------
class IgnoresTimeout(PosixHandle):
    """The timeout is accepted and ignored, so a timed acquire blocks forever.  sysv_ipc
    built without semtimedop (SEMAPHORE_TIMEOUT_SUPPORTED is False) does exactly this,
    silently."""

    def acquire_timeout(self, timeout_ms: int) -> bool:
        self.sem.acquire()
        return True


class TruncatedTimeout(MpHandle):
    """Milliseconds turned into whole seconds with ``int(ms / 1000)``: every timeout
    under a second becomes 0, a non-blocking try that gives up at once."""

    def acquire_timeout(self, timeout_ms: int) -> bool:
        return bool(self.sem.acquire(True, int(timeout_ms / 1000)))


# --- k_releases_admit_exactly_k_waiters ------------------------------------------------------
class LazyRelease(MpHandle):
    """Releases are kept in the releasing process "to save a system call" and handed to
    its own next acquire (or given back at close).  One process sees a correct counter;
    waiters in other processes are never woken: a lost wake-up."""

    def __init__(self, sem: Any) -> None:
        super().__init__(sem)
        self.kept = 0

    def _take_kept(self) -> bool:
        if self.kept:
            self.kept -= 1
            return True
        return False

    def acquire(self) -> None:
        if not self._take_kept():
            super().acquire()

    def try_acquire(self) -> bool:
        return self._take_kept() or super().try_acquire()

    def acquire_timeout(self, timeout_ms: int) -> bool:
        return self._take_kept() or super().acquire_timeout(timeout_ms)

    def release(self) -> None:
        self.kept += 1

    def value(self) -> int:
        return super().value() + self.kept

    def close(self) -> None:
        for _ in range(self.kept):
            self.sem.release()
        self.kept = 0


# --- bounded_release_above_initial_is_rejected -------------------------------------------------
class UnboundedAsBoundedBackend(MpSemaphoreBackend):
    """``multiprocessing.Semaphore`` used where a ``BoundedSemaphore`` was meant: a stray
    extra release is accepted and silently raises the capacity for good."""

    name = "broken-unbounded-as-bounded"
    capabilities = MpSemaphoreBackend.capabilities | {p.BOUNDED}


# --- release_at_max_value_is_rejected ------------------------------------------------------
class SwallowsOverflow(PosixHandle):
    """``except OSError: pass`` around release, "it can only mean the value is already
    high": EOVERFLOW disappears, and a release at SEM_VALUE_MAX looks accepted."""

    def release(self) -> None:
        try:
            self.sem.release()
        except OSError:
            pass


# --- unlinked_name_keeps_handles_and_is_reusable -----------------------------------------------
class RmidAsUnlinkChannel(SysvChannel):
    def unlink(self) -> None:
        sysv_ipc.Semaphore(self.key).remove()

    def reuse_name(self, value: int) -> SysvHandle:
        while True:
            try:
                sem = sysv_ipc.Semaphore(self.key, sysv_ipc.IPC_CREX, 0o600, value)
                return SysvHandle(sem, self.undo)
            except sysv_ipc.ExistentialError:  # not yet gone: cannot happen after IPC_RMID
                continue


class RmidAsUnlinkBackend(SysvSemaphoreBackend):
    """IPC_RMID taken for sem_unlink: a System V semaphore is destroyed at once under
    every handle (their next operation fails with EIDRM), while an unlinked POSIX
    semaphore lives on until its last handle closes."""

    name = "broken-rmid-as-unlink"
    capabilities = SysvSemaphoreBackend.capabilities | {p.NAMED}

    def setup(self, scope: Scope) -> SysvChannel:
        return RmidAsUnlinkChannel(scope, self.undo)


# --- killed_holder_releases_only_where_claimed --------------------------------------------------
class NoUndoClaimsReleaseBackend(SysvSemaphoreBackend):
    """Claims that a killed holder's units come back, without SEM_UNDO: "the kernel
    cleans up after a dead process" holds for file locks, not for semaphore values."""

    name = "broken-no-undo-claims-release"
    capabilities = SysvSemaphoreBackend.capabilities | {p.HOLDER_DEATH_RELEASES}


class UndoUnclaimedBackend(SysvUndoSemaphoreBackend):
    """SEM_UNDO switched on "for safety" in a backend documented as a plain semaphore: a
    process's exit now rewrites the value (the sysv_ipc undo caveat), so units taken
    by a worker that dies, or handed on by one that exits, quietly come and go."""

    name = "broken-undo-unclaimed"
    capabilities: FrozenSet[str] = SysvUndoSemaphoreBackend.capabilities - {p.HOLDER_DEATH_RELEASES}


# --- faults drawn into holders_never_exceed_value and timed_acquire_on_zero_… --------------
class SignalIsTimeout(PosixHandle):
    """Catches the interruption along with the timeout: a signal during ``acquire(t)``
    (``posix_ipc.SignalError``, EINTR) answers "timed out" long before ``t``."""

    def acquire_timeout(self, timeout_ms: int) -> bool:
        try:
            self.sem.acquire(timeout_ms / 1000)
        except (posix_ipc.BusyError, posix_ipc.SignalError):
            return False
        return True


class SignalKillsAcquire(SysvHandle):
    """Calls sysv_ipc directly: a signal while ``acquire()`` waits raises
    ``sysv_ipc.Error('Signaled while waiting')``, and the worker dies with it."""

    def acquire(self) -> None:
        self.sem.acquire()


class SignalKillsAcquireChannel(SysvChannel):
    def open(self) -> SysvHandle:
        return SignalKillsAcquire(sysv_ipc.Semaphore(self.key), self.undo)


class SignalKillsAcquireBackend(SysvSemaphoreBackend):
    name = "broken-signal-kills-acquire"

    def setup(self, scope: Scope) -> SysvChannel:
        return SignalKillsAcquireChannel(scope, self.undo)



# --- losers_end_without_giving_units_back ----------------------------------------------------
def _post_by_name(name: str) -> None:
    try:
        posix_ipc.Semaphore(name).release()
    except posix_ipc.Error:
        pass  # already unlinked: nothing to give back


class ReleaseOnExitHandle(PosixHandle):
    """Registers a release at exit on open, "so that a process never leaves it locked",
    whether or not it ever got a unit: every process that gave up and exits normally
    adds one."""

    def __init__(self, sem: posix_ipc.Semaphore) -> None:
        super().__init__(sem)
        atexit.register(_post_by_name, sem.name)


class ReleaseOnExitChannel(PosixChannel):
    def open(self) -> PosixHandle:
        return ReleaseOnExitHandle(super().open().sem)


class ReleaseOnExitBackend(PosixSemaphoreBackend):
    name = "broken-release-on-exit"

    def setup(self, scope: Scope) -> PosixChannel:
        return ReleaseOnExitChannel("/" + scope.name(), scope)


class ResetOnStrayRelease(FlockHandle):
    """release() with nothing held "forces the lock free" by recreating the lock file (then
    refuses, as it should): the holder keeps a lock on the old inode, and the next comer
    locks the new one."""

    def __init__(self, path: str) -> None:
        super().__init__(path)
        self.path = path

    def release(self) -> None:
        if self.held:
            super().release()
            return
        os.unlink(self.path)
        os.close(os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY | os.O_CLOEXEC, 0o600))
        raise ValueError("lock released too many times (this handle does not hold it)")


class ResetOnStrayReleaseChannel(FlockChannel):
    def open(self) -> FlockHandle:
        return ResetOnStrayRelease(self.path)

    def reuse_name(self, value: int) -> FlockHandle:
        self.create(value)
        return ResetOnStrayRelease(self.path)


class ResetOnStrayReleaseBackend(FlockLockBackend):
    name = "broken-stray-release-resets-lock-file"

    def setup(self, scope: Scope) -> FlockChannel:
        return ResetOnStrayReleaseChannel(scope.path("lock"))


class AnyoneReleasesClaimedBackend(MpLockBackend):
    """multiprocessing.Lock claimed as released by its holder only: its docs say any process
    may release it, so a contender's stray release lets a third process in."""

    name = "broken-mp-lock-claims-holder-release"
    capabilities = MpLockBackend.capabilities | {p.RELEASE_BY_HOLDER_ONLY}

EXHIBITS: List[Exhibit] = [
    Exhibit(_posix_variant("broken-signal-is-timeout", SignalIsTimeout),
            "timed_acquire_on_zero_waits_at_least_its_timeout",
            "EINTR is not ETIMEDOUT: an interrupted timed wait must go on for the rest of its timeout.",
            fault=INTERRUPTS),
    Exhibit(SignalKillsAcquireBackend(), "holders_never_exceed_value",
            "sysv_ipc reports a signal during a wait as an error: retry the acquire, do not let it end the worker.",
            fault=INTERRUPTS),
    Exhibit(ThreadingSemaphoreBackend(), "holders_never_exceed_value",
            "A threading.Semaphore is copied by fork: each process counts alone, and all get in at once."),
    Exhibit(_posix_variant("broken-coalescing-release", CoalescingRelease), "value_follows_acquires_and_releases",
            "A semaphore counts: a release while the value is positive must add a unit, not be merged."),
    Exhibit(_mp_variant("broken-retrying-try-acquire", RetryingTryAcquire), "try_acquire_on_zero_fails_at_once",
            "A non-blocking acquire must be able to say 'nothing free'; retrying until success blocks.",
            hangs=True),
    Exhibit(_posix_variant("broken-ignores-timeout", IgnoresTimeout),
            "timed_acquire_on_zero_waits_at_least_its_timeout",
            "A timeout that is accepted and ignored turns a bounded wait into a hang.", hangs=True),
    Exhibit(_mp_variant("broken-truncated-timeout", TruncatedTimeout),
            "timed_acquire_on_zero_waits_at_least_its_timeout",
            "int(ms / 1000) makes every sub-second timeout zero: the wait gives up at once."),
    Exhibit(_mp_variant("broken-lazy-release", LazyRelease), "k_releases_admit_exactly_k_waiters",
            "A release kept in the releasing process never wakes the waiters in others.", hangs=True),
    Exhibit(UnboundedAsBoundedBackend(), "bounded_release_above_initial_is_rejected",
            "multiprocessing.Semaphore is not bounded: an extra release silently adds capacity."),
    Exhibit(_posix_variant("broken-swallows-overflow", SwallowsOverflow), "release_at_max_value_is_rejected",
            "Swallowing EOVERFLOW makes a release at SEM_VALUE_MAX look accepted while it was lost."),
    Exhibit(RmidAsUnlinkBackend(), "unlinked_name_keeps_handles_and_is_reusable",
            "IPC_RMID is not sem_unlink: it destroys the semaphore under every open handle."),
    Exhibit(NoUndoClaimsReleaseBackend(), "killed_holder_releases_only_where_claimed",
            "Without SEM_UNDO a killed holder's units stay taken; only undo or a file lock gives them back."),
    Exhibit(UndoUnclaimedBackend(), "killed_holder_releases_only_where_claimed",
            "SEM_UNDO rewrites the value when a process exits; a plain semaphore must not change behind our back."),
    Exhibit(ReleaseOnExitBackend(), "losers_end_without_giving_units_back",
            "An atexit release runs in every process that opened the semaphore, including those that never got it."),
    Exhibit(ResetOnStrayReleaseBackend(), "losers_end_without_giving_units_back",
            "A release by a process holding nothing must be refused, not turned into a forced unlock."),
    Exhibit(AnyoneReleasesClaimedBackend(), "losers_end_without_giving_units_back",
            "multiprocessing.Lock may be released by any process: a loser's stray release lets a third one in."),
]
