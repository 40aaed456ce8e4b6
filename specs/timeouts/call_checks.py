"""Invariants of the call form, ``run(seconds, fn, *args, **kwargs)`` (decorators and
function wrappers), and of executors (``fn`` runs in another thread or process).

Every example runs in a fresh forked worker.  Times are lower bounds ("not before t");
"released promptly" is judged only against a control timer armed at the same moment in
the same worker, with a slack derived from that control's own lateness.  Something that
never comes is waited for a generous multiple of its own duration, never the deadline.
"""

from __future__ import annotations

from typing import Any, Dict

from hypothesis import strategies as st

from ..harness.control import release_slack_ms
from ..harness.run import Case, Role
from ..invariant import Level, expect, invariant
from . import call_roles, executor_roles
from .protocol import CALL_FORM, EXECUTOR, INTERRUPTS_BLOCKING, NESTING, STOPS_GUARDED_CODE, SUB_SECOND

FAMILY = "timeout"
MS = 10**6
#: What a call hands back, as the sigstate audit of the scope checks reads it.
STATE_KEPT = "the signal state of before the call: every handler, the mask and ITIMER_REAL"
WHATS = ("value", "ValueError", "CallAbort", "SystemExit", "KeyboardInterrupt", "__main__")


def kind(case: Case) -> str:
    """How guarded code blocks: in a sleep when the backend can get it out of one."""
    return "sleep" if case.claims(INTERRUPTS_BLOCKING) or case.claims(EXECUTOR) else "spin"


def durations_ms(case: Case, sub_second: st.SearchStrategy[int]) -> st.SearchStrategy[int]:
    """``sub_second`` when the backend claims to honour durations below a second, else whole
    seconds: a whole-second backend is checked for what it promises, not failed on 50 ms."""
    return sub_second if case.claims(SUB_SECOND) else st.sampled_from([1000, 2000])


@invariant(
    "call_passes_results_and_exceptions_unchanged", family=FAMILY, level=Level.MUST,
    rule="run(seconds, fn, *args, **kwargs) returns fn's result, or re-raises the exception fn raised unchanged "
         "(the same object, or the same class with the same args), BaseException subclasses, SystemExit, "
         "KeyboardInterrupt and classes defined in __main__ included, and leaves the signal state as it was "
         "(every handler, the mask, ITIMER_REAL).",
    source="Python docs functools.wraps and the language reference, 'The raise statement' (paraphrase: a wrapper "
           "is transparent to its function's result and exceptions); Python docs concurrent.futures, "
           "Future.result: 'If the call raised an exception, this method will raise the same exception.'; "
           "Python docs pickle, 'What can be pickled' (classes are pickled by name)",
    requires=[CALL_FORM], placements=["fork"],
)
def call_passes_results_and_exceptions_unchanged(backend: object, case: Case) -> None:
    def body(what: str) -> None:
        out = case.run([Role("P", call_roles.result_passes, (what, 5000))])
        v = out.value("P")
        h = out.history.format()
        if what == "value":
            expect(v["outcome"] == "returned" and v["equal"], case.invariant.id,
                   got=f"run() {v['outcome']}: {v['got']}", expected="fn's own return value", call="run", history=h)
        else:
            expect(v["outcome"] == "raised" and v["same"], case.invariant.id,
                   got=f"fn raised {v['want']}; run() {v['outcome']} {v['got']}",
                   expected=f"{v['want']} re-raised unchanged", call="run", history=h)
        expect(not v["state_changes"], case.invariant.id, got=f"run() ({what}) left: {'; '.join(v['state_changes'])}",
               expected=STATE_KEPT, call="run", history=h)

    case.explore(body, scale=0.5, examples=[{"what": w} for w in WHATS], what=st.sampled_from(WHATS))


@invariant(
    "call_timeout_is_raised_never_returned", family=FAMILY, level=Level.MUST,
    rule="When fn outlives its timeout, run() raises the timeout's exception, not before the deadline, whether "
         "it is called alone or inside another run(): a nested call's timeout is never turned into a return value.",
    source="Python docs concurrent.futures, Future.result (paraphrase: if the call has not completed in "
           "timeout seconds, TimeoutError is raised); setitimer(2) (paraphrase: the timer expires once its value "
           "has elapsed)",
    requires=[CALL_FORM], placements=["fork"],
)
def call_timeout_is_raised_never_returned(backend: object, case: Case) -> None:
    def body(ms: int, nested: bool) -> None:
        out = case.run([Role("P", call_roles.timeout_raised, (ms, kind(case), nested))])
        v = out.value("P")
        h = out.history.format()
        where = f"run({ms} ms){' nested in another run()' if nested else ''}"
        expect("t_raised" in v, case.invariant.id, got=f"{where} returned {v.get('returned')}",
               expected="the timeout's exception raised", call="run", history=h)
        waited = (v["t_raised"] - v["t0"]) / MS
        expect(waited >= ms, case.invariant.id, got=f"{where} raised after {waited:.3f} ms",
               expected=f"no timeout before {ms} ms", call="run", history=h)

    nested = st.booleans() if case.claims(NESTING) else st.just(False)
    pinned = [{"ms": 50, "nested": True}] if case.claims(NESTING) else []
    case.explore(body, scale=0.5, examples=pinned if case.claims(SUB_SECOND) else [],
                 ms=durations_ms(case, st.one_of(st.sampled_from([1, 50]), st.integers(1, 300))),
                 nested=nested)


def _called_again(case: Case, depth: int, times: int) -> None:
    out = case.run([Role("P", call_roles.called_again, (depth, times))])
    v = out.value("P")
    h = out.history.format()
    expect(all(g == v["want"] for g in v["got"]), case.invariant.id,
           got=f"{times} calls of depth {depth} gave {v['got']}", expected=f"{v['want']} each time",
           call="run", history=h)
    expect(not v["state_changes"], case.invariant.id,
           got=f"{times} calls of depth {depth} left: {'; '.join(v['state_changes'])}", expected=STATE_KEPT,
           call="run", history=h)


@invariant(
    "wrapped_call_can_be_called_again", family=FAMILY, level=Level.MUST,
    rule="run() can be called again, and again, after it returned: every call returns fn's result, and the "
         "signal state (every handler, the mask, ITIMER_REAL) ends as it began; no nesting claim is needed.",
    source="Python docs functools.wraps (paraphrase: the wrapper stands for the function, which may be called "
           "any number of times); Python docs signal, signal.signal and signal.pthread_sigmask (paraphrase: both "
           "return the previous value, for the caller to restore)",
    requires=[CALL_FORM], placements=["fork"],
)
def wrapped_call_can_be_called_again(backend: object, case: Case) -> None:
    # Depth 0: each call returns before the next begins; re-entry is the invariant below.
    case.explore(lambda times: _called_again(case, 0, times), scale=0.2, examples=[{"times": 2}],
                 times=st.integers(2, 4))


@invariant(
    "wrapped_call_can_be_called_again_reentrantly_and_recursively", family=FAMILY, level=Level.MUST,
    rule="run() can be called from inside fn itself (recursion, each level its own run() of the same "
         "function), and such a call again after it returned: every call returns fn's result and the signal "
         "state (every handler, the mask, ITIMER_REAL) ends as it began.",
    source="Python docs functools.wraps (paraphrase: the wrapper stands for the function, which may be called "
           "any number of times, recursively too); Python docs signal, signal.signal (paraphrase: it returns the "
           "previous handler, for the caller to restore)",
    requires=[CALL_FORM, NESTING], placements=["fork"],
)
def wrapped_call_can_be_called_again_reentrantly_and_recursively(backend: object, case: Case) -> None:
    case.explore(lambda depth, times: _called_again(case, depth, times), scale=0.3,
                 examples=[{"depth": 2, "times": 2}], depth=st.integers(1, 3), times=st.integers(1, 3))


@invariant(
    "call_duration_override_cleans_up_like_the_default", family=FAMILY, level=Level.MUST,
    rule="Whatever duration each call passes (the first one or another: a per-call override) and however it "
         "ends (a result, an exception, its timeout), the signal state after the call (every handler, the mask, "
         "ITIMER_REAL) equals what it was before it, seen in the process that made the call.",
    source="Python docs signal (paraphrase: signal.signal returns the previous handler, setitimer the old "
           "value and pthread_sigmask the old mask; a wrapper restores all three); setitimer(2) (paraphrase: a "
           "zero it_value disarms the timer); sigprocmask(2) (paraphrase: a blocked signal stays pending until "
           "unblocked)",
    requires=[CALL_FORM], placements=["fork"],
)
def call_duration_override_cleans_up_like_the_default(backend: object, case: Case) -> None:
    def body(durations: Any) -> None:
        out = case.run([Role("P", call_roles.durations_clean_up, (list(durations), kind(case)))])
        h = out.history.format()
        for i, c in enumerate(out.value("P")):
            expect(not c["changes"], case.invariant.id,
                   got=f"call {i} (run({c['ms']} ms), {c['ending']}) left: {'; '.join(c['changes'])}",
                   expected=STATE_KEPT, call="run", history=h)

    ms = durations_ms(case, st.one_of(st.sampled_from([20, 50]), st.integers(10, 150)))
    case.explore(body, scale=0.3, examples=[{"durations": [50, 80, 120]}] if case.claims(SUB_SECOND) else [],
                 durations=st.lists(ms, min_size=2, max_size=4))


@invariant(
    "nested_call_keeps_outer_deadline", family=FAMILY, level=Level.MUST,
    rule="A run() inside another neither cancels nor extends the outer one: the outer call's timeout is "
         "raised, not before its own deadline and no later than a plain timer of the outer duration armed at the "
         "same moment (plus a slack derived from that timer's lateness), even when the inner deadline is later.",
    source="POSIX alarm(): 'Alarm requests are not stacked' (paraphrase: one SIGALRM timer per process, so a "
           "nesting wrapper must restore the outer deadline itself); setitimer(2) (paraphrase: arming the timer "
           "replaces its previous value)",
    requires=[CALL_FORM, NESTING], placements=["fork"],
)
def nested_call_keeps_outer_deadline(backend: object, case: Case) -> None:
    def body(outer_ms: int, extra_ms: int) -> None:
        inner_ms = outer_ms + extra_ms
        out = case.run([Role("P", call_roles.nested_outer_deadline, (outer_ms, inner_ms, kind(case)))])
        v = out.value("P")
        h = out.history.format()
        where = f"outer run({outer_ms} ms) around an inner run({inner_ms} ms)"
        expect(v["outer"] == "raised", case.invariant.id, got=f"the outer call returned ({where})",
               expected="the outer call's timeout raised", call="run", history=h)
        waited = (v["t_released"] - v["t0"]) / MS
        expect(waited >= outer_ms, case.invariant.id, got=f"the outer call raised after {waited:.3f} ms ({where})",
               expected=f"not before its own {outer_ms} ms", call="run", history=h)
        late = v["control_lateness"]
        bound = outer_ms + late * 1000 + release_slack_ms(late)
        expect(waited <= bound, case.invariant.id,
               got=f"the outer call raised after {waited:.3f} ms ({where}); a plain {outer_ms} ms timer armed at "
                   f"the same moment was {late * 1000:.3f} ms late",
               expected=f"raised by {bound:.3f} ms: the inner call's later deadline must not hold it up",
               call="run", history=h)

    # The inner deadline is at least a second later, well past the slack, so a wrapper that
    # re-arms the process timer for the inner call is told apart from a late release.
    case.explore(body, scale=0.5, outer_ms=durations_ms(case, st.one_of(st.sampled_from([30, 100]),
                                                                           st.integers(10, 250))),
                 extra_ms=st.one_of(st.just(1000), st.integers(1000, 1500)))


def _released(case: Case, v: Dict[str, Any], ms: int, h: str) -> None:
    expect(v["outcome"] == "raised", case.invariant.id,
           got=f"run({ms} ms) of a function that swallows every exception returned {v.get('returned')}",
           expected="the timeout's exception, raised in the caller", call="run", history=h)
    waited = (v["t_released"] - v["t0"]) / MS
    expect(waited >= ms, case.invariant.id, got=f"released after {waited:.3f} ms",
           expected=f"not before {ms} ms", call="run", history=h)
    slack = release_slack_ms(v["control_lateness"])
    bound = ms + v["control_lateness"] * 1000 + slack
    expect(waited <= bound, case.invariant.id,
           got=f"released after {waited:.3f} ms; a plain {ms} ms timer armed at the same moment was "
               f"{v['control_lateness'] * 1000:.3f} ms late",
           expected=f"released by {bound:.3f} ms (the control's time plus {slack:.0f} ms)",
           call="run", history=h)


@invariant(
    "executor_releases_caller_at_deadline", family=FAMILY, level=Level.MUST,
    rule="An executor releases the caller with the timeout's exception at the deadline even when fn ignores "
         "every exception: not before the deadline, and no later than a plain timer of the same duration armed "
         "at the same moment, plus a slack derived from that timer's own lateness.",
    source="Python docs concurrent.futures, Future.result(timeout) (paraphrase: it raises TimeoutError when the "
           "call has not completed in time, whether or not the call goes on); Python docs threading, "
           "Event.wait (the control)",
    requires=[CALL_FORM, EXECUTOR], placements=["fork"],
)
def executor_releases_caller_at_deadline(backend: object, case: Case) -> None:
    def body(ms: int) -> None:
        out = case.run([Role("P", executor_roles.released_at_deadline, (ms, False))])
        _released(case, out.value("P"), ms, out.history.format())

    case.explore(body, scale=0.5, ms=durations_ms(case, st.one_of(st.sampled_from([20, 100]), st.integers(10, 300))))


@invariant(
    "stopped_guarded_code_leaves_nothing_running", family=FAMILY, level=Level.MUST,
    rule="An executor that claims to stop the guarded code has, when it releases the caller, stopped it: no "
         "heartbeat of fn's thread or process is stamped after the release, and no process fn started "
         "(a grandchild) or the executor started is left running.",
    source="Python docs multiprocessing, Process.terminate (paraphrase: descendant processes are not "
           "terminated, they become orphaned); kill(2) and killpg(3) (paraphrase: a negative pid or killpg "
           "signals the whole process group); Python docs concurrent.futures, Future.cancel (paraphrase: a "
           "running call cannot be cancelled)",
    requires=[CALL_FORM, EXECUTOR, STOPS_GUARDED_CODE], placements=["fork"],
)
def stopped_guarded_code_leaves_nothing_running(backend: object, case: Case) -> None:
    def body(ms: int) -> None:
        out = case.run([Role("P", executor_roles.released_at_deadline, (ms, True))])
        v = out.value("P")
        h = out.history.format()
        _released(case, v, ms, h)
        expect(not v["late_beats"], case.invariant.id,
               got=f"{v['late_beats']} heartbeats after the release, from pids {v['late_pids']} (the worker is "
                   f"{v['worker']}, the grandchild fn started {v['grandchildren']})",
               expected="none: the guarded code stopped when the caller was released", call="run", history=h)
        expect(not v["grandchildren_running"] and not v["children_running"], case.invariant.id,
               got=f"still running: grandchildren {v['grandchildren_running']}, children {v['children_running']}",
               expected="no process of the guarded call left running", call="run", history=h)

    case.explore(body, scale=0.3, ms=durations_ms(case, st.one_of(st.sampled_from([20, 100]), st.integers(10, 200))))
