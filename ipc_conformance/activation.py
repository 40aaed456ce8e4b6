"""When the plugin acts: only when a run asks for it.

Installed (as the README tells library authors to do), the ``pytest11`` entry
point loads this plugin into every pytest run of the environment.  A guest must
not change those runs: no signal handlers, no sweeping of ``/dev/shm``, no
imports of the families, no header.  It acts when

* an ``--ipc-*`` option is given (on the command line, in ``PYTEST_ADDOPTS`` or
  in the ini file's ``addopts``), or one of the ``IPC_*`` variables is set;
* the run's arguments name the conformance suite (``--pyargs ipc_conformance.suite``,
  or a path that contains or lies inside the suite's directory);
* or, failing both, when a test asks for the suite's fixtures (``ipc_case``).
"""

from __future__ import annotations

import importlib.util
import os
import shlex
from typing import List, Optional

import pytest

from .options import ENV_VARS


def asked_for(config: pytest.Config) -> bool:
    return _options_given(config) or any(os.environ.get(v) for v in ENV_VARS) or _suite_in_args(config)


def _options_given(config: pytest.Config) -> bool:
    args: List[str] = [str(a) for a in config.invocation_params.args]
    args += shlex.split(os.environ.get("PYTEST_ADDOPTS", ""))
    try:
        args += [str(a) for a in config.getini("addopts")]
    except (ValueError, KeyError):
        pass
    return any(a.startswith("--ipc-") for a in args)


def _suite_dir() -> Optional[str]:
    try:
        spec = importlib.util.find_spec("ipc_conformance.suite")
    except (ImportError, ValueError):
        return None
    locations = list(spec.submodule_search_locations or []) if spec else []
    return os.path.realpath(locations[0]) if locations else None


def _suite_in_args(config: pytest.Config) -> bool:
    pyargs = bool(getattr(config.option, "pyargs", False))
    suite = _suite_dir()
    for arg in config.args:
        target = str(arg).split("::", 1)[0]
        if pyargs and (target == "ipc_conformance" or target.startswith("ipc_conformance.suite")):
            return True
        if suite is None:
            continue
        path = os.path.realpath(os.path.join(str(config.invocation_params.dir), target))
        if _within(path, suite) or _within(suite, path):
            return True
    return False


def _within(path: str, parent: str) -> bool:
    return path == parent or path.startswith(parent.rstrip(os.sep) + os.sep)
