"""Invariants of pending signals: coalescing, queueing, dequeue order, probes.

A receiver blocks the signals, sender processes send them, and the receiver
dequeues with ``sigtimedwait(set, 0)``.  kill() returns only once the signal
is pending at the target, so "every sender has finished" means "everything is
pending" without any sleep.  Counts and order are never read from Python
handlers (see ``protocol``: the C handler only trips a flag, and stacked
handler frames run in reverse).
"""

from __future__ import annotations

import signal
from collections import Counter
from typing import Dict, List, Sequence, Tuple

from hypothesis import strategies as st

from .. import limits
from ..harness.outcome import Outcome
from ..harness.run import Case, Role
from ..invariant import Level, Unresolved, expect, invariant
from ..strategies import anchored_integers
from . import roles
from .protocol import REALTIME, SIGWAIT

FAMILY = "signal"
#: Standard signals whose default action does not matter while they are blocked.
STANDARD = [int(signal.SIGHUP), int(signal.SIGUSR1), int(signal.SIGUSR2), int(signal.SIGWINCH)]
#: Standard signals for the order check: SIGSEGV is one Linux dequeues first whatever its number
#: (sent by kill() and blocked, it is as harmless as the others), so a check that assumed
#: "lowest number first" among standard signals would fail the kernel itself.
ORDER_STANDARD = STANDARD + [int(signal.SIGSEGV)]
MAX_SENDERS = 3
MAX_RT_PER_ENTRY = 20


def rt_range() -> Tuple[int, int]:
    """SIGRTMIN and SIGRTMAX of this libc and kernel, read at run time."""
    p = limits.probe()
    lo, hi = int(p["sigrtmin"]), int(p["sigrtmax"])  # type: ignore[call-overload]
    return lo, hi


def rt_signals() -> st.SearchStrategy[int]:
    lo, hi = rt_range()
    return anchored_integers(lo, hi, [lo, lo + 1, hi], deep=False)


def _require_sigpending(need: int) -> None:
    limit = int(limits.probe()["rlimit_sigpending"])  # type: ignore[call-overload]
    # The limit counts every pending signal of this user; leave room for other processes.
    if limit >= 0 and need + 64 > limit:
        raise Unresolved(f"RLIMIT_SIGPENDING={limit} is below the {need + 64} queued signals this check needs")


def _send(case: Case, watch: Sequence[int], plans: Sequence[Sequence[int]], sequential: bool) -> Outcome:
    senders = [Role(f"S{i}", roles.sender, (plan, f"sent-S{i - 1}" if sequential and i else None))
               for i, plan in enumerate(plans)]
    return case.run([Role("R", roles.blocked_receiver, (list(watch), len(plans)))] + senders)


def _expand(entries: Sequence[Tuple[int, int]]) -> List[int]:
    return [signum for signum, count in entries for _ in range(count)]


@invariant(
    "standard_signals_coalesce_while_blocked", family=FAMILY, level=Level.MUST,
    rule="While a standard signal is blocked, any number of sends (from any number of processes) leave "
         "exactly one pending instance: sigtimedwait dequeues it once.",
    source="signal(7): 'Standard signals do not queue. If multiple instances of a standard signal are generated "
           "while that signal is blocked, then only one instance of the signal is marked as pending'; LTP "
           "open_posix_testsuite sigwait",
    requires=[SIGWAIT], placements=["fork"],
)
def standard_signals_coalesce_while_blocked(backend: object, case: Case) -> None:
    def body(plans: List[List[Tuple[int, int]]]) -> None:
        sends = [_expand(p) for p in plans]
        out = _send(case, STANDARD, sends, sequential=False)
        got = Counter(s for s, _ in out.value("R"))
        for i in range(len(plans)):
            out.value(f"S{i}")
        sent = Counter(s for plan in sends for s in plan)
        want = Counter({s: 1 for s in sent})
        expect(got == want, case.invariant.id,
               got=f"dequeued {dict(sorted(got.items()))} after sending {dict(sorted(sent.items()))}",
               expected=f"{dict(sorted(want.items()))} (one pending instance per blocked standard signal)",
               call="sigtimedwait", history=out.history.format(out.history.of("R", "sigtimedwait")[-3:]))

    entry = st.tuples(st.sampled_from(STANDARD), st.integers(2, 20))  # ≥2 sends: one is trivially "one"
    case.explore(body, plans=st.lists(st.lists(entry, min_size=1, max_size=3), min_size=1, max_size=MAX_SENDERS))


@invariant(
    "realtime_signals_queue_every_instance", family=FAMILY, level=Level.MUST,
    rule="While a real-time signal is blocked, every send queues one instance: sigtimedwait dequeues as many "
         "instances of each SIGRTMIN…SIGRTMAX number as were sent.",
    source="signal(7), section Real-time signals: 'Multiple instances of real-time signals can be queued.'; LTP "
           "open_posix_testsuite sigqueue, sigwait",
    requires=[SIGWAIT, REALTIME], placements=["fork"],
)
def realtime_signals_queue_every_instance(backend: object, case: Case) -> None:
    lo, hi = rt_range()
    _require_sigpending(MAX_SENDERS * 3 * MAX_RT_PER_ENTRY)

    def body(plans: List[List[Tuple[int, int]]]) -> None:
        sends = [_expand(p) for p in plans]
        out = _send(case, list(range(lo, hi + 1)), sends, sequential=False)
        got = Counter(s for s, _ in out.value("R"))
        for i in range(len(plans)):
            out.value(f"S{i}")
        sent = Counter(s for plan in sends for s in plan)
        expect(got == sent, case.invariant.id, got=f"dequeued {dict(sorted(got.items()))}",
               expected=f"{dict(sorted(sent.items()))} (every real-time send queued)", call="sigtimedwait",
               history=out.history.format(out.history.of("R", "sigtimedwait")[-3:]))

    entry = st.tuples(rt_signals(), st.integers(2, MAX_RT_PER_ENTRY))
    case.explore(body, plans=st.lists(st.lists(entry, min_size=1, max_size=3), min_size=1, max_size=MAX_SENDERS))


def _split(dequeued: Sequence[Tuple[int, int]], lo: int) -> Tuple[List[int], List[Tuple[int, int]]]:
    """The standard signals dequeued before the first real-time one, and everything from there on."""
    first_rt = next((i for i, (s, _) in enumerate(dequeued) if s >= lo), len(dequeued))
    return [s for s, _ in dequeued[:first_rt]], list(dequeued[first_rt:])


def _expected_realtime(plans: Sequence[Sequence[int]], pids: Sequence[int], lo: int) -> List[Tuple[int, int]]:
    """Real-time instances lowest number first, in send order (senders ran one after another) within one."""
    rt = [(s, pid) for plan, pid in zip(plans, pids) for s in plan if s >= lo]
    rt.sort(key=lambda item: item[0])  # stable: keeps send order within one number
    return rt


@invariant(
    "pending_signals_dequeue_standard_first_then_realtime_ascending", family=FAMILY, level=Level.MUST,
    rule="When standard and real-time signals are pending together, every pending standard signal is "
         "dequeued before any real-time one (Linux); real-time signals come lowest number first, and "
         "instances of one real-time number in the order they were sent. The order among standard signals "
         "is unspecified and not checked (Linux dequeues SIGSEGV, SIGBUS, SIGILL, SIGTRAP, SIGFPE and SIGSYS "
         "before the others).",
    source="signal(7) 'Real-time signals': 'Multiple real-time signals of the same type are delivered in the "
           "order they were sent. If different real-time signals are sent to a process, they are delivered "
           "starting with the lowest-numbered signal.'; 'if multiple standard signals are pending for a "
           "process, the order in which they are delivered is unspecified'; 'If both standard and real-time "
           "signals are pending for a process, POSIX leaves it unspecified which is delivered first. Linux, "
           "like many other implementations, gives priority to standard signals in this case.'; Linux "
           "kernel/signal.c next_signal() (paraphrase: pending signals in SYNCHRONOUS_MASK, SIGSEGV, SIGBUS, "
           "SIGILL, SIGTRAP, SIGFPE and SIGSYS, go first, then the lowest number); LTP sigwaitinfo, sigqueue",
    requires=[SIGWAIT, REALTIME], placements=["fork"],
)
def pending_signals_dequeue_standard_first_then_realtime_ascending(backend: object, case: Case) -> None:
    lo, hi = rt_range()
    _require_sigpending(MAX_SENDERS * 8 + 2)

    def body(first: Tuple[int, int], plans: List[List[int]]) -> None:
        plans = [list(first) + plans[0]] + plans[1:]  # a real-time signal sent before a standard one
        out = _send(case, ORDER_STANDARD + list(range(lo, hi + 1)), plans, sequential=True)
        pids = [out.value(f"S{i}") for i in range(len(plans))]
        got = [(int(s), int(p)) for s, p in out.value("R")]  # results may come back as lists
        names = {pid: f"S{i}" for i, pid in enumerate(pids)}
        shown = [_label(s, p if s >= lo else 0, names) for s, p in got]  # a coalesced standard signal's pid is moot
        h = out.history.format(out.history.of("R", "sigtimedwait")[:3])
        standard, rest = _split(got, lo)
        sent_std = {s for plan in plans for s in plan if s < lo}
        late = [s for s, _ in rest if s < lo]
        expect(not late and set(standard) == sent_std, case.invariant.id, got=f"dequeue order {shown}",
               expected=f"the standard signals {sorted(sent_std)} (in any order) before every real-time one",
               call="sigtimedwait", history=h)
        want = _expected_realtime(plans, pids, lo)
        expect(rest == want, case.invariant.id, got=f"dequeue order {shown}",
               expected=f"after the standard ones: {[_label(s, p, names) for s, p in want]} "
                        "(lowest number first, send order within one)", call="sigtimedwait", history=h)

    mixed = st.one_of(st.sampled_from(ORDER_STANDARD), rt_signals())
    case.explore(body, first=st.tuples(rt_signals(), st.sampled_from(ORDER_STANDARD)),
                 plans=st.lists(st.lists(mixed, min_size=0, max_size=6), min_size=1, max_size=MAX_SENDERS))


def _label(signum: int, pid: int, names: Dict[int, str]) -> str:
    return f"{signum}" + (f"/{names.get(pid, pid)}" if pid else "")


@invariant(
    "kill_with_signal_zero_probes_without_sending", family=FAMILY, level=Level.MUST,
    rule="kill(pid, 0) checks that pid exists and sends nothing: the target has no signal pending "
         "afterwards, and a reaped pid raises ProcessLookupError.",
    source="kill(2): 'If sig is 0, then no signal is sent, but existence and permission checks are still performed';"
           " kill(2) ESRCH; LTP open_posix_testsuite kill assertion 2",
    requires=[SIGWAIT], placements=["fork"],
)
def kill_with_signal_zero_probes_without_sending(backend: object, case: Case) -> None:
    def body(probes: List[int]) -> None:
        senders = [Role(f"S{i}", roles.prober, (n,)) for i, n in enumerate(probes)]
        out = case.run([Role("R", roles.probing_receiver, (len(probes),))] + senders)
        pending = out.value("R")
        h = out.history.format(out.history.of("R", "sigpending"))
        expect(pending == [], case.invariant.id, got=f"signals {pending} pending after {sum(probes)} kill(pid, 0)",
               expected="nothing pending (signal 0 is never sent)", call="kill(pid, 0)", history=h)
        for i in range(len(probes)):
            v = out.value(f"S{i}")
            expect(v["dead"] == "ProcessLookupError", case.invariant.id,
                   got=f"kill(<reaped pid>, 0) {v['dead']}", expected="ProcessLookupError (ESRCH)",
                   call="kill(pid, 0)", history=out.history.format(out.history.of(f"S{i}", "kill")[-2:]))

    case.explore(body, probes=st.lists(st.integers(1, 5), min_size=1, max_size=MAX_SENDERS))


@invariant(
    "zero_timeout_sigtimedwait_polls", family=FAMILY, level=Level.MUST,
    rule="sigtimedwait(set, 0) returns None at once when nothing in set is pending, and the pending "
         "instance when one is: a zero timeout is a poll, not 'wait forever'.",
    source="sigtimedwait(2): 'If both fields of this structure are specified as 0, a poll is performed: "
           "sigtimedwait() returns immediately'; CPython Lib/test/test_signal.py test_sigtimedwait_poll; LTP "
           "sigtimedwait",
    requires=[SIGWAIT], placements=["fork"],
)
def zero_timeout_sigtimedwait_polls(backend: object, case: Case) -> None:
    def body(signum: int) -> None:
        out = case.run([Role("P", roles.zero_timeout_poll, (signum,))])
        empty, one = out.value("P")
        h = out.history.format(out.history.of("P", "sigtimedwait"))
        expect(empty is None, case.invariant.id, got=f"sigtimedwait({{{signum}}}, 0) returned {empty!r}",
               expected="None (nothing was pending)", call="sigtimedwait", history=h)
        expect(one == signum, case.invariant.id, got=f"sigtimedwait({{{signum}}}, 0) returned {one!r}",
               expected=f"{signum} (one instance was pending)", call="sigtimedwait", history=h)

    case.explore(body, scale=0.5, signum=st.one_of(st.sampled_from(STANDARD), rt_signals()))
