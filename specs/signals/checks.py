"""Invariants of alarm() and ITIMER_REAL.

Every check runs in a fresh forked worker (``placements=["fork"]``): the timer,
the mask and the dispositions belong to the whole process.  Timing is judged
only by lower bounds (an alarm cannot fire before its deadline) and by counts
inside a window that ends after every deadline set; never "fired within t".
Waiting for a real alarm costs whole seconds, so those checks draw few
examples (``scale=``) and rules that allow it use setitimer in milliseconds.
"""

from __future__ import annotations

from typing import Any, Dict, List

from hypothesis import strategies as st

from ..harness.run import Case, Role
from ..invariant import Level, expect, invariant
from ..strategies import anchored_integers
from . import roles
from .protocol import ALARM, ITIMER, SIGWAIT

FAMILY = "signal"
NS = 10**9


def _round_half_up(seconds: float) -> int:
    """The kernel's rounding of alarm()'s return: to nearest, half up, never 0 if > 0."""
    whole = int(seconds)
    frac = seconds - whole
    return max(1 if seconds > 0 else 0, whole + (1 if frac >= 0.5 else 0))


@invariant(
    "alarm_returns_seconds_left_rounded", family=FAMILY, level=Level.MUST,
    rule="alarm() returns the seconds left on the previous alarm rounded to nearest (±1 s allowed for "
         "scheduling), never 0 while one is pending, and 0 when none was.",
    source="alarm(2): 'alarm() returns the number of seconds remaining until any previously scheduled alarm was due "
           "to be delivered, or zero if there was no previously scheduled alarm.'; POSIX alarm(): 'If there is a "
           "previous alarm() request with time remaining, alarm() shall return a non-zero value'; Linux "
           "kernel/time/itimer.c alarm_setitimer() (paraphrase: it rounds to the nearest second and returns at least"
           " 1 while a sub-second remainder is pending); LTP alarm02, alarm05",
    requires=[ALARM, SIGWAIT], placements=["fork"],
)
def alarm_returns_seconds_left_rounded(backend: object, case: Case) -> None:
    def body(first_s: int, left_ms: int) -> None:
        out = case.run([Role("P", roles.alarm_remaining, (first_s, first_s * 1000 - left_ms))])
        v = out.value("P")
        h = out.history.format(out.history.of("P", "alarm"))
        expect(v["first"] == 0, case.invariant.id, got=f"alarm({first_s}) returned {v['first']}",
               expected="0 (no alarm was pending in a fresh process)", call=f"alarm({first_s})", history=h)
        left_max = first_s - v["ran_min_ns"] / NS
        left_min = first_s - v["ran_max_ns"] / NS
        if left_min <= 0:
            return  # the alarm may have expired before alarm(0): this example judges nothing
        lo, hi = _round_half_up(left_min) - 1, _round_half_up(left_max) + 1
        expect(v["second"] >= 1 and lo <= v["second"] <= hi, case.invariant.id,
               got=f"alarm(0) returned {v['second']} with {left_min:.3f}…{left_max:.3f} s left",
               expected=f"an integer in [{max(1, lo)}, {hi}] (rounded to nearest ±1, never 0 while pending)",
               call="alarm(0)", history=h)

    # Mostly less than a second left: that is where flooring returns 0.
    draws = st.integers(1, 3).flatmap(lambda n: st.tuples(
        st.just(n), anchored_integers(100, n * 1000, [950])))
    case.explore(lambda p: body(*p), scale=0.5, p=draws)


def _arrivals_view(v: Dict[str, Any]) -> str:
    t0 = v["calls"][0][0]
    calls = ", ".join(f"alarm({s})→{r} at {(t - t0) / 1e6:.0f} ms" for t, s, r, _ in v["calls"])
    got = ", ".join(f"{(a - t0) / 1e6:.0f} ms" for a in v["arrivals"]) or "none"
    return f"{calls}; SIGALRM dequeued at: {got}"


@invariant(
    "alarm_replaces_previous_alarm", family=FAMILY, level=Level.MUST,
    rule="A new alarm(n) replaces the pending one: exactly one SIGALRM arrives, and not before n seconds "
         "after the last call.",
    source="alarm(2): 'In any event any previously set alarm() is canceled.'; POSIX alarm(): 'Alarm requests are not"
           " stacked; only one SIGALRM generation can be scheduled in this manner.'",
    requires=[ALARM, SIGWAIT], placements=["fork"],
)
def alarm_replaces_previous_alarm(backend: object, case: Case) -> None:
    def body(settings: List[int], gaps_ms: List[int]) -> None:
        out = case.run([Role("P", roles.alarm_sequence, (settings, gaps_ms))])
        v = out.value("P")
        h = out.history.format(out.history.of("P", "alarm"))
        last_t, last_s, _, _ = v["calls"][-1]
        for (armed, secs, _, _), (_, _, _, replaced) in zip(v["calls"], v["calls"][1:]):
            if replaced >= armed + secs * NS:
                return  # a stall (a loaded machine) let an alarm expire before it was replaced: nothing to judge
        expect(len(v["arrivals"]) == 1, case.invariant.id,
               got=f"{len(v['arrivals'])} SIGALRM ({_arrivals_view(v)})",
               expected="exactly one SIGALRM (each alarm() replaces the previous one)", call="alarm", history=h)
        early = v["arrivals"][0] < last_t + last_s * NS
        expect(not early, case.invariant.id, got=f"SIGALRM before the last deadline ({_arrivals_view(v)})",
               expected=f"no SIGALRM before {last_s} s after the last alarm({last_s})", call="alarm", history=h)

    # Deadlines t_i + s_i never coincide: the gaps are not whole seconds.
    case.explore(body, scale=0.25, settings=st.lists(st.integers(1, 2), min_size=2, max_size=3),
                 gaps_ms=st.lists(st.integers(50, 300), min_size=1, max_size=2))


@invariant(
    "alarm_zero_cancels_pending_alarm", family=FAMILY, level=Level.MUST,
    rule="alarm(0) cancels the pending alarm (no SIGALRM arrives) and returns its seconds left, at least 1.",
    source="alarm(2): 'If seconds is zero, any pending alarm is canceled.'; POSIX alarm(): 'If seconds is 0, a "
           "pending alarm request, if any, is canceled.'; LTP alarm06",
    requires=[ALARM, SIGWAIT], placements=["fork"],
)
def alarm_zero_cancels_pending_alarm(backend: object, case: Case) -> None:
    def body(first_s: int, gap_ms: int) -> None:
        out = case.run([Role("P", roles.alarm_sequence, ([first_s, 0], [gap_ms]))])
        v = out.value("P")
        h = out.history.format(out.history.of("P", "alarm"))
        (armed, _, _, _), (_, _, left, cancelled) = v["calls"]
        if cancelled >= armed + first_s * NS:
            return  # the cancel may have come after the deadline: nothing to judge
        expect(left >= 1, case.invariant.id, got=f"alarm(0) returned {left} ({_arrivals_view(v)})",
               expected="at least 1 (an alarm was pending)", call="alarm(0)", history=h)
        expect(not v["arrivals"], case.invariant.id, got=f"SIGALRM after alarm(0) ({_arrivals_view(v)})",
               expected="no SIGALRM: alarm(0) cancelled the pending alarm", call="alarm(0)", history=h)

    case.explore(body, scale=0.25, first_s=st.sampled_from([1, 1, 2]), gap_ms=st.integers(0, 500))


@invariant(
    "alarm_and_setitimer_share_one_timer", family=FAMILY, level=Level.MUST,
    rule="alarm() and setitimer(ITIMER_REAL) arm one and the same timer: getitimer sees an alarm, "
         "and alarm(0) reports (rounded, at least 1) and cancels a setitimer value.",
    source="alarm(2) NOTES: 'alarm() and setitimer(2) share the same timer; calls to one will interfere with use of "
           "the other.' (Linux; POSIX alarm() leaves the interaction with setitimer() unspecified); getitimer(2)",
    requires=[ALARM, ITIMER, SIGWAIT], placements=["fork"],
)
def alarm_and_setitimer_share_one_timer(backend: object, case: Case) -> None:
    def body(alarm_s: int, itimer_ms: int) -> None:
        out = case.run([Role("P", roles.alarm_and_itimer, (alarm_s, itimer_ms))])
        v = out.value("P")
        h = out.history.format()
        value, interval = v["getitimer_after_alarm"]
        expect(0 < value <= alarm_s and interval == 0, case.invariant.id,
               got=f"getitimer(ITIMER_REAL) = {v['getitimer_after_alarm']} after alarm({alarm_s})",
               expected=f"a value in (0, {alarm_s}] and interval 0 (the alarm's timer)", call="getitimer",
               history=h)
        top = _round_half_up(itimer_ms / 1000)
        got = v["alarm0_after_setitimer"]
        # 0 is right only if the timer had already expired (its SIGALRM is then pending).
        expect(1 <= got <= top or (got == 0 and v["expired_first"]), case.invariant.id,
               got=f"alarm(0) returned {got} after setitimer({itimer_ms} ms)",
               expected=f"an integer in [1, {top}] (the setitimer value, rounded)", call="alarm(0)", history=h)
        expect(tuple(v["getitimer_after_alarm0"]) == (0.0, 0.0), case.invariant.id,
               got=f"getitimer = {v['getitimer_after_alarm0']} after alarm(0)",
               expected="(0.0, 0.0): alarm(0) disarmed the setitimer timer", call="getitimer", history=h)

    case.explore(body, alarm_s=anchored_integers(1, 86400, [1, 2, 3600]),
                 itimer_ms=anchored_integers(1, 100000, [1, 499, 500, 501, 999, 1000, 1499, 1500, 2500]))


@invariant(
    "forked_child_starts_without_alarm", family=FAMILY, level=Level.MUST,
    rule="A child created by fork() has no pending alarm, and the parent's alarm is unchanged by the fork.",
    source="alarm(2): 'Alarms created by alarm() are preserved across execve(2) and are not inherited by children "
           "created via fork(2).'; fork(2): 'The child does not inherit timers from its parent (setitimer(2), "
           "alarm(2), timer_create(2)).'; LTP alarm03, alarm07",
    requires=[ALARM, ITIMER, SIGWAIT], placements=["fork"],
)
def forked_child_starts_without_alarm(backend: object, case: Case) -> None:
    def body(seconds: int) -> None:
        out = case.run([Role("P", roles.alarm_across_fork, (seconds,))])
        v = out.value("P")
        h = out.history.format()
        expect(v["child_alarm"] == 0 and v["child_itimer"] == 0.0, case.invariant.id,
               got=f"in the child alarm(0) = {v['child_alarm']}, getitimer value = {v['child_itimer']}",
               expected="0 and 0.0 (fork does not inherit the alarm)", call="alarm(0) in child", history=h)
        expect(1 <= v["parent_alarm"] <= seconds, case.invariant.id,
               got=f"the parent's alarm(0) returned {v['parent_alarm']}",
               expected=f"1…{seconds} (its alarm({seconds}) still pending)", call="alarm(0)", history=h)

    case.explore(body, scale=0.5, seconds=anchored_integers(1, 1000, [1]))


@invariant(
    "tiny_setitimer_value_fires", family=FAMILY, level=Level.MUST,
    rule="setitimer(ITIMER_REAL, v) with 0 < v < 1 ms arms the timer and SIGALRM arrives: a tiny value is "
         "never rounded down to 0, which would disarm it.",
    source="getitimer(2): 'If either field in new_value.it_value is nonzero, then the timer is armed'; CPython "
           "Lib/test/test_signal.py ItimerTest.test_setitimer_tiny (bpo-30807)",
    requires=[ITIMER, SIGWAIT], placements=["fork"],
)
def tiny_setitimer_value_fires(backend: object, case: Case) -> None:
    def body(micros: int) -> None:
        out = case.run([Role("P", roles.tiny_itimer, (micros,))])
        v = out.value("P")
        expect(v["got"] == roles.SIGALRM, case.invariant.id,
               got=f"no SIGALRM within {v['waited_s']} s of setitimer({micros} µs)",
               expected="SIGALRM (the timer was armed)", call="setitimer", history=out.history.format())

    case.explore(body, micros=anchored_integers(1, 999, [1, 2, 500, 999]))
