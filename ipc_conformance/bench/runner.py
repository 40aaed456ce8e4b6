"""The whole bench: which backends and sizes, the interleaved schedule, and the statistics.

Every repeat runs every (size, backend) cell once, baselines included, and the order of
the backends rotates from one repeat to the next, so that a slow spell of a shared
machine spreads over all of them instead of landing on one.  Each figure is the median
over repeats, with the quartiles and the extremes beside it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Sequence

from .cell import BARE_PIPE, BASELINES, FAMILIES, MEMCPY, Budget, CellResult, run_cell
from .progress import Bar

FULL_SIZES = [4 ** i for i in range(14)]  # 1 B … 64 MiB
QUICK_SIZES = [64, 64 << 10, 1 << 20]
#: Free space a shared-memory cell leaves in /dev/shm, as a fraction.
SHM_HEADROOM = 0.5


@dataclass
class Settings:
    sizes: List[int]
    repeats: int
    target_s: float
    deadline_s: float
    quick: bool
    progress: bool
    cpus: Optional[List[int]] = None
    tty: bool = False  # stderr is a terminal: the progress bar draws in place


@dataclass
class Series:
    """Samples of one backend at one size, over the repeats."""

    throughput: List[float] = field(default_factory=list)
    latency: List[float] = field(default_factory=list)
    errors: List[str] = field(default_factory=list)
    skipped: Optional[str] = None


def human_size(n: int) -> str:
    for unit, shift in (("MiB", 20), ("KiB", 10)):
        if n >= 1 << shift and n % (1 << shift) == 0:
            return f"{n >> shift} {unit}"
    return f"{n} B"


def shm_free() -> int:
    try:
        st = os.statvfs("/dev/shm")
        return st.f_bavail * st.f_frsize
    except OSError:
        return 0


def skip_reason(backend: Any, size: int, max_message: Optional[int]) -> Optional[str]:
    """Why ``backend`` cannot carry ``size``-byte payloads here, or None."""
    kind = getattr(backend, "kind", None)
    if kind in ("shm", "arrow"):
        # shm: a segment each way; arrow: up to 13 stores alive at once at large sizes (cell.plan_for).
        need = 2 * size if kind == "shm" else size * 13
        free = shm_free()
        if need > free * SHM_HEADROOM:
            return f"needs {human_size(need)} of shared memory, /dev/shm has {free >> 20} MiB free"
    if kind == "queue":
        if max_message is not None and size > max_message:
            return f"above the queue's claimed maximum message size ({max_message} B)"
    return None


def probe_queue_limit(backend: Any, scope: Any) -> Optional[int]:
    """The maximum message size a queue backend claims, read from a channel set up once."""
    channel = backend.setup(scope)
    try:
        limit = channel.limits().max_message_size
        return None if limit is None else int(limit)
    finally:
        channel.teardown()


def run(backends: Sequence[Any], settings: Settings) -> Dict[str, Dict[int, Series]]:
    """Every cell, ``settings.repeats`` times; returns name -> size -> samples (baselines included)."""
    from ipc_specs.harness.resources import ResourceRoot

    if settings.cpus:
        os.sched_setaffinity(0, settings.cpus)  # forked children inherit it
    names: List[Any] = list(BASELINES) + list(backends)
    series: Dict[str, Dict[int, Series]] = {_name(b): {s: Series() for s in settings.sizes} for b in names}
    root = ResourceRoot()
    limits: Dict[str, Optional[int]] = {}
    try:
        for b in backends:
            if b.kind == "queue":
                scope = root.scope()
                try:
                    limits[b.name] = probe_queue_limit(b, scope)
                except Exception as exc:
                    for s in settings.sizes:
                        series[b.name][s].skipped = f"setup failed: {type(exc).__name__}: {exc}"
                finally:
                    root.release(scope)
        budget = Budget(target_s=settings.target_s)
        total = settings.repeats * len(settings.sizes) * len(names)
        progress, done = Bar("bench", settings.progress, settings.tty), 0
        try:
            for rep in range(settings.repeats):
                order = names[rep % len(names):] + names[:rep % len(names)]
                for size in settings.sizes:
                    for b in order:
                        _one(b, size, series[_name(b)][size], root, budget, settings, limits.get(_name(b)))
                        done += 1
                        progress.update(done, total, f"{_name(b)} {human_size(size)}")
        finally:
            progress.close()
    finally:
        root.close()
    return series


def _name(b: Any) -> str:
    return b if isinstance(b, str) else str(b.name)


def _one(b: Any, size: int, s: Series, root: Any, budget: Budget, settings: Settings,
         max_message: Optional[int]) -> None:
    if s.skipped or (not isinstance(b, str) and s.errors and len(s.errors) >= 2):
        return  # a backend that failed twice at this size is not run again
    if not isinstance(b, str):
        s.skipped = skip_reason(b, size, max_message)
        if s.skipped:
            return
    scope = root.scope()
    try:
        result: CellResult = run_cell(b, size, scope, budget, settings.deadline_s)
    finally:
        root.release(scope)
    if result.error:
        s.errors.append(result.error)
        return
    if result.throughput is not None:
        s.throughput.append(result.throughput)
    if result.latency is not None:
        s.latency.append(result.latency)


def bench_backends(items: Sequence[Any]) -> List[Any]:
    return [b for b in items if getattr(b, "kind", None) in FAMILIES]


__all__ = ["BARE_PIPE", "FULL_SIZES", "MEMCPY", "QUICK_SIZES", "Series", "Settings", "run"]
