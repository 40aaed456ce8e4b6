"""The correctness guard: a fast wrong mechanism is not a result.

Before measuring, the bench runs the conformance checks of the benched families for the
benched backends, exactly as ``ipc-conformance --profile fast --placements fork`` would
(the same command, in a subprocess, with its JSON report), and a backend is *verified* when every
check judged for it passed.  The others are still measured but marked unverified in the
table, the JSON and the plot.  ``--no-verify`` skips the guard and marks every backend
unverified.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from typing import Any, Dict, List, Optional, Sequence, Tuple

from .progress import Bar

PROFILE = "fast"
PLACEMENT = "fork"
FAILING = frozenset({"fail", "flaky", "error", "crashed"})


def verify(backends: Sequence[Any], specs: Sequence[str], only: Optional[Sequence[str]],
           workers: Optional[str], bar: Optional[Bar] = None) -> Tuple[Dict[str, str], Dict[str, Any]]:
    """Returns (backend name -> "verified" or "unverified: why", what the guard did)."""
    families = sorted({b.kind for b in backends})
    with tempfile.TemporaryDirectory(prefix="ipcc-bench-guard-") as tmp:
        report = os.path.join(tmp, "report.json")
        # The fork placement only: the bench runs every sender and receiver in forked processes,
        # so that is the placement its figures rest on (and the other three would triple the cost).
        argv = [sys.executable, "-m", "ipc_conformance.cli", "run", "--profile", PROFILE,
                "--placements", PLACEMENT, "--report", report]
        if workers is not None:  # otherwise the run's own default (ipc_conformance.cli.default_workers)
            argv += ["-n", workers]
        for fam in families:
            argv += ["--family", fam]
        for spec in specs:
            argv += ["--backend", spec]
        if only:
            argv += ["-k", " or ".join(only)]
        # Hypothesis's example database goes with the guard, not into the user's directory.
        # The run's progress goes to a file the plugin keeps current (its own line needs a terminal).
        counts = os.path.join(tmp, "progress")
        env = dict(os.environ, HYPOTHESIS_STORAGE_DIRECTORY=os.path.join(tmp, "hypothesis"),
                   IPCC_PROGRESS_FILE=counts)
        start = time.monotonic()
        with open(os.path.join(tmp, "log"), "w+") as log:
            proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env)
            _follow(proc, counts, bar)
            log.seek(0)
            tail = log.read()[-2000:]
        seconds = time.monotonic() - start
        try:
            with open(report, encoding="utf-8") as f:
                doc = json.load(f)
        except (OSError, ValueError):
            doc = {}
    verdicts = judge(backends, doc, tail if not doc else "")
    info = {"ran": True, "profile": PROFILE, "placements": PLACEMENT, "seconds": round(seconds, 1),
            "exit_code": proc.returncode, "command": argv[1:], "report": doc,
            "note": f"did not pass ipc-conformance --profile {PROFILE} --placements {PLACEMENT} in this run"}
    return verdicts, info


def _follow(proc: subprocess.Popen[bytes], counts: str, bar: Optional[Bar]) -> None:
    """Wait for the conformance run, showing its checks done of those scheduled on ``bar``."""
    try:
        while True:
            try:
                proc.wait(timeout=0.5)
                break
            except subprocess.TimeoutExpired:
                pass
            if bar is not None:
                done, total, failing = _counts(counts)
                bar.update(done, total, f"checks, {failing} failing" if total else "starting")
    except BaseException:  # ^C: the run is stopped with the bench, not left behind
        proc.kill()
        proc.wait()
        raise
    finally:
        if bar is not None:
            bar.close()


def _counts(path: str) -> Tuple[int, int, int]:
    try:
        with open(path, encoding="ascii") as f:
            done, total, failing = (int(x) for x in f.read().split())
        return done, total, failing
    except (OSError, ValueError):
        return 0, 0, 0  # not written yet


def judge(backends: Sequence[Any], report: Dict[str, Any], failure: str = "") -> Dict[str, str]:
    """Each backend's standing from a conformance JSON report."""
    seen: Dict[str, List[str]] = {}
    for result in report.get("results", []):
        seen.setdefault(result["backend"], []).append(result["verdict"])
    out: Dict[str, str] = {}
    for b in backends:
        verdicts = seen.get(b.name, [])
        bad = sorted({v for v in verdicts if v in FAILING})
        if not report:
            out[b.name] = "unverified: the conformance run wrote no report" + (f" ({failure.strip()[-300:]})"
                                                                              if failure else "")
        elif bad:
            out[b.name] = f"unverified: conformance verdicts {', '.join(bad)}"
        elif "pass" not in verdicts:
            out[b.name] = "unverified: no conformance check was judged for it"
        else:
            out[b.name] = "verified"
    return out


def skipped(backends: Sequence[Any]) -> Tuple[Dict[str, str], Dict[str, Any]]:
    info = {"ran": False, "profile": None, "seconds": None, "note": "--no-verify: no conformance check was run"}
    return {b.name: "unverified: --no-verify" for b in backends}, info
