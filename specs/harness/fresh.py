"""A role that runs a fresh interpreter: the "unrelated process" that attaches by name.

Forked workers are copies of the pytest process and end with ``os._exit``; what a
library does for an unrelated process (a resource tracker registering the name,
``atexit`` handlers, finalizers at a normal exit) shows only in a new interpreter.
Both the shm and the map families need one; this module is what they share.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from typing import IO, Any, Sequence

from .worker import Proc

#: Python source defining ``load_channel(blob, package)`` for a fresh interpreter.  The
#: channel's module imports ipc_specs, whose package ``__init__``s import Hypothesis (about a
#: second); the backend needs none of that, so the packages are first stood in for by bare
#: namespace modules, and imported for real only if unpickling fails that way.
LOAD_CHANNEL = """
import importlib.util, os, pickle, sys, types
def load_channel(blob, package):
    for name in ("ipc_specs", package):
        spec = importlib.util.find_spec(name)
        mod = types.ModuleType(name)
        mod.__path__ = list(spec.submodule_search_locations)
        mod.__spec__ = spec
        sys.modules[name] = mod
    try:
        return pickle.loads(blob)
    except (ImportError, AttributeError):
        for name in [m for m in sys.modules if m.split(".")[0] in ("ipc_specs", "ipc_impls")]:
            del sys.modules[name]
        return pickle.loads(blob)
"""


def run_fresh(proc: Proc, body: str, args: Sequence[str], *, detail: str, stdout: IO[Any], stderr: Any) -> int:
    """Run ``LOAD_CHANNEL + body`` in a new ``sys.executable`` with ``args``; return its exit
    code once every process it started (a resource tracker) is gone too."""
    # A new session: the interpreter and anything it starts share a process group we can watch.
    child = proc.call("subprocess", subprocess.Popen, [sys.executable, "-c", LOAD_CHANNEL + body, *args],
                      stdout=stdout, stderr=stderr, start_new_session=True, detail=detail)
    rc = int(child.wait())
    proc.note("exited", str(rc))
    _wait_group_gone(child.pid)
    proc.note("group_gone", str(child.pid))
    return rc


def _wait_group_gone(pgid: int) -> None:
    """Poll until no process of the group is left; the harness watchdog bounds the wait."""
    while True:
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.005)
