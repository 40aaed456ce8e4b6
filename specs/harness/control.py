"""A control for lateness: how late a plain sleep of the same duration is, here and now.

A timed operation (a timeout scope, a timed acquire, a timed receive) may return
later than asked, by as much as the machine's load delays any wake-up; it should
not be later than a plain ``time.sleep`` of the same duration measured in the same
process just before and after it, plus a slack derived from that control.  That
bound catches whole-second rounding and unit confusions (hundreds of ms and more)
without ever asserting "finished within t" by the wall clock.

Why a sleep and not a second timer: a second ITIMER_REAL would replace a SIGALRM
scope's own (one per process, getitimer(2)); ITIMER_VIRTUAL and ITIMER_PROF count
CPU time, not wall time; a threading.Timer adds a thread the code under test may
not expect; ``os.timerfd_create`` exists only from Python 3.13.

One load spike between the control and the operation can still make a correct
operation look late, so a late attempt is measured again (:func:`measure_until_on_time`,
at most :data:`TRIES` attempts): a bug is late every time, a spike is not.
"""

from __future__ import annotations

import threading
import time
from typing import Any, Callable, Dict, List, Optional, Sequence

from .deadlines import ADAPTIVE_FLOOR_S

#: The slack on lateness: this multiple of the worst control's lateness ...
CONTROL_FACTOR = 3
#: ... plus this floor (ms), for jitter between two moments of one example: far below
#: whole-second rounding (hundreds of ms) and unit confusions (×1000).
CONTROL_FLOOR_MS = 30.0
#: Attempts at most: the verdict is "late" only when every one of them was.
TRIES = 3


def sleep_lateness_ms(ms: float) -> float:
    """How many ms later than ``ms`` a plain sleep of ``ms`` returned, now, in this process."""
    t0 = time.monotonic_ns()
    time.sleep(ms / 1000)
    return (time.monotonic_ns() - t0) / 1e6 - ms


def slack_ms(controls: Sequence[float]) -> float:
    """The lateness allowed beside these controls' own."""
    return CONTROL_FACTOR * max([0.0, *controls]) + CONTROL_FLOOR_MS


def described(controls: Sequence[float]) -> str:
    return (f"at most {slack_ms(controls):.3f} ms late ({CONTROL_FACTOR}× the control's "
            f"{max([0.0, *controls]):.3f} ms + {CONTROL_FLOOR_MS:g} ms)")


def on_time(attempt: Dict[str, Any]) -> bool:
    """An attempt (``late``: ms or None for "never", ``controls``: ms) within its slack."""
    return attempt["late"] is not None and attempt["late"] <= slack_ms(attempt["controls"])


def measure_until_on_time(ms: float, operation: Callable[[], Optional[float]], *,
                          after: bool = True, beside: bool = False) -> List[Dict[str, Any]]:
    """Run ``operation`` (which returns its own lateness in ms, or None if it never ended
    as it should) between two controls of ``ms``, again while it is late, at most
    :data:`TRIES` times; every attempt, in order.  "Never" is not retried: it already
    waited a generous multiple of ``ms``.  ``after=False``: a control before only (for
    durations of seconds, where one control is enough).  ``beside=True``: also a
    :class:`ConcurrentControl` armed at the same moment as the operation, which shares
    its scheduling delays exactly (not for SIGALRM scopes, whose handler runs in the
    main thread the control's wake-up competes with)."""
    attempts: List[Dict[str, Any]] = []
    for _ in range(TRIES):
        before = sleep_lateness_ms(ms)
        control = ConcurrentControl(ms / 1000) if beside else None
        late = operation()
        controls = [before] + ([control.result() * 1000] if control else [])
        attempts.append({"late": late, "controls": controls + ([sleep_lateness_ms(ms)] if after else [])})
        if late is None or on_time(attempts[-1]):
            break
    return attempts


def attempts_deadline_s(ms: float, operation_s: float, *, after: bool = True) -> float:
    """A ``deadline=`` for :meth:`Case.run` whose role measures with :func:`measure_until_on_time`:
    :data:`TRIES` attempts, each a control of ``ms`` before (and ``after``) and the operation,
    which ends within ``operation_s``, plus a floor for the rest of the role.  A correct
    operation retried on a loaded machine takes that long, and the harness's own deadline
    (3 s in the self-tests) once called such a run hung."""
    return ADAPTIVE_FLOOR_S + TRIES * ((2 if after else 1) * ms / 1000 + operation_s)


def describe_attempts(what: str, ms: float, attempts: Sequence[Dict[str, Any]]) -> str:
    shown = [("never ended" if a["late"] is None else f"{a['late']:.3f} ms late")
             + f" (the latest {ms:g} ms control: {max(a['controls']):.3f} ms late)" for a in attempts]
    return f"{what}: " + "; ".join(shown)


# --- a control armed beside the operation ---------------------------------------------------
# The call and executor forms of timeouts are judged against a timer running at the same
# moment in the same process (the guarded call may block the main thread, so the control
# waits in a thread of its own), rather than sleeps before and after.


class ConcurrentControl:
    """A plain timer armed at construction: ``Event().wait(seconds)`` in a thread.  Its
    lateness (how long after ``seconds`` it returned) measures this moment's scheduling
    delays, the yardstick for "released promptly" (never a wall-clock bound)."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.lateness = 0.0
        self.t0 = time.monotonic()  # armed now: starting its thread is part of its lateness
        self.thread = threading.Thread(target=self._body, daemon=True)
        self.thread.start()

    def _body(self) -> None:
        threading.Event().wait(self.seconds)
        self.lateness = max(0.0, time.monotonic() - self.t0 - self.seconds)

    def result(self) -> float:
        self.thread.join()
        return self.lateness


def release_slack_ms(control_lateness_s: float) -> float:
    """How much later than a plain timer a release may come: four times that timer's own
    lateness in this example, and never less than 300 ms (an executor may have to kill
    and reap a process first; a release that never comes is seconds late)."""
    return max(4000 * control_lateness_s, 300.0)
