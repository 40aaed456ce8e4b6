"""Broken twins of the ``multiprocessing`` adapters (``ipc_impls.mp_queues``).

``broken-module-global-queue`` keeps its queue in a module-level registry of the
process that made it and hands its workers only a key into it.  Under fork every
worker is a copy of the parent, registry included, so it works; a spawned or
forkserver child imports the module afresh and finds the registry empty.  The
suite hands a ``process-arg`` channel to fresh spawn and forkserver workers as a
``multiprocessing.Process`` argument (``ipc_specs.harness.inherit``), so it is
caught there, as a user of ``multiprocessing.get_context("spawn")`` would be.
"""

from __future__ import annotations

import secrets
from typing import Any, Dict, List

from ipc_specs.harness.resources import Scope

from ..mp_queues import MpQueueAdapter, MpQueueChannel, MpQueueEndpoint
from . import Exhibit

#: Every queue a GlobalRegistryChannel made in this process, by key.
_QUEUES: Dict[str, Any] = {}


class GlobalRegistryChannel(MpQueueChannel):
    """Registers its queue in :data:`_QUEUES` and pickles only the key."""

    def __init__(self, maxsize: int, start_method: str) -> None:
        super().__init__(maxsize, start_method)
        self.key = secrets.token_hex(8)
        _QUEUES[self.key] = self.q

    def __getstate__(self) -> Dict[str, Any]:
        state = dict(self.__dict__)
        del state["q"]  # "the registry has it": only in processes forked after setup
        return state

    def open(self, *, sender: bool = True, receiver: bool = True) -> MpQueueEndpoint:
        return MpQueueEndpoint(_QUEUES[self.key], self.owner_pid)

    def teardown(self) -> None:
        super().teardown()
        _QUEUES.pop(self.key, None)


class GlobalRegistryBackend(MpQueueAdapter):
    name = "broken-module-global-queue"

    def setup(self, scope: Scope) -> GlobalRegistryChannel:
        return GlobalRegistryChannel(self.maxsize, scope.start_method)


EXHIBITS: List[Exhibit] = [
    Exhibit(GlobalRegistryBackend(), "each_receive_returns_one_whole_message",
            "A module global set in the parent reaches forked children only: hand spawned ones the object itself.",
            placement="spawn"),
]
