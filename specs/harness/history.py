"""Operation histories: what each process invoked, and how and when it returned.

Each worker appends one line per event to its own file with an unbuffered
``os.write``, so the history survives a worker that hangs, is SIGKILLed or dies
by a signal mid-operation.  Times are ``CLOCK_MONOTONIC`` nanoseconds, which
Linux keeps system-wide, so events of different processes can be ordered.
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


class Recorder:
    """Appends events of one process to its history file."""

    def __init__(self, proc: str, path: str) -> None:
        self.proc = proc
        self.path = path
        self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o600)

    def emit(self, phase: str, op: str, detail: str = "") -> int:
        t = time.monotonic_ns()
        clean = detail.replace("\t", " ").replace("\n", " ")[:200]
        os.write(self._fd, f"{t}\t{phase}\t{op}\t{clean}\n".encode("utf-8", "replace"))
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
        parts = line.split("\t", 3)
        if len(parts) == 4 and parts[0].isdigit():
            events.append(Event(proc, parts[1], parts[2], parts[3], int(parts[0])))
    return events


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
