"""Conformance: every semaphore invariant, for every selected semaphore backend, in every placement."""

import pytest

pytestmark = pytest.mark.ipc_family("semaphore")


def test_invariant(ipc_case) -> None:  # type: ignore[no-untyped-def]
    ipc_case.run()
