"""Invariants of Python-level handlers: the main thread, EINTR retry, the wakeup fd.

What a handler *may* be used to observe is limited (see ``protocol``): that it
ran, and in which thread.  Counts are read from the wakeup fd, which gets one
byte per C-level delivery, never from a handler's own counter.
"""

from __future__ import annotations

import signal
from collections import Counter
from typing import List

from hypothesis import strategies as st

from ..harness.run import Case, Role
from ..invariant import Level, expect, invariant
from . import roles
from .pending_checks import STANDARD, rt_signals
from .protocol import HANDLERS, SIGWAIT, WAKEUP_FD

FAMILY = "signal"
HANDLED = [int(signal.SIGUSR1), int(signal.SIGUSR2), int(signal.SIGHUP)]


@invariant(
    "python_handlers_run_in_main_thread", family=FAMILY, level=Level.MUST,
    rule="A Python signal handler runs in the main thread even when another thread raised the signal, and "
         "signal() called from any other thread raises ValueError.",
    source="Python docs signal, section 'Signals and threads': 'Python signal handlers are always executed in the "
           "main Python thread of the main interpreter, even if the signal was received in another thread.' and "
           "'only the main thread of the main interpreter is allowed to set a new signal handler'",
    requires=[HANDLERS], placements=["fork"],
)
def python_handlers_run_in_main_thread(backend: object, case: Case) -> None:
    def body(signum: int) -> None:
        out = case.run([Role("P", roles.handler_thread, (signum,))])
        v = out.value("P")
        h = out.history.format()
        expect(bool(v["ran_in"]) and set(v["ran_in"]) == {v["main"]}, case.invariant.id,
               got=f"the handler ran in {v['ran_in'] or 'no thread'}",
               expected=f"the main thread {v['main']!r}", call=f"kill(self, {signum})", history=h)
        expect(v["signal_from_thread"] == ["ValueError"], case.invariant.id,
               got=f"signal() from a helper thread: {v['signal_from_thread']}", expected="ValueError",
               call="signal", history=h)

    case.explore(body, scale=0.5, signum=st.one_of(st.sampled_from(HANDLED), rt_signals()))


@invariant(
    "blocking_read_resumes_after_handler_returns", family=FAMILY, level=Level.MUST,
    rule="A blocking read interrupted by a signal whose handler returns normally is retried and returns the "
         "data that arrives later: neither InterruptedError nor a false end of file (b'').",
    source="PEP 475 'Retry system calls failing with EINTR'; Python docs os.read, 'Changed in version 3.5' "
           "(paraphrase: an interrupted call whose handler does not raise is retried); CPython "
           "Lib/test/_test_eintr.py",
    requires=[HANDLERS], placements=["fork"],
)
def blocking_read_resumes_after_handler_returns(backend: object, case: Case) -> None:
    def body(signum: int, signal_after_ms: int, data_after_ms: int) -> None:
        out = case.run([Role("P", roles.interrupted_read, (signum, signal_after_ms, data_after_ms))])
        v = out.value("P")
        h = out.history.format(out.history.of("P", "read"))
        expect(v["read"] == b"late", case.invariant.id,
               got=f"read returned {v['read']!r} after {v['handler_calls']} handler call(s)",
               expected="b'late' (the read is retried after the handler returns)", call="read", history=h)

    case.explore(body, scale=0.5, signum=st.sampled_from(HANDLED), signal_after_ms=st.integers(0, 30),
                 data_after_ms=st.integers(10, 150))


@invariant(
    "wakeup_fd_gets_each_signal_number", family=FAMILY, level=Level.MUST,
    rule="set_wakeup_fd refuses a blocking fd (ValueError); on a non-blocking one, each delivered signal "
         "writes one byte holding its number.",
    source="Python docs signal.set_wakeup_fd: 'When a signal is received, the signal number is written as a single "
           "byte into the fd.' and 'fd must be non-blocking'; CPython Lib/test/test_signal.py "
           "WakeupFDTests.test_set_wakeup_fd_blocking, test_signum",
    requires=[HANDLERS, WAKEUP_FD], placements=["fork"],
)
def wakeup_fd_gets_each_signal_number(backend: object, case: Case) -> None:
    def body(plan: List[int]) -> None:
        out = case.run([Role("P", roles.wakeup_bytes, (plan,))])
        v = out.value("P")
        h = out.history.format(out.history.of("P", "set_wakeup_fd"))
        expect(v["blocking_fd"] == "ValueError", case.invariant.id,
               got=f"set_wakeup_fd(<blocking fd>) {v['blocking_fd']}", expected="ValueError",
               call="set_wakeup_fd", history=h)
        got, want = Counter(v["bytes"]), Counter(plan)
        expect(got == want, case.invariant.id, got=f"wakeup bytes {dict(sorted(got.items()))}",
               expected=f"{dict(sorted(want.items()))} (one byte per delivery, holding the signal number)",
               call="kill", history=h)

    sigs = st.one_of(st.sampled_from(HANDLED + [s for s in STANDARD if s not in HANDLED]), rt_signals())
    case.explore(body, scale=0.5, plan=st.lists(sigs, min_size=1, max_size=10))


UNCATCHABLE = [int(signal.SIGKILL), int(signal.SIGSTOP)]


@invariant(
    "sigkill_and_sigstop_cannot_be_caught_ignored_or_blocked", family=FAMILY, level=Level.MUST,
    rule="Giving SIGKILL or SIGSTOP any disposition (a handler, SIG_IGN, even SIG_DFL) fails with EINVAL, "
         "and blocking them is silently ignored: the mask never holds them.",
    source="signal(7): 'The signals SIGKILL and SIGSTOP cannot be caught, blocked, or ignored.'; sigaction(2) "
           "EINVAL: 'This will also be generated if an attempt is made to change the action for SIGKILL or SIGSTOP';"
           " sigprocmask(2): 'It is not possible to block SIGKILL or SIGSTOP. Attempts to do so are silently "
           "ignored.'",
    requires=[HANDLERS, SIGWAIT], placements=["fork"],
)
def sigkill_and_sigstop_cannot_be_caught_ignored_or_blocked(backend: object, case: Case) -> None:
    def body(targets: List[int], disposition: str, others: List[int]) -> None:
        out = case.run([Role("P", roles.try_to_catch_the_uncatchable, (targets, disposition, others))])
        v = out.value("P")
        h = out.history
        for sig in targets:
            name = signal.Signals(sig).name
            expect(v["signal"][sig] == "EINVAL", case.invariant.id,
                   got=f"signal({name}, {disposition}) {v['signal'][sig]}", expected="OSError EINVAL",
                   call="signal", history=h.format(h.of("P", "signal")))
        held = sorted(set(v["blocked"]) & set(UNCATCHABLE))
        expect(not held, case.invariant.id, got=f"the mask holds {[signal.Signals(s).name for s in held]}",
               expected=f"{sorted(others)} blocked, never SIGKILL or SIGSTOP", call="pthread_sigmask",
               history=h.format(h.of("P", "pthread_sigmask")))

    case.explore(body, targets=st.lists(st.sampled_from(UNCATCHABLE), min_size=1, max_size=2, unique=True),
                 disposition=st.sampled_from(sorted(roles.DISPOSITIONS)), others=st.lists(
                     st.sampled_from(HANDLED + [int(signal.SIGTERM)]), max_size=3, unique=True))


@invariant(
    "forked_child_inherits_mask_but_no_pending_signals", family=FAMILY, level=Level.MUST,
    rule="A child created by fork() starts with its parent's signal mask and with no signal pending, "
         "while the parent's pending signals stay pending for the parent.",
    source="signal(7): 'A child created via fork(2) inherits a copy of its parent's signal mask' and 'A child "
           "created via fork(2) initially has an empty pending signal set'; fork(2): 'The child's set of pending "
           "signals is initially empty (sigpending(2)).'",
    requires=[SIGWAIT], placements=["fork"],
)
def forked_child_inherits_mask_but_no_pending_signals(backend: object, case: Case) -> None:
    def body(blocked: List[int], raise_: List[int]) -> None:
        raised = [s for s in raise_ if s in blocked]
        out = case.run([Role("P", roles.mask_and_pending_across_fork, (blocked, raised))])
        v = out.value("P")
        h = out.history.format()
        expect(v["child_mask"] is not None and set(blocked) <= set(v["child_mask"]), case.invariant.id,
               got=f"the child's mask is {v['child_mask']}", expected=f"a mask holding {sorted(blocked)}",
               call="fork", history=h)
        expect(v["child_pending"] == [], case.invariant.id, got=f"the child has {v['child_pending']} pending",
               expected="nothing pending in a new child", call="fork", history=h)
        expect(set(raised) <= set(v["parent_pending"]), case.invariant.id,
               got=f"the parent has {v['parent_pending']} pending after the fork",
               expected=f"{sorted(set(raised))} still pending for the parent", call="sigpending", history=h)

    signals = st.sampled_from(HANDLED + [int(signal.SIGTERM), int(signal.SIGWINCH)])
    case.explore(body, blocked=st.lists(signals, min_size=1, max_size=4, unique=True),
                 raise_=st.lists(signals, max_size=4, unique=True))
