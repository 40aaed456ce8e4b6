"""A timed receive on an empty queue gives up no later than a control.

Kept apart from the other queue checks (which bound the wait from below only): the
upper bound is judged against controls of the same duration in the same process: a
plain timer armed at the same moment (in a thread of its own) and plain sleeps just
before and after (``harness.control``), never against the wall clock.
"""

from __future__ import annotations

import queue
from typing import Any, Dict, Optional

from ..harness.control import attempts_deadline_s, describe_attempts, described, measure_until_on_time, on_time
from ..harness.run import Case, Role
from ..harness.worker import Proc
from ..invariant import Level, expect, invariant
from ..strategies import anchored_integers
from .protocol import TIMEOUTS

FAMILY = "queue"


def quiet_sender(proc: Proc) -> None:
    """Hold a sending end open (so the channel is not at its end) and send nothing."""
    h = proc.open("open", receiver=False)
    proc.wait_for("tried")
    h.close()


def timed_receive_beside_control(proc: Proc, ms: int) -> Dict[str, Any]:
    """On an empty queue: receive(timeout_ms=ms) beside a control timer, between two control
    sleeps (again while late)."""
    h = proc.open("open", sender=False)
    out: Dict[str, Any] = {"raised": []}

    def one() -> Optional[float]:
        t0 = proc.note("timed", f"{ms} ms")
        try:
            h.receive(timeout_ms=ms)
            out["raised"].append("nothing (a message)")
        except queue.Empty:
            out["raised"].append("queue.Empty")
        except Exception as exc:
            out["raised"].append(type(exc).__name__)
        return (proc.note("gave_up") - t0) / 1e6 - ms

    out["attempts"] = measure_until_on_time(ms, one, beside=True)
    proc.signal("tried")
    h.close()
    return out


@invariant(
    "timed_receive_gives_up_no_later_than_a_control", family=FAMILY, level=Level.SHOULD,
    rule="On an empty queue, receive with a timeout of t ms fails with queue.Empty no later than a plain timer "
         "of t ms armed at the same moment in the same process, plus a slack derived from that control's own "
         "lateness (and that of plain sleeps just before and after).",
    source="mq_receive(3) (paraphrase: mq_timedreceive fails with ETIMEDOUT once the absolute timeout expires); "
           "Python docs queue.Queue.get (paraphrase: blocks at most timeout seconds, then raises Empty); "
           "nanosleep(2) (paraphrase: a sleep may be lengthened by system activity, which the control measures)",
    requires=[TIMEOUTS],
)
def timed_receive_gives_up_no_later_than_a_control(backend: object, case: Case) -> None:
    def body(ms: int) -> None:
        out = case.run([Role("R", timed_receive_beside_control, (ms,)), Role("S", quiet_sender)],
                       deadline=attempts_deadline_s(ms, 2 * ms / 1000))
        out.value("S")
        v = out.value("R")
        attempts = v["attempts"]
        ended = sorted(set(v["raised"]))
        expect(ended == ["queue.Empty"] and any(on_time(a) for a in attempts), case.invariant.id,
               got=describe_attempts(f"receive(timeout_ms={ms}) ended by {', '.join(ended)}", ms, attempts),
               expected="queue.Empty, " + described(attempts[-1]["controls"]) + ", in at least one attempt",
               call="receive",
               history=out.history.format(out.history.of("R", "receive")))

    case.explore(body, scale=0.2, ms=anchored_integers(20, 200, [50, 200]))
