"""How long a library author waits for a verdict when the suite catches a bug.

Runs every gallery twin (``ipc_impls/broken``) through the CLI, each against the
one check of the invariant it breaks, as ``ipc-conformance --backend … -k …`` would,
and reports per twin and as median / p90 / max:

* ``first``: seconds to the first failing example (the same run with Hypothesis's
  shrink phase off and no replays: it stops at the first failure);
* ``verdict``: seconds to the final verdict (the default run: shrink, then replays);
* ``size``: the bytes of payload (``Blob`` sizes) in the minimal example, when it has any.

Usage::

    python benchmarks/time_to_verdict.py [--profile standard] [--only SUBSTRING] [--every N] [--limit N]
                                         [--json out.json]

A run of the whole gallery takes tens of minutes; ``--limit`` and ``--only`` take a sample.
Figures depend on the machine and its load: run on an otherwise idle machine.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Any, Dict, List, Optional

NO_SHRINK = """
from hypothesis import Phase, settings
settings.register_profile("ttv-first", phases=[Phase.explicit, Phase.reuse, Phase.generate, Phase.target])
settings.load_profile("ttv-first")
"""
CLI = os.path.join(os.path.dirname(sys.executable), "ipc-conformance")


def spec_of(exhibit: Any) -> str:
    """The ``--backend`` of the gallery module whose EXHIBITS hold ``exhibit``."""
    import importlib

    from ipc_impls import broken

    for module in broken._MODULES:
        name = f"ipc_impls.broken.{module}"
        if any(e is exhibit for e in importlib.import_module(name).EXHIBITS):
            return f"{name}:EXHIBITS"
    raise LookupError(exhibit.backend.name)


def run_once(exhibit: Any, family: str, profile: str, scratch: str, *, first: bool) -> Dict[str, Any]:
    report = os.path.join(scratch, "r.json")
    test = f"test_invariant[{exhibit.backend.name}-{exhibit.breaks}-{exhibit.placement}]"
    argv = [CLI, "--backend", spec_of(exhibit), "--family", family, "-n", "0", "--profile", profile,
            "-k", test, "--report", report]
    env = dict(os.environ, HYPOTHESIS_STORAGE_DIRECTORY=os.path.join(scratch, "db-" + str(time.monotonic_ns())))
    if first:
        argv += ["--replays", "0", "--", "-p", "ttv_first"]
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [scratch, env.get("PYTHONPATH")]))
    start = time.monotonic()
    subprocess.run(argv, cwd=scratch, env=env, capture_output=True, text=True, timeout=3600)
    took = time.monotonic() - start
    data: Dict[str, Any] = {"results": []}
    if os.path.exists(report):
        with open(report) as f:
            data = json.load(f)
        os.unlink(report)
    cell = next(iter(data["results"][0]["placements"].values()), {}) if data["results"] else {}
    sizes = [int(n) for n in re.findall(r"Blob\((\d+)", cell.get("counterexample", ""))]
    return {"seconds": round(took, 2), "verdict": cell.get("verdict", "none"), "size": sum(sizes) if sizes else None}


def stats(values: List[float]) -> str:
    if not values:
        return "-"
    ordered = sorted(values)
    p90 = ordered[min(len(ordered) - 1, int(round(0.9 * (len(ordered) - 1))))]
    return f"median {statistics.median(ordered):.1f} s, p90 {p90:.1f} s, max {ordered[-1]:.1f} s"


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--profile", default="standard")
    parser.add_argument("--only", default="", help="only twins whose name or invariant contains this")
    parser.add_argument("--limit", type=int, default=0, help="at most this many twins")
    parser.add_argument("--every", type=int, default=1, help="every Nth twin (a sample across the families)")
    parser.add_argument("--json", default="", help="write the figures here")
    ns = parser.parse_args(argv)
    from ipc_impls.broken import all_exhibits
    from ipc_specs import get_invariant

    exhibits = [e for e in all_exhibits() if ns.only in e.backend.name or ns.only in e.breaks]
    exhibits = exhibits[:: max(1, ns.every)]
    exhibits = exhibits[: ns.limit] if ns.limit else exhibits
    rows = []
    with tempfile.TemporaryDirectory(prefix="ttv-") as scratch:
        with open(os.path.join(scratch, "ttv_first.py"), "w") as f:
            f.write(NO_SHRINK)
        for e in exhibits:
            family = get_invariant(e.breaks).family
            first = run_once(e, family, ns.profile, scratch, first=True)
            final = run_once(e, family, ns.profile, scratch, first=False)
            rows.append({"twin": e.backend.name, "invariant": e.breaks, "first_s": first["seconds"],
                         "verdict_s": final["seconds"], "verdict": final["verdict"], "size": final["size"]})
            print(f"{e.backend.name:<40} first {first['seconds']:>6.1f} s  verdict {final['seconds']:>6.1f} s  "
                  f"{final['verdict']:<6} size {final['size'] if final['size'] is not None else '-'}", flush=True)
    print(f"\n{len(rows)} twins, profile {ns.profile}")
    print("first failing example:", stats([r["first_s"] for r in rows]))
    print("final verdict:        ", stats([r["verdict_s"] for r in rows]))
    missed = [r["twin"] for r in rows if r["verdict"] not in ("fail", "flaky")]
    if missed:
        print("not caught in this run (the gallery self-test is the judge):", ", ".join(missed))
    if ns.json:
        with open(ns.json, "w") as f:
            json.dump({"profile": ns.profile, "rows": rows}, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
