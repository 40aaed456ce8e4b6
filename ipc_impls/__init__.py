"""ipc_impls: reference implementations of every IPC mechanism the specs cover.

``REFERENCE_BACKENDS`` is what a run checks when no backend is selected: the
project's own references plus the adapters for objects that are not ours.  The
deliberately broken ones live in :mod:`ipc_impls.broken` (the teaching gallery).
"""

from __future__ import annotations

from typing import Any, List

from .adapters import MpPipeStreamAdapter
from .streams import FifoBackend, PipeBackend, TcpLoopbackBackend, UnixStreamBackend

REFERENCE_BACKENDS: List[Any] = [
    PipeBackend(),
    FifoBackend(),
    UnixStreamBackend(),
    TcpLoopbackBackend(),
    MpPipeStreamAdapter(),
]

__all__ = ["REFERENCE_BACKENDS"]
