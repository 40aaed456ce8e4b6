"""The signal-state audit (``ipc_specs.harness.sigstate``) on states built by hand: what a
scope or a role may leave of ITIMER_REAL, which counts down between the two readings."""

from __future__ import annotations

import gc
from typing import Tuple

import pytest

from ipc_specs.harness import stalls
from ipc_specs.harness.sigstate import SignalState, changes


def state(left: float, every: float, read_at: float) -> SignalState:
    """ITIMER_REAL read as (left, every) within 100 µs from ``read_at`` (monotonic seconds)."""
    return SignalState((), frozenset(), (left, every), read_at, read_at + 0.0001)


TABLE = [
    # (before: left, every, read at), (after: ...), the change reported (None: restored)
    ((0.0, 0.0, 0.0), (0.0, 0.0, 5.0), None),                       # nothing armed, nothing left
    ((10.0, 0.0, 0.0), (5.0, 0.0, 5.0), None),                      # counted down as time passed
    ((3.0, 0.0, 0.0), (0.0, 0.0, 5.0), None),                       # expired meanwhile: not a change
    ((3600.0, 0.0, 0.0), (0.0, 0.0, 0.2), "disarmed"),              # gone with an hour left
    ((3600.0, 0.0, 0.0), (3600.0, 0.0, 0.2), "pushed later"),       # handed back as it read at entry
    ((0.0, 0.0, 0.0), (0.5, 0.0, 0.2), "left armed"),               # armed by the scope, never disarmed
    ((10.0, 1.0, 0.0), (9.0, 0.0, 1.0), "changed"),                 # its interval lost
]


@pytest.mark.parametrize("before, after, change", TABLE)
def test_itimer_real_is_judged_by_the_time_between_the_readings(
        before: Tuple[float, float, float], after: Tuple[float, float, float], change: str) -> None:
    found = changes(state(*before), state(*after))
    if change is None:
        assert found == []
    else:
        assert len(found) == 1 and change in found[0], found


def stalled_state(left: float, read_at: float, run_queue_ms: float, gc_ms: float) -> SignalState:
    mark = stalls.Mark()
    mark.run_queue, mark.gc, mark.steal = int(run_queue_ms * 1e6), int(gc_ms * 1e6), 0
    return SignalState((), frozenset(), (left, 0.0), read_at, read_at + 0.0001, mark)


STALLS = [
    # ms the caller's timer came back late, ms of run-queue wait and of collection seen, reported?
    (0.5, 0.0, 0.0, False),     # within the rounding
    (3.0, 0.0, 0.0, True),      # no stall seen: late is late
    (3.0, 2.5, 0.0, False),     # the thread waited for a CPU between reading the clock and arming
    (3.0, 1.0, 1.5, False),     # ... or the collector ran there
    (50.0, 2.5, 1.5, True),     # handed back as it read at entry: late by the scope, not by the stalls
]


@pytest.mark.parametrize("late_ms, run_queue_ms, gc_ms, reported", STALLS)
def test_a_timer_may_come_back_late_by_the_stalls_seen_between_the_readings(
        late_ms: float, run_queue_ms: float, gc_ms: float, reported: bool) -> None:
    before = stalled_state(3600.0, 0.0, 0.0, 0.0)
    after = stalled_state(3600.0 - 0.2 + late_ms / 1000, 0.2, run_queue_ms, gc_ms)
    found = changes(before, after)
    assert (found != [] and "pushed later" in found[0]) == reported, found


def test_a_collection_counts_as_a_stall() -> None:
    first = stalls.mark()
    gc.collect()
    assert first.stalled_s(stalls.mark()) > 0.0
