"""Handing back what signal() and pthread_sigmask() returned restores the signal state.

The audit is the per-role one of the timeout family (``harness.sigstate``): every
catchable signal's handler, the mask and ITIMER_REAL, read in the worker before the
role installs anything and after it has handed back what the facilities returned.
It runs once per example, around the whole role, not per call.
"""

from __future__ import annotations

import signal
from typing import Any, Dict, List, Sequence, Tuple

from hypothesis import strategies as st

from ..harness import sigstate
from ..harness.run import Case, Role
from ..harness.worker import Proc
from ..invariant import Level, expect, invariant
from .protocol import HANDLERS, SIGWAIT

FAMILY = "signal"
#: Signals a role may give any disposition and block for a moment: none is sent meanwhile,
#: and none is one the harness relies on (SIGABRT dumps a hung worker's stack, SIGINT is ignored).
SAFE = (signal.SIGHUP, signal.SIGUSR1, signal.SIGUSR2, signal.SIGALRM, signal.SIGTERM, signal.SIGCHLD,
        signal.SIGWINCH, signal.SIGPIPE, signal.SIGURG, signal.SIGRTMIN, signal.SIGRTMIN + 1)


def _noop(signum: int, frame: Any) -> None:
    pass


DISPOSITIONS: Dict[str, Any] = {"python": _noop, "ignore": signal.SIG_IGN, "default": signal.SIG_DFL}


def install_and_hand_back(proc: Proc, plan: Sequence[Tuple[int, str]], blocked: Sequence[int]) -> List[str]:
    """Install ``plan``'s dispositions and block ``blocked`` through the facilities, then hand
    back what each call returned, last first; the state's differences from before."""
    fac = proc.open("open_process")
    before = sigstate.take()
    olds = [(sig, fac.signal(sig, DISPOSITIONS[how])) for sig, how in plan]
    old_mask = fac.pthread_sigmask(signal.SIG_BLOCK, blocked) if blocked else None
    if old_mask is not None:
        fac.pthread_sigmask(signal.SIG_SETMASK, old_mask)
    for sig, old in reversed(olds):
        fac.signal(sig, old)
    found = sigstate.changes(before, sigstate.take())
    proc.note("restored" if not found else "not_restored", "; ".join(found))
    return found


@invariant(
    "handing_back_what_was_returned_restores_signal_state", family=FAMILY, level=Level.MUST,
    rule="Code that installs handlers with signal() and blocks signals with pthread_sigmask(), then hands "
         "back what those calls returned (last first), finds every handler, the mask and ITIMER_REAL as they "
         "were, in its own process.",
    source="Python docs signal.signal: 'The previous signal handler will be returned'; Python docs "
           "signal.pthread_sigmask: 'The old signal mask is returned as a set of signals'; pthread_sigmask(3) "
           "(paraphrase: SIG_SETMASK sets the mask to the given set); signal(7) (paraphrase: dispositions are "
           "per process, the mask per thread)",
    requires=[HANDLERS], placements=["fork"],
)
def handing_back_what_was_returned_restores_signal_state(backend: object, case: Case) -> None:
    def body(plan: List[Tuple[int, str]], blocked: List[int]) -> None:
        out = case.run([Role("P", install_and_hand_back, (plan, blocked))])
        found = out.value("P")
        names = ", ".join(f"{sigstate.signal_name(s)}={how}" for s, how in plan)
        expect(not found, case.invariant.id, got=f"after {names}, blocked {sorted(blocked)}, all handed back: "
               + "; ".join(found), expected="the signal state from before", call="signal",
               history=out.history.format())

    sig = st.sampled_from([int(s) for s in SAFE])
    plan = st.lists(st.tuples(sig, st.sampled_from(sorted(DISPOSITIONS))), min_size=1, max_size=4)
    blocked = st.lists(sig, min_size=1, max_size=3, unique=True) if case.claims(SIGWAIT) else st.just([])
    case.explore(body, scale=0.3, plan=plan, blocked=blocked)
