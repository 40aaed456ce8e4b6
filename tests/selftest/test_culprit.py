"""Reports name the culprit: the role that raised first, not the peer left waiting on it; the
drawn example of a FLAKY verdict; who holds the write end a hung reader waits on; and the
event that set a failure up, kept in the history excerpt."""

from __future__ import annotations

import os
import time
from typing import Iterator

import pytest
from hypothesis import strategies as st

from ipc_specs import Harness, Role, Violation
from ipc_specs.harness import history as hist
from ipc_specs.harness.outcome import HangFound, Outcome
from ipc_specs.harness.placements import RoleOutcome
from ipc_specs.harness.worker import Proc

from .test_harness import NullBackend


@pytest.fixture
def harness() -> Iterator[Harness]:
    h = Harness(deadline_s=1.5, shrink=False, replays=1)
    yield h
    assert h.close() == []


def _case(h: Harness, placement: str = "fork"):  # type: ignore[no-untyped-def]
    return h.case(NullBackend(), "bytes_arrive_complete_and_in_order", placement)


def raises_at_once(proc: Proc) -> None:
    proc.call("send", _fail, "the sender's own bug")


def _fail(message: str) -> None:
    raise ValueError(message)


def waits_for_the_sender(proc: Proc) -> None:
    proc.call("receive", proc.wait_for, "sent")  # never signalled: the sender raised first


def fails_later_because_the_peer_is_gone(proc: Proc) -> None:
    time.sleep(0.05)
    proc.call("receive", _fail, "peer gone")


@pytest.mark.parametrize("placement", ["fork", "spawn"])
def test_a_hang_names_the_role_that_raised_not_the_peer_left_waiting(harness: Harness, placement: str) -> None:
    with pytest.raises(HangFound) as found:
        _case(harness, placement).run([Role("R", waits_for_the_sender), Role("S", raises_at_once)])
    got = found.value.violation.got
    assert got.startswith("S raised ValueError: the sender's own bug in"[:33]), got
    assert "left waiting on it: R hung in receive" in got, got
    assert found.value.violation.call == "send"


def test_a_failed_value_names_the_role_that_failed_first(harness: Harness) -> None:
    out = _case(harness).run([Role("R", fails_later_because_the_peer_is_gone), Role("S", raises_at_once)])
    with pytest.raises(Violation) as caught:
        out.value("R")
    assert caught.value.got.startswith("S raised ValueError: the sender's own bug"), caught.value.got
    assert "then R raised ValueError: peer gone" in caught.value.got
    assert caught.value.call == "send"


def reads_forever(proc: Proc, r: int, w: int) -> bytes:
    return proc.call("read", os.read, r, 1)  # its own inherited copy of w keeps EOF away


def test_a_reader_that_never_gets_eof_is_told_who_holds_the_write_end(harness: Harness) -> None:
    r, w = os.pipe()
    try:
        with pytest.raises(HangFound) as found:
            _case(harness).run([Role("R", reads_forever, (r, w))])
    finally:
        os.close(r)
        os.close(w)
    text = str(found.value.violation)
    assert f"R is blocked reading fd {r} (pipe:[" in text, text
    assert f"the parent (the test process) (pid {os.getpid()}, fd {w})" in text, text
    assert f", fd {w})" in text.split("the parent")[0] + text.split("the parent")[1]  # R's own copy too
    assert "R (pid " in text, text


def test_a_flaky_verdict_shows_the_example_as_drawn(harness: Harness) -> None:
    calls = []

    def fails_once(n: int) -> None:
        calls.append(n)
        if len(calls) == 1:
            raise Violation("bytes_arrive_complete_and_in_order", got="a glitch", expected="none", call="read")

    with pytest.raises(Violation) as caught:
        _case(harness).explore(fails_once, n=st.integers(0, 5))
    assert caught.value.flaky, str(caught.value)
    assert f"Failing test case (as drawn, not shrunk: it did not fail again): example(n={calls[0]!r}, " \
        in str(caught.value), str(caught.value)


def test_the_event_that_set_a_failure_up_stays_in_the_excerpt() -> None:
    """W closes, then notes thirty things; R's read fails after them.  The excerpt around
    R's failure keeps W's close, which is what set it up."""
    events = {"W": [hist.Event("W", hist.INVOKE, "close", "", 1), hist.Event("W", hist.OK, "close", "", 2)]
              + [hist.Event("W", hist.OK, "note", str(i), 10 + i) for i in range(30)],
              "R": [hist.Event("R", hist.INVOKE, "read", "", 45), hist.Event("R", hist.FAIL, "read", "EOFError", 50)]}
    history = hist.History(events, 0)
    out = Outcome("x", {"R": RoleOutcome("R", "raised", error_type="EOFError", message=""),
                        "W": RoleOutcome("W", "ok")}, history)
    excerpt = out.violation_for("R", expected="data").history
    assert "← close" in excerpt and "EOFError" in excerpt, excerpt
