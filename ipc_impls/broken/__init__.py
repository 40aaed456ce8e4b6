"""The gallery of deliberately broken backends: one or more per invariant.

Each :class:`Exhibit` names the invariant its backend breaks and the lesson it
teaches.  The project's own tests assert that every exhibit is caught *by the
invariant it breaks* (``tests/selftest/test_gallery.py``), which is what shows
that no check in the suite is one that cannot fail.

A family adds its exhibits by listing its module in ``_MODULES``.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any, List

_MODULES = ["streams", "shm", "files", "semaphores", "queues", "queue_liveness", "signals", "timeouts",
            "timeout_calls", "arrow", "maps", "lateness", "mp_queues"]


@dataclass(frozen=True)
class Exhibit:
    backend: Any
    breaks: str  # the invariant id that must catch it
    lesson: str  # one sentence: the folk-knowledge mistake it embodies
    placement: str = "fork"
    hangs: bool = False  # caught by the watchdog: run it with a short deadline
    #: The drawn fault (``ipc_specs.harness.faults``) without which it passes: it is
    #: that fault, not the invariant's own data, that this exhibit shows to bite.
    fault: str = ""

    @property
    def name(self) -> str:
        return f"{self.backend.name}-{self.breaks}"


def all_exhibits() -> List[Exhibit]:
    exhibits: List[Exhibit] = []
    for module in _MODULES:
        exhibits += importlib.import_module(f"{__name__}.{module}").EXHIBITS
    return exhibits
