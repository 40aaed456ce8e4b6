"""Where role bodies run: forked processes, warm spawn/forkserver workers, or threads.

Every placement has the same contract: start one worker per task, let the
parent drop its own references to the channel, wait at most the deadline, then
abort what is still running (SIGABRT: faulthandler dumps its stack), SIGKILL
what is left after a grace period, and classify each worker's end as
ok / raised / crashed / exited / hung.
"""

from __future__ import annotations

import os
import pickle
import select
import signal
import sys
import threading
import time
import traceback
import warnings
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Optional, Sequence

from . import holders
from .guard import BackendError, parent_guard
from .interrupts import raise_if_interrupted
from .sigstate import signal_name
from .stillness import Stillness
from .worker import (
    HANG_MARKERS,
    HANG_SIGNAL,
    RoleTask,
    data_size,
    fork_child_main,
    load_prctl,
    run_role,
)

#: Time a worker gets, after the parent sends it HANG_SIGNAL, to dump its stack and die.
GRACE_S = 2.0
PLACEMENTS = ("fork", "spawn", "forkserver", "thread")
#: How long a fresh spawn/forkserver worker may take to boot, and to import a task's module.
BOOT_TIMEOUT_S = 60.0
IMPORT_ALLOWANCE_S = 10.0


@dataclass
class RoleOutcome:
    proc: str
    status: str  # ok | raised | crashed | exited | hung
    value: Any = None
    error_type: str = ""
    message: str = ""
    errno: Optional[int] = None
    traceback: str = ""
    signal_name: str = ""
    output: str = ""

    def describe(self) -> str:
        if self.status == "raised":
            return f"raised {self.error_type}: {self.message}"
        if self.status == "crashed":
            return f"died by {self.signal_name}"
        if self.status == "exited":
            return f"exited early with code {self.message}"
        if self.status == "hung":
            return "did not finish before the deadline"
        return "finished"


def _read(path: str, limit: int = 20000) -> str:
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return f.read()[-limit:]
    except FileNotFoundError:
        return ""


def classify(task: RoleTask, wait_status: Optional[int], killed_by_us: bool) -> RoleOutcome:
    """Turn a worker's result file and exit status into a :class:`RoleOutcome`."""
    try:
        with open(task.file("result"), "rb") as f:
            data = pickle.load(f)
    except FileNotFoundError:
        data = None
    if data is not None:  # its output matters only when it left no result (hang, crash)
        if data["status"] == "ok":
            return RoleOutcome(task.proc, "ok", value=data["value"])
        return RoleOutcome(task.proc, "raised", error_type=data["type"], message=data["message"],
                           errno=data["errno"], traceback=data["traceback"])
    output = _read(task.file("out")) + _read(task.file("holders"))
    if killed_by_us:
        return RoleOutcome(task.proc, "hung", output=output)
    if wait_status is not None and os.WIFSIGNALED(wait_status):
        sig = os.WTERMSIG(wait_status)
        return RoleOutcome(task.proc, "crashed", signal_name=signal_name(sig), output=output)
    code = os.waitstatus_to_exitcode(wait_status) if wait_status is not None else "?"
    return RoleOutcome(task.proc, "exited", message=str(code), output=output)


def detach_parent(channel: Any, tasks: Sequence[RoleTask]) -> None:
    """Drop the parent's references to the channel (workers wait for this past their opens)."""
    with parent_guard(tasks[0].deadline_s if tasks else 10.0, "channel.detach()"):
        channel.detach()


# --- fork --------------------------------------------------------------------------------
#: Signals the parent holds back while it forks (see run_forked).
FORK_SHIELD = {signal.SIGINT, signal.SIGTERM}


class Unpicklable(BackendError):
    """A spawn or forkserver worker gets its role, the backend and the channel by pickle."""

    def __init__(self, method: str, exc: BaseException) -> None:
        super().__init__(
            f"the role, the backend or its channel cannot be handed to a {method} worker, which gets them by "
            f"pickle: define their classes at module level (not inside a function) and keep unpicklable state "
            f"out of them, or leave {method} out (--placements fork,thread); pickle said {type(exc).__name__}: {exc}")


#: Forked workers of the last example that had left their result and were exiting
#: when it ended.  Tearing down a copy of the parent's address space takes the
#: kernel about as long as the role itself; reaping them later lets that overlap
#: with what the parent does next.  :func:`settle_forked` reaps them.
_EXITING: List[int] = []


def run_forked(tasks: Sequence[RoleTask], channel: Any, deadline_s: float,
               stillness: Optional[Stillness] = None) -> Dict[str, RoleOutcome]:
    settle_forked()
    pids: Dict[int, RoleTask] = {}
    # A gate: children that have opened their ends block reading it until the parent,
    # having dropped its own copies, closes the write end (EOF wakes them all at once).
    gate_r, gate_w = os.pipe()
    # And a finish line: each child closes its copy of done_w once its result is
    # written, before it exits (dying closes it too); EOF means every child is past it.
    done_r, done_w = os.pipe()
    load_prctl()
    # Children start as copies of this process: their cap is our size plus the allowance.
    base = data_size() if any(t.memory_allowance for t in tasks) else 0
    for task in tasks:
        task.extra["gate_fd"] = gate_r
        task.extra["done_fd"] = done_w
        if task.memory_allowance:
            task.extra["data_limit"] = base + task.memory_allowance
    # A Ctrl-C that lands while os.fork() runs the interpreter's at-fork hooks raises
    # inside a hook, where CPython reports it as "ignored": the run would not stop.
    # Held back here, it is delivered when the mask is restored; children restore it.
    mask = signal.pthread_sigmask(signal.SIG_BLOCK, FORK_SHIELD)
    try:
        try:
            with warnings.catch_warnings():
                # 3.12+ warns about fork() in a process with threads; the child only runs
                # the role body and _exits, which is the case the warning allows for.
                warnings.simplefilter("ignore", DeprecationWarning)
                for task in tasks:
                    pid = os.fork()
                    if pid == 0:
                        fork_child_main(task, gate_w, mask)
                    pids[pid] = task
        finally:
            try:
                detach_parent(channel, tasks)
            finally:
                for fd in (gate_w, gate_r, done_w):
                    os.close(fd)
                signal.pthread_sigmask(signal.SIG_SETMASK, mask)  # a held-back Ctrl-C raises here
        abort_at = time.monotonic() + deadline_s
        still = stillness or Stillness(0.0, enabled=False)
        still.start = time.monotonic()
        _wait_for_eof(done_r, abort_at, still)
        # A result file is written last and atomically: its worker is done, only exiting.
        finished = [pid for pid, t in pids.items() if os.path.exists(t.file("result"))]
        statuses, killed = _wait_pids([pid for pid in pids if pid not in finished],
                                      time.monotonic() if still.called else abort_at,
                                      before_abort=lambda pending: note_holders(pending, pids))
    except BaseException:
        for pid in pids:  # interrupted: no worker outlives the example
            kill_quietly(pid, signal.SIGKILL)
            reap(pid)
        raise
    finally:
        os.close(done_r)
    _EXITING.extend(finished)
    return {t.proc: classify(t, statuses.get(pid, 0), pid in killed) for pid, t in pids.items()}


def settle_forked(timeout_s: float = GRACE_S) -> None:
    """Reap the workers of the last forked example that were still exiting.

    Called before the next fork example, and before anything counts this
    process's children (the leak audit, the end of a session).  They have left
    their results, so a SIGKILL after ``timeout_s`` (one stopped by a signal,
    say) loses nothing.
    """
    if _EXITING:
        pids = list(_EXITING)
        _EXITING.clear()
        _wait_pids(pids, time.monotonic() + timeout_s, grace_s=0.0)


def _wait_for_eof(fd: int, until: float, stillness: Stillness) -> None:
    """Wait until the pipe ``fd`` reads EOF (nobody writes to it), ``until`` passes, or
    every worker is asleep with nothing able to wake it (``stillness``)."""
    poller = select.poll()
    poller.register(fd, select.POLLIN)
    while True:
        raise_if_interrupted()
        left = until - time.monotonic()
        if left <= 0 or stillness.still():
            return
        if poller.poll(max(1, stillness.nap(min(left, 1.0)) * 1000)):
            return


def reap(pid: int) -> None:
    try:
        os.waitpid(pid, 0)
    except ChildProcessError:
        pass  # reaped already


def note_holders(pending: Sequence[int], tasks: Dict[int, RoleTask]) -> None:
    """Before aborting hung workers: who still holds the write end each one is reading."""
    names = {pid: t.proc for pid, t in tasks.items()}
    for pid in pending:
        if pid in tasks:
            holders.note(pid, tasks[pid].file("holders"), names)


def _wait_pids(pids: List[int], abort_at: float, grace_s: float = GRACE_S,
               before_abort: Optional[Callable[[List[int]], None]] = None) -> tuple[Dict[int, int], set[int]]:
    """Reap ``pids``; at ``abort_at`` abort those still running (they dump their stacks),
    and SIGKILL any left ``grace_s`` later.  Sleeps in poll, never spins."""
    statuses: Dict[int, int] = {}
    aborted: set[int] = set()
    pidfds: Dict[int, int] = {}
    for pid in pids:
        try:
            pidfds[pid] = os.pidfd_open(pid)
        except (AttributeError, OSError):
            pass
    poller = select.poll()
    for fd in pidfds.values():
        poller.register(fd, select.POLLIN)
    kill_at = abort_at + grace_s
    try:
        while True:
            raise_if_interrupted()
            for pid in pids:
                if pid not in statuses:
                    done, status = os.waitpid(pid, os.WNOHANG)
                    if done:
                        statuses[pid] = status
                        if pid in pidfds:
                            # a reaped pidfd stays readable: polling it would spin
                            poller.unregister(pidfds[pid])
            pending = [pid for pid in pids if pid not in statuses]
            if not pending:
                break
            now = time.monotonic()
            if now >= abort_at and not aborted:
                if before_abort is not None:
                    before_abort(pending)
                for pid in pending:
                    kill_quietly(pid, HANG_SIGNAL)
                aborted.update(pending)
            if now >= kill_at:
                for pid in pending:
                    kill_quietly(pid, signal.SIGKILL)
                    statuses[pid] = os.waitpid(pid, 0)[1]
                break
            left = (abort_at if not aborted else kill_at) - now
            if len(pidfds) == len(pids):
                poller.poll(max(1, min(left, 1.0) * 1000))
            else:  # no pidfd_open (Linux < 5.3): fall back to short naps
                time.sleep(0.001)
    finally:
        for fd in pidfds.values():
            os.close(fd)
    return statuses, aborted


def kill_quietly(pid: int, sig: int) -> None:
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass


# --- threads -----------------------------------------------------------------------------
def run_threaded(tasks: Sequence[RoleTask], channel: Any, deadline_s: float,
                 stillness: Optional[Stillness] = None) -> Dict[str, RoleOutcome]:
    end = time.monotonic() + deadline_s
    still = stillness or Stillness(0.0, enabled=False)
    opened = {t.proc: threading.Event() for t in tasks if t.opens}
    detached = threading.Event()
    threads = {
        t.proc: threading.Thread(target=run_role, args=(t, opened.get(t.proc), detached), daemon=True,
                                 name=t.proc)
        for t in tasks
    }
    for th in threads.values():
        th.start()
    # Threads share the parent's descriptors: detach only once every opener has its own.
    for ev in opened.values():
        _wait_event(ev, end)
    try:
        channel.detach()
    finally:
        detached.set()
    still.start = time.monotonic()
    outcomes: Dict[str, RoleOutcome] = {}
    for task in tasks:
        th = threads[task.proc]
        _join(th, end, still)
        if th.is_alive():
            frame = sys._current_frames().get(th.ident or -1)
            # innermost first, as faulthandler prints it for processes
            stack = "".join(reversed(traceback.format_stack(frame))) if frame else ""
            outcomes[task.proc] = RoleOutcome(task.proc, "hung", output=f"{HANG_MARKERS[1]}thread)\n{stack}")
        else:
            outcomes[task.proc] = classify(task, 0, False)
    return outcomes


def _wait_event(event: threading.Event, end: float) -> None:
    """Wait for ``event`` until ``end``, a second at a time so that an interrupt is noticed."""
    while not event.is_set():
        raise_if_interrupted()
        left = end - time.monotonic()
        if left <= 0:
            return
        event.wait(min(left, 1.0))


def _join(thread: threading.Thread, end: float, stillness: Stillness) -> None:
    while thread.is_alive():
        raise_if_interrupted()
        left = end - time.monotonic()
        if left <= 0 or stillness.still():
            return
        thread.join(stillness.nap(min(left, 1.0)))


def exitcode_to_status(exitcode: int) -> int:
    """Rebuild a waitpid status from ``Process.exitcode`` (negative means a signal)."""
    return -exitcode if exitcode < 0 else (exitcode & 0xFF) << 8
