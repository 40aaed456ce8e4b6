"""Role bodies for the executor form: ``run()`` calls ``fn`` in another thread or process.

The guarded function here is stubborn: it swallows whatever interrupts it, so only an
executor can release the caller.  It leaves heartbeats (``hb <pid> <monotonic_ns>``) in a
file, and may start a grandchild process that does the same: a heartbeat stamped after
the caller was released is proof that the guarded code was still running then.  Whatever
is left running is stopped by the role before it returns (leak nothing).
"""

from __future__ import annotations

import os
import signal
import threading
import time
from typing import Any, Dict, List, Optional

from ..harness.control import ConcurrentControl
from ..harness.worker import Proc
from .call_roles import give_up_at
from .common import timeout_class


def _beat(fd: int) -> None:
    os.write(fd, f"hb {os.getpid()} {time.monotonic_ns()}\n".encode())


def _grandchild(fd: int, end: float) -> None:
    """A process started by the guarded code; it lives until ``end`` unless killed."""
    pid = os.fork()
    if pid:
        os.write(fd, f"gc {pid} {_start_time(pid)}\n".encode())
        return
    try:
        # Only its heartbeat file: a leftover holding the worker's pipes would stall the harness.
        os.closerange(3, fd)
        os.closerange(fd + 1, 1 << 16)
        signal.signal(signal.SIGALRM, signal.SIG_IGN)  # nothing but a kill may stop it
        while time.monotonic() < end:
            try:
                _beat(fd)
                time.sleep(0.005)
            except BaseException:  # noqa: B902  (stubborn on purpose)
                continue
    finally:
        os._exit(0)


def stubborn(path: str, end: float, grandchild_end: float, stop: threading.Event) -> str:
    """Heartbeat until ``end``, swallowing every exception (a timeout included)."""
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        if grandchild_end:
            _grandchild(fd, grandchild_end)
        while time.monotonic() < end and not stop.is_set():
            try:
                _beat(fd)
                time.sleep(0.005)
            except BaseException:  # noqa: B902  (stubborn on purpose)
                continue
    finally:
        os.close(fd)
    return "ran to its end"


def _start_time(pid: int) -> str:
    """Field 22 of /proc/<pid>/stat: tells a process from a later one with its pid."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rpartition(")")[2].split()[19]
    except OSError:
        return ""


def _state(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rpartition(")")[2].split()[0]
    except OSError:
        return "gone"


def running(pid: int, start: str) -> bool:
    return _state(pid) not in ("gone", "Z", "X") and _start_time(pid) == start


def running_children() -> List[int]:
    """This worker's child processes that are not zombies (from /proc, every thread)."""
    pids: List[int] = []
    for tid in os.listdir("/proc/self/task"):
        try:
            with open(f"/proc/self/task/{tid}/children") as f:
                pids += [int(p) for p in f.read().split()]
        except OSError:
            continue
    return [p for p in pids if _state(p) not in ("gone", "Z", "X")]


def released_at_deadline(proc: Proc, ms: int, grandchild: bool) -> Dict[str, Any]:
    """run(ms, stubborn fn); the caller must come out at the deadline, against a control."""
    t = proc.open("open_timeouts")
    cls = timeout_class(t)
    path = proc.task.file("heartbeats")
    stop = threading.Event()
    t0 = time.monotonic()
    end = give_up_at(t0, ms)
    # The grandchild outlives every wait of this role, unless the executor kills it.
    gc_end = t0 + 8 * ms / 1000 + 1.5 if grandchild else 0.0
    ctl = ConcurrentControl(ms / 1000)
    out: Dict[str, Any] = {"outcome": "returned", "t0": int(t0 * 1e9)}
    try:
        out["returned"] = repr(t.run(ms / 1000, stubborn, path, end, gc_end, stop))
    except cls:
        out["outcome"] = "raised"
    out["t_released"] = time.monotonic_ns()
    out["control_lateness"] = ctl.result()
    if grandchild:
        out.update(_after_release(path, out["t_released"], ms))
    stop.set()
    _kill_leftovers(path)
    return out


def _after_release(path: str, t_released: int, ms: int) -> Dict[str, Any]:
    """Watch for a while after the release: heartbeats stamped later, and processes that
    keep running (a killed one may take a moment to go: polled up to 2x ms + 0.5 s)."""
    poll_end = time.monotonic() + 2 * ms / 1000 + 0.5
    gcs = _grandchildren(path)
    while time.monotonic() < poll_end and any(running(p, s) for p, s in gcs):
        time.sleep(0.01)
    time.sleep(0.05)  # an abandoned thread beats every 5 ms: room for several beats
    late = [line for line in _lines(path) if line[0] == "hb" and int(line[2]) > t_released]
    return {"late_beats": len(late), "late_pids": sorted({int(x[1]) for x in late}),
            "grandchildren": [p for p, _ in gcs], "grandchildren_running": [p for p, s in gcs if running(p, s)],
            "children_running": running_children(), "worker": os.getpid()}


def _lines(path: str) -> List[List[str]]:
    try:
        with open(path) as f:
            return [line.split() for line in f.read().splitlines() if line]
    except OSError:
        return []


def _grandchildren(path: str) -> List[Any]:
    return [(int(x[1]), x[2]) for x in _lines(path) if x[0] == "gc" and len(x) == 3]


def _kill_leftovers(path: Optional[str]) -> None:
    """Stop what the guarded code started, if the executor did not (leak nothing)."""
    for pid, start in _grandchildren(path) if path else []:
        if running(pid, start):
            os.kill(pid, signal.SIGKILL)
    for pid in running_children():
        try:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
        except (OSError, ChildProcessError):
            pass
