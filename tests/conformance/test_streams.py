"""Conformance: every stream invariant, for every selected stream backend, in every placement."""

import pytest

pytestmark = pytest.mark.ipc_family("stream")


def test_invariant(ipc_case) -> None:  # type: ignore[no-untyped-def]
    ipc_case.run()
