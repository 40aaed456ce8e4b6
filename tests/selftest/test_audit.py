"""The leak audit of objects under names a backend chose (``ipc_specs.harness.named``):
what appeared and persisted is reported, what other processes made meanwhile is not."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from typing import Iterator, List

import pytest

from ipc_specs.harness import audit, named

posix_ipc = pytest.importorskip("posix_ipc")
sysv_ipc = pytest.importorskip("sysv_ipc")

#: Run outside this process's tree: the middle process exits at once, so the holder is
#: re-parented away from us, as any unrelated process of this user would be.
FOREIGN = """
import os, sys, time
import posix_ipc, sysv_ipc
what, name, hold = sys.argv[1], sys.argv[2], float(sys.argv[3])
if os.fork():
    os._exit(0)
if what == "sem":
    sem = posix_ipc.Semaphore(name, posix_ipc.O_CREX, 0o600, 1)  # mapped by this process while it sleeps
else:
    seg = sysv_ipc.SharedMemory(None, sysv_ipc.IPC_CREX, mode=0o600, size=4096)
    seg.detach()
    print(seg.id, flush=True)
print(os.getpid(), flush=True)
os.close(1)  # the caller reads until EOF (sys.stdout.close() would keep fd 1 open)
time.sleep(hold)
if what == "sem":
    sem.unlink()
    sem.close()
else:
    sysv_ipc.remove_shared_memory(seg.id)
"""


def _name() -> str:
    return f"/auditself-{secrets.token_hex(8)}"


def _foreign(what: str, name: str, hold_s: float) -> List[int]:
    out = subprocess.run([sys.executable, "-c", FOREIGN, what, name, str(hold_s)], stdout=subprocess.PIPE,
                         check=True, timeout=30).stdout.decode()
    return [int(x) for x in out.split()]


@pytest.fixture
def sem_name() -> Iterator[str]:
    name = _name()
    yield name
    try:
        posix_ipc.unlink_semaphore(name)
    except posix_ipc.ExistentialError:
        pass


def _leaks(before: audit.Snapshot) -> List[str]:
    return [line for line in audit.leaks(before, audit.take()) if "auditself" in line or "System V" in line]


def test_a_semaphore_left_under_the_backends_own_name_is_reported_and_left_in_place(sem_name: str) -> None:
    before = audit.take()
    # Never unlinked, and still open here, as a backend's parent-side handle would be.  Held,
    # it is this process's to the audits of the other pytest-xdist workers running meanwhile:
    # closed, one of them took it for its own backend's leak (a run under heavy load did).
    sem = posix_ipc.Semaphore(sem_name, posix_ipc.O_CREX, 0o600, 0)
    try:
        (line,) = _leaks(before)
    finally:
        sem.close()
    assert f"named POSIX semaphore {sem_name} (/dev/shm/sem.{sem_name[1:]})" in line, line
    assert "left in place" in line and f"rm /dev/shm/sem.{sem_name[1:]}" in line, line
    assert os.path.exists(f"/dev/shm/sem.{sem_name[1:]}")  # not this audit's to remove


def test_an_object_another_process_holds_is_not_a_leak(sem_name: str) -> None:
    before = audit.take()
    (holder,) = _foreign("sem", sem_name, 5.0)
    try:
        assert _leaks(before) == []
    finally:
        os.kill(holder, 9)


def test_an_object_removed_during_the_settle_is_not_a_leak(sem_name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Another process's object, let go (held by nobody) but removed by its owner a moment
    later: the settle, not the moment of the snapshot, decides."""
    before = audit.take()
    sem = posix_ipc.Semaphore(sem_name, posix_ipc.O_CREX, 0o600, 0)  # held here: see the test above
    settled = []

    class OwnerRemovesItMeanwhile:
        @staticmethod
        def sleep(seconds: float) -> None:
            settled.append(seconds)
            posix_ipc.unlink_semaphore(sem_name)

    monkeypatch.setattr(named, "time", OwnerRemovesItMeanwhile)
    try:
        assert _leaks(before) == [] and settled == [named.SETTLE_S]
    finally:
        sem.close()


def test_a_segment_created_by_a_live_foreign_process_is_not_a_leak() -> None:
    before = audit.take()
    segment, holder = _foreign("shm", "", 5.0)
    try:
        assert _leaks(before) == []
    finally:
        os.kill(holder, 9)
        try:
            sysv_ipc.remove_shared_memory(segment)
        except sysv_ipc.ExistentialError:
            pass


def test_a_segment_this_process_created_is_reported_and_removed() -> None:
    before = audit.take()
    seg = sysv_ipc.SharedMemory(None, sysv_ipc.IPC_CREX, mode=0o600, size=4096)
    seg.detach()
    try:
        (line,) = _leaks(before)
        assert f"System V shared memory segment id {seg.id}" in line and "now removed" in line, line
        with pytest.raises(sysv_ipc.ExistentialError):
            sysv_ipc.SharedMemory(seg.key)
    finally:
        try:
            sysv_ipc.remove_shared_memory(seg.id)
        except sysv_ipc.ExistentialError:
            pass


def test_the_header_says_when_message_queues_cannot_be_audited() -> None:
    assert bool(named.unaudited()) != named.mqueue_mounted()


def test_an_object_named_with_another_live_runs_tag_is_that_runs_business() -> None:
    """Two pytest-xdist workers: one runs the chaos gallery's leaking twins in a sub-run
    whose names carry its run tag; the other's audit must not blame its own backend for
    them (the sub-run's own audit reports them)."""
    from ipc_specs.harness.resources import RUN_TAG_ENV

    tag = f"foreign{secrets.token_hex(6)}"
    sleeper = subprocess.run(  # re-parented away from us, like another run's process
        ["sh", "-c", "sleep 20 >/dev/null 2>&1 & echo $!"], stdout=subprocess.PIPE, check=True,
        env=dict(os.environ, **{RUN_TAG_ENV: tag}), timeout=10).stdout.split()[0]
    theirs, ours = f"/leak-{tag}-{secrets.token_hex(4)}", _name()
    try:
        before = audit.take()
        for name in (theirs, ours):
            posix_ipc.Semaphore(name, posix_ipc.O_CREX, 0o600, 0).close()
        found = audit.leaks(before, audit.take())
        assert not [line for line in found if tag in line], found
        assert [line for line in found if ours in line], found  # the rule is not "ignore everything"
    finally:
        os.kill(int(sleeper), 9)
        for name in (theirs, ours):
            try:
                posix_ipc.unlink_semaphore(name)
            except posix_ipc.ExistentialError:
                pass


def test_a_segment_keyed_with_another_live_runs_tag_is_that_runs_business() -> None:
    """The same for System V, whose objects have no name: a key derived from the run's tag
    (``tag_key_base``) marks them, as the chaos gallery's leaking segment does."""
    from ipc_specs.harness.resources import RUN_TAG_ENV, tag_key_base

    tag = f"foreign{secrets.token_hex(6)}"
    sleeper = subprocess.run(
        ["sh", "-c", "sleep 20 >/dev/null 2>&1 & echo $!"], stdout=subprocess.PIPE, check=True,
        env=dict(os.environ, **{RUN_TAG_ENV: tag}), timeout=10).stdout.split()[0]
    before = audit.take()
    seg = sysv_ipc.SharedMemory(tag_key_base(tag) | secrets.randbelow(1 << 16), sysv_ipc.IPC_CREX, mode=0o600,
                                size=4096)
    seg.detach()
    try:
        assert _leaks(before) == []
    finally:
        os.kill(int(sleeper), 9)
        sysv_ipc.remove_shared_memory(seg.id)
