"""Conformance: every arrow invariant, for every selected arrow backend, in every placement."""

import pytest

pytestmark = pytest.mark.ipc_family("arrow")


def test_invariant(ipc_case) -> None:  # type: ignore[no-untyped-def]
    ipc_case.run()
