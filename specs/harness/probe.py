"""A first look at a backend's parent-side calls, in a process of its own.

``setup`` and ``teardown`` run in the parent (the pytest process): a backend
whose C extension segfaults there would take the whole run down, with no
verdict and no report.  So before the first example of a backend, the harness
forks a probe that calls ``setup`` and ``channel.teardown`` once and exits.  A
probe that dies by a signal (or exits from inside the call) is the backend's
verdict, ``crashed``, and the parent never makes the call itself.  A probe
that raises is not judged here: the real call, in the parent, reports the
exception with its traceback.

Only a crash that happens on the first call is seen this way; one that needs
several examples to show takes down the process that runs the check: under
pytest-xdist a worker, which the controller reports as crashed; under ``-n 0``
the runner the plugin forks for the checks (``ipc_conformance/contain.py``).
Either way the verdict is ``crashed`` and the run goes on.
"""

from __future__ import annotations

import os
import shutil
import signal
import time
import warnings
from typing import Any, Optional, Tuple

from .interrupts import raise_if_interrupted
from .placements import FORK_SHIELD, reap
from .resources import ResourceRoot, remove_journalled
from .sigstate import signal_name
from .worker import die_with_parent

#: Exit code of a probe whose calls returned or raised (anything else is a crash).
_DONE = 0


def probe_parent_calls(backend: Any, root: ResourceRoot, deadline_s: float) -> Optional[Tuple[str, str]]:
    """None when setup/teardown return (or raise) in a child; else ``(kind, what)``:
    ``("crash", "setup() died by SIGSEGV")``, ``("crash", "teardown() exited the process with code 3")``,
    ``("hang", "setup() did not return within 2s")``."""
    sub = ResourceRoot(root.path)  # the probe's objects are journalled apart, for us to remove
    marker = os.path.join(sub.path, "stage")
    mask = signal.pthread_sigmask(signal.SIG_BLOCK, FORK_SHIELD)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # fork with threads: the child only probes
            pid = os.fork()
        if pid == 0:
            _probe_child(backend, sub, marker, mask)
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, mask)
    try:
        status = _wait(pid, time.monotonic() + deadline_s)
        stage = _read(marker) or "setup()"
    finally:
        remove_journalled(os.path.join(sub.path, "journal"))
        shutil.rmtree(sub.path, ignore_errors=True)
    if status is None:
        return "hang", f"{stage} did not return within {deadline_s:g}s"
    if os.WIFSIGNALED(status):
        return "crash", f"{stage} died by {signal_name(os.WTERMSIG(status))}"
    if os.WIFEXITED(status) and os.WEXITSTATUS(status) != _DONE:
        return "crash", f"{stage} exited the process with code {os.WEXITSTATUS(status)}"
    return None


def _probe_child(backend: Any, sub: ResourceRoot, marker: str, mask: Any) -> None:
    """Never returns: calls setup and teardown, then ``_exit(0)`` whatever they raised."""
    try:
        die_with_parent()
        signal.pthread_sigmask(signal.SIG_SETMASK, mask)
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
        null = os.open(os.devnull, os.O_WRONLY)
        os.dup2(null, 1)
        os.dup2(null, 2)
        _write(marker, "setup()")
        scope = sub.scope()
        channel = backend.setup(scope)
        _write(marker, "teardown()")
        if callable(getattr(channel, "teardown", None)):
            channel.teardown()
        _write(marker, "cleanup")
        sub.close()
    except BaseException:  # noqa: B036 (an exception is the parent's to report, not a crash)
        pass
    os._exit(_DONE)


def _wait(pid: int, until: float) -> Optional[int]:
    """The probe's wait status, or None if it was still running at ``until`` (then killed)."""
    try:
        while True:
            raise_if_interrupted()
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                return status
            if time.monotonic() >= until:
                break
            time.sleep(0.002)
    except BaseException:  # interrupted: the probe does not outlive the wait
        os.kill(pid, signal.SIGKILL)
        reap(pid)
        raise
    os.kill(pid, signal.SIGKILL)
    reap(pid)
    return None


def _write(path: str, text: str) -> None:
    with open(path, "w") as f:
        f.write(text)


def _read(path: str) -> str:
    try:
        with open(path) as f:
            return f.read().strip()
    except OSError:
        return ""
