"""The harness itself: verdicts for hangs, crashes and early exits; cleanup; safe names."""

from __future__ import annotations

import os
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time
from typing import Any, FrozenSet, Iterator, List

import pytest
from hypothesis import strategies as st

from ipc_specs import Harness, Role, Violation
from ipc_specs.harness import placements
from ipc_specs.harness.outcome import HangFound
from ipc_specs.harness.placements import PLACEMENTS
from ipc_specs.harness.resources import (
    ResourceRoot,
    Scope,
    adopt_multiprocessing_tempdir,
    register_remover,
    sweep_debris,
    unguessable_name,
)
from ipc_specs.harness.worker import Proc


class NullChannel:
    """A channel with nothing to share: lets a test run arbitrary role bodies."""

    def open_reader(self, **kw: Any) -> None: ...

    def open_writer(self, **kw: Any) -> None: ...

    def detach(self) -> None: ...

    def teardown(self) -> None: ...


class NullBackend:
    name = "null"
    kind = "stream"
    wiring = "named"
    capabilities: FrozenSet[str] = frozenset({"thread_safe"})

    def setup(self, scope: Scope) -> NullChannel:
        return NullChannel()


def sleeps_forever(proc: Proc) -> None:
    proc.call("block", time.sleep, 3600)


def dies_by_signal(proc: Proc, signum: int) -> None:
    proc.call("kill_self", os.kill, os.getpid(), signum)


def exits_early(proc: Proc) -> None:
    os._exit(3)


def returns(proc: Proc, value: Any) -> Any:
    return value


def hoards(proc: Proc) -> None:
    hoard = []
    while True:
        hoard.append(b"x" * (8 << 20))


def blocks_sigabrt_and_sleeps(proc: Proc) -> None:
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGABRT})
    proc.call("block", time.sleep, 3600)


@pytest.fixture
def harness() -> Iterator[Harness]:
    h = Harness(deadline_s=1.5, shrink=False)
    yield h
    assert h.close() == []


def _case(h: Harness, placement: str = "fork") -> Any:
    return h.case(NullBackend(), "bytes_arrive_complete_and_in_order", placement)


@pytest.mark.parametrize("placement", ["fork", "spawn"])
def test_a_hang_is_a_violation_naming_the_operation_and_its_stack(harness: Harness, placement: str) -> None:
    with pytest.raises(HangFound) as found:
        _case(harness, placement).run([Role("P", sleeps_forever)])
    v = found.value.violation
    assert "P hung in block" in v.got
    assert "sleeps_forever" in str(v)  # the stack at the deadline names the function


def test_a_hang_in_a_thread_is_reported_without_hanging_the_suite(harness: Harness) -> None:
    with pytest.raises(HangFound) as found:
        _case(harness, "thread").run([Role("T", sleeps_forever)])
    assert "T hung in block" in found.value.violation.got


def sleeps_past_the_deadline(proc: Proc) -> None:
    proc.call("block", time.sleep, 2.5)


def test_a_thread_that_outlives_its_example_ends_quietly(harness: Harness, monkeypatch: Any) -> None:
    """A thread cannot be killed: once its example is over and swept, it finds no directory to
    leave its result in, and must end without an exception of its own (pytest warns of those)."""
    raised: List[BaseException] = []
    monkeypatch.setattr("threading.excepthook", lambda args: raised.append(args.exc_value))
    with pytest.raises(HangFound):
        _case(harness, "thread").run([Role("T", sleeps_past_the_deadline)])
    time.sleep(2.5)
    assert raised == []


@pytest.mark.parametrize("signum", [signal.SIGSEGV, signal.SIGBUS, signal.SIGKILL])
def test_death_by_signal_is_reported_with_the_signal_name(harness: Harness, signum: int) -> None:
    out = _case(harness).run([Role("P", dies_by_signal, (signum,))])
    with pytest.raises(Violation) as caught:
        out.value("P")
    assert f"died by {signal.Signals(signum).name}" in caught.value.got
    assert "kill_self" in caught.value.got


def test_early_exit_is_reported_with_its_code(harness: Harness) -> None:
    out = _case(harness).run([Role("P", exits_early)])
    with pytest.raises(Violation, match="exited early with code 3"):
        out.value("P")


def closes_every_inherited_fd_then_sleeps(proc: Proc, seconds: float) -> str:
    os.closerange(3, 1024)  # the finish-line pipe too: the harness must not take that as done
    time.sleep(seconds)
    return "slept"


def test_a_role_that_closes_the_finish_line_is_still_waited_for(harness: Harness) -> None:
    out = _case(harness).run([Role("P", closes_every_inherited_fd_then_sleeps, (0.3,)),
                              Role("Q", returns, (1,))])
    assert out.values() == {"P": "slept", "Q": 1}


def test_finished_fork_workers_are_reaped_by_settle(harness: Harness) -> None:
    _case(harness).run([Role(f"P{i}", returns, (i,)) for i in range(3)])
    exiting = list(placements._EXITING)
    assert len(exiting) == 3  # each left its result, so none was waited for
    harness.settle()
    assert placements._EXITING == []
    for pid in exiting:
        with pytest.raises(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)  # reaped already


def test_settle_kills_a_finished_worker_that_does_not_exit() -> None:
    pid = os.fork()
    if pid == 0:  # stands for a worker past its result but stopped before it exits
        os.kill(os.getpid(), signal.SIGSTOP)
        os._exit(0)
    placements._EXITING.append(pid)
    placements.settle_forked(timeout_s=0.2)
    with pytest.raises(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)  # reaped already


@pytest.mark.parametrize("placement", PLACEMENTS)
def test_every_placement_returns_values(harness: Harness, placement: str) -> None:
    out = _case(harness, placement).run([Role(f"P{i}", returns, (i,)) for i in range(4)])
    assert out.values() == {f"P{i}": i for i in range(4)}


def test_a_hang_that_blocks_the_abort_signal_is_still_ended(harness: Harness) -> None:
    with pytest.raises(HangFound) as found:  # SIGKILL after the grace period
        _case(harness).run([Role("P", blocks_sigabrt_and_sleeps)])
    assert "P hung in block" in found.value.violation.got
    assert "no stack" in str(found.value.violation)


@pytest.mark.parametrize("placement", ["fork", "spawn"])
def test_unbounded_allocation_is_a_memory_error_in_the_worker(placement: str) -> None:
    h = Harness(deadline_s=30, shrink=False, worker_memory_mib=64)
    try:
        out = _case(h, placement).run([Role("P", hoards)])
        with pytest.raises(Violation, match="raised MemoryError"):
            out.value("P")
    finally:
        assert h.close() == []


def _always_fails(case: Any) -> Any:
    def body(x: int) -> None:
        raise Violation(case.invariant.id, got="x", expected="y", call="z")
    return body


def test_a_failure_every_replay_repeats_is_fail(harness: Harness) -> None:
    case = _case(harness)
    with pytest.raises(Violation) as caught:
        case.explore(_always_fails(case), x=st.just(1))
    assert caught.value.replays == (3, 3) and not caught.value.flaky
    assert "FAIL (the minimal example failed 3 of 3 replays)" in str(caught.value)


def test_a_failure_some_replays_do_not_repeat_is_flaky_with_its_rate(harness: Harness) -> None:
    case = _case(harness)
    calls: List[int] = []

    def every_other(x: int) -> None:
        calls.append(x)
        if len(calls) % 2 == 0:
            raise Violation(case.invariant.id, got="x", expected="y", call="z")

    with pytest.raises(Violation) as caught:
        case.explore(every_other, x=st.integers(0, 3))
    failed, runs = caught.value.replays or (0, 0)
    assert caught.value.flaky and runs == 3 and failed < runs
    assert "FLAKY (" in str(caught.value)
    assert f"the minimal example failed {failed} of 3 replays)" in str(caught.value)


@pytest.mark.parametrize(("intermittent", "failed", "runs", "line"), [
    (True, 3, 3, "FAIL (found intermittently; the minimal example failed 3 of 3 replays)"),
    (True, 1, 3, "FLAKY (found intermittently; the minimal example failed 1 of 3 replays)"),
    (False, 2, 3, "FLAKY (the minimal example failed 2 of 3 replays)"),
    (False, 3, 3, "FAIL (the minimal example failed 3 of 3 replays)"),
    (True, 0, 0, "FLAKY (found intermittently)"),
    (False, 0, 0, "FAIL"),
])
def test_flaky_is_decided_by_the_replays_alone(intermittent: bool, failed: int, runs: int, line: str) -> None:
    """One line, one meaning: being found intermittently is a note, the replays decide FLAKY
    (only with no replays at all does Hypothesis's own observation decide)."""
    v = Violation("x", got="g", expected="e", call="c")
    v.intermittent = intermittent
    v.replayed(failed, runs)
    assert v.verdict_line() == line
    assert str(v).endswith(f"({line})") and str(v).count("FAIL") + str(v).count("FLAKY") == 1


def test_pool_workers_are_reused_after_a_hang(harness: Harness) -> None:
    with pytest.raises(HangFound):
        _case(harness, "spawn").run([Role("P", sleeps_forever)])
    out = _case(harness, "spawn").run([Role("P", returns, ("again",))])
    assert out.value("P") == "again"


def test_names_carry_128_random_bits_and_the_worker_tag() -> None:
    names = {unguessable_name() for _ in range(100)}
    assert len(names) == 100
    token = next(iter(names)).rsplit("_", 1)[1]
    assert len(token) == 32 and int(token, 16) >= 0


def test_roots_and_example_directories_are_private() -> None:
    root = ResourceRoot()
    try:
        scope = root.scope()
        for path in (root.path, scope.directory):
            assert stat.S_IMODE(os.stat(path).st_mode) == 0o700
    finally:
        root.close()
    assert not os.path.exists(root.path)


def test_registered_objects_are_removed_at_scope_end_even_if_one_cleanup_fails() -> None:
    root = ResourceRoot()
    removed = []
    scope = root.scope()
    scope.register("test-object", "a", lambda: removed.append("a"))
    scope.register("test-object", "b", lambda: 1 / 0)
    scope.register("test-object", "c", lambda: removed.append("c"))
    problems = root.release(scope)
    assert removed == ["c", "a"] and len(problems) == 1 and "ZeroDivisionError" in problems[0]
    root.close()


def test_debris_of_a_dead_owner_is_swept_with_its_journalled_objects(tmp_path: Any) -> None:
    swept = []
    register_remover("test-debris", swept.append)
    root = ResourceRoot(parent=str(tmp_path))
    root.journal_add("test-debris", "/ipcc_left_behind")
    with open(os.path.join(root.path, "owner"), "w") as f:
        f.write("999999999")  # no such process: the owner "crashed"
    lines = sweep_debris(str(tmp_path))
    assert swept == ["/ipcc_left_behind"]
    assert len(lines) == 1 and not os.path.exists(root.path)


def test_a_root_without_owner_is_swept_only_when_stale(tmp_path: Any) -> None:
    fresh = tmp_path / "ipcc-being-made"  # mkdtemp done, "owner" not written yet
    fresh.mkdir(mode=0o700)
    stale = tmp_path / "ipcc-stale"
    stale.mkdir(mode=0o700)
    old = time.time() - 2 * 3600
    os.utime(stale, (old, old))
    lines = sweep_debris(str(tmp_path))
    assert fresh.is_dir() and not stale.exists()
    assert len(lines) == 1 and "ipcc-stale" in lines[0]


def test_live_roots_are_not_swept(tmp_path: Any) -> None:
    root = ResourceRoot(parent=str(tmp_path))
    assert sweep_debris(str(tmp_path)) == []
    assert os.path.isdir(root.path)
    root.close()


def test_a_symlink_planted_at_the_root_prefix_is_not_followed(tmp_path: Any) -> None:
    victim = tempfile.mkdtemp(dir=str(tmp_path))
    os.symlink(victim, os.path.join(str(tmp_path), "ipcc-planted"))
    sweep_debris(str(tmp_path))
    assert os.path.isdir(victim)


_FORKSERVER_USER = """
import multiprocessing, os, signal, sys
from ipc_specs.harness.resources import adopt_multiprocessing_tempdir
if __name__ == "__main__":
    path = adopt_multiprocessing_tempdir()
    child = multiprocessing.get_context("forkserver").Process(target=os.getpid)
    child.start()
    child.join()
    print(path, sorted(os.listdir(path)), flush=True)
    if sys.argv[1] == "killed":
        os.kill(os.getpid(), signal.SIGKILL)
"""


@pytest.mark.parametrize("ending", ["exits", "killed"])
def test_multiprocessing_temp_dir_is_removed_at_exit_or_swept_after_a_kill(tmp_path: Any, ending: str) -> None:
    """multiprocessing's own ``pymp-*`` dir (the forkserver's socket) would survive a SIGKILL."""
    script = tmp_path / "user.py"
    script.write_text(_FORKSERVER_USER)
    # A short base: under pytest-xdist tmp_path is too long for a socket path inside it
    # (the function then leaves multiprocessing alone, on purpose).
    base = tempfile.mkdtemp(prefix="mpt-")
    try:
        env = dict(os.environ, IPCC_TMPDIR=base, TMPDIR=str(tmp_path))
        out = subprocess.run([sys.executable, str(script), ending], env=env, capture_output=True, text=True,
                             timeout=120)
        path, listing = out.stdout.split(" ", 1)
        assert os.path.dirname(path) == base and "listener-" in listing, out
        assert not list(tmp_path.glob("pymp-*")), "multiprocessing made its own temp dir anyway"
        if ending == "exits":
            assert out.returncode == 0 and not os.path.exists(path), out
        else:
            assert out.returncode == -signal.SIGKILL and os.path.isdir(path), out
            lines = sweep_debris(base)
            assert len(lines) == 1 and path in lines[0] and not os.path.exists(path)
    finally:
        shutil.rmtree(base, ignore_errors=True)


def test_multiprocessing_temp_dir_is_left_alone_when_a_socket_would_not_fit(tmp_path: Any,
                                                                             monkeypatch: Any) -> None:
    import multiprocessing.process

    monkeypatch.setenv("IPCC_TMPDIR", str(tmp_path / ("x" * 100)))
    monkeypatch.setitem(multiprocessing.process.current_process()._config, "tempdir", None)
    assert adopt_multiprocessing_tempdir() is None


def test_a_harness_leaves_no_root_behind() -> None:
    h = Harness(deadline_s=2)
    path = h.root.path
    _case(h).run([Role("P", returns, (1,))])
    assert h.close() == []
    assert not os.path.exists(path)


def test_the_name_tag_is_unique_per_run_and_inherited_by_children() -> None:
    import subprocess
    import sys

    from ipc_specs.harness.resources import RUN_TAG_ENV, worker_tag

    tag = worker_tag()
    env = {k: v for k, v in os.environ.items() if k != RUN_TAG_ENV}
    code = "from ipc_specs.harness.resources import worker_tag; print(worker_tag())"
    other_run = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True).stdout
    child = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout
    assert child.strip() == tag  # a process started from this run shares its tag
    assert other_run.strip() and other_run.strip() != tag  # another run (even with the same gw id) does not


def _write_later(w: int, c_level: bool) -> None:
    """Write one byte after the reader has been interrupted, however loaded the machine.

    os.read: once the role's handler has counted a signal (the read then retries and
    gets the byte).  ctypes: half a second later, a thousand storm periods: its read
    returns at the first signal, which must not find the byte already there.
    """
    import signal

    end = time.monotonic() + 0.5
    while time.monotonic() < end:
        storm = getattr(signal.getsignal(signal.SIGWINCH), "__self__", None)
        if not c_level and (storm is None or storm.count):
            break
        time.sleep(0.001)
    os.write(w, b"x")


def reads_a_late_byte(proc: Proc, c_level: bool) -> Any:
    """Block in read(2) until a thread writes; ``c_level`` reads through ctypes, which,
    unlike os.read, does not retry after EINTR."""
    import ctypes
    import threading

    r, w = os.pipe()
    threading.Thread(target=_write_later, args=(w, c_level), daemon=True).start()
    if not c_level:
        return proc.call("read", os.read, r, 1)
    libc = ctypes.CDLL(None, use_errno=True)
    buf = ctypes.create_string_buffer(1)
    n = proc.call("read", libc.read, r, buf, 1)
    return n if n >= 0 else f"errno {ctypes.get_errno()}"


@pytest.mark.parametrize("placement", ["fork", "spawn"])
def test_the_interrupt_fault_lands_and_pep475_retries_through_it(harness: Harness, placement: str) -> None:
    """The drawn fault must reach the role's blocking calls, or a check that draws it
    could never fail because of it."""
    import errno

    case = _case(harness, placement)
    case.interrupt_period_s = 0.0005
    out = case.run([Role("P", reads_a_late_byte, (True,))])
    assert out.value("P") == f"errno {errno.EINTR}"  # a C-level read sees the signal
    out = case.run([Role("P", reads_a_late_byte, (False,))])
    assert out.value("P") == b"x"  # os.read retries (PEP 475)
    (note,) = out.history.of("P", "interrupted")
    assert int(note.detail.split()[0]) > 0, note
    case.interrupt_period_s = 0.0
    out = case.run([Role("P", reads_a_late_byte, (True,))])
    assert out.value("P") == 1 and not out.history.of("P", "interrupted")


def test_multiprocessing_shared_heap_arenas_are_not_leaks() -> None:
    """multiprocessing keeps each heap arena's descriptor open for reuse after its objects
    are freed: a backend built on Value or RawArray must not get ERROR for it."""
    import multiprocessing

    from ipc_specs.harness import audit

    before = audit.take()
    block = multiprocessing.RawArray("b", 1 << 20)  # a fresh arena: a new descriptor
    big = multiprocessing.RawArray("b", 8 << 20)  # one the heap discards when freed, closed only when collected
    del block, big
    after = audit.take()
    _, infra_fds = audit.infrastructure()
    assert [f for f in audit.leaks(before, after, ignore_fds=infra_fds) if "pym-" in f] == []


def test_a_role_that_raised_is_labelled_with_the_call_that_raised() -> None:
    """Not with a note the harness wrote after it (the interrupt storm's count)."""
    from ipc_specs.harness import history as hist
    from ipc_specs.harness.outcome import Outcome
    from ipc_specs.harness.placements import RoleOutcome

    events = [hist.Event("C", hist.INVOKE, "receive", "", 1), hist.Event("C", hist.FAIL, "receive", "MemoryError", 2),
              hist.Event("C", hist.OK, "interrupted", "3 times by SIGWINCH", 3)]
    out = Outcome("x", {"C": RoleOutcome("C", "raised", error_type="MemoryError")}, hist.History({"C": events}, 0))
    assert out.violation_for("C", expected="e").call == "receive"


# A wall-clock step during a wait, as CI saw (2026-12-06): mp.Semaphore.acquire(timeout=0.053)
# returned after 52.749 ms by CLOCK_MONOTONIC. sem_timedwait's deadline is on CLOCK_REALTIME.
WAIT_TABLE = [
    # (monotonic ms, wall-clock ms, timeout ms, waited it?)
    (52.749, 53.010, 53, True),   # the wall clock was stepped forward: its deadline was kept
    (53.020, 52.600, 53, True),   # stepped back under a monotonic wait: that wait was kept
    (52.990, 52.990, 53, True),   # a microsecond's rounding of a float deadline
    (26.500, 26.500, 53, False),  # half the timeout, on both clocks: a bug whatever the clock
    (0.000, 0.000, 1000, False),  # seconds read as ms: a bug whatever the clock
]


@pytest.mark.parametrize("mono_ms, wall_ms, timeout_ms, waited", WAIT_TABLE)
def test_a_wait_is_judged_by_either_clock_a_timeout_may_be_specified_on(
        mono_ms: float, wall_ms: float, timeout_ms: int, waited: bool) -> None:
    from ipc_specs.harness import history as hist

    start = hist.Event("T", hist.INVOKE, "acquire_timeout", "", 1_000_000, 5_000_000_000)
    end = hist.Event("T", hist.OK, "acquire_timeout", "", 1_000_000 + int(mono_ms * 1e6),
                     5_000_000_000 + int(wall_ms * 1e6))
    assert hist.waited_at_least(start, end, timeout_ms) is waited
    assert ("wall clock" in hist.describe_wait(start, end)) is (abs(mono_ms - wall_ms) >= 0.005)
    # What came at the end is owed to the wait only if it came before both clocks' deadlines.
    assert hist.before_deadline(start, end, timeout_ms + 1) is (max(mono_ms, wall_ms) < timeout_ms + 1)


def test_a_history_line_carries_both_clocks(tmp_path: Any) -> None:
    from ipc_specs.harness import history as hist

    rec = hist.Recorder("P", str(tmp_path / "h"))
    rec.emit(hist.INVOKE, "send", "tab\there")
    rec.close()
    (event,) = hist.load("P", str(tmp_path / "h"))
    assert (event.op, event.detail) == ("send", "tab here")
    assert abs(event.rt_ns - time.time_ns()) < 60e9 and 0 < event.t_ns <= time.monotonic_ns()


def sleeps_two_seconds(proc: Proc) -> str:
    proc.call("nap", time.sleep, 2.0)
    return "rested"


@pytest.mark.parametrize("placement", ["fork", "thread"])
def test_a_run_may_extend_its_deadline_but_never_shorten_it(harness: Harness, placement: str) -> None:
    """``run(..., deadline=S)``: an example that waits long on purpose (an untimed queue call
    outwaiting a library's default) gets S seconds; the harness's own deadline (1.5 s here)
    still holds for every other run, and a shorter S changes nothing."""
    case = _case(harness, placement)
    assert case.run([Role("P", sleeps_two_seconds)], deadline=4.0).value("P") == "rested"
    if placement == "thread":
        return  # a thread cannot be stopped: one left to finish after its example would write into nothing
    with pytest.raises(HangFound) as found:
        case.run([Role("P", sleeps_two_seconds)], deadline=0.1)
    assert "(deadline 1.5s)" in found.value.violation.got
