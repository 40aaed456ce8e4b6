"""Fixtures for the project's own tests (not part of the installed conformance suite)."""

from __future__ import annotations

from typing import Iterator

import pytest

from ipc_specs import Harness


@pytest.fixture(scope="module")
def quick_harness() -> Iterator[Harness]:
    """A short deadline, no shrinking, derandomized examples, one replay: verdicts, fast and repeatable."""
    h = Harness(deadline_s=3.0, profile="ci", shrink=False, replays=1)  # derandomized: the same examples every run
    yield h
    assert h.close() == []
