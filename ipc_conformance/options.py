"""The plugin's options, their environment variables, and the checks that stop bad values at the door.

Every problem is one line naming the option and the value, raised before the
run starts (a report path that cannot be written is refused before an hour of
checks, not after).
"""

from __future__ import annotations

import argparse
import math
import os
import stat
from typing import Any, List, Optional

import pytest

PROFILES = ("standard", "fast", "ci", "thorough")  # kept equal to ipc_specs' by a self-test
DEFAULT_PROFILE = "standard"
PLACEMENTS = ("fork", "spawn", "forkserver", "thread")
DEFAULT_DEADLINE_S = 10.0
#: ``--ipc-deadline off``: a week, for debugging under pdb (a timer cannot be infinite).
DEADLINE_OFF_S = 7 * 24 * 3600.0
MAX_DEADLINE_S = 24 * 3600.0
DEFAULT_REPLAYS = 3
DEFAULT_WORKER_MEMORY_MIB = 2048
#: Environment variables that, like an ``--ipc-*`` option, ask for the plugin.
ENV_VARS = ("IPC_BACKENDS", "IPC_PROFILE", "IPC_DEADLINE", "IPC_REPLAYS", "IPC_WORKER_MEMORY", "IPC_FAULTS",
            "IPC_PLACEMENTS", "IPC_REPORT")
SCRATCH_ENV = "IPCC_TMPDIR"


def add_options(parser: pytest.Parser) -> None:
    env = os.environ.get
    group = parser.getgroup("ipc-conformance", "IPC conformance suite (inert unless an --ipc-* option is given)")
    group.addoption("--ipc-backend", action="append", default=[], metavar="MODULE:ATTR",
                    help="check this backend (repeatable; env IPC_BACKENDS, comma-separated); default: the "
                    "reference backends and installed ones")
    group.addoption("--ipc-report", metavar="PATH", action="append", default=[],
                    help="write the verdicts to PATH: .json, .md (Markdown), .xml (JUnit XML) or .html (one "
                    "self-contained page); repeatable; env IPC_REPORT (comma-separated)")
    group.addoption("--ipc-profile", default=env("IPC_PROFILE", DEFAULT_PROFILE), metavar="NAME",
                    help=f"examples per check: {', '.join(PROFILES)} (default {DEFAULT_PROFILE}); env IPC_PROFILE")
    group.addoption("--ipc-deadline", default=env("IPC_DEADLINE", str(DEFAULT_DEADLINE_S)), metavar="SECONDS",
                    help="per-example deadline after which a worker counts as hung (default 10; 'off' for "
                    "debugging); env IPC_DEADLINE")
    group.addoption("--ipc-replays", default=env("IPC_REPLAYS", str(DEFAULT_REPLAYS)), metavar="N",
                    help="replays of a failing minimal example: FAIL if all fail, else FLAKY (default 3); "
                    "env IPC_REPLAYS")
    group.addoption("--ipc-worker-memory", metavar="MIB", default=env("IPC_WORKER_MEMORY",
                                                                      str(DEFAULT_WORKER_MEMORY_MIB)),
                    help="private memory a worker process may allocate above its start size (default 2048; "
                    "0: no cap); env IPC_WORKER_MEMORY")
    group.addoption("--ipc-faults", default=env("IPC_FAULTS", "on"), metavar="on|off",
                    help="draw the faults invariants opt in to (signals during blocking calls, a killed "
                    "writer) into their examples (default on); env IPC_FAULTS")
    group.addoption("--ipc-placements", default=env("IPC_PLACEMENTS", ",".join(PLACEMENTS)), metavar="LIST",
                    help=f"comma-separated subset of {','.join(PLACEMENTS)} (default all); env IPC_PLACEMENTS")
    group.addoption("--ipc-progress", action="store_true", default=False, help=argparse.SUPPRESS)
    group.addoption("--ipc-replay", default="", metavar="BLOB",
                    help="run exactly the example of this Hypothesis failure blob (printed in a reproduce "
                    "line); needs one selected check")


def validated(config: pytest.Config) -> dict:  # type: ignore[type-arg]
    """The options as typed values; a bad one is a :class:`pytest.UsageError` of one line."""
    get = config.getoption
    out: dict = {"profile": _choice("--ipc-profile", get("ipc_profile"), PROFILES),  # type: ignore[type-arg]
                 "faults": _choice("--ipc-faults", get("ipc_faults"), ("on", "off")) == "on",
                 "deadline": deadline(get("ipc_deadline")),
                 "replays": _int("--ipc-replays", get("ipc_replays"), "must be 0 or more"),
                 "worker_memory": _int("--ipc-worker-memory", get("ipc_worker_memory"),
                                       "must be 0 (no cap) or a number of MiB"),
                 "placements": placements(get("ipc_placements")),
                 "report": reports(get("ipc_report")), "replay": get("ipc_replay").strip(),
                 "progress": bool(get("ipc_progress"))}
    for path in out["report"]:
        from .report import report_problem

        problem = report_problem(path)
        if problem:
            raise pytest.UsageError(problem)
    problem = scratch_problem(os.environ.get(SCRATCH_ENV))
    if problem:
        raise pytest.UsageError(problem)
    return out


def reports(given: List[str]) -> List[str]:
    """The report paths: every ``--ipc-report``, else those of ``IPC_REPORT`` (comma-separated)."""
    paths = list(given) or os.environ.get("IPC_REPORT", "").split(",")
    return list(dict.fromkeys(p.strip() for p in paths if p.strip()))


def deadline(text: Any) -> float:
    if str(text).strip().lower() == "off":
        return DEADLINE_OFF_S
    try:
        value = float(text)
    except (TypeError, ValueError):
        value = math.nan
    if not (0 < value <= MAX_DEADLINE_S):  # also false for nan
        raise pytest.UsageError(f"--ipc-deadline {text!r}: must be a positive number of seconds up to "
                                f"{MAX_DEADLINE_S:g}, or 'off' (no deadline, for debugging)")
    return value


def placements(text: str) -> List[str]:
    chosen = [p.strip() for p in str(text).split(",") if p.strip()]
    unknown = sorted(set(chosen) - set(PLACEMENTS))
    if unknown:
        raise pytest.UsageError(f"--ipc-placements: unknown {unknown}; expected a subset of {list(PLACEMENTS)}")
    if not chosen:
        raise pytest.UsageError(f"--ipc-placements {text!r}: empty; expected a subset of {list(PLACEMENTS)}")
    return chosen


def scratch_problem(path: Optional[str]) -> Optional[str]:
    """Why ``$IPCC_TMPDIR`` cannot hold the suite's private roots (None: it can, or it is unset)."""
    if path is None:
        return None
    if not path:
        return f"{SCRATCH_ENV} is set but empty"
    if os.path.islink(path) and not os.path.exists(path):
        return f"{SCRATCH_ENV}={path!r} is a dangling symbolic link"
    if not os.path.exists(path):
        return f"{SCRATCH_ENV}={path!r} does not exist"
    if not os.path.isdir(path):
        return f"{SCRATCH_ENV}={path!r} is not a directory"
    mode = os.stat(path).st_mode
    if mode & stat.S_IWOTH and not mode & stat.S_ISVTX:
        return f"{SCRATCH_ENV}={path!r} is world-writable without the sticky bit: others could replace its entries"
    if not os.access(path, os.W_OK | os.X_OK):
        return f"{SCRATCH_ENV}={path!r} is not writable"
    return None


def _choice(option: str, value: Any, choices: tuple) -> str:  # type: ignore[type-arg]
    if value not in choices:
        raise pytest.UsageError(f"{option} {value!r}: expected one of {', '.join(choices)}")
    return str(value)


def _int(option: str, value: Any, rule: str) -> int:
    try:
        number = int(str(value))
    except ValueError:
        number = -1
    if number < 0:
        raise pytest.UsageError(f"{option} {value!r}: {rule}")
    return number
