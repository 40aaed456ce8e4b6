"""``ipc-conformance bench``: which mechanism for which payload size, on this machine.

For every backend of the stream, queue, shm and arrow families (the references, the
adapters, or those named by ``--backend``), one-way throughput and round-trip latency
across payload sizes, writer and reader in separate processes, through the same backend
API the conformance run uses, against two baselines measured in the same run: memcpy
(throughput) and a bare ``os.pipe`` ping-pong (latency).  See ``cell.py`` for a
measurement, ``runner.py`` for the schedule and statistics, ``output.py`` for the JSON
schema and the ratios, ``guard.py`` for the correctness guard.

For a report that embeds the bench: ``html_section(doc)`` returns ``(title, fragment)``
with the plot inlined as SVG (``doc`` is the JSON document ``bench`` writes).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
from typing import Any, List, NoReturn, Optional, Sequence

from .plot import INSTALL_HINT, MissingMatplotlib, html_section, write_plots

__all__ = ["add_options", "cmd_bench", "html_section"]


def add_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--backend", action="append", default=[], metavar="MODULE:ATTR",
                   help="bench this backend (repeatable); default: every reference of the four families")
    p.add_argument("--only", default=None, metavar="NAMES", help="comma-separated backend names to keep")
    p.add_argument("--family", action="append", default=[], choices=["stream", "queue", "shm", "arrow"],
                   help="only this family (repeatable)")
    p.add_argument("--quick", action="store_true", help="three sizes, two repeats, short batches: a first look")
    p.add_argument("--sizes", default=None, metavar="LIST",
                   help="payload sizes in bytes, comma-separated (default: powers of 4 from 1 B to 64 MiB)")
    p.add_argument("--repeats", type=int, default=None, metavar="N", help="repeats per cell (default 5; quick 2)")
    p.add_argument("--min-time", type=float, default=None, metavar="SECONDS",
                   help="length of each timed batch (default 0.05; quick 0.01)")
    p.add_argument("--cpus", default=None, metavar="LIST",
                   help="pin to these CPUs (os.sched_setaffinity); default: none")
    p.add_argument("--json", default=None, metavar="PATH", help="write the results as JSON")
    p.add_argument("--plot", default=None, metavar="PREFIX", help="write PREFIX.png and PREFIX.svg (needs matplotlib)")
    p.add_argument("--report", default=None, metavar="PATH.html",
                   help="an HTML report: the guard's conformance verdicts with the bench's plot and table")
    p.add_argument("--progress", action="store_true", help="a progress line on stderr even when it is not a terminal")
    p.add_argument("--no-verify", action="store_true",
                   help="skip the conformance guard (every backend is then marked unverified)")
    p.add_argument("-n", dest="workers", default=None,
                   help="pytest-xdist workers for the guard's conformance run (default: as ipc-conformance run)")
    p.add_argument("--deadline", type=float, default=120.0, metavar="SECONDS",
                   help="a cell still running after this is killed and reported as an error")


def _sizes(ns: argparse.Namespace) -> List[int]:
    from .runner import FULL_SIZES, QUICK_SIZES

    if ns.sizes:
        try:
            sizes = sorted({int(s) for s in ns.sizes.split(",") if s.strip()})
        except ValueError:
            _usage(f"--sizes {ns.sizes!r}: expected integers, e.g. 1,1024,65536")
        if not sizes or sizes[0] < 1:
            _usage("--sizes: sizes must be at least 1 byte")
        return sizes
    return list(QUICK_SIZES if ns.quick else FULL_SIZES)


def _cpus(text: Optional[str]) -> Optional[List[int]]:
    """The CPUs to pin to, checked before the run: sched_setaffinity would otherwise fail with
    a bare OSError (EINVAL) after the guard's minutes, for a CPU that does not exist or that
    this process may not use (a container's cpuset)."""
    if not text:
        return None
    allowed = sorted(os.sched_getaffinity(0))
    try:
        cpus = sorted({int(c) for c in text.split(",") if c.strip()})
    except ValueError:
        _usage(f"--cpus {text!r}: expected CPU numbers, e.g. 0,1")
    bad = [c for c in cpus if c not in allowed]
    if not cpus or bad:
        _usage(f"--cpus {text!r}: {'no CPU given' if not cpus else 'not usable here: ' + ','.join(map(str, bad))}; "
               f"this process may use CPUs {','.join(map(str, allowed))}")
    return cpus


def _usage(message: str) -> NoReturn:
    """A usage error: one line, exit status 2, as argparse gives for its own."""
    print(f"ipc-conformance bench: {message}", file=sys.stderr)
    raise SystemExit(2)


def _select(ns: argparse.Namespace) -> List[Any]:
    from ..selection import Loaded, LoadProblem, SpecSyntaxError, select
    from .runner import bench_backends

    try:
        items = select(ns.backend)  # IPC_BACKENDS too, as the guard's conformance run reads it
    except SpecSyntaxError as exc:
        raise SystemExit(f"ipc-conformance bench: --backend: {exc}") from None
    problems = [i for i in items if isinstance(i, LoadProblem)]
    for item in problems:
        print(f"ipc-conformance bench: {item.source}: LOAD ERROR {item.message}", file=sys.stderr)
    if problems:
        raise SystemExit(1)
    backends = bench_backends([i.backend for i in items if isinstance(i, Loaded)])
    if ns.family:
        backends = [b for b in backends if b.kind in ns.family]
    if ns.only:
        wanted = [n.strip() for n in ns.only.split(",") if n.strip()]
        unknown = sorted(set(wanted) - {b.name for b in backends})
        if unknown:
            raise SystemExit(f"ipc-conformance bench: --only: no such backend {unknown}; "
                             f"known: {', '.join(b.name for b in backends)}")
        backends = [b for b in backends if b.name in wanted]
    if not backends:
        raise SystemExit("ipc-conformance bench: no backend of the stream, queue, shm or arrow families selected")
    return backends


def cmd_bench(ns: argparse.Namespace, argv: Sequence[str] = ()) -> int:
    from . import guard
    from .output import document, table
    from .progress import Bar
    from .runner import Settings, run

    if ns.plot:
        try:
            import matplotlib  # noqa: F401  (checked before a run of minutes, not after)
        except ImportError:
            print(f"ipc-conformance bench: --plot: {INSTALL_HINT}", file=sys.stderr)
            return 2
    if ns.report and (ns.no_verify or not ns.report.endswith(".html")):
        print("ipc-conformance bench: --report takes a .html path and the guard's conformance run "
              "(not --no-verify)", file=sys.stderr)
        return 2
    backends = _select(ns)
    settings = Settings(sizes=_sizes(ns), repeats=ns.repeats or (2 if ns.quick else 5),
                        target_s=ns.min_time or (0.01 if ns.quick else 0.05), deadline_s=ns.deadline,
                        quick=ns.quick, progress=ns.progress or sys.stderr.isatty(), cpus=_cpus(ns.cpus),
                        tty=sys.stderr.isatty())
    if ns.no_verify:
        verdicts, info = guard.skipped(backends)
    else:
        if settings.progress:
            print(f"bench: checking the backends first (ipc-conformance --profile {guard.PROFILE}) …",
                  file=sys.stderr)
        names = [b.name for b in backends] if ns.only else None
        verdicts, info = guard.verify(backends, ns.backend, names, ns.workers,
                                      Bar("guard", settings.progress, settings.tty))
    series = run(backends, settings)
    doc = document(series, backends, verdicts, settings, info, ["ipc-conformance", "bench", *argv])
    print(table(doc, shutil.get_terminal_size((80, 24)).columns))
    if info["ran"]:
        print(f"guard: ipc-conformance --profile {info['profile']} took {info['seconds']} s")
    errors = [(row["name"], size, entry["errors"]) for row in doc["backends"]
              for size, entry in row["sizes"].items() if entry["errors"]]
    for name, size, errs in errors:
        print(f"error: {name} at {size} B: {errs[0]}", file=sys.stderr)
    if ns.json:
        with open(ns.json, "w", encoding="utf-8") as f:
            json.dump(doc, f, indent=1)
        print(f"wrote {ns.json}")
    if ns.plot:
        try:
            for path in write_plots(doc, ns.plot):
                print(f"wrote {path}")
        except MissingMatplotlib as exc:  # pragma: no cover - checked above
            print(f"ipc-conformance bench: {exc}", file=sys.stderr)
            return 2
    if ns.report:
        _write_report(doc, info, ns.report)
    return 1 if errors else 0


def _write_report(doc: Any, info: Any, path: str) -> None:
    """The guard's conformance report as HTML, with the bench (plot and table) as an extra section."""
    from ..report import write_data

    if not info.get("report"):
        print("ipc-conformance bench: no report written: the guard's conformance run wrote none", file=sys.stderr)
        return
    write_data(info["report"], path, extra_sections=[html_section(doc)])
    print(f"wrote {path}")
