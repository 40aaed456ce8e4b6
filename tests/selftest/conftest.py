"""Fixtures for the project's own tests (not part of the installed conformance suite)."""

from __future__ import annotations

from typing import Iterator

import pytest

from ipc_specs import Harness


@pytest.fixture(scope="module")
def quick_harness() -> Iterator[Harness]:
    """A harness with a short deadline and no shrinking: these tests need verdicts, fast."""
    h = Harness(deadline_s=3.0, profile="fast", shrink=False)
    yield h
    assert h.close() == []
