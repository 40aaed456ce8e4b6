"""Conformance: every queue invariant, for every selected queue backend, in every placement."""

import pytest

pytestmark = pytest.mark.ipc_family("queue")


def test_invariant(ipc_case) -> None:  # type: ignore[no-untyped-def]
    ipc_case.run()
