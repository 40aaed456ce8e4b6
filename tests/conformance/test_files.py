"""Conformance: every file invariant, for every selected file backend, in every placement."""

import pytest

pytestmark = pytest.mark.ipc_family("file")


def test_invariant(ipc_case) -> None:  # type: ignore[no-untyped-def]
    ipc_case.run()
