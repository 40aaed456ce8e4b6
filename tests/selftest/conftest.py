"""Fixtures for the project's own tests (not part of the installed conformance suite)."""

from __future__ import annotations

from typing import Iterator

import pytest

from ipc_specs import Harness


@pytest.fixture(scope="module")
def quick_harness() -> Iterator[Harness]:
    """A short deadline, no shrinking, derandomized examples, no replays: verdicts, fast and repeatable.

    Replays only tell FAIL from FLAKY; either way the check raises the same Violation, which is
    all the gallery asserts (test_harness.py and test_chaos.py test the replays themselves).
    A replayed hang cost a second deadline.
    """
    h = Harness(deadline_s=3.0, profile="ci", shrink=False, replays=0)  # derandomized: the same examples every run
    yield h
    assert h.close() == []
