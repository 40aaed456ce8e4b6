"""The forms of the timeout contract: a call-only backend is n/a for every scope invariant
(never an error), a scope backend with today's claims keeps every scope check and needs
nothing new, and the fork executor hands back exceptions pickle cannot find by name."""

from __future__ import annotations

import signal
from typing import Any, FrozenSet

import pytest

from ipc_impls.timeout_calls import BACKENDS as CALLS
from ipc_impls.timeout_calls import ForkCalls, ThreadCalls
from ipc_specs import all_invariants, unsupported_reason
from ipc_specs.timeouts import ANY_FORM  # what every timeout backend declares, whatever its form)
from ipc_specs.timeouts.protocol import CALL_FORM, CALL_ONLY, CANCEL, INTERRUPTS_BLOCKING, NESTING, SUB_SECOND

SCOPE_IDS = [i.id for i in all_invariants("timeout") if CALL_FORM not in i.requires and i.id not in ANY_FORM]
CALL_IDS = [i.id for i in all_invariants("timeout") if CALL_FORM in i.requires]


class TodaysScopeBackend:
    """A user backend written against the scope contract before the call form existed."""

    name = "users-scope-timeouts"
    kind = "timeout"
    wiring = "inherit"
    capabilities: FrozenSet[str] = frozenset({INTERRUPTS_BLOCKING, NESTING, CANCEL, SUB_SECOND})

    def setup(self, scope: Any) -> Any:
        raise AssertionError("not run here")


def test_the_forms_split_the_family() -> None:
    assert SCOPE_IDS and CALL_IDS
    assert "scope_outside_main_thread_works_alone_or_refuses_cleanly" in SCOPE_IDS


@pytest.mark.parametrize("backend", CALLS, ids=[b.name for b in CALLS])
def test_call_only_backends_are_na_for_every_scope_invariant(backend: Any) -> None:
    for inv in all_invariants("timeout"):
        reason = unsupported_reason(backend, inv, "fork")
        if inv.id in SCOPE_IDS:
            assert reason is not None, inv.id
            assert CALL_ONLY in reason or inv.missing(backend.capabilities), (inv.id, reason)


def test_todays_scope_backend_keeps_every_scope_check_and_claims_nothing_new() -> None:
    backend = TodaysScopeBackend()
    for inv in all_invariants("timeout"):
        reason = unsupported_reason(backend, inv, "fork")
        assert (reason is None) == (inv.id in SCOPE_IDS or inv.id in ANY_FORM), (inv.id, reason)


def _main_class() -> type:
    return type("MadeInMain", (Exception,), {"__module__": "__main__"})


def test_fork_executor_returns_an_exception_of_a_class_made_at_run_time() -> None:
    cls = _main_class()

    def fn() -> None:
        raise cls("made", 1)

    with pytest.raises(cls) as caught:
        ForkCalls().run(5.0, fn)
    assert type(caught.value) is cls and caught.value.args == ("made", 1)


@pytest.mark.parametrize("raised", [SystemExit(3), KeyboardInterrupt("k")], ids=["SystemExit", "KeyboardInterrupt"])
def test_executors_hand_back_base_exceptions(raised: BaseException) -> None:
    def fn() -> None:
        raise raised

    for calls in (ForkCalls(), ThreadCalls()):
        with pytest.raises(type(raised)) as caught:
            calls.run(5.0, fn)
        assert caught.value.args == raised.args


def test_fork_executor_leaves_no_signal_state() -> None:
    before = signal.getsignal(signal.SIGALRM), signal.getitimer(signal.ITIMER_REAL)
    assert ForkCalls().run(5.0, lambda a, b=0: a + b, 1, b=2) == 3
    assert (signal.getsignal(signal.SIGALRM), signal.getitimer(signal.ITIMER_REAL)) == before
