"""What the lock checks need from the harness (Role.exit) and from the semaphore checks
(a lock is created free)."""

from __future__ import annotations

import atexit
import multiprocessing.util
import os
import weakref
from typing import Any, Iterator, List

import pytest

from ipc_impls.semaphores import MpLockBackend
from ipc_specs import Harness, Role, check
from ipc_specs.harness.worker import Proc
from ipc_specs.semaphores import protocol as sp

from .test_harness import NullBackend


def _mark(path: str) -> None:
    with open(path, "w") as f:
        f.write(str(os.getpid()))


class _Cycle:
    """Freed only by the collector (a reference cycle), whose ``__del__`` leaves a mark."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.me = self

    def __del__(self) -> None:
        _mark(self.path)


class _Anchor:
    pass


_KEPT: List[Any] = []


def registers_exit_code(proc: Proc, directory: str) -> int:
    atexit.register(_mark, os.path.join(directory, f"atexit-{proc.name}"))
    obj = _Cycle(os.path.join(directory, f"del-{proc.name}"))
    del obj
    anchor = _Anchor()
    _KEPT.append(anchor)  # a finalizer's object alive at exit: finalize(atexit=True) runs it
    weakref.finalize(anchor, _mark, os.path.join(directory, f"finalize-{proc.name}"))
    multiprocessing.util.Finalize(anchor, _mark, (os.path.join(directory, f"mp-finalize-{proc.name}"),),
                                  exitpriority=0)
    return os.getpid()


def waits_for_exit(proc: Proc, other: str) -> bool:
    proc.wait_for(f"exited-{other}")
    return True


@pytest.fixture
def harness() -> Iterator[Harness]:
    h = Harness(deadline_s=3.0, shrink=False)
    yield h
    assert h.close() == []


@pytest.mark.parametrize("ending", ["normal", "_exit"])
def test_a_normal_exit_runs_the_roles_exit_code_and_nothing_inherited(harness: Harness, tmp_path: Any,
                                                                        ending: str) -> None:
    d = str(tmp_path)
    parent = os.getpid()

    def inherited(what: str) -> None:  # would mark only if run in a worker
        if os.getpid() != parent:
            _mark(os.path.join(d, f"inherited-{what}"))

    atexit.register(inherited, "atexit")
    holder = _Anchor()
    fin = weakref.finalize(holder, inherited, "finalize")
    mp_fin = multiprocessing.util.Finalize(holder, inherited, ("mp-finalize",), exitpriority=0)
    try:
        case = harness.case(NullBackend(), "bytes_arrive_complete_and_in_order", "fork")
        out = case.run([Role("P", registers_exit_code, (d,), opens=False, exit=ending),
                        Role("Q", waits_for_exit, ("P",), opens=False)])
        assert out.value("Q") is True  # the exit is announced either way
        out.value("P")
    finally:
        atexit.unregister(inherited)
        fin.detach()
        mp_fin.cancel()
    left = sorted(os.listdir(d))
    if ending == "normal":
        assert left == ["atexit-P", "del-P", "finalize-P", "mp-finalize-P"], left
    else:  # os._exit, as before: no exit code runs (the collector may still have run __del__)
        assert [n for n in left if n != "del-P"] == [], left


class FewerClaimsLock(MpLockBackend):
    """multiprocessing.Lock claiming less than it could (not ``bounded``): still a lock,
    created free, which create(0) refuses."""

    name = "mp-lock-fewer-claims"
    capabilities = frozenset({sp.TIMEOUTS, sp.THREAD_SAFE})


def test_a_lock_is_not_created_at_zero_by_the_value_check(harness: Harness) -> None:
    check(FewerClaimsLock(), "value_follows_acquires_and_releases", placement="fork", harness=harness)
