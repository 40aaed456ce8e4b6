"""ipc_impls: reference implementations of every IPC mechanism the specs cover.

``reference_backends()`` is what a run checks when no backend is selected: the
project's own references plus the adapters for objects that are not ours.  The
deliberately broken ones live in :mod:`ipc_impls.broken` (the teaching gallery).

A family adds its backends by listing its module in ``_MODULES``; each such
module has a ``BACKENDS`` list.
"""

from __future__ import annotations

import importlib
from typing import Any, List

_MODULES = ["streams", "adapters", "shm", "files", "semaphores", "queues", "mp_queues", "signals", "timeouts",
            "timeout_calls", "timeout_threads", "timeout_alarm", "arrow", "maps"]


def reference_backends() -> List[Any]:
    backends: List[Any] = []
    for module in _MODULES:
        backends += importlib.import_module(f"{__name__}.{module}").BACKENDS
    return backends


__all__ = ["reference_backends"]
