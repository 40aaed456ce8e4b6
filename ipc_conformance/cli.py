"""``ipc-conformance``: run the suite, list what it knows, explain an invariant.

    ipc-conformance [run] [--backend MODULE:ATTR]… [--family KIND]… [-n N]
                    [--profile fast|ci|thorough] [--deadline S] [--report PATH]
                    [-k EXPR] [-- PYTEST-ARGS…]
    ipc-conformance list [--backend MODULE:ATTR]…
    ipc-conformance explain ID|PREFIX|KIND
    ipc-conformance catalogue [--write [PATH] | --check [PATH]]

``run`` is pytest underneath (so pytest-xdist, -k, -x … all work) and exits 0
exactly when every applicable invariant holds for every selected backend.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import List, Optional, Sequence

SUITE = "ipc_conformance.suite"
CATALOGUE = "docs/INVARIANTS.md"
COMMANDS = ("run", "list", "explain", "catalogue", "-h", "--help")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ipc-conformance", description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command")
    run = sub.add_parser("run", help="run the conformance suite (the default)")
    add_run_options(run)
    lst = sub.add_parser("list", help="list backends and invariants")
    lst.add_argument("--backend", action="append", default=[], metavar="MODULE:ATTR")
    exp = sub.add_parser("explain", help="explain an invariant, with a live counterexample")
    exp.add_argument("query", help="an invariant id, an id prefix, or a kind (stream, queue, …)")
    exp.add_argument("--deadline", type=float, default=5.0, help="per-example deadline for the live run")
    cat = sub.add_parser("catalogue", help="print or regenerate docs/INVARIANTS.md")
    group = cat.add_mutually_exclusive_group()
    group.add_argument("--write", metavar="PATH", nargs="?", const=CATALOGUE, help="write it (default path: %(const)s)")
    group.add_argument("--check", metavar="PATH", nargs="?", const=CATALOGUE, help="exit 1 if PATH is stale")
    return parser


def add_run_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--backend", action="append", default=[], metavar="MODULE:ATTR",
                   help="check this backend (repeatable); default: all reference backends and installed ones")
    p.add_argument("--family", action="append", default=[], metavar="KIND", help="only this family (repeatable)")
    p.add_argument("-n", dest="workers", default="auto", help="pytest-xdist workers (default: auto; 0 = none)")
    p.add_argument("--profile", default=None, choices=["fast", "ci", "thorough"])
    p.add_argument("--deadline", type=float, default=None, metavar="SECONDS")
    p.add_argument("--placements", default=None, metavar="LIST")
    p.add_argument("--replays", type=int, default=None, metavar="N",
                   help="replays of a failing minimal example (FAIL if all fail, else FLAKY)")
    p.add_argument("--worker-memory", type=int, default=None, metavar="MIB",
                   help="private memory a worker process may allocate (0: no cap)")
    p.add_argument("--faults", default=None, choices=["on", "off"],
                   help="draw faults (signals during blocking calls, a killed writer) into examples (default on)")
    p.add_argument("--report", default=None, metavar="PATH", help="write JSON (or Markdown for .md)")
    p.add_argument("-k", dest="keyword", default=None, help="pytest -k expression to select tests")
    p.add_argument("pytest_args", nargs="*", help="extra pytest arguments (after --)")


def pytest_argv(ns: argparse.Namespace) -> List[str]:
    from ipc_specs import kinds

    known = kinds()
    for fam in ns.family:
        if fam not in known:
            raise SystemExit(f"ipc-conformance: unknown family {fam!r}; known: {', '.join(sorted(known))}")
    modules = [f"{SUITE}.test_{_module_for(fam)}" for fam in ns.family] or [SUITE]
    # The CLI imports ipc_specs (and so Hypothesis) before pytest starts, which makes
    # pytest warn that it cannot assert-rewrite Hypothesis; that is harmless here.
    argv = ["--pyargs", *modules, "-p", "no:cacheprovider", "-q", "--tb=short", "-rN",
            "-W", "ignore::pytest.PytestAssertRewriteWarning"]
    if ns.workers not in ("0", 0):
        argv += ["-n", str(ns.workers)]
    for spec in ns.backend:
        argv += ["--ipc-backend", spec]
    for opt, value in (("--ipc-profile", ns.profile), ("--ipc-deadline", ns.deadline),
                       ("--ipc-placements", ns.placements), ("--ipc-replays", ns.replays),
                       ("--ipc-worker-memory", ns.worker_memory), ("--ipc-faults", ns.faults),
                       ("--ipc-report", ns.report), ("-k", ns.keyword)):
        if value is not None:
            argv += [opt, str(value)]
    return argv + list(ns.pytest_args)


def _module_for(kind: str) -> str:
    return {"stream": "streams", "queue": "queues", "semaphore": "semaphores", "signal": "signals",
            "timeout": "timeouts", "shm": "shm", "arrow": "arrow", "file": "files"}.get(kind, kind)


def cmd_list(ns: argparse.Namespace) -> int:
    from ipc_specs import all_invariants, kinds

    from .selection import LoadProblem, select

    print("backends:")
    for item in select(ns.backend):
        if isinstance(item, LoadProblem):
            print(f"  {item.source}: LOAD ERROR {item.message}")
            continue
        b = item.backend
        print(f"  {b.name:<28} kind={b.kind:<10} wiring={b.wiring:<8} claims: {', '.join(sorted(b.capabilities))}")
    for name, kind in kinds().items():
        print(f"\n{name} invariants ({kind.summary}):")
        for inv in all_invariants(name):
            needs = f"  [needs {', '.join(sorted(inv.requires))}]" if inv.requires else ""
            print(f"  {inv.id:<52} {inv.level.value:<6}{needs}")
    return 0


def cmd_catalogue(ns: argparse.Namespace) -> int:
    from .catalogue import render, with_index

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
    if ns.command == "explain":
        from .explain import explain

        return explain(ns.query, deadline_s=ns.deadline)
    import pytest

    return int(pytest.main(pytest_argv(ns)))


if __name__ == "__main__":
    sys.exit(main())
