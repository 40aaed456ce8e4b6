"""Every selected backend loads and satisfies the backend API (a load error fails here, by name)."""

from ipc_conformance.selection import LoadProblem
from ipc_specs import validate_backend


def test_backend_is_valid(ipc_backend_item) -> None:  # type: ignore[no-untyped-def]
    if isinstance(ipc_backend_item, LoadProblem):
        raise AssertionError(f"backend {ipc_backend_item.source} could not be loaded: {ipc_backend_item.message}")
    assert validate_backend(ipc_backend_item.backend) == []
