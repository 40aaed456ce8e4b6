"""Conformance: every signal invariant, for every selected signal backend, in every placement."""

import pytest

pytestmark = pytest.mark.ipc_family("signal")


def test_invariant(ipc_case) -> None:  # type: ignore[no-untyped-def]
    ipc_case.run()
