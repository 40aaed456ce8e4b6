"""A hang is called before the deadline only when nothing can end it (stillness.py):
never while a peer still runs, sleeps in a timed wait, or a timer is pending."""

from __future__ import annotations

import os
import signal
import time
from typing import Any, Iterator

import pytest

from ipc_specs import Harness, Role, Violation
from ipc_specs.harness import stillness
from ipc_specs.harness.deadlines import longest_drawn_s
from ipc_specs.harness.outcome import HangFound
from ipc_specs.harness.worker import Proc

from .test_harness import NullBackend

pytestmark = pytest.mark.skipif(not stillness.supported(), reason="stillness is read from x86-64 Linux /proc")

DEADLINE_S = 10.0


@pytest.fixture
def harness() -> Iterator[Harness]:
    h = Harness(deadline_s=DEADLINE_S, shrink=False)
    yield h
    assert h.close() == []


def _fifo(proc: Proc, name: str) -> str:
    path = os.path.join(proc.task.directory, name)
    try:
        os.mkfifo(path, 0o600)
    except FileExistsError:
        pass
    return path


def reads_fifo(proc: Proc, name: str) -> bytes:
    """Blocks in open(2) and read(2) of a FIFO: waits without a timeout."""
    fd = proc.call("open", os.open, _fifo(proc, name), os.O_RDONLY)
    try:
        return proc.call("read", os.read, fd, 10)
    finally:
        os.close(fd)


def writes_fifo_after(proc: Proc, name: str, sleep_s: float, spin_s: float) -> None:
    """Sleeps (a timed wait), then computes without a system call, then writes."""
    time.sleep(sleep_s)
    end = time.monotonic() + spin_s
    while time.monotonic() < end:
        pass
    fd = proc.call("open", os.open, _fifo(proc, name), os.O_WRONLY)
    try:
        proc.call("write", os.write, fd, b"x")
    finally:
        os.close(fd)


def pauses_for_alarm(proc: Proc, seconds: int) -> str:
    signal.signal(signal.SIGALRM, lambda *a: None)
    signal.alarm(seconds)
    proc.call("pause", signal.pause)  # a wait without a timeout, which the alarm ends
    return "woken"


def polls_forever(proc: Proc) -> None:
    while True:
        time.sleep(0.05)  # timed waits, no history event: only an adaptive deadline calls it


def _case(h: Harness) -> Any:
    return h.case(NullBackend(), "bytes_arrive_complete_and_in_order", "fork")


@pytest.mark.parametrize("sleep_s, spin_s", [(2.5, 0.0), (0.0, 2.5)], ids=["peer-sleeping", "peer-computing"])
def test_a_role_waiting_for_a_live_peer_is_not_called_hung(harness: Harness, sleep_s: float, spin_s: float) -> None:
    out = _case(harness).run([Role("R", reads_fifo, ("f",)), Role("W", writes_fifo_after, ("f", sleep_s, spin_s))])
    assert out.value("R") == b"x"


def test_a_role_waiting_for_its_pending_alarm_is_not_called_hung(harness: Harness) -> None:
    out = _case(harness).run([Role("P", pauses_for_alarm, (3,))])
    assert out.value("P") == "woken"


def _closed_world_is_quiet() -> None:
    """An early call needs every other thread of this process (and every process it
    started) to be quiet too: a thread left sleeping by another test (the thread
    placement's hung roles sleep for an hour) might wake a role, so, by design, no
    early call is made then, and the test has nothing to show."""
    if stillness.snapshot() is None:
        why = f"this process is not quiet, so no early call is made by design: {stillness.last_reason}"
        if os.environ.get(MUST_BE_QUIET):
            pytest.fail(why)
        pytest.skip(why)


#: Set in the fresh interpreter of the test below: there the process is quiet, so a skip is a failure.
MUST_BE_QUIET = "IPCC_TEST_STILLNESS_MUST_BE_QUIET"
EARLY_CALL_TESTS = ("test_a_deadlock_is_called_before_the_deadline",
                    "test_polling_forever_is_called_at_the_adaptive_deadline_only_after_passing_examples",
                    "test_a_short_run_deadline_never_ends_a_role_that_runs")


def test_early_calls_are_checked_in_a_quiet_interpreter() -> None:
    """In a long session (under pytest-xdist, after the thread placement's hung roles have
    been left sleeping) the early-call tests skip by design; so they also run here, alone
    in a fresh interpreter, where skipping would be a failure."""
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-p", "no:xdist", "-q",
                          __file__, "-k", " or ".join(EARLY_CALL_TESTS)],
                         env=dict(os.environ, **{MUST_BE_QUIET: "1"}), capture_output=True, text=True, timeout=300)
    assert out.returncode == 0 and f"{len(EARLY_CALL_TESTS)} passed" in out.stdout, out.stdout[-3000:]


def test_a_deadlock_is_called_before_the_deadline(harness: Harness) -> None:
    _closed_world_is_quiet()
    with pytest.raises(Violation) as caught:  # shrinkable like any failure, not HangFound
        _case(harness).run([Role("A", reads_fifo, ("a",)), Role("B", reads_fifo, ("b",))])
    assert not isinstance(caught.value, HangFound)
    assert "A hung in open" in caught.value.got and "without a timeout" in caught.value.got, stillness.last_reason
    assert caught.value.hang  # and "without a timeout" above says stillness called it, not the deadline


def test_polling_forever_is_called_at_the_adaptive_deadline_only_after_passing_examples(harness: Harness) -> None:
    _closed_world_is_quiet()
    case = _case(harness)
    case.example = {}
    assert case._adaptive_s() is not None and case._adaptive_s() >= 4.0  # before any pass: the early floor
    case.passing, case.slowest_pass_s = 5, 0.01
    with pytest.raises(Violation) as caught:
        case.run([Role("P", polls_forever)])
    assert "adaptive deadline 2s" in caught.value.got
    # Never below the longest duration the example drew, tenfold.
    case.example = {"delay_ms": [5, 900]}
    assert case._adaptive_s() is None  # 2 + 9 s is not below the 10 s deadline


def test_longest_drawn_duration_reads_units_from_names() -> None:
    assert longest_drawn_s({"delay_ms": [3, 250], "pause_us": 500, "size": 10 ** 6}) == 0.25
    assert longest_drawn_s({"timeout_s": 1.5, "flags": True}) == 1.5


@pytest.mark.parametrize("line, untimed", [
    ("0 0x3 0x7f 0x1 0x0 0x0 0x0 0x7ffc 0x7f20", True),  # read
    ("7 0x55f7 0x1 0xffffffffffffffff 0x0 0x0 0x0 0x7ffc 0x7f20", True),  # poll(-1)
    ("7 0x55f7 0x1 0x1388 0x0 0x0 0x0 0x7ffc 0x7f20", False),  # poll(5000 ms)
    ("202 0x7f 0x80 0x0 0x0 0x0 0x0 0x7ffc 0x7f20", True),  # futex wait, no timeout
    ("202 0x7f 0x189 0x0 0x7ffc1 0x0 0xffffffff 0x7ffc 0x7f20", False),  # futex wait_bitset, timed
    ("230 0x1 0x1 0x7f03 0x0 0x0 0x0 0x7ffc 0x7f20", False),  # clock_nanosleep
    ("running", False),
    ("-1 0x7ffc 0x7f20", False),
])
def test_untimed_waits_are_told_from_timed_ones(line: str, untimed: bool) -> None:
    assert stillness.untimed_wait(line) is untimed


def spins(proc: Proc, seconds: float) -> str:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        pass
    return "done"


def test_a_short_run_deadline_never_ends_a_role_that_runs(harness: Harness) -> None:
    """``deadline=`` below the harness's bounds only a run that sleeps and records nothing:
    a role that computes (as a starved one on a loaded machine is runnable) goes on."""
    assert _case(harness).run([Role("P", spins, (2.5,))], deadline=0.5).value("P") == "done"
    harness.settle()  # the spinning role's worker is reaped (it may still be exiting)
    _closed_world_is_quiet()  # the second half is an early call
    with pytest.raises(Violation) as caught:
        _case(harness).run([Role("P", polls_forever)], deadline=0.5)
    assert "the example's own deadline 0.5s" in caught.value.got


def test_shrinking_stops_at_its_budget_and_reports_the_best_example() -> None:
    from hypothesis import strategies as st

    h = Harness(deadline_s=DEADLINE_S, profile="standard", replays=0, shrink_budget_s=0.0)
    try:
        case = _case(h)

        def body(x: int) -> None:
            if x >= 1:
                raise Violation(case.invariant.id, got=f"x={x}", expected="x < 1", call="body")

        with pytest.raises(Violation) as caught:
            case.explore(body, x=st.integers(0, 10 ** 6))  # a failing pinned one would not be shrunk at all
        assert "Best example after" in str(caught.value), caught.value
    finally:
        assert h.close() == []
