"""Conformance: every timeout invariant, for every selected timeout backend, in every placement."""

import pytest

pytestmark = pytest.mark.ipc_family("timeout")


def test_invariant(ipc_case) -> None:  # type: ignore[no-untyped-def]
    ipc_case.run()
