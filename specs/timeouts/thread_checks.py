"""Scopes and threads: a scope entered outside the main thread works for that thread
alone or refuses at entry, leaving the main thread's own timer and handler as they
were; where it was built does not matter; and the main thread is told by ``threading.main_thread()``, never by its name.

Python runs signal handlers in the main thread only, and ``signal.signal`` may be
called only there (Python docs, signal, "Signals and threads", paraphrased), while
``setitimer`` arms the one ITIMER_REAL of the whole process from any thread: a
SIGALRM-based scope entered in another thread either refuses or misfires.
"""

from __future__ import annotations

from hypothesis import strategies as st

from ..harness.run import Case, Role
from ..harness.sigstate import ROUNDING_S
from ..invariant import Level, expect, invariant
from . import thread_roles
from .call_checks import durations_ms
from .protocol import SUB_SECOND

FAMILY = "timeout"
MS = 10**6


@invariant(
    "scope_outside_main_thread_works_alone_or_refuses_cleanly", family=FAMILY, level=Level.MUST,
    rule="A scope entered in the main thread (whatever its name) interrupts its guarded code, not before its "
         "deadline; entered in another thread, it either refuses at entry or interrupts the guarded code of that "
         "thread alone.  Either way, wherever the scope was built, the main thread outside the scope never "
         "receives its alarm, and finds the ITIMER_REAL it armed itself counting down to the same deadline (not "
         "disarmed, not moved) and its SIGALRM handler as it left them.",
    source="Python docs signal, 'Signals and threads' (paraphrase: handlers always run in the main thread, and "
           "only the main thread may set a handler: signal.signal raises ValueError elsewhere); setitimer(2) "
           "(paraphrase: ITIMER_REAL is per process and delivers SIGALRM to the process); Python docs threading, "
           "main_thread and Thread.name (paraphrase: a name is only a label, several threads may share one)",
    placements=["fork"],
)
def scope_outside_main_thread_works_alone_or_refuses_cleanly(backend: object, case: Case) -> None:
    def body(ms: int, built_in: str, entered_in: str, thread_name: str, rename_main: bool) -> None:
        args = (ms, built_in, entered_in, thread_name, rename_main)
        out = case.run([Role("P", thread_roles.scope_in_threads, args)])
        v = out.value("P")
        h = out.history.format()
        named = f"'{thread_name}'" if thread_name else "a default name"
        where = (f"timeout({ms} ms) built in the {built_in} thread, entered in the {entered_in} thread"
                 + (f" (named {named})" if entered_in == "other" else "")
                 + (" (main thread renamed)" if rename_main else ""))
        # Refusing (at construction or entry) is for other threads only: in the main thread a scope works.
        ok = v["outcome"] == "timeout" or (v["outcome"] == "refused" and v["refused_in"] == "other")
        expect(ok, case.invariant.id,
               got=f"{where}: {v['outcome']}" + (f" ({v['refused']})" if "refused" in v else ""),
               expected="its guarded code interrupted" + ("" if entered_in == built_in == "main" else
                                                          " or a refusal in the other thread"),
               call="timeout", history=h)
        if v["outcome"] == "timeout":
            waited = (v["t_raised"] - v["t0"]) / MS
            expect(waited >= ms, case.invariant.id, got=f"{where}: interrupted after {waited:.3f} ms",
                   expected=f"not before {ms} ms", call="timeout", history=h)
        low, high = v["caller_left"]
        left, every = v["timer_after"]
        # A hand-back is late by any stall of the entering thread between reading the clock
        # and arming the timer (harness.stalls): allowed, as measured in this example.
        late = ROUNDING_S + v.get("stalled_s", 0.0)
        expect(low - ROUNDING_S <= left <= high + late and every == 0 and v["handler_after"] == "the sentinel",
               case.invariant.id,
               got=f"{where}: once {v['outcome']}, ITIMER_REAL ({left:.6f}, {every:g}), handler {v['handler_after']}",
               expected=f"the main thread's own ITIMER_REAL still counting down, {low:.6f} to {high:.6f} s left "
                        f"(within {ROUNDING_S * 1000:g} ms, or {late * 1000:.3f} ms later with the stalls seen), "
                        "interval 0, and its sentinel handler", call="timeout", history=h)
        expect(v["sentinel_hits"] == 0, case.invariant.id,
               got=f"{where}: the main thread's own SIGALRM handler ran {v['sentinel_hits']} times",
               expected="never: the scope's alarm is the scope's", call="timeout", history=h)

    pinned = [dict(ms=50, built_in="main", entered_in="other", thread_name="", rename_main=False),
              dict(ms=50, built_in="other", entered_in="main", thread_name="MainThread", rename_main=True)]
    if not case.claims(SUB_SECOND):
        pinned = [dict(p, ms=1000) for p in pinned]
    case.explore(body, scale=0.5 if case.claims(SUB_SECOND) else 0.12, examples=pinned,  # whole seconds: few
                 ms=durations_ms(case, st.one_of(st.sampled_from([1, 50]), st.integers(1, 200))),
                 built_in=st.sampled_from(["main", "other"]), entered_in=st.sampled_from(["main", "other"]),
                 thread_name=st.sampled_from(["", "MainThread"]), rename_main=st.booleans())
