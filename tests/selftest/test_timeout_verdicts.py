"""A timeout verdict tells "fired but swallowed" from "never fired", and the history shows
the scope's events that say which: what it armed, and the SIGALRMs delivered while it
was active (``ipc_specs.timeouts.observe``), seen without replacing the backend's handler."""

from __future__ import annotations

import pytest

from ipc_impls.broken import Exhibit, all_exhibits
from ipc_specs import Harness, Violation, check


def _verdict(name: str, harness: Harness) -> Violation:
    exhibit: Exhibit = next(e for e in all_exhibits() if e.backend.name == name)
    with pytest.raises(Violation) as caught:
        check(exhibit.backend, exhibit.breaks, placement=exhibit.placement, harness=harness)
    return caught.value


def test_a_swallowed_expiry_reads_fired_but_swallowed(quick_harness: Harness) -> None:
    v = _verdict("broken-swallowing-timeout", quick_harness)
    assert "fired but swallowed" in v.got and "SIGALRM delivered while it was active" in v.got, v.got
    events = {line.split()[3] for line in v.history.splitlines()[1:] if len(line.split()) > 3}
    assert {"armed", "fired", "swallowed"} <= events, v.history
    assert "ITIMER_REAL" in next(line for line in v.history.splitlines() if " armed " in line)


def test_a_timer_never_armed_reads_never_fired(quick_harness: Harness) -> None:
    v = _verdict("broken-whole-second-alarm-timeout", quick_harness)
    assert "never fired" in v.got and "no SIGALRM was delivered" in v.got, v.got
    assert "no ITIMER_REAL armed" in v.history and "no_sigalrm" in v.history, v.history
    assert " fired " not in v.history, v.history
