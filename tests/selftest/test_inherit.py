"""``wiring = "process-arg"``: the channel is handed to fresh spawn and forkserver workers
as a ``multiprocessing.Process`` argument (``ipc_specs.harness.inherit``)."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from ipc_impls.mp_queues import MpQueueAdapter, MpQueueChannel
from ipc_impls.queues import PosixChannel, PosixMqBackend
from ipc_specs import Harness, check, unsupported_reason
from ipc_specs.harness.guard import BackendError
from ipc_specs.harness.resources import Scope
from ipc_specs.registry import get_invariant

INVARIANT = "each_receive_returns_one_whole_message"


@pytest.mark.parametrize("placement", ["spawn", "forkserver"])
def test_an_inherit_only_queue_gets_spawn_and_forkserver_verdicts(quick_harness: Harness, placement: str) -> None:
    backend = MpQueueAdapter()
    assert unsupported_reason(backend, get_invariant(INVARIANT), placement) is None
    check(backend, INVARIANT, placement=placement, harness=quick_harness)


class HoldsAThreadLock(MpQueueChannel):
    def __init__(self, maxsize: int, start_method: str) -> None:
        super().__init__(maxsize, start_method)
        self.guard = threading.Lock()  # a thread lock cannot be pickled, not even for a child


class UnpicklableBackend(MpQueueAdapter):
    name = "unpicklable-process-arg"

    def setup(self, scope: Scope) -> Any:
        return HoldsAThreadLock(self.maxsize, scope.start_method)


def test_a_channel_that_cannot_be_handed_over_is_the_backends_error(quick_harness: Harness) -> None:
    with pytest.raises(BackendError, match="cannot be handed to a spawn worker at its start"):
        check(UnpicklableBackend(), INVARIANT, placement="spawn", harness=quick_harness)


@pytest.mark.parametrize("placement", ["spawn", "forkserver"])
def test_a_channel_of_a_local_class_is_the_backends_error_saying_what_to_do(quick_harness: Harness,
                                                                            placement: str) -> None:
    class LocalChannel(PosixChannel):  # pickle finds a class by its module and name: not this one
        pass

    class LocalClasses(PosixMqBackend):
        name = "local-classes"

        def setup(self, scope: Scope) -> Any:
            ch = super().setup(scope)
            return LocalChannel(ch.name, ch.max_messages, ch.max_message_size)

    with pytest.raises(BackendError, match=f"cannot be handed to a {placement} worker.*module level"
                                           f".*--placements fork,thread.*LocalChannel"):
        check(LocalClasses(), "every_message_delivered_exactly_once", placement=placement, harness=quick_harness)


def test_inherit_wiring_still_stays_out_of_spawn() -> None:
    class ForkOnly(MpQueueAdapter):
        wiring = "inherit"

    assert "cannot reach a spawned process" in str(unsupported_reason(ForkOnly(), get_invariant(INVARIANT), "spawn"))
