"""Conformance: every map invariant, for every selected map backend, in every placement."""

import pytest

pytestmark = pytest.mark.ipc_family("map")


def test_invariant(ipc_case) -> None:  # type: ignore[no-untyped-def]
    ipc_case.run()
