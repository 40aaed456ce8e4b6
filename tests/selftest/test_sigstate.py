"""The signal-state audit (``ipc_specs.harness.sigstate``) on states built by hand: what a
scope or a role may leave of ITIMER_REAL, which counts down between the two readings."""

from __future__ import annotations

from typing import Tuple

import pytest

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
