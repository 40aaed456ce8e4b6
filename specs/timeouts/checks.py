"""Invariants of scoped timeouts (SIGALRM, setitimer or thread based).

Each example runs in a fresh forked worker.  Timing is judged by lower bounds
(a scope cannot fire before its deadline) and, for lateness, against a control
measured in the same example (``scope_checks``); "fired within t" is never
asserted by the wall clock.  Guarded code that is never interrupted waits a
generous multiple of the scope's own deadline (``common.give_up_at``) and is
reported as "never fired" or, when the scope says it fired, "fired but swallowed".
The class a timeout raises is the one the backend declares (``common.timeout_class``).
"""

from __future__ import annotations

from typing import Any, Dict, List

from hypothesis import strategies as st

from ..harness.run import Case, Role
from ..invariant import Level, Unsupported, expect, invariant
from . import roles
from .protocol import CANCEL, CANCEL_DISARMS, INTERRUPTS_BLOCKING, NESTING, SUB_SECOND

FAMILY = "timeout"
NS = 10**9
MS = 10**6


def _kinds(case: Case) -> st.SearchStrategy[str]:
    return st.sampled_from(roles.KINDS if case.claims(INTERRUPTS_BLOCKING) else ("spin",))


def _what_happened(v: Dict[str, Any]) -> str:
    """The guarded code's side of the story, telling "fired but swallowed" from "never fired"."""
    if v["outcome"] == roles.RAN_TO_END:
        alarms = v.get("sigalrms")  # None where they could not be counted (not the main thread)
        if v["fired"] or alarms:
            said = "the scope says it fired" if v["fired"] else "it did not say so"
            return (f"fired but swallowed: {said}" + (f", {alarms} SIGALRM delivered while it was active" if alarms
                                                      else "") +
                    f", and the guarded code saw {v['interrupted_by'] or 'nothing'}, yet nothing left the with")
        return (f"never fired: the guarded code was not interrupted in {v['give_up_ms']:.0f} ms"
                + (" and no SIGALRM was delivered while the scope was active" if alarms == 0 else ""))
    if not v["raised_inside"]:
        return f"{v['outcome']} raised outside the guarded code" + (", after it began" if v["began"] else "")
    return f"interrupted by {v['interrupted_by']}, which left the with as {v['outcome']}"


def _judge_single(case: Case, ms: int, kind: str, linger_ms: int) -> None:
    out = case.run([Role("P", roles.guarded, (ms, kind, linger_ms))])
    v = out.value("P")
    h = out.history.format()
    # Fired before the guarded code's first line (the scope was still being entered):
    # not a violation in itself, as long as the deadline had passed by the time we saw it.
    # Raised outside the guarded code after it began (at scope exit) is one.
    early = v["is_expected"] and not v["raised_inside"] and not v["began"]
    ok = v["is_expected"] and (early or (v["raised_inside"] and v["interrupted_by"] == v["outcome"]))
    expect(ok, case.invariant.id, got=f"timeout({ms} ms) around {kind}: {_what_happened(v)}",
           expected=f"interrupted by {v['expected']} inside the guarded code, propagated out of the with",
           call="timeout", history=h)
    waited = (v["t_raised"] - v["t_enter"]) / MS
    expect(waited >= ms, case.invariant.id, got=f"interrupted {waited:.3f} ms after entering",
           expected=f"no interruption before {ms} ms", call="timeout", history=h)
    expect(v["fired"], case.invariant.id, got=f"scope.fired is False after its {v['outcome']}",
           expected="scope.fired True", call="timeout", history=h)
    expect(v["later"] == 0, case.invariant.id,
           got=f"{v['later']} more exception(s) within {linger_ms} ms after leaving the scope",
           expected="none: a scope fires once and is disarmed when left", call="timeout", history=h)


def _durations(case: Case) -> st.SearchStrategy[int]:
    """Sub-second durations where claimed; else whole seconds (few examples: each costs seconds)."""
    if case.claims(SUB_SECOND):
        return st.one_of(st.sampled_from([1, 50, 250]), st.integers(1, 600))
    return st.sampled_from([1000, 2000])


#: The share of a profile's examples a whole-second check runs (1 of ci's 10): each costs seconds.
WHOLE_SECOND_SCALE = 0.12


def _scale(case: Case, sub_second: float) -> float:
    return sub_second if case.claims(SUB_SECOND) else WHOLE_SECOND_SCALE


def _cancel_draws(case: Case, low: int, high: int, work: int, share: int) -> st.SearchStrategy[Any]:
    """(duration, work before cancel()) in ms, the work from ``work`` to a ``share`` of the
    duration: the duration ``low``..``high`` ms where sub_second is claimed,
    else one second, so that a whole-second alarm() scope is really armed (alarm(int(0.3)) is
    alarm(0)) and its cancel() is what keeps it from firing.  One second, not two: the role
    lingers a duration past cancel(), which must fit in a short worker deadline."""
    ms = st.integers(low, high) if case.claims(SUB_SECOND) else st.just(1000)
    return ms.flatmap(lambda d: st.tuples(st.just(d), st.integers(work, d // share)))


@invariant(
    "timeout_fires_once_and_interrupts_guarded_code", family=FAMILY, level=Level.MUST,
    rule="A timeout raises its declared class (TimeoutError unless the backend declares another) inside the "
         "guarded code no earlier than its deadline, lets it propagate out of the with, marks its scope fired, "
         "and fires exactly once: nothing is raised after the scope is left.",
    source="Python docs signal, section 'Examples' (an alarm-based timeout around open()); getitimer(2): 'If both "
           "fields of it_interval are zero, then this is a single-shot timer (i.e., it expires just once).'; PEP 475"
           " (paraphrase: a handler that raises interrupts the call)",
    placements=["fork"],
)
def timeout_fires_once_and_interrupts_guarded_code(backend: object, case: Case) -> None:
    # Without sub_second a backend is judged on whole seconds only (alarm(2) counts seconds).
    case.explore(lambda ms, kind: _judge_single(case, ms, kind, ms + 150),
                 scale=0.5 if case.claims(SUB_SECOND) else 0.12, ms=_durations(case), kind=_kinds(case))


@invariant(
    "sub_second_timeout_is_honoured", family=FAMILY, level=Level.MUST,
    rule="A timeout shorter than one second fires, and not before its deadline: it is rounded neither to 0 "
         "(firing at once) nor to 'never' (alarm(0)).",
    source="alarm(2) (paraphrase: alarm takes whole seconds, and alarm(0) cancels); getitimer(2) (paraphrase: "
           "setitimer takes microseconds); CPython Lib/test/test_signal.py ItimerTest.test_setitimer_tiny",
    requires=[SUB_SECOND], placements=["fork"],
)
def sub_second_timeout_is_honoured(backend: object, case: Case) -> None:
    case.explore(lambda ms: _judge_single(case, ms, "spin" if not case.claims(INTERRUPTS_BLOCKING) else "sleep", 50),
                 scale=0.5, ms=st.one_of(st.sampled_from([1, 499, 500, 999]), st.integers(1, 999)))


@invariant(
    "cancel_returns_time_left_and_disarms", family=FAMILY, level=Level.MUST,
    rule="cancel() before the deadline returns the seconds left (more than 0, at most the duration minus the "
         "time already spent in the scope) and disarms the scope: it never fires afterwards.",
    source="alarm(2): 'alarm() returns the number of seconds remaining'; getitimer(2): 'The it_value substructure is"
           " populated with the amount of time remaining until the next expiration of the specified timer.'; Python "
           "docs signal.setitimer (paraphrase: it returns the old delay and interval)",
    requires=[CANCEL], placements=["fork"],
)
def cancel_returns_time_left_and_disarms(backend: object, case: Case) -> None:
    def body(ms: int, work_ms: int) -> None:
        out = case.run([Role("P", roles.cancel_early, (ms, work_ms))])
        v = out.value("P")
        h = out.history.format(out.history.of("P", "cancel"))
        if v["fired_before_cancel"]:
            return  # the deadline passed before cancel() (a loaded machine): nothing to judge
        spent = (v["t_cancel_start"] - v["t_entered"]) / NS
        top = ms / 1000 - spent
        expect(0 < v["left"] <= top + 1e-6, case.invariant.id,
               got=f"cancel() returned {v['left']!r} after {spent * 1000:.3f} ms of a {ms} ms scope",
               expected=f"a value in (0, {top:.6f}] (the time left)", call="cancel", history=h)
        expect(v["stray"] == 0, case.invariant.id, got=f"{v['stray']} TimeoutError(s) after cancel()",
               expected="none (cancel disarms the scope)", call="cancel", history=h)

    case.explore(lambda p: body(*p), scale=_scale(case, 0.5), p=_cancel_draws(case, 100, 1500, 20, 2))


@invariant(
    "cancelled_scope_never_fires", family=FAMILY, level=Level.MUST,
    rule="After cancel() before the deadline the scope never fires, inside or outside the with, whatever "
         "cancel() returns.",
    source="alarm(2) (paraphrase: alarm(0) cancels a pending alarm); getitimer(2) (paraphrase: a zero "
           "it_value disarms the timer); applies to backends claiming cancel or cancel_disarms",
    placements=["fork"],
)
def cancelled_scope_never_fires(backend: object, case: Case) -> None:
    if not (case.claims(CANCEL) or case.claims(CANCEL_DISARMS)):
        raise Unsupported(f"backend does not claim {CANCEL} or {CANCEL_DISARMS}")

    def body(ms: int, work_ms: int) -> None:
        v = case.run([Role("P", roles.cancel_early, (ms, work_ms))]).value("P")
        if v["fired_before_cancel"]:
            return  # the deadline passed before cancel() (a loaded machine): nothing to judge
        expect(v["stray"] == 0, case.invariant.id, got=f"{v['stray']} timeout(s) after cancel() of a {ms} ms scope",
               expected="none (cancel disarms the scope)", call="cancel")

    case.explore(lambda p: body(*p), scale=_scale(case, 0.3), p=_cancel_draws(case, 60, 400, 10, 3))


@invariant(
    "nested_timeout_keeps_outer_deadline", family=FAMILY, level=Level.MUST,
    rule="An inner timeout neither cancels nor extends an outer one: the outer scope fires, not before its "
         "own deadline, whether the inner one expired, was left early or outlived it; an inner scope whose "
         "deadline is later never fires in the outer one's place.",
    source="alarm(2): 'In any event any previously set alarm() is canceled.'; POSIX alarm(): 'Alarm requests are not"
           " stacked' (paraphrase: one SIGALRM timer per process, so a nesting-aware timeout must restore the outer "
           "deadline itself); Python docs asyncio, section Timeouts (nested asyncio.timeout)",
    requires=[NESTING], placements=["fork"],
)
def nested_timeout_keeps_outer_deadline(backend: object, case: Case) -> None:
    def body(outer_ms: int, inner_ms: int, inner_blocks: bool, kind: str) -> None:
        out = case.run([Role("P", roles.nested, (outer_ms, inner_ms, inner_blocks, kind))])
        v = out.value("P")
        h = out.history.format()
        where = f"outer {outer_ms} ms, inner {inner_ms} ms ({'blocking' if inner_blocks else 'left early'}, {kind})"
        alarms = v.get("sigalrms")  # None where they could not be counted
        count = "" if alarms is None else f", {alarms} SIGALRM delivered while the scopes were active"
        seen = ("fired but swallowed (nothing left the outer with" + count + ")"
                if v["outer_fired"] and not v["raised_by"]
                else f"never fired in {v['gave_up_ms']:.0f} ms" + count if not v["outer_fired"]
                else f"fired, and {v['raised_by']} left it")
        expect(v["outer_raised"] and v["outer_fired"], case.invariant.id,
               got=f"the outer scope {seen} ({where}; inner fired={v['inner_fired']}; "
                   f"expected {v['expected']})",
               expected="the outer scope to fire (the inner one must not cancel it)", call="timeout", history=h)
        waited = (v["t_outer"] - v["t0"]) / MS
        expect(waited >= outer_ms, case.invariant.id, got=f"the outer scope fired after {waited:.3f} ms ({where})",
               expected=f"not before its own {outer_ms} ms", call="timeout", history=h)
        expect(inner_ms < outer_ms or not v["inner_fired"], case.invariant.id,
               got=f"the inner scope fired ({where})",
               expected="the outer scope, whose deadline came first, to fire instead", call="timeout", history=h)

    sub = case.claims(SUB_SECOND)
    ms = st.one_of(st.sampled_from([50, 100, 300]), st.integers(20, 400)) if sub else st.sampled_from([1000, 2000])
    case.explore(body, scale=_scale(case, 0.5), examples=_nesting_shapes(case), outer_ms=ms, inner_ms=ms,
                 inner_blocks=st.booleans(), kind=_kinds(case))


def _nesting_shapes(case: Case) -> List[Dict[str, Any]]:
    """The four shapes every profile runs first: inner shorter and blocking, inner left early,
    inner longer and blocking, equal deadlines.  A failing pinned example is reported as it is,
    without shrinking.  Whole seconds where sub_second is not claimed: a 100 ms outer scope
    of an alarm() backend would fail for its rounding, not for its nesting."""
    kind = "sleep" if case.claims(INTERRUPTS_BLOCKING) else "spin"
    # (outer, inner, inner blocks): whole seconds have no half, so there the outer scope is longer.
    table = ([(100, 50, True), (100, 50, False), (100, 200, True), (100, 100, True)] if case.claims(SUB_SECOND)
             else [(2000, 1000, True), (2000, 1000, False), (1000, 2000, True), (1000, 1000, True)])
    return [dict(outer_ms=o, inner_ms=i, inner_blocks=b, kind=kind) for o, i, b in table]
