"""Invariants of scoped timeouts (SIGALRM, setitimer or thread based).

Each example runs in a fresh forked worker.  Timing is judged by lower bounds
only (a scope cannot fire before its deadline) and by what fired; "fired
within t" is never asserted: guarded code that is never interrupted waits
until just before the worker's deadline and is reported as such.
"""

from __future__ import annotations

from hypothesis import strategies as st

from ..harness.run import Case, Role
from ..invariant import Level, expect, invariant
from . import roles
from .protocol import CANCEL, INTERRUPTS_BLOCKING, NESTING, SUB_SECOND

FAMILY = "timeout"
NS = 10**9
MS = 10**6


def _kinds(case: Case) -> st.SearchStrategy[str]:
    return st.sampled_from(roles.KINDS if case.claims(INTERRUPTS_BLOCKING) else ("spin",))


def _judge_single(case: Case, ms: int, kind: str, linger_ms: int) -> None:
    out = case.run([Role("P", roles.guarded, (ms, kind, linger_ms))])
    v = out.value("P")
    h = out.history.format()
    # Fired before the guarded code's first line (the scope was still being entered):
    # not a violation in itself, as long as the deadline had passed by the time we saw it.
    # Raised outside the guarded code after it began (at scope exit) is one.
    early = v["outcome"] == "TimeoutError" and not v["raised_inside"] and not v["began"]
    expect(v["outcome"] == "TimeoutError" and (v["raised_inside"] or early), case.invariant.id,
           got=f"timeout({ms} ms) around {kind}: {v['outcome']}"
           + (" raised outside the guarded code, after it began" if v["outcome"] == "TimeoutError" else ""),
           expected="TimeoutError raised inside the guarded code", call="timeout", history=h)
    waited = (v["t_raised"] - v["t_enter"]) / MS
    expect(waited >= ms, case.invariant.id, got=f"interrupted {waited:.3f} ms after entering",
           expected=f"no interruption before {ms} ms", call="timeout", history=h)
    expect(v["fired"], case.invariant.id, got="scope.fired is False after its TimeoutError",
           expected="scope.fired True", call="timeout", history=h)
    expect(v["later"] == 0, case.invariant.id,
           got=f"{v['later']} more TimeoutError(s) within {linger_ms} ms after leaving the scope",
           expected="none: a scope fires once and is disarmed when left", call="timeout", history=h)


@invariant(
    "timeout_fires_once_and_interrupts_guarded_code", family=FAMILY, level=Level.MUST,
    rule="A timeout raises TimeoutError inside the guarded code no earlier than its deadline, marks its "
         "scope fired, and fires exactly once: nothing is raised after the scope is left.",
    source="Python docs signal, section 'Examples' (an alarm-based timeout around open()); getitimer(2): 'If both "
           "fields of it_interval are zero, then this is a single-shot timer (i.e., it expires just once).'; PEP 475"
           " (paraphrase: a handler that raises interrupts the call)",
    placements=["fork"],
)
def timeout_fires_once_and_interrupts_guarded_code(backend: object, case: Case) -> None:
    case.explore(lambda ms, kind: _judge_single(case, ms, kind, ms + 150), scale=0.5,
                 ms=st.one_of(st.sampled_from([1, 50, 250]), st.integers(1, 600)), kind=_kinds(case))


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

    draws = st.integers(100, 1500).flatmap(lambda ms: st.tuples(st.just(ms), st.integers(20, ms // 2)))
    case.explore(lambda p: body(*p), scale=0.5, p=draws)


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
        expect(v["outer_raised"] and v["outer_fired"], case.invariant.id,
               got=f"the outer scope never fired ({where}; inner fired={v['inner_fired']})",
               expected="the outer scope to fire (the inner one must not cancel it)", call="timeout", history=h)
        waited = (v["t_outer"] - v["t0"]) / MS
        expect(waited >= outer_ms, case.invariant.id, got=f"the outer scope fired after {waited:.3f} ms ({where})",
               expected=f"not before its own {outer_ms} ms", call="timeout", history=h)
        expect(inner_ms < outer_ms or not v["inner_fired"], case.invariant.id,
               got=f"the inner scope fired ({where})",
               expected="the outer scope, whose deadline came first, to fire instead", call="timeout", history=h)

    ms = st.one_of(st.sampled_from([50, 100, 300]), st.integers(20, 400))
    case.explore(body, scale=0.5, outer_ms=ms, inner_ms=ms, inner_blocks=st.booleans(), kind=_kinds(case))
