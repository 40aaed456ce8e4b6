"""What runs inside a worker: the :class:`Proc` context a role body sees, and the
bookkeeping that turns the body's outcome into a result file.

This module is imported by spawned pool workers, so it stays free of
Hypothesis and of anything slow to import.
"""

from __future__ import annotations

import atexit
import ctypes
import faulthandler
import gc
import importlib
import os
import pickle
import resource
import signal
import sys
import threading
import time
import traceback
import weakref
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, Iterable, Optional, Sequence, Tuple

from .faults import INTERRUPT_SIGNAL, InterruptStorm, arm_kill
from .history import FAIL, INVOKE, OK, Recorder

#: What the parent sends a worker still running at the deadline.  faulthandler's
#: handler for it dumps every thread's stack to the worker's output, then the worker
#: dies; the parent SIGKILLs it if it has not after a grace period.
HANG_SIGNAL = signal.SIGABRT
#: Headers that open such a dump (faulthandler's, and the thread placement's own).
HANG_MARKERS = ("Fatal Python error: Aborted", "Timeout (")

RoleFn = Callable[..., Any]

#: How a role's worker ends once its result is written.  "": ``os._exit`` as always.
#: "_exit": the same, then the event ``exited-<proc>`` is signalled.  "normal": in the fork
#: placement, first what a normal interpreter exit runs for the role's own code (see
#: :func:`normal_exit`), then the event; elsewhere (a warm pool worker, a thread: neither
#: process ends) it is only announced.  Checks draw "_exit" against "normal", because
#: "release on exit" code (atexit handlers, finalizers, ``__del__``) runs only at the latter.
EXITS = ("", "_exit", "normal")

#: signal's C core, without the enum conversions of its wrappers (typeshed has no stub for it).
_signal: Any = importlib.import_module("_signal")


@dataclass
class RoleTask:
    """One role of one example, as shipped to a worker (picklable for pool workers)."""

    proc: str
    fn: RoleFn
    args: Tuple[Any, ...]
    channel: Any
    directory: str
    mode: str  # "fork", "pool" or "thread"
    deadline_s: float
    opens: bool = True
    #: Private memory the worker may allocate beyond what it has at the start (0: no cap).
    memory_allowance: int = 0
    #: Interrupt the role's blocking calls with a signal this often (0: never); see faults.py.
    interrupt_period_s: float = 0.0
    #: SIGKILL this role this long after it calls ``proc.arm_kill()`` (negative: never).
    kill_after_s: float = -1.0
    #: How the worker ends (see :data:`EXITS`).
    exit: str = ""
    extra: Dict[str, Any] = field(default_factory=dict)

    def file(self, what: str) -> str:
        return os.path.join(self.directory, f"{what}-{self.proc}")


def summarize(args: Sequence[Any]) -> str:
    from ..invariant import short_repr

    return ", ".join(short_repr(a, 40) for a in args)


#: Endpoint methods every contract says return bytes (stream, shm and signal-fd reads).
BYTES_RESULTS = frozenset({"read"})


class Recorded:
    """A proxy that records every method call of an endpoint in the history."""

    def __init__(self, target: Any, proc: Proc, label: str = "") -> None:
        self._target = target
        self._proc = proc
        self._label = label

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._target, name)
        if not callable(attr):
            return attr
        op = f"{self._label}.{name}" if self._label else name

        def call(*args: Any, **kwargs: Any) -> Any:
            detail = summarize(list(args) + [f"{k}={v!r}" for k, v in kwargs.items()])
            result = self._proc.call(op, attr, *args, detail=detail, **kwargs)
            if name in BYTES_RESULTS and not isinstance(result, (bytes, bytearray, memoryview)):
                # Said here, where it happened: a str would otherwise surface as a TypeError in
                # the role's own b"".join(), far from the call that broke the contract.
                raise TypeError(f"{op}() returned {type(result).__name__}, expected bytes")
            return result

        return call

    @property
    def unwrapped(self) -> Any:
        return self._target


class Proc:
    """The view a role body has of its worker: history, endpoints, events."""

    def __init__(self, task: RoleTask, opened: Optional[threading.Event] = None,
                 detached: Optional[threading.Event] = None) -> None:
        self.task = task
        self.name = task.proc
        self.channel = task.channel
        self.recorder = Recorder(task.proc, task.file("hist"))
        self._opened = opened
        self._detached = detached
        self.deadline = time.monotonic() + task.deadline_s

    # --- history ---------------------------------------------------------------
    def call(self, op: str, fn: Callable[..., Any], *args: Any, detail: str = "", **kwargs: Any) -> Any:
        self.recorder.emit(INVOKE, op, detail)
        try:
            result = fn(*args, **kwargs)
        except BaseException as exc:
            self.recorder.emit(FAIL, op, f"{type(exc).__name__}: {exc}")
            raise
        self.recorder.emit(OK, op, summarize([result]) if result is not None else "")
        return result

    def note(self, op: str, detail: str = "") -> int:
        """Record an instantaneous event (``saw_eof``, ``inside``); returns its time."""
        return self.recorder.emit(OK, op, detail)

    # --- endpoints ---------------------------------------------------------------
    def open(self, method: str, *args: Any, **kwargs: Any) -> Recorded:
        """Call ``channel.<method>`` recorded, then drop this process's other references.

        Inherited channels (``os.pipe`` fds) must be detached in every process
        that forked with them, or a stray write end keeps EOF from arriving.
        """
        endpoint = self.call(method, getattr(self.channel, method), *args, detail=summarize(args), **kwargs)
        if self.task.mode != "thread":
            self.channel.detach()
            # The parent forked us holding the same inherited ends; until it has
            # dropped them, a closed reader or writer is not really closed.
            gate = self.task.extra.get("gate_fd")
            if gate is not None:  # forked: the parent closes the gate's write end once detached
                os.read(gate, 1)
            elif _POOL_GATE is not None:  # pool worker: the parent says so on the task connection
                _POOL_GATE.wait(self.deadline - time.monotonic())
        elif self._opened is not None:
            # Threads share the parent's descriptors: go on only once the parent has
            # dropped its copies, as a forked child would have by now.
            self._opened.set()
            if self._detached is not None:
                self._detached.wait(max(0.0, self.deadline - time.monotonic()))
        return Recorded(endpoint, self, "")

    def open_reader(self, **kwargs: Any) -> Recorded:
        return self.open("open_reader", **kwargs)

    def open_writer(self, **kwargs: Any) -> Recorded:
        return self.open("open_writer", **kwargs)

    # --- synchronisation independent of the mechanism under test -----------------
    def signal(self, event: str) -> None:
        """Mark ``event`` as happened for every process of this example."""
        self.note("signal", event)
        signal_event(self.task.directory, event)

    def wait_for(self, event: str) -> None:
        """Block until some process signals ``event``; the watchdog bounds the wait."""
        wait_for_event(self.task.directory, event)
        self.note("saw", event)

    def wait_for_at_most(self, event: str, ms: int) -> bool:
        """Block until some process signals ``event`` or ``ms`` have passed: whether it did."""
        seen = wait_for_event(self.task.directory, event, timeout=ms / 1000)
        if seen:
            self.note("saw", event)
        return seen

    # --- faults -----------------------------------------------------------------
    @property
    def may_be_killed(self) -> bool:
        """True in the role the ``kills`` fault picked (whether or not it dies in time)."""
        return self.task.kill_after_s >= 0 and self.task.mode == "fork"

    def arm_kill(self) -> None:
        """From here on this role may be SIGKILLed, if the harness drew it as the victim
        of the ``kills`` fault.  Roles call it once past their set-up handshakes, so
        that a death only ever lands where the check knows how to judge it."""
        if self.may_be_killed:
            self.note("may_be_killed", f"after {self.task.kill_after_s * 1000:g} ms")
            arm_kill(self.task.kill_after_s)

    def sleep_ms(self, ms: int) -> None:
        if ms > 0:
            time.sleep(ms / 1000)


#: What the parent sends a pool worker once it has dropped its references to the channel.
PARENT_DETACHED = "__parent-detached"


class PoolGate:
    """A pool worker's end of the parent's one :data:`PARENT_DETACHED` message per task."""

    def __init__(self, conn: Any) -> None:
        self._conn = conn
        self._passed = False
        self._lock = threading.Lock()  # a role may open endpoints from several threads

    def wait(self, timeout: float) -> bool:
        """Wait until the parent has detached (at most ``timeout``); True once it has."""
        with self._lock:
            if not self._passed and self._conn.poll(max(0.0, timeout)):
                if self._conn.recv() != PARENT_DETACHED:
                    raise RuntimeError("pool worker out of step with its parent")
                self._passed = True
            return self._passed


#: Set by a pool worker around each task it runs.
_POOL_GATE: Optional[PoolGate] = None


def signal_event(directory: str, event: str) -> None:
    fd = os.open(os.path.join(directory, f"ev-{event}"), os.O_CREAT | os.O_WRONLY | os.O_CLOEXEC, 0o600)
    os.close(fd)


def wait_for_event(directory: str, event: str, timeout: Optional[float] = None) -> bool:
    path = os.path.join(directory, f"ev-{event}")
    # Polling a tmpfs file costs microseconds; a short cap keeps the wake-up latency low.
    pause, end = 0.0001, None if timeout is None else time.monotonic() + timeout
    while not os.path.exists(path):
        if end is not None and time.monotonic() > end:
            return False
        time.sleep(pause)
        pause = min(pause * 2, 0.001)
    return True


def run_role(task: RoleTask, opened: Optional[threading.Event] = None,
             detached: Optional[threading.Event] = None) -> None:
    """Run the body and leave ``result-<proc>``; never raises."""
    proc = Proc(task, opened, detached)
    try:
        if not task.opens and task.mode != "thread":
            task.channel.detach()  # a role that opens nothing keeps no stray copies
        if task.interrupt_period_s and task.mode != "thread":
            value = _run_interrupted(proc, task)
        else:
            value = task.fn(proc, *task.args)
        outcome: Dict[str, Any] = {"status": "ok", "value": value}
    except BaseException as exc:
        outcome = {
            "status": "raised",
            "type": type(exc).__name__,
            "message": str(exc),
            "errno": getattr(exc, "errno", None),
            "traceback": traceback.format_exc(),
        }
    finally:
        if opened is not None:
            opened.set()  # a role that failed before opening must not stall the parent
    try:
        write_result(task, outcome)
    except FileNotFoundError:
        # The example is over and its directory swept: a thread-placement role that outlived
        # the deadline (a thread cannot be killed).  Nobody will read what it has to say.
        proc.recorder.close()
        return
    proc.recorder.close()
    if task.exit and task.mode != "fork":  # a forked worker announces it in fork_child_main
        signal_event(task.directory, f"exited-{task.proc}")


def _run_interrupted(proc: Proc, task: RoleTask) -> Any:
    storm = InterruptStorm(task.interrupt_period_s)
    try:
        with storm:
            return task.fn(proc, *task.args)
    finally:  # in the history, so a failure shows that the signals did land
        proc.note("interrupted", f"{storm.count} times by {INTERRUPT_SIGNAL.name}")


def write_result(task: RoleTask, outcome: Dict[str, Any]) -> None:
    try:
        data = pickle.dumps(outcome)
    except Exception as exc:
        data = pickle.dumps({"status": "raised", "type": "PicklingError", "message": repr(exc),
                             "errno": None, "traceback": ""})
    tmp = task.file("result") + ".tmp"
    with open(tmp, "wb") as f:
        f.write(data)
    os.replace(tmp, task.file("result"))  # atomic: the parent never reads half a result


_PRCTL: Any = None


def load_prctl() -> None:
    """Look prctl up once, in the parent, so that forked workers need not load libc again."""
    global _PRCTL
    if _PRCTL is None:
        try:
            _PRCTL = ctypes.CDLL(None, use_errno=True).prctl
        except (OSError, AttributeError):
            _PRCTL = False


def die_with_parent() -> None:
    """Ask the kernel to SIGKILL this process when its parent dies (Linux prctl)."""
    load_prctl()
    if _PRCTL:
        _PRCTL(1, int(signal.SIGKILL), 0, 0, 0)  # PR_SET_PDEATHSIG


def enter_worker_process(out_path: str) -> None:
    """Send stdout/stderr to ``out_path`` and make fatal signals dump the stack there.

    The hang watchdog is the parent: at the deadline it sends :data:`HANG_SIGNAL`,
    whose faulthandler handler writes where the worker is stuck.  (A watchdog
    thread in every worker cost more than the rest of its set-up together.)
    """
    fd = os.open(out_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    os.close(fd)
    faulthandler.enable(file=2, all_threads=True)


def data_size() -> int:
    """This process's VmData in bytes: heap and private mappings, what RLIMIT_DATA counts."""
    try:
        with open("/proc/self/status", "rb") as f:
            for line in f:
                if line.startswith(b"VmData:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def cap_memory(limit: int) -> None:
    """Cap this worker's private memory at ``limit`` bytes (soft RLIMIT_DATA).

    A backend that allocates without bound then gets MemoryError in its own
    worker, reported like any other exception, instead of pushing the machine
    into swap or the OOM killer.  Shared mappings (shm, mmap of files) do not count.
    """
    if limit <= 0:
        return
    _, hard = resource.getrlimit(resource.RLIMIT_DATA)
    if hard != resource.RLIM_INFINITY:
        limit = min(limit, hard)
    resource.setrlimit(resource.RLIMIT_DATA, (limit, hard))


def fork_child_main(task: RoleTask, gate_w: int, mask: Optional[Iterable[int]] = None) -> None:
    """Body of a forked worker; never returns.  ``mask`` is the parent's signal mask
    from before it held SIGINT and SIGTERM back for the fork."""
    code = 0
    try:
        os.close(gate_w)  # only the parent may hold it, or the gate never opens
        die_with_parent()
        # _signal, not signal: the wrappers' enum conversions touch pages the parent
        # shares with every forked worker, and each such page costs a copy to write.
        _signal.signal(_signal.SIGINT, _signal.SIG_IGN)  # the parent decides when workers die
        if mask is not None:
            _signal.pthread_sigmask(_signal.SIG_SETMASK, mask)  # the role starts with the parent's mask
        cap_memory(task.extra.get("data_limit", 0))
        enter_worker_process(task.file("out"))
        if task.exit == "normal":
            forget_inherited_exit_handlers()
        run_role(task)
        if task.exit == "normal":
            normal_exit()
        if task.exit:
            signal_event(task.directory, f"exited-{task.proc}")
    except BaseException:
        code = 70
    finally:
        try:
            # Past the finish line: the parent need not wait for this process to exit.
            os.close(task.extra["done_fd"])
        except (KeyError, OSError):
            pass  # the role closed it (so the parent waits for the exit instead)
        os._exit(code)


def forget_inherited_exit_handlers() -> None:
    """In a forked worker, drop the exit handlers it inherited from the parent.

    The worker is a copy of the pytest process, whose atexit list holds pytest's,
    Hypothesis's, execnet's (under xdist), logging's and multiprocessing's handlers,
    and whose ``weakref.finalize`` registry holds the parent's (a TemporaryDirectory's
    rmtree among them).  Run here they would act on the parent's state: remove its
    temp dirs, flush its captured output a second time.  So the worker forgets them
    all before the role starts, and :func:`normal_exit` later runs only what the role
    and the backend registered.  (multiprocessing's own ``util.Finalize`` objects check
    the pid and skip the parent's, so they are kept: see :func:`_multiprocessing_finalizers`;
    ``weakref.finalize`` ones do not.)
    """
    atexit._clear()
    util = sys.modules.get("multiprocessing.util")
    if util is not None:  # registered first, so that it runs last, as the original does
        atexit.register(_multiprocessing_finalizers, util)
    finalize: Any = weakref.finalize
    for f in list(finalize._registry):
        f.atexit = False  # still runs if its object dies, never at exit
    finalize._registered_with_atexit = False  # a new finalizer registers the exit hook again


def _multiprocessing_finalizers(util: Any) -> None:
    """multiprocessing's own exit function, less its middle (terminating and joining the
    ``Process`` children it lists, which are the parent's, not this copy's): its finalizers
    check the pid they were made in, so only those the role made run."""
    util._run_finalizers(0)
    util._run_finalizers()


def normal_exit() -> None:
    """What a normal interpreter exit runs for the role's code, in CPython's order
    (Py_FinalizeEx: atexit handlers, ``weakref.finalize`` hooks among them, then the
    collection that runs ``__del__``).

    Not ``sys.exit()``: that would also flush and finalize every object the child
    inherited from pytest (its capture files, its sqlite connection to the Hypothesis
    database), which are shared with the parent.  The role has returned, so the
    objects it opened and dropped are gone already; the collection reaches those left
    in reference cycles or held by the backend's module-level state once released.
    (The channel itself stays referenced by the parent's frames this copy inherited,
    so its own ``__del__`` does not run here, as it would not at a real exit either
    before module teardown.)  Then ``os._exit`` as always: the kernel closes the rest.
    """
    atexit._run_exitfuncs()  # prints a handler's exception and goes on, as at exit
    gc.collect()
