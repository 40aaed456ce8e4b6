"""Operation histories: what each process invoked, and how and when it returned.

Each worker appends one line per event to its own file with an unbuffered
``os.write``, so the history survives a worker that hangs, is SIGKILLed or dies
by a signal mid-operation.  Times are ``CLOCK_MONOTONIC`` nanoseconds, which
Linux keeps system-wide, so events of different processes can be ordered.

Each event also carries ``CLOCK_REALTIME``, because POSIX measures the timeouts of
``sem_timedwait``, ``mq_timedreceive`` and ``mq_timedsend`` on it: an absolute
deadline on the wall clock.  When that clock is stepped forward during a wait (a
time-sync agent, a VM whose guest clock is set from its host: seen on CI, 0.1 to
0.4 ms short of 18 to 53 ms timeouts), a correct wait ends early by the monotonic
clock.  :func:`waited_ns` judges a wait by both.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from typing import Dict, Iterable, List, Optional, Sequence

INVOKE, OK, FAIL = "invoke", "ok", "fail"


@dataclass(frozen=True)
class Event:
    proc: str
    phase: str  # INVOKE, OK or FAIL
    op: str
    detail: str
    t_ns: int
    #: CLOCK_REALTIME at the same moment (0 in histories built by hand).
    rt_ns: int = 0


class Recorder:
    """Appends events of one process to its history file."""

    def __init__(self, proc: str, path: str) -> None:
        self.proc = proc
        self.path = path
        self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o600)

    def emit(self, phase: str, op: str, detail: str = "") -> int:
        t = time.monotonic_ns()
        rt = time.time_ns()
        clean = detail.replace("\t", " ").replace("\n", " ")[:200]
        os.write(self._fd, f"{t}\t{rt}\t{phase}\t{op}\t{clean}\n".encode("utf-8", "replace"))
        return t

    def close(self) -> None:
        try:
            os.close(self._fd)
        except OSError:
            pass


def load(proc: str, path: str) -> List[Event]:
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            lines = f.read().splitlines()
    except FileNotFoundError:
        return []
    events = []
    for line in lines:
        parts = line.split("\t", 4)
        if len(parts) == 5 and parts[0].isdigit() and parts[1].isdigit():
            events.append(Event(proc, parts[2], parts[3], parts[4], int(parts[0]), int(parts[1])))
    return events


#: A timed wait may end this much before its timeout: CPython and posix_ipc turn a float
#: of seconds into an absolute deadline from a microsecond clock, which can round it down
#: by about a microsecond (never by a millisecond).
TIMEOUT_ROUNDING_NS = 50_000


def waited_at_least(start: Event, end: Event, ms: float) -> bool:
    """Whether a call from ``start`` to ``end`` waited its timeout of ``ms``, by
    :func:`waited_ns` and within :data:`TIMEOUT_ROUNDING_NS`."""
    return waited_ns(start, end) >= ms * 1_000_000 - TIMEOUT_ROUNDING_NS


def waited_ns(start: Event, end: Event) -> int:
    """How long a call that ran from ``start`` to ``end`` waited, for a lower bound.

    The longer of the two clocks' readings: a timeout may be specified on either
    (``threading`` and ``select`` on the monotonic clock, ``sem_timedwait`` and
    ``mq_timedreceive`` on the wall clock), and a step of the clock a wait did not use
    must not make a correct wait look short.  A wait that ended early is short on
    both, so a short wait is still caught whichever clock the backend uses."""
    return max(end.t_ns - start.t_ns, end.rt_ns - start.rt_ns)


def before_deadline(start: Event, event: Event, ms: float) -> bool:
    """Whether ``event`` came before the deadline of a ``ms`` wait begun at ``start``, on
    both clocks: a wait on the wall clock whose clock was stepped forward is owed only what
    came before its own, earlier, deadline."""
    deadline = ms * 1_000_000
    return (event.t_ns - start.t_ns < deadline
            and (not (event.rt_ns and start.rt_ns) or event.rt_ns - start.rt_ns < deadline))


def describe_wait(start: Event, end: Event) -> str:
    """``12.345 ms``, with the wall clock's reading beside it when the two differ."""
    mono, real = (end.t_ns - start.t_ns) / 1e6, (end.rt_ns - start.rt_ns) / 1e6
    if not (start.rt_ns and end.rt_ns) or abs(real - mono) < 0.005:
        return f"{mono:.3f} ms"
    return f"{mono:.3f} ms ({real:.3f} ms by the wall clock)"


class History:
    """All events of one example, merged in time order."""

    def __init__(self, per_proc: Dict[str, List[Event]], t0_ns: int) -> None:
        self.per_proc = per_proc
        self.t0_ns = t0_ns
        self.events = sorted((e for evs in per_proc.values() for e in evs), key=lambda e: e.t_ns)

    def of(self, proc: str, op: Optional[str] = None, phase: Optional[str] = None) -> List[Event]:
        return [
            e
            for e in self.per_proc.get(proc, [])
            if (op is None or e.op == op) and (phase is None or e.phase == phase)
        ]

    def pending(self, proc: str) -> Optional[Event]:
        """The operation ``proc`` invoked last and never returned from, if any."""
        open_ops: List[Event] = []
        for e in self.per_proc.get(proc, []):
            if e.phase == INVOKE:
                open_ops.append(e)
            elif open_ops:
                open_ops.pop()
        return open_ops[-1] if open_ops else None

    def ms(self, event: Event) -> float:
        return (event.t_ns - self.t0_ns) / 1e6

    def format(self, focus: Sequence[Event] = (), limit: int = 24) -> str:
        """A table of events; around ``focus`` when given, else the last ``limit``."""
        return format_events(self, _window(self.events, focus, limit))


def _window(events: List[Event], focus: Sequence[Event], limit: int) -> List[Event]:
    """The focus events and up to three events either side of each, at most ``limit`` in
    all.  Context goes first when over the limit, never a focus event: the earliest one is
    often what set the failure up (the close before an early EOF), and cutting the
    excerpt from the front would drop exactly it."""
    if not focus:
        return events[-limit:]
    index: Dict[Event, int] = {}
    for i, e in enumerate(events):
        index.setdefault(e, i)
    core = sorted({index[f] for f in focus if f in index})
    wanted = set(core[-limit:])
    for reach in (1, 2, 3):  # nearest context first
        for i in core:
            for j in (i - reach, i + reach):
                if 0 <= j < len(events) and len(wanted) < limit:
                    wanted.add(j)
    return [events[i] for i in sorted(wanted)]


def format_events(history: History, events: Iterable[Event]) -> str:
    rows = ["history (ms since example start; per process: operation, arguments, result):"]
    last = None
    for e in events:
        if last is not None and history.events.index(e) != history.events.index(last) + 1:
            rows.append("      …")
        mark = {INVOKE: "→", OK: "←", FAIL: "✗"}.get(e.phase, "?")
        rows.append(f"  {history.ms(e):9.3f}  {e.proc:<4} {mark} {e.op:<14} {e.detail}")
        last = e
    return "\n".join(rows)
