"""Warm pools: spawn and forkserver workers started once and reused across examples.

Starting an interpreter costs tens of milliseconds (spawn) a role; a pool keeps its
workers and hands each a task (:class:`~ipc_specs.harness.worker.RoleTask`) over a
pipe, so those placements cost about what fork does.  A worker keeps the placement
contract of ``placements.py``: the parent waits at most the deadline, aborts what
still runs (faulthandler dumps its stack), kills it after a grace period and
classifies its end; a worker that hung or died is replaced by a fresh one.
"""

from __future__ import annotations

import multiprocessing
import multiprocessing.connection
import pickle
import signal
import time
from typing import Any, Dict, List, Optional, Sequence

from . import worker
from .interrupts import raise_if_interrupted
from .placements import (
    BOOT_TIMEOUT_S,
    GRACE_S,
    IMPORT_ALLOWANCE_S,
    RoleOutcome,
    Unpicklable,
    classify,
    detach_parent,
    exitcode_to_status,
    kill_quietly,
    note_holders,
)
from .stillness import Stillness
from .worker import (
    HANG_SIGNAL,
    PARENT_DETACHED,
    PoolGate,
    RoleTask,
    cap_memory,
    data_size,
    die_with_parent,
    enter_worker_process,
    run_role,
)


# --- warm pools of spawned (or forkserver) workers ---------------------------------------
def pool_worker_main(conn: multiprocessing.connection.Connection) -> None:
    die_with_parent()
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    conn.send("ready")  # booted and imported: only now may the parent count deadlines
    while True:
        try:
            task = conn.recv()
        except EOFError:
            return
        if task is None:
            return
        if task.memory_allowance:
            cap_memory(data_size() + task.memory_allowance)
        enter_worker_process(task.file("out"))
        gate = PoolGate(conn)
        worker._POOL_GATE = gate
        try:
            run_role(task)
        finally:
            worker._POOL_GATE = None
        # Exactly one PARENT_DETACHED per task, read or not by the role.
        if not gate.wait(BOOT_TIMEOUT_S):
            return  # the parent is gone or stuck: this worker is of no further use
        conn.send(True)


class Pool:
    """Workers started once and reused across examples, for channels opened by name.

    Spawning costs tens of milliseconds a process; reusing workers makes the
    spawn placement about as cheap as fork.  A worker that hangs or dies is
    replaced by a fresh one.
    """

    def __init__(self, method: str) -> None:
        self.ctx: Any = multiprocessing.get_context(method)
        self.idle: List[Any] = []
        #: fds that appeared while each worker started (its pipes, maybe the resource
        #: tracker's): kept on purpose, so the leak audit must not count them.
        self.owned_fds: Dict[int, frozenset[int]] = {}

    def _start(self) -> Any:
        before = _open_fds()
        parent_conn, child_conn = self.ctx.Pipe()
        proc = self.ctx.Process(target=pool_worker_main, args=(child_conn,), daemon=True)
        proc.start()
        child_conn.close()
        method = self.ctx.get_start_method()
        try:
            ready = parent_conn.poll(BOOT_TIMEOUT_S) and parent_conn.recv() == "ready"
        except (EOFError, OSError):  # it died while starting (its traceback went to stderr)
            proc.join()
            parent_conn.close()
            raise RuntimeError(f"a {method} worker died while starting (exit code {proc.exitcode}); "
                               "its error is on stderr above") from None
        if not ready:
            proc.kill()
            proc.join()
            parent_conn.close()
            raise RuntimeError(f"a {method} worker did not start within {BOOT_TIMEOUT_S:g}s")
        self.owned_fds[proc.pid] = _open_fds() - before
        return (proc, parent_conn)

    def _discard(self, proc: Any, conn: Any) -> None:
        """Forget a worker (killing it if need be) and release what multiprocessing kept for it."""
        self.owned_fds.pop(proc.pid, None)  # before close(): a closed Process has no pid
        if proc.is_alive():
            proc.kill()
        conn.close()
        proc.join()
        proc.close()

    def _take(self, task: RoleTask) -> Any:
        """An idle worker that is alive and has accepted ``task`` (starting one if need be)."""
        while True:
            worker = self.idle.pop() if self.idle else self._start()
            proc, conn = worker
            if proc.is_alive():
                try:
                    conn.send(task)
                    return worker
                except OSError:  # it died between the check and the send
                    pass
                except (pickle.PicklingError, AttributeError, TypeError) as exc:
                    self.idle.append(worker)  # pickled first, so nothing was sent: still idle
                    raise Unpicklable(self.ctx.get_start_method(), exc) from exc
            self._discard(proc, conn)

    def run(self, tasks: Sequence[RoleTask], channel: Any, deadline_s: float,
            stillness: Optional[Stillness] = None) -> Dict[str, RoleOutcome]:
        busy: List[Any] = []
        try:
            for task in tasks:
                busy.append(self._take(task))
        except BaseException:
            for proc, conn in busy:  # never leave a worker running a half-started example
                self._discard(proc, conn)
            detach_parent(channel, tasks)
            raise
        try:
            return self._collect(tasks, busy, channel, deadline_s, stillness or Stillness(0.0, enabled=False))
        except BaseException:
            for proc, conn in busy:
                if (proc, conn) not in self.idle:
                    self._discard(proc, conn)
            raise

    def _collect(self, tasks: Sequence[RoleTask], busy: List[Any], channel: Any,
                 deadline_s: float, stillness: Stillness) -> Dict[str, RoleOutcome]:
        try:
            detach_parent(channel, tasks)
        finally:
            for _proc, conn in busy:  # let them past their opens
                try:
                    conn.send(PARENT_DETACHED)
                except OSError:
                    pass  # it died: the loop below sees that
        # A worker unpickles its task first, which may import the role's module:
        # allow for that on top of the deadline before aborting it.
        abort_at = time.monotonic() + deadline_s + IMPORT_ALLOWANCE_S
        stillness.start = time.monotonic()
        pending = set(range(len(tasks)))
        dead: Dict[int, bool] = {}
        aborted: set[int] = set()
        while pending:
            now = time.monotonic()
            if now >= abort_at + GRACE_S:
                break
            if not aborted and stillness.still():
                abort_at = now  # asleep with nothing to wake it: a hang now, not at the deadline
            if now >= abort_at and not aborted:
                note_holders([busy[i][0].pid for i in pending], {busy[i][0].pid: t for i, t in enumerate(tasks)})
                for i in pending:  # faulthandler dumps where it is stuck, then it dies
                    kill_quietly(busy[i][0].pid, HANG_SIGNAL)
                aborted.update(pending)
            owners: Dict[Any, int] = {}
            for i in pending:
                owners[busy[i][1]] = i
                owners[busy[i][0].sentinel] = i
            raise_if_interrupted()
            timeout = min(1.0, (abort_at + GRACE_S if aborted else abort_at) - now)
            timeout = timeout if aborted else stillness.nap(timeout)
            for ready in multiprocessing.connection.wait(list(owners), timeout=timeout):
                i = owners[ready]
                if i not in pending:
                    continue
                proc, conn = busy[i]
                if ready is conn and isinstance(conn, multiprocessing.connection.Connection):
                    try:
                        conn.recv()
                        pending.discard(i)
                        continue
                    except (EOFError, OSError):
                        pass  # the worker died mid-task: fall through
                proc.join(1)
                dead[i] = i in aborted
                pending.discard(i)
        for i in pending:
            proc, _ = busy[i]
            proc.kill()
            proc.join()
            dead[i] = True
        outcomes = {}
        for i, task in enumerate(tasks):
            proc, conn = busy[i]
            if i in dead:
                status = None if proc.exitcode is None else exitcode_to_status(proc.exitcode)
                outcomes[task.proc] = classify(task, status, dead[i])
                self._discard(proc, conn)
            else:
                outcomes[task.proc] = classify(task, 0, False)
                self.idle.append(busy[i])
        return outcomes

    def close(self) -> None:
        for _proc, conn in self.idle:
            try:
                conn.send(None)
            except OSError:
                pass
        for proc, conn in self.idle:
            proc.join(2)
            if proc.is_alive():
                proc.kill()
            self._discard(proc, conn)
        self.idle.clear()


def _open_fds() -> frozenset[int]:
    from .audit import open_fds

    return open_fds()
