"""Spawn and forkserver workers started for one example, the channel handed to each as
a ``multiprocessing.Process`` argument: how multiprocessing hands a child what it can
only inherit (its Lock, Queue, Pipe connections, shared Value; a descriptor wrapped in
``multiprocessing.reduction.DupFd``).

The warm pools (``pool.Pool``) reuse workers across examples, so a channel can
reach them only by name: it is pickled into a process that is already running, and
multiprocessing refuses to pickle its synchronisation objects then ("should only be
shared between processes through inheritance").  A backend whose wiring is
``"process-arg"`` gets a fresh worker per role instead, started with the channel among
its arguments, so multiprocessing's own rules for inheritance apply: the channel must
come from the same start method (``scope.start_method``), and whatever the parent
set up outside it (a module global, say) is not there.

Cost: a forkserver worker is forked from a server that has imported the harness
already (a few milliseconds); a spawned one starts an interpreter and imports the
package (about a second on a loaded machine), which is why ``Case.explore`` runs few
examples in these placements of such a backend (``FRESH_EXAMPLES``).
"""

from __future__ import annotations

import multiprocessing
import multiprocessing.connection
import signal
import time
from typing import Any, Dict, List, Sequence, Tuple

from .guard import BackendError
from .interrupts import raise_if_interrupted
from .placements import (
    GRACE_S,
    IMPORT_ALLOWANCE_S,
    RoleOutcome,
    classify,
    detach_parent,
    exitcode_to_status,
    kill_quietly,
    note_holders,
)
from .worker import HANG_SIGNAL, RoleTask, cap_memory, data_size, die_with_parent, enter_worker_process, run_role

#: At most this many examples per check in these placements of a ``process-arg`` backend,
#: whatever the profile: each role of each example starts a process (a spawned one an
#: interpreter).  The fork and thread placements search the data; these check that the
#: channel reaches a child that was not forked from the parent.
FRESH_EXAMPLES = {"spawn": 1, "forkserver": 5}
#: Imported by the forkserver once, so that each worker forked from it starts warm.
#: (``__main__`` first, as multiprocessing does by default: else each child runs the main script again.)
FORKSERVER_PRELOAD = ["__main__", "ipc_specs", "ipc_specs.families", "ipc_specs.harness.inherit"]


def inheriting_worker_main(task: RoleTask, gate: multiprocessing.connection.Connection) -> None:
    """Body of a fresh worker: run the role, leave its result, and exit at once (as a
    forked worker does: no interpreter teardown, whose finalizers are the backend's)."""
    import os

    code = 0
    try:
        die_with_parent()
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides when workers die
        if task.memory_allowance:
            cap_memory(data_size() + task.memory_allowance)
        enter_worker_process(task.file("out"))
        task.extra["gate_fd"] = gate.fileno()  # EOF once the parent has detached (see Proc.open)
        run_role(task)
    except BaseException:
        code = 70
    finally:
        os._exit(code)


def prepare(method: str) -> None:
    """Before the first forkserver worker: have the server import the harness once."""
    if method == "forkserver":
        from multiprocessing import forkserver

        if getattr(forkserver._forkserver, "_forkserver_pid", None) is None:  # not started yet
            multiprocessing.get_context("forkserver").set_forkserver_preload(FORKSERVER_PRELOAD)


def run_inheriting(tasks: Sequence[RoleTask], channel: Any, deadline_s: float,
                   method: str) -> Dict[str, RoleOutcome]:
    """Start one worker per task with the channel among its arguments, then as the pools do:
    detach, open the gate, wait at most the deadline, abort what still runs."""
    ctx: Any = multiprocessing.get_context(method)
    prepare(method)
    started: List[Tuple[RoleTask, Any]] = []
    gate_r, gate_w = ctx.Pipe(duplex=False)
    try:
        try:
            for task in tasks:
                proc = ctx.Process(target=inheriting_worker_main, args=(task, gate_r), daemon=True,
                                   name=f"ipcc-{task.proc}")
                try:
                    proc.start()  # pickles the task, channel and all, under multiprocessing's rules
                except Exception as exc:
                    raise BackendError(f"the channel cannot be handed to a {method} worker at its start: "
                                       f"{type(exc).__name__}: {exc}") from exc
                started.append((task, proc))
        finally:
            try:
                detach_parent(channel, tasks)
            finally:
                gate_w.close()  # EOF: every worker may go past its opens
                gate_r.close()
        return _collect(started, deadline_s + IMPORT_ALLOWANCE_S)
    except BaseException:
        for _, proc in started:  # never leave a worker of a half-run example
            if proc.is_alive():
                proc.kill()
            proc.join()
        raise
    finally:
        for _, proc in started:
            if proc.exitcode is not None:
                proc.close()


def _collect(started: List[Tuple[RoleTask, Any]], deadline_s: float) -> Dict[str, RoleOutcome]:
    abort_at = time.monotonic() + deadline_s
    aborted: set[int] = set()
    while True:
        raise_if_interrupted()
        running = [proc for _, proc in started if proc.exitcode is None]
        if not running:
            break
        now = time.monotonic()
        if now >= abort_at + GRACE_S:
            for proc in running:
                proc.kill()
                proc.join()
            break
        if now >= abort_at and not aborted:
            note_holders([p.pid for p in running], {proc.pid: task for task, proc in started})
            for proc in running:  # faulthandler dumps where it is stuck, then it dies
                kill_quietly(proc.pid, HANG_SIGNAL)
                aborted.add(proc.pid)
        limit = (abort_at + GRACE_S if aborted else abort_at) - now
        multiprocessing.connection.wait([p.sentinel for p in running], timeout=max(0.001, min(1.0, limit)))
        for proc in running:
            proc.join(0)
    return {task.proc: classify(task, exitcode_to_status(proc.exitcode) if proc.exitcode is not None else None,
                                proc.pid in aborted)
            for task, proc in started}
