"""How long the calling thread was kept from running: what a timing comparison owes it.

Some checks compare two readings of a kernel timer (ITIMER_REAL, which counts down
on CLOCK_MONOTONIC) and call a timer *moved* when it reads more than the time between
the readings explains.  A backend that saves the caller's timer and hands it back does
so in two steps (read the timer, read the clock; later, read the clock, arm the timer),
and if its thread is stalled between the two steps, the timer comes back late by the
stall.  That is no bug of the backend's: no user-space code can do the two atomically.
A fixed allowance is not safe under load, so the allowance is measured in the same
example, as the sum of what this module can see:

* this thread's wait on a run queue: runnable, but another task had the CPU
  (``/proc/thread-self/schedstat``, second field, in ns; proc(5));
* this process's time in Python's cyclic garbage collector, which may run at any
  allocation, between any two steps (``gc.callbacks``, Python docs gc);
* the machine's *steal* time, while the hypervisor ran something else on this
  virtual CPU (``/proc/stat``, counted in clock ticks: a change of n ticks is taken as
  n + 1, since a partial tick is not shown).  The CI machine is a virtual machine.

Where a source is unreadable (another kernel, another OS) it counts 0: the allowance
is then the fixed rounding alone, as strict as before.  A stall never makes a broken
backend look correct for long: a timer handed back at its entry value is late by the
whole time spent in the scope, most of it running.
"""

from __future__ import annotations

import gc
import os
import time
from typing import Any, Dict, List

_gc: Dict[str, int] = {"total": 0, "since": 0}


def _on_gc(phase: str, info: Dict[str, Any]) -> None:
    if phase == "start":
        _gc["since"] = time.monotonic_ns()
    elif _gc["since"]:
        _gc["total"] += time.monotonic_ns() - _gc["since"]
        _gc["since"] = 0


def _count_gc() -> None:
    """Install the collector's callback once per process (a forked child inherits it)."""
    if _on_gc not in gc.callbacks:
        gc.callbacks.append(_on_gc)


def _run_queue_ns() -> int:
    try:
        with open("/proc/thread-self/schedstat", "rb") as f:
            return int(f.read().split()[1])
    except (OSError, IndexError, ValueError):
        return 0


_TICK_NS = 10**9 // (os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100)


def _steal_ticks() -> int:
    try:
        with open("/proc/stat", "rb") as f:
            fields: List[bytes] = f.readline().split()
        return int(fields[8]) if fields[0] == b"cpu" and len(fields) > 8 else 0
    except (OSError, IndexError, ValueError):
        return 0


class Mark:
    """The counters at one moment, taken in the thread whose stalls matter."""

    __slots__ = ("run_queue", "gc", "steal")

    def __init__(self) -> None:
        _count_gc()
        self.run_queue = _run_queue_ns()
        self.gc = _gc["total"]
        self.steal = _steal_ticks()

    def stalled_s(self, later: Mark) -> float:
        """Seconds this thread can have been kept from running between ``self`` and ``later``."""
        steal = later.steal - self.steal
        ns = max(0, later.run_queue - self.run_queue) + max(0, later.gc - self.gc) \
            + ((steal + 1) * _TICK_NS if steal > 0 else 0)
        return ns / 1e9


def mark() -> Mark:
    return Mark()
