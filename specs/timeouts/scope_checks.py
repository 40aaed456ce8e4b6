"""Invariants of what a timeout scope leaves behind and of when it fires, judged
in the worker that used it: the caller's own alarm and handler, the signal state
on every exit path, a scope left early, exits at the deadline, lateness against
a control, and the class a backend declares.

Each example runs in a fresh forked worker, with durations of tens to hundreds
of milliseconds (whole seconds where ``sub_second`` is not claimed).
"""

from __future__ import annotations

from typing import Any, Dict, List

from hypothesis import strategies as st

from ..harness.control import attempts_deadline_s, describe_attempts, described, on_time
from ..harness.run import Case, Role
from ..invariant import Level, expect, invariant
from ..strategies import anchored_integers
from . import roles
from .common import NEVER_EXTRA_S, NEVER_FACTOR
from .protocol import CANCEL, CANCEL_DISARMS, INTERRUPTS_BLOCKING, SUB_SECOND

FAMILY = "timeout"
SIGNAL_SOURCES = ("alarm(2) (paraphrase: one alarm per process, a new alarm() replaces it); setitimer(2) and "
                  "getitimer(2) (paraphrase: one ITIMER_REAL per process, setitimer returns the old value so it "
                  "can be restored); signal(7) (paraphrase: a disposition is per process, and SIGALRM's default "
                  "action terminates it)")


def _paths(case: Case) -> List[str]:
    cancels = case.claims(CANCEL) or case.claims(CANCEL_DISARMS)
    return [p for p in roles.PATHS if p != "cancel" or cancels]


def _ms(case: Case) -> st.SearchStrategy[int]:
    return anchored_integers(20, 200, [20, 50, 100]) if case.claims(SUB_SECOND) else st.just(1000)


def _kind(case: Case) -> str:
    return "sleep" if case.claims(INTERRUPTS_BLOCKING) else "spin"


@invariant(
    "caller_alarm_and_handler_survive_the_scope", family=FAMILY, level=Level.MUST,
    rule="When the code around a scope has its own SIGALRM handler and ITIMER_REAL armed, then after the scope "
         "is left by any path (return, its own timeout, an exception, cancel) that handler is installed again "
         "and that timer fires at its original deadline (not before it, and no later than a plain sleep of the "
         "same duration measured in the same process allows); or the scope refuses at entry with "
         "ScopeRefused and changes neither.",
    source=SIGNAL_SOURCES + "; Python docs signal.setitimer and signal.signal (paraphrase: both return the "
           "previous value, so a library can hand it back); setitimer(2) (paraphrase: a timer may expire some "
           "short time after its deadline, with the system's load; the control sees the same load); no nesting "
           "claim is needed",
    placements=["fork"],
)
def caller_alarm_and_handler_survive_the_scope(backend: object, case: Case) -> None:
    def body(path: str, ms: int, gap_ms: int) -> None:
        outer = ms + gap_ms
        # Each attempt waits for the caller's alarm at most NEVER_FACTOR times its delay (roles.py).
        out = case.run([Role("P", roles.outer_alarm, (path, ms, outer, _kind(case)))],
                       deadline=attempts_deadline_s(outer, NEVER_FACTOR * outer / 1000 + NEVER_EXTRA_S,
                                                    after=outer < 1000))
        attempts = out.value("P")
        h = out.history.format()
        where = f"a {ms} ms scope left by {path}, the caller's ITIMER_REAL at {outer} ms"
        for v in attempts:
            _judge_caller_alarm(case, v, where, outer, h)
        # Late only if every attempt was: a load spike delays one attempt, a slipped deadline all.
        expect(any(on_time(a) for a in attempts), case.invariant.id,
               got=describe_attempts(f"the caller's timer ({where})", outer, attempts),
               expected=f"it fires at its deadline, {outer} ms after it was armed: "
                        f"{described(attempts[-1]['controls'])}", call="timeout", history=h)

    # Left by its own timeout, the scope is where the caller's deadline slips most (its whole duration):
    # 300 ms, far above the slack a loaded machine's control earns (a 100 ms slip hid under a load of 7).
    pinned = [dict(path="timeout", ms=300 if case.claims(SUB_SECOND) else 1000, gap_ms=50)]
    case.explore(body, scale=0.3, pinned=pinned, path=st.sampled_from(_paths(case)), ms=_ms(case),
                 gap_ms=anchored_integers(50, 300, [50, 100]))


def _judge_caller_alarm(case: Case, v: Dict[str, Any], where: str, outer: int, h: str) -> None:
    # Its own timeout while still entering (a short scope on a loaded machine) is no refusal.
    expect(v["entered"] or v["refused"] or v.get("is_expected", False), case.invariant.id,
           got=f"{v['raised']} at entry ({where})", expected="the scope entered, or ScopeRefused",
           call="timeout", history=h)
    expect(v["handler_back"], case.invariant.id,
           got=f"SIGALRM's handler is {v['handler_now']} after {where}",
           expected="the caller's handler installed again", call="timeout", history=h)
    expect("stray" not in v, case.invariant.id, got=f"{v.get('stray')} raised outside the scope ({where})",
           expected="the caller's alarm delivered to the caller's handler", call="timeout", history=h)
    fired = v["caller_fired_ms"]
    expect(bool(fired), case.invariant.id,
           got=f"the caller's timer never fired in {v['waited_ms']:.0f} ms ({v['timer_left']:.6f} s left on "
               f"ITIMER_REAL after the scope; {where})",
           expected=f"it fires at its deadline, {outer} ms after it was armed", call="timeout", history=h)
    expect(fired[0] >= outer, case.invariant.id, got=f"the caller's timer fired at {fired[0]:.3f} ms ({where})",
           expected=f"not before its deadline, {outer} ms", call="timeout", history=h)


@invariant(
    "signal_state_restored_on_every_exit_path", family=FAMILY, level=Level.MUST,
    rule="After a scope is left by any path (return, its own timeout, an exception, cancel), every signal "
         "handler, the signal mask and ITIMER_REAL are as they were before it, checked in the process that "
         "used it.",
    source=SIGNAL_SOURCES + "; Python docs signal, section 'Execution of Python signal handlers' (paraphrase: "
           "handlers are per process, set from the main thread)",
    placements=["fork"],
)
def signal_state_restored_on_every_exit_path(backend: object, case: Case) -> None:
    def body(path: str, ms: int) -> None:
        out = case.run([Role("P", roles.exit_paths, (path, ms, _kind(case)))])
        v = out.value("P")
        expect(not v["leaks"], case.invariant.id,
               got=f"after a {ms} ms scope left by {path}: " + "; ".join(v["leaks"]),
               expected="the signal state it found", call="timeout", history=out.history.format())

    case.explore(body, scale=0.3, path=st.sampled_from(_paths(case)), ms=_ms(case))


@invariant(
    "scope_left_early_never_fires_later", family=FAMILY, level=Level.MUST,
    rule="A scope left before its deadline (by return, an exception or cancel) never fires afterwards: "
         "nothing is raised and no signal is delivered outside it, past its old deadline.",
    source=SIGNAL_SOURCES,
    placements=["fork"],
)
def scope_left_early_never_fires_later(backend: object, case: Case) -> None:
    def body(path: str, ms: int) -> None:
        out = case.run([Role("P", roles.exit_paths, (path, ms, _kind(case)))])
        if out.roles["P"].status != "ok":  # killed by SIGALRM: a timer still armed after the scope
            raise out.violation_for("P", expected=f"no SIGALRM after a {ms} ms scope left early by {path}")
        v = out.value("P")
        expect(v["stray"] == 0, case.invariant.id,
               got=f"a {ms} ms scope left early by {path} raised outside it, past its deadline",
               expected="nothing: it was disarmed when left", call="timeout", history=out.history.format())

    case.explore(body, scale=0.3, path=st.sampled_from([p for p in _paths(case) if p != "timeout"]), ms=_ms(case))


@invariant(
    "scopes_ending_near_their_deadline_leave_no_trace", family=FAMILY, level=Level.MUST,
    rule="Scopes whose guarded code ends within milliseconds of the deadline either return or are "
         "interrupted inside; none raises outside a scope, kills the process or hangs, and the signal "
         "state is unchanged afterwards.",
    source=SIGNAL_SOURCES + " (a handler restored before the timer is disarmed races the deadline)",
    requires=[SUB_SECOND], placements=["fork"],
)
def scopes_ending_near_their_deadline_leave_no_trace(backend: object, case: Case) -> None:
    def body(plan: List[List[int]]) -> None:
        out = case.run([Role("P", roles.near_deadline, (plan, _kind(case)))])
        if out.roles["P"].status != "ok":  # killed by SIGALRM between two steps of an exit
            raise out.violation_for("P", expected="no SIGALRM outside the scopes (disarm, then restore)")
        v = out.value("P")
        problems = v["outside"] + v["leaks"] + (["a timeout raised after the last scope"] if v["stray"] else [])
        expect(not problems, case.invariant.id, got="; ".join(problems), expected="no trace outside the scopes",
               call="timeout", history=out.history.format())

    # 0.5 to 3 ms before the deadline, or as much after it; shrinks towards "just before", where
    # an exit that restores before it disarms is caught every time (a smaller margin would
    # make the minimal example depend on how long the exit itself takes under load).
    early_us = st.tuples(anchored_integers(500, 3000, [500, 1000, 2000]), st.booleans()).map(
        lambda e: -e[0] if e[1] else e[0])
    plan = st.lists(st.tuples(st.sampled_from([10, 20, 30]), early_us).map(list), min_size=4, max_size=12)
    case.explore(body, scale=0.3, plan=plan)


@invariant(
    "timeout_is_no_later_than_a_control_timer", family=FAMILY, level=Level.SHOULD,
    rule="A timeout fires no later than a plain sleep of the same duration measured in the same process just "
         "before and after it, plus a slack derived from that control's own lateness.",
    source="setitimer(2) (paraphrase: timers never expire before the requested time, but may expire some "
           "short time afterwards, depending on the system timer resolution and load); alarm(2) "
           "(paraphrase: scheduling delays may delay the process); the control sees the same load",
    placements=["fork"],
)
def timeout_is_no_later_than_a_control_timer(backend: object, case: Case) -> None:
    def body(ms: int) -> None:
        out = case.run([Role("P", roles.lateness, (ms, _kind(case)))],
                       deadline=attempts_deadline_s(ms, NEVER_FACTOR * ms / 1000 + NEVER_EXTRA_S, after=ms < 1000))
        attempts = out.value("P")
        expect(any(on_time(a) for a in attempts), case.invariant.id,
               got=describe_attempts(f"a {ms} ms timeout, {len(attempts)} attempt(s)", ms, attempts),
               expected=described(attempts[-1]["controls"]) + ", in at least one attempt", call="timeout",
               history=out.history.format())

    ms = anchored_integers(50, 400, [100, 300]) if case.claims(SUB_SECOND) else st.just(1000)
    case.explore(body, scale=0.2, ms=ms)


#: Built-in exception families a timeout class has no business deriving from (the ones
#: it may: its own base classes, TimeoutError and the OSError it derives from).
_FINE = {"object", "BaseException", "Exception", "TimeoutError", "OSError"}


@invariant(
    "declared_timeout_class_is_not_an_unrelated_error", family=FAMILY, level=Level.SHOULD,
    rule="The exception class a backend declares for its timeouts derives from TimeoutError or from no "
         "built-in family at all, never from an unrelated one such as AssertionError, which callers and test "
         "runners take for something else.",
    source="Python docs, Built-in Exceptions (paraphrase: TimeoutError is raised when a system function timed "
           "out; AssertionError when an assert statement fails; user classes should derive from Exception); "
           "Python docs concurrent.futures and asyncio (their TimeoutError is the builtin since 3.11)",
    placements=["fork"],
)
def declared_timeout_class_is_not_an_unrelated_error(backend: object, case: Case) -> None:
    def body(once: int) -> None:
        v = case.run([Role("P", roles.declared_class)]).value("P")
        unrelated = [name for module, name in v["mro"] if module == "builtins" and name not in _FINE]
        expect(not unrelated, case.invariant.id, got=f"{v['name']} derives from {', '.join(unrelated)}",
               expected="a subclass of TimeoutError, or of Exception alone", call="open_timeouts")

    case.explore(body, scale=0.01, once=st.just(0))  # one example: the class does not vary
