"""Soak: run the conformance suite on the reference backends again and again under
extra CPU load, and count false failures and leaked objects (the targets are 0 and 0).

Every reference backend passes every invariant it claims, so any failure here is a
false failure: a flaky check or a harness that breaks under load.  After each run the
script looks for what the run may have left behind: /dev/shm entries and temporary
roots of the suite, and System V objects that were not there before.

Usage: python benchmarks/soak.py [--runs 20] [--load 2] [--profile fast] [-- pytest args]
Takes about 5 minutes a run on a 2-core machine.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import subprocess
import sys
import tempfile
import time
from typing import List, Set


def burn() -> None:
    while True:
        pass


def leftovers() -> Set[str]:
    found = {f"/dev/shm/{e}" for e in os.listdir("/dev/shm") if "ipcc" in e}
    found |= {os.path.join(tempfile.gettempdir(), e) for e in os.listdir(tempfile.gettempdir())
              if e.startswith("ipcc-")}
    for table in ("msg", "sem", "shm"):
        try:
            with open(f"/proc/sysvipc/{table}") as f:
                found |= {f"sysv {table} {row.split()[1]}" for row in f.read().splitlines()[1:] if row.split()}
        except OSError:
            pass
    return found


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--load", type=int, default=2, help="CPU burner processes (default: one per core)")
    parser.add_argument("--profile", default="fast")
    parser.add_argument("pytest_args", nargs="*")
    args = parser.parse_args()
    burners = [multiprocessing.Process(target=burn, daemon=True) for _ in range(args.load)]
    for b in burners:
        b.start()
    false_failures, leaks, lines = 0, 0, []
    try:
        for run in range(1, args.runs + 1):
            before = leftovers()
            t = time.monotonic()
            cmd = [sys.executable, "-m", "pytest", "--pyargs", "ipc_conformance.suite", "-n", "2", "-q",
                   "-p", "no:cacheprovider", "--ipc-profile", args.profile, *args.pytest_args]
            out = subprocess.run(cmd, capture_output=True, text=True)
            summary = (out.stdout.strip().splitlines() or ["(no output)"])[-1]
            new = sorted(leftovers() - before)
            false_failures += out.returncode != 0
            leaks += len(new)
            lines.append(f"run {run:2d}: exit {out.returncode} in {time.monotonic() - t:5.0f}s  {summary}"
                         + (f"  LEFT: {new}" if new else ""))
            print(lines[-1], flush=True)
            if out.returncode != 0:
                marks = ("FAIL ", "ERROR ", "FLAKY ")
                failed: List[str] = [ln for ln in out.stdout.splitlines() if ln.startswith(marks)]
                print("\n".join("    " + ln for ln in failed[:20]), flush=True)
    finally:
        for b in burners:
            b.kill()
    print(f"\n{args.runs} runs under {args.load} CPU burners: {false_failures} runs with false failures, "
          f"{leaks} leaked objects (targets: 0 and 0)")
    return 1 if false_failures or leaks else 0


if __name__ == "__main__":
    sys.exit(main())
