"""The reproduce line printed with each failure: a command that fails the same way, anywhere.

It carries every setting that differs from the default (profile, deadline,
faults, worker memory, placements, replays, the scratch directory) and, when
Hypothesis printed one, the failure blob, so that the exact example runs again
without the Hypothesis database of the original run (tox moves it; CI logs never
have it).  A blob replays only under the same Hypothesis version.
"""

from __future__ import annotations

import os
import shlex
from typing import Any, Dict, List

from .options import DEFAULT_DEADLINE_S, DEFAULT_PROFILE, DEFAULT_REPLAYS, DEFAULT_WORKER_MEMORY_MIB, PLACEMENTS


def command(*, source: str, test_id: str, opts: Dict[str, Any], blob: str, flaky: bool) -> str:
    env: List[str] = []
    if os.environ.get("IPCC_TMPDIR"):
        env.append(f"IPCC_TMPDIR={shlex.quote(os.environ['IPCC_TMPDIR'])}")
    argv = ["ipc-conformance"]
    if source != "reference":
        spec = source.split(" = ", 1)[1] if source.startswith("entry point ") else source
        argv += ["--backend", spec]
        from .selection import from_cwd

        where = from_cwd(spec)
        if where:
            env.append(f"PYTHONPATH={shlex.quote(where)}")
    argv += _settings(opts)
    argv += ["-n", "0", "-k", test_id]
    if blob:
        argv += ["--replay", blob]
    line = " ".join(env + [shlex.quote(a) if a != argv[0] else a for a in argv])
    return line + ("   # FLAKY: may need several runs to fail" if flaky and not blob else "")


def _settings(opts: Dict[str, Any]) -> List[str]:
    out = ["--profile", str(opts["profile"])] if opts["profile"] != DEFAULT_PROFILE else []
    if opts["deadline"] != DEFAULT_DEADLINE_S:
        out += ["--deadline", f"{opts['deadline']:g}"]
    if not opts["faults"]:
        out += ["--faults", "off"]
    if opts["worker_memory"] != DEFAULT_WORKER_MEMORY_MIB:
        out += ["--worker-memory", str(opts["worker_memory"])]
    if list(opts["placements"]) != list(PLACEMENTS):
        out += ["--placements", ",".join(opts["placements"])]
    if opts["replays"] != DEFAULT_REPLAYS:
        out += ["--replays", str(opts["replays"])]
    return out
