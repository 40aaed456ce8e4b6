"""ipc-conformance: run the IPC conformance suite, list what it knows, explain an invariant.

Commands (run is the default):
  ipc-conformance [run] [--backend MODULE:ATTR]... [--family KIND]... [options] [-- PYTEST-ARGS...]
  ipc-conformance list [--backend MODULE:ATTR]...      backends, their claims, the invariants
  ipc-conformance explain QUERY                        rule, source, a live counterexample
  ipc-conformance catalogue [--write | --check]        docs/INVARIANTS.md (maintainers)
  ipc-conformance bench [--quick] [--json P] [--plot P] throughput and latency per payload size

A run is pytest underneath (pytest-xdist, -k, -x all work) and exits 0 exactly when
every applicable invariant holds for every selected backend; 1 on any FAIL, FLAKY,
ERROR or CRASH, a backend that fails to load, or a backend that got no check; 5 when
nothing at all was judged; 2 when interrupted (the matrix then says PARTIAL).
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import textwrap
from typing import List, Optional, Sequence

SUITE = "ipc_conformance.suite"
CATALOGUE = "docs/INVARIANTS.md"
PROFILES = ("standard", "fast", "ci", "thorough")
COMMANDS = ("run", "list", "explain", "catalogue", "bench", "-h", "--help")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ipc-conformance", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", metavar="{run,list,explain,catalogue,bench}")
    run = sub.add_parser("run", help="run the conformance suite (the default)")
    add_run_options(run)
    parser.epilog = "run options (also accepted without the word run):\n" + run.format_help().split("\n\n", 1)[1]
    lst = sub.add_parser("list", help="list backends and invariants")
    lst.add_argument("--backend", action="append", default=[], metavar="MODULE:ATTR")
    exp = sub.add_parser("explain", help="explain an invariant, with a live counterexample")
    exp.add_argument("query", help="an invariant id, an id prefix, or a kind (stream, queue, …)")
    exp.add_argument("--deadline", type=float, default=5.0, help="per-example deadline for the live run")
    cat = sub.add_parser("catalogue", help="print or regenerate docs/INVARIANTS.md")
    group = cat.add_mutually_exclusive_group()
    group.add_argument("--write", metavar="PATH", nargs="?", const=CATALOGUE, help="write it (default path: %(const)s)")
    group.add_argument("--check", metavar="PATH", nargs="?", const=CATALOGUE, help="exit 1 if PATH is stale")
    from .bench import add_options as add_bench_options

    add_bench_options(sub.add_parser("bench", help="throughput and latency of each backend per payload size"))
    return parser


def add_run_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--backend", action="append", default=[], metavar="MODULE:ATTR",
                   help="check this backend (repeatable); default: all reference backends and installed ones")
    p.add_argument("--family", action="append", default=[], metavar="KIND", help="only this family (repeatable)")
    p.add_argument("-n", dest="workers", default=None,
                   help="pytest-xdist workers (0: none, in this process; default: one more than the CPUs this "
                   "process may use, since checks spend much of their time asleep)")
    p.add_argument("--profile", default=None, choices=list(PROFILES),
                   help="examples per check: standard 25 (the default), fast 8, ci 10 derandomized, thorough 150")
    p.add_argument("--deadline", default=None, metavar="SECONDS",
                   help="per-example deadline after which a worker counts as hung (default 10; off: none, "
                   "for debugging)")
    p.add_argument("--placements", default=None, metavar="LIST",
                   help="comma-separated subset of fork,spawn,forkserver,thread (default: all)")
    p.add_argument("--replays", type=int, default=None, metavar="N",
                   help="replays of a failing minimal example (FAIL if all fail, else FLAKY)")
    p.add_argument("--worker-memory", type=int, default=None, metavar="MIB",
                   help="private memory a worker process may allocate (0: no cap)")
    p.add_argument("--faults", default=None, choices=["on", "off"],
                   help="draw faults (signals during blocking calls, a killed writer) into examples (default on)")
    p.add_argument("--report", action="append", default=[], metavar="PATH",
                   help="write the verdicts to PATH: .json, .md (Markdown), .xml (JUnit XML) or .html (one "
                   "self-contained page); repeatable")
    p.add_argument("--replay", default=None, metavar="BLOB",
                   help="run exactly this failing example (the blob a reproduce line prints) of one check")
    p.add_argument("-k", dest="keyword", default=None, help="pytest -k expression to select tests")
    p.add_argument("pytest_args", nargs="*", help="extra pytest arguments (after --)")


def default_workers() -> int:
    """One worker more than the CPUs this process may use: a third of a clean run is spent
    asleep (untimed waits outwaiting library defaults, timeouts, scopes lingering past their
    deadline), which the extra worker fills.  Measured 2026-12-06, every reference, default
    profile, idle 2-core machine: -n 2 638 s at 127% CPU, -n 3 439 s at 157%, both PASSED.
    Verdicts judge timing against controls measured beside them, so the load moves none."""
    return len(os.sched_getaffinity(0)) + 1


def pytest_argv(ns: argparse.Namespace) -> List[str]:
    from ipc_specs import kinds

    _check_backends(ns.backend)
    known = kinds()
    for fam in ns.family:
        if fam not in known:
            raise SystemExit(f"ipc-conformance: unknown family {fam!r}; known: {', '.join(sorted(known))}")
    modules = [f"{SUITE}.test_{_module_for(fam)}" for fam in ns.family] or [SUITE]
    # The CLI imports ipc_specs (and so Hypothesis) before pytest starts, which makes
    # pytest warn that it cannot assert-rewrite Hypothesis; that is harmless here.
    argv = ["--pyargs", *modules, "-p", "no:cacheprovider", "-q", "--tb=short", "-rN", "--ipc-progress",
            "-o", "console_output_style=classic",  # no "[100%]" column: the progress line counts checks
            "-W", "ignore::pytest.PytestAssertRewriteWarning"]
    workers = default_workers() if ns.workers is None else ns.workers
    if workers not in ("0", 0):
        argv += ["-n", str(workers)]
    for spec in ns.backend:
        argv += ["--ipc-backend", spec]
    for opt, value in (("--ipc-profile", ns.profile), ("--ipc-deadline", ns.deadline),
                       ("--ipc-placements", ns.placements), ("--ipc-replays", ns.replays),
                       ("--ipc-worker-memory", ns.worker_memory), ("--ipc-faults", ns.faults),
                       ("--ipc-replay", ns.replay), ("-k", ns.keyword)):
        if value is not None:
            argv += [opt, str(value)]
    for path in ns.report:
        argv += ["--ipc-report", path]
    return argv + list(ns.pytest_args)


def _check_backends(specs: List[str]) -> None:
    """A malformed --backend is a one-line usage error naming --backend (not --ipc-backend)."""
    from .selection import SpecSyntaxError, requested_specs

    try:
        requested_specs(specs, environ={})
    except SpecSyntaxError as exc:
        raise SystemExit(f"ipc-conformance: --backend: {exc}") from None


def _module_for(kind: str) -> str:
    return {"stream": "streams", "queue": "queues", "semaphore": "semaphores", "signal": "signals",
            "timeout": "timeouts", "shm": "shm", "arrow": "arrow", "file": "files", "map": "maps"}.get(kind, kind)


def cmd_list(ns: argparse.Namespace) -> int:
    from ipc_specs import all_invariants, kinds

    from .selection import LoadProblem, select

    _check_backends(ns.backend)
    width = shutil.get_terminal_size((80, 24)).columns
    problems = 0
    print("backends:")
    for item in select(ns.backend):
        if isinstance(item, LoadProblem):
            print(f"  {item.source}: LOAD ERROR {item.message}")
            problems += 1
            continue
        b = item.backend
        print(f"  {b.name}  (kind {b.kind}, wiring {b.wiring})")
        print(_fill("claims: " + (", ".join(sorted(b.capabilities)) or "nothing beyond the kind"), width, 6))
    for name, kind in kinds().items():
        print(f"\n{name} invariants ({kind.summary}):")
        for inv in all_invariants(name):
            print(f"  {inv.id} ({inv.level.value})")
            if inv.requires:
                print(_fill("needs " + ", ".join(sorted(inv.requires)), width, 6))
            if inv.excluded_by:
                print(_fill("n/a for backends claiming " + ", ".join(sorted(inv.excluded_by)), width, 6))
    if problems:
        print(f"\n{problems} backend(s) failed to load", file=sys.stderr)
    return 1 if problems else 0


def _fill(text: str, width: int, indent: int) -> str:
    pad = " " * indent
    return textwrap.fill(text, max(40, width), initial_indent=pad, subsequent_indent=pad, break_on_hyphens=False)


def _in_this_repository(path: str) -> bool:
    """True when ``path`` lies in a source checkout of ipc-conformance (its pyproject names it)."""
    root = os.path.dirname(os.path.dirname(os.path.abspath(path)))
    return 'name = "ipc-conformance"' in _read(os.path.join(root, "pyproject.toml"))


def cmd_catalogue(ns: argparse.Namespace) -> int:
    from .catalogue import render, with_index

    target = ns.write or ns.check
    if ns.write and not _in_this_repository(target):
        print(f"ipc-conformance catalogue --write: {target} is not in a checkout of ipc-conformance (no "
              "pyproject.toml naming it beside docs/); this maintainer command writes only there. Without "
              "--write the catalogue is printed.", file=sys.stderr)
        return 2
    text = render()
    path = ns.check or ns.write
    readme = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(path))), "README.md") if path else ""
    if ns.check:
        stale = [ns.check] if _read(ns.check) != text else []
        if os.path.exists(readme) and _read(readme) != with_index(_read(readme)):
            stale.append(readme)
        for p in stale:
            print(f"{p} is stale: run `ipc-conformance catalogue --write`")
        return 1 if stale else 0
    if ns.write:
        os.makedirs(os.path.dirname(ns.write) or ".", exist_ok=True)
        with open(ns.write, "w", encoding="utf-8") as f:
            f.write(text)
        print(f"wrote {ns.write}")
        if os.path.exists(readme):  # the README's short index lives next to docs/
            updated = with_index(_read(readme))  # read first: open("w") truncates
            with open(readme, "w", encoding="utf-8") as f:
                f.write(updated)
            print(f"updated the invariant index in {readme}")
        return 0
    print(text, end="")
    return 0


def _read(path: str) -> str:
    try:
        with open(path, encoding="utf-8") as f:
            return f.read()
    except FileNotFoundError:
        return ""


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] not in COMMANDS:
        args = ["run", *args]  # `ipc-conformance --backend x` means run
    ns = build_parser().parse_args(args)
    if ns.command == "list":
        try:
            return cmd_list(ns)
        except BrokenPipeError:  # `ipc-conformance list | head`: the reader left, which is fine
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            return 0
    if ns.command == "catalogue":
        return cmd_catalogue(ns)
    if ns.command == "bench":
        from .bench import cmd_bench

        return cmd_bench(ns, args[1:])
    if ns.command == "explain":
        from .explain import explain

        return explain(ns.query, deadline_s=ns.deadline)
    import pytest

    return int(pytest.main(pytest_argv(ns)))


if __name__ == "__main__":
    sys.exit(main())
