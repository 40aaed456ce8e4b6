"""A timed acquire on a semaphore nobody releases gives up no later than a control.

Kept apart from ``checks`` (which bounds the wait from below only): the upper bound
is judged against controls of the same duration in the same process: a plain timer
armed at the same moment (in a thread of its own) and plain sleeps just before and
after (``harness.control``), never against the wall clock.
"""

from __future__ import annotations

from typing import Any, Dict, Optional

from ..harness.control import attempts_deadline_s, describe_attempts, described, measure_until_on_time, on_time
from ..harness.run import Case, Role
from ..harness.worker import Proc
from ..invariant import Level, expect, invariant
from ..strategies import anchored_integers
from . import roles
from .checks import create, finish_all, units
from .protocol import TIMEOUTS

FAMILY = "semaphore"


@roles.announces_failure
def timed_beside_control(proc: Proc, ms: int, held: int) -> Dict[str, Any]:
    """While the holder has every unit: acquire_timeout(ms) beside a control timer, between two
    control sleeps (again while late)."""
    h = proc.open("open")
    roles.wait_or_fail(proc, "held")
    out: Dict[str, Any] = {"got": False}

    def one() -> Optional[float]:
        t0 = proc.note("timed", f"{ms} ms")
        out["got"] = out["got"] or bool(h.acquire_timeout(ms))
        return (proc.note("gave_up") - t0) / 1e6 - ms

    out["attempts"] = measure_until_on_time(ms, one, beside=True)
    proc.signal("tried")
    roles.wait_or_fail(proc, "released")
    if out["got"]:
        h.release()
    h.close()
    return out


@invariant(
    "timed_acquire_gives_up_no_later_than_a_control", family=FAMILY, level=Level.SHOULD,
    rule="While another process holds every unit, acquire with a timeout of t ms gives up no later than a "
         "plain timer of t ms armed at the same moment in the same process, plus a slack derived from that "
         "control's own lateness (and that of plain sleeps just before and after).",
    source="POSIX sem_timedwait() (paraphrase: the wait is terminated when the timeout expires; the timeout is "
           "based on CLOCK_REALTIME and its resolution); nanosleep(2) (paraphrase: a sleep may be lengthened by "
           "system activity, which the control measures)",
    requires=[TIMEOUTS],
)
def timed_acquire_gives_up_no_later_than_a_control(backend: object, case: Case) -> None:
    def body(value: int, ms: int) -> None:
        out = case.run([Role("H", roles.hold_all, (value,)),
                        Role("T", timed_beside_control, (ms, value))], channel_setup=create(value),
                       deadline=attempts_deadline_s(ms, 2 * ms / 1000))
        finish_all(out)
        v = out.value("T")
        attempts = v["attempts"]
        expect(not v["got"] and any(on_time(a) for a in attempts), case.invariant.id,
               got=describe_attempts(f"acquire_timeout({ms}) returned {v['got']}", ms, attempts),
               expected="False, " + described(attempts[-1]["controls"]) + ", in at least one attempt",
               call="acquire_timeout",
               history=out.history.format(out.history.of("T", "acquire_timeout")))

    case.explore(body, scale=0.2, value=units(case, low=1, high=2), ms=anchored_integers(20, 200, [50, 200]))
