"""A backend call that returns the wrong type of result gets one clear ERROR, the same in
every check that reads it, never a different crash per check."""

from __future__ import annotations

from typing import Any, Iterator, List

import pytest

from ipc_impls.queues import SocketChannel, UnixDgramBackend
from ipc_specs.harness.guard import BackendError
from ipc_specs.harness.resources import Scope
from ipc_specs.harness.run import Harness
from ipc_specs.invariant import all_invariants


class DictLimitsChannel(SocketChannel):
    def limits(self) -> Any:  # the classic mistake: the fields as a dict
        return {"max_messages": None, "max_message_size": None}


class DictLimitsBackend(UnixDgramBackend):
    name = "dict-limits"

    def setup(self, scope: Scope) -> Any:
        channel = super().setup(scope)
        channel.__class__ = DictLimitsChannel
        return channel


@pytest.fixture
def harness() -> Iterator[Harness]:
    h = Harness(deadline_s=5, shrink=False)
    yield h
    assert h.close() == []


def test_limits_of_the_wrong_type_is_one_error_in_every_queue_check(harness: Harness) -> None:
    backend = DictLimitsBackend()
    messages: List[str] = []
    for inv in all_invariants("queue"):
        if not inv.requires <= backend.capabilities:
            continue
        with pytest.raises(BackendError) as info:
            inv.check(backend, harness.case(backend, inv.id, "fork"))
        messages.append(str(info.value))
    assert len(messages) >= 3
    assert set(messages) == {"channel.limits() returned dict {'max_messages': None, 'max_message_size': None}, "
                             "expected ipc_specs.queues.protocol.QueueLimits"}
