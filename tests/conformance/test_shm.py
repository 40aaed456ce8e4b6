"""Conformance: every shm invariant, for every selected shm backend, in every placement."""

import pytest

pytestmark = pytest.mark.ipc_family("shm")


def test_invariant(ipc_case) -> None:  # type: ignore[no-untyped-def]
    ipc_case.run()
