"""Timeout backends that are right in what they claim must pass, whatever form their
promise takes: a library raising its own exception class (declared on the timeouts
object), a whole-second alarm() scope that does not claim sub_second, and a scope that
refuses (ScopeRefused, changing nothing) to run beside an alarm its caller armed."""

from __future__ import annotations

import signal
from typing import Any

import pytest

from ipc_impls.broken.timeouts import AlarmScope
from ipc_impls.timeouts import ItimerTimeouts, ItimerTimeoutsBackend
from ipc_specs import Harness, check
from ipc_specs.timeouts import ScopeRefused
from ipc_specs.timeouts import protocol as p


class LibraryTimeout(Exception):
    """A library's own timeout class: not a TimeoutError, not an unrelated built-in either."""


class OwnClassTimeouts(ItimerTimeouts):
    exception = LibraryTimeout


class OwnClassBackend(ItimerTimeoutsBackend):
    name = "own-class-timeouts"
    factory = OwnClassTimeouts


class WholeSecondScope(AlarmScope):
    """``signal.alarm(int(seconds))``, as a whole-second library does, promising no more."""

    def _arm(self) -> None:
        signal.alarm(int(self.seconds))

    def _disarm(self) -> float:
        return float(signal.alarm(0))


class WholeSecondTimeouts:
    def timeout(self, seconds: float) -> Any:
        return WholeSecondScope(seconds)


class WholeSecondBackend(ItimerTimeoutsBackend):
    name = "whole-second-alarm-timeouts"
    capabilities = frozenset({p.INTERRUPTS_BLOCKING, p.CANCEL_DISARMS})
    factory = WholeSecondTimeouts


class RefusingScope(AlarmScope):
    """The plain recipe, which cannot hand a caller's alarm back, so refuses to run beside one."""

    def __enter__(self) -> AlarmScope:
        if signal.getitimer(signal.ITIMER_REAL)[0] > 0 or signal.getsignal(signal.SIGALRM) not in (
                signal.SIG_DFL, signal.SIG_IGN):
            raise ScopeRefused("SIGALRM is in use by the caller")
        return super().__enter__()


class RefusingTimeouts:
    def timeout(self, seconds: float) -> Any:
        return RefusingScope(seconds)


class RefusingBackend(ItimerTimeoutsBackend):
    name = "refusing-timeouts"
    capabilities = frozenset({p.INTERRUPTS_BLOCKING, p.CANCEL, p.SUB_SECOND})
    factory = RefusingTimeouts


OWN_CLASS = ["timeout_fires_once_and_interrupts_guarded_code", "nested_timeout_keeps_outer_deadline",
             "caller_alarm_and_handler_survive_the_scope", "declared_timeout_class_is_not_an_unrelated_error",
             "timeout_is_no_later_than_a_control_timer"]
# Not signal_state_restored_on_every_exit_path: alarm(0) on exit disarms a timer the caller
# armed, which the audit reports (as for broken-disarms-caller-timer-timeout); the
# alarm-timeouts reference, which hands the caller's timer back, passes it.
WHOLE_SECOND = ["timeout_fires_once_and_interrupts_guarded_code", "timeout_is_no_later_than_a_control_timer",
                "cancelled_scope_never_fires"]


@pytest.mark.parametrize("inv", OWN_CLASS)
def test_a_library_raising_its_own_class_passes(inv: str, quick_harness: Harness) -> None:
    check(OwnClassBackend(), inv, placement="fork", harness=quick_harness)


@pytest.mark.parametrize("inv", WHOLE_SECOND)
def test_a_whole_second_backend_is_judged_on_whole_seconds(inv: str, quick_harness: Harness) -> None:
    check(WholeSecondBackend(), inv, placement="fork", harness=quick_harness)


REFUSING = ["caller_alarm_and_handler_survive_the_scope", "signal_state_restored_on_every_exit_path",
            "timeout_fires_once_and_interrupts_guarded_code"]


@pytest.mark.parametrize("inv", REFUSING)
def test_a_scope_refusing_beside_the_callers_alarm_passes(inv: str, quick_harness: Harness) -> None:
    check(RefusingBackend(), inv, placement="fork", harness=quick_harness)
