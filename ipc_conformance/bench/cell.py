"""One measurement: a backend (or a baseline) at one payload size, in two fresh processes.

The parent sets the channels up in a private scope (``ipc_specs.harness.resources``:
unguessable names, created exclusively, journalled, removed at the end), forks a
sender P and a receiver Q, drops its own references (``detach``), waits for both
with a deadline, then tears everything down.  P drives:

1. throughput: a warm-up of two messages, then up to five batches of K messages one way,
   together lasting about ``target_s``, each timed in P from its first send to Q's
   acknowledgement of its last receive; the cell's throughput is the fastest batch;
2. latency: one warm-up round trip, then N round trips (P sends on the forward
   channel, Q answers with a payload of the same size on the backward one), each
   timed in P; the cell's latency is their median.

Control messages (counts, acknowledgements, results) travel through bare pipes, never
through the mechanism under test.
"""

from __future__ import annotations

import json
import math
import mmap
import os
import select
import signal
import struct
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional, Tuple

from .links import ArrowLink, BarePipeLink, Link, QueueLink, ShmLink, StreamLink

MEMCPY = "memcpy"
#: A copy into freshly mapped memory: the ceiling of anything that makes a new segment per message.
MEMCPY_FRESH = "memcpy-fresh"
BARE_PIPE = "bare-pipe"
BASELINES = (MEMCPY, MEMCPY_FRESH, BARE_PIPE)
FAMILIES = ("stream", "queue", "shm", "arrow")
#: Bytes of /dev/shm (and so of the machine's shared memory) an arrow cell may fill at once.
ARROW_BUDGET = 768 << 20


@dataclass
class Budget:
    target_s: float
    max_messages: int = 100000
    #: Messages of a phase after warm-up are at least these.
    min_throughput: int = 2
    min_latency: int = 3


@dataclass
class CellResult:
    throughput: Optional[float] = None  # bytes per second
    latency: Optional[float] = None  # seconds per round trip
    error: Optional[str] = None


@dataclass
class Plan:
    """What the parent made for one cell, and how each side turns it into links."""

    channels: List[Any] = field(default_factory=list)
    fds: List[int] = field(default_factory=list)  # token pipes (and bare pipes), closed as the roles need
    links: Callable[[str], Tuple[Optional[Link], Optional[Link]]] = lambda role: (None, None)
    max_messages: Optional[int] = None


def payload_of(size: int) -> bytes:
    return (bytes(range(256)) * (size // 256 + 1))[:size]


# --- plans: one per family ---------------------------------------------------------------
def _pipe_pair(plan: Plan) -> Tuple[int, int, int, int]:
    fr, fw = os.pipe()
    br, bw = os.pipe()
    plan.fds += [fr, fw, br, bw]
    return fr, fw, br, bw


def _keep(plan: Plan, *keep: int) -> None:
    """In a child: close the pipe ends this role does not use."""
    for fd in plan.fds:
        if fd not in keep:
            os.close(fd)


def _setup(backend: Any, scope: Any, plan: Plan) -> Any:
    channel = backend.setup(scope)
    plan.channels.append(channel)  # recorded at once: torn down even if a later setup fails
    return channel


def plan_for(backend: Any, size: int, scope: Any, plan: Plan) -> Plan:
    kind = getattr(backend, "kind", backend)
    if backend in (MEMCPY, MEMCPY_FRESH):
        return plan
    if backend == BARE_PIPE:
        fr, fw, br, bw = _pipe_pair(plan)

        def bare(role: str) -> Tuple[Optional[Link], Optional[Link]]:
            if role == "P":
                _keep(plan, fw, br)
                return BarePipeLink(fw, size), BarePipeLink(br, size)
            _keep(plan, fr, bw)
            return BarePipeLink(fr, size), BarePipeLink(bw, size)

        plan.links = bare
        return plan
    if kind == "arrow":
        # Every message takes a fresh store (a store is put once), and each holds its segment
        # until teardown: bound the pool by ARROW_BUDGET, but never below the phases' minimums.
        per_side = max(Budget.min_latency, min(200, (ARROW_BUDGET // max(size, 4096) - 4) // 3))
        fwd_pool = [_setup(backend, scope, plan) for _ in range(2 * per_side + 3)]
        back_pool = [_setup(backend, scope, plan) for _ in range(per_side + 1)]
        plan.max_messages = per_side
        fr, fw, br, bw = _pipe_pair(plan)

        def arrow(role: str) -> Tuple[Optional[Link], Optional[Link]]:
            if role == "P":
                _keep(plan, fw, br)
                return ArrowLink(fwd_pool, True, size, fw), ArrowLink(back_pool, False, size, br)
            _keep(plan, fr, bw)
            return ArrowLink(fwd_pool, False, size, fr), ArrowLink(back_pool, True, size, bw)

        plan.links = arrow
        return plan
    a = _setup(backend, scope, plan)
    b = _setup(backend, scope, plan)
    if kind == "shm":
        a.create(size)
        b.create(size)
        fr, fw, br, bw = _pipe_pair(plan)
        acks = _pipe_pair(plan)  # forward ack, backward ack: the writer waits before overwriting

        def shm(role: str) -> Tuple[Optional[Link], Optional[Link]]:
            if role == "P":
                _keep(plan, fw, br, acks[0], acks[3])
                return (ShmLink(a, True, size, fw, acks[0]), ShmLink(b, False, size, br, acks[3]))
            _keep(plan, fr, bw, acks[1], acks[2])
            return (ShmLink(a, False, size, fr, acks[1]), ShmLink(b, True, size, bw, acks[2]))

        plan.links = shm
        return plan
    link_cls: Any = StreamLink if kind == "stream" else QueueLink

    def plain(role: str) -> Tuple[Optional[Link], Optional[Link]]:
        _keep(plan)
        sending = role == "P"
        return link_cls(a, sending, size), link_cls(b, not sending, size)

    plan.links = plain
    return plan


# --- the two roles -------------------------------------------------------------------------
_CMD = struct.Struct("=cQ")
#: The throughput phase is this many batches of target_s / SUB_BATCHES each.
SUB_BATCHES = 5


def _send_cmd(fd: int, cmd: bytes, count: int = 0) -> None:
    os.write(fd, _CMD.pack(cmd, count))


def _recv_cmd(fd: int) -> Tuple[bytes, int]:
    data = b""
    while len(data) < _CMD.size:
        chunk = os.read(fd, _CMD.size - len(data))
        if not chunk:
            raise EOFError("control pipe closed")
        data += chunk
    cmd, count = _CMD.unpack(data)
    return cmd, count


def _wait_ack(fd: int) -> None:
    if os.read(fd, 1) != b"a":
        raise EOFError("the receiver died (control pipe closed)")


def _count(estimate_s: float, budget: Budget, low: int, cap: Optional[int]) -> int:
    n = max(low, math.ceil(budget.target_s / max(estimate_s, 1e-9)))
    return min(n, budget.max_messages, cap if cap is not None else n)


def role_p(fwd: Link, back: Link, ctl_out: int, ctl_in: int, size: int, budget: Budget,
           cap: Optional[int]) -> Dict[str, Any]:
    payload = payload_of(size)
    clock = time.perf_counter

    def batch(k: int) -> float:
        _send_cmd(ctl_out, b"T", k)
        start = clock()
        for _ in range(k):
            fwd.send(payload)
        _wait_ack(ctl_in)
        return clock() - start

    warm = batch(2) / 2
    # SUB_BATCHES short batches, the fastest one counted (as timeit takes the minimum): on a
    # loaded machine a batch that lost the CPU for a few ms says nothing about the mechanism.
    total = _count(warm, budget, budget.min_throughput, cap)
    subs = max(1, min(SUB_BATCHES, total // budget.min_throughput))
    k = max(1, total // subs)
    throughput = max(k * size / batch(k) for _ in range(subs))

    def round_trips(n: int) -> List[float]:
        _send_cmd(ctl_out, b"L", n)
        times = []
        for _ in range(n):
            start = clock()
            fwd.send(payload)
            back.recv()
            times.append(clock() - start)
        _wait_ack(ctl_in)
        return times

    warm = round_trips(1)[0]
    n = _count(warm, budget, budget.min_latency, cap)
    times = sorted(round_trips(n))
    _send_cmd(ctl_out, b"X")
    return {"throughput": throughput, "latency": times[len(times) // 2], "k": k, "batches": subs, "n": n}


def role_q(fwd: Link, back: Link, ctl_in: int, ctl_out: int, size: int) -> Dict[str, Any]:
    payload = payload_of(size)
    while True:
        cmd, count = _recv_cmd(ctl_in)
        if cmd == b"X":
            return {}
        for _ in range(count):
            fwd.recv()
            if cmd == b"L":
                back.send(payload)
        os.write(ctl_out, b"a")


def memcpy_role(size: int, budget: Budget, fresh: bool = False) -> Dict[str, Any]:
    """A copy within one process into a buffer already touched: the machine's copy bandwidth.

    Through a memoryview: ``bytearray[:] = bytes`` first copies the bytes into a fresh
    temporary bytearray (CPython's bytearray_ass_subscript), two copies and a page fault
    per 4 KiB, which measured 0.86 GB/s against 6.3 GB/s at 64 MiB on the development VM.
    """
    src = payload_of(size)
    dst = memoryview(bytearray(size))
    dst[:] = src  # warm: fault the destination's pages in before timing

    def copies(k: int) -> float:
        start = time.perf_counter()
        for _ in range(k):
            dst[:] = src
        return time.perf_counter() - start

    def fresh_copies(k: int) -> float:
        # MAP_SHARED|MAP_ANONYMOUS, like a new segment: every page is faulted in and zeroed by the copy.
        start = time.perf_counter()
        for _ in range(k):
            m = mmap.mmap(-1, size)
            view = memoryview(m)
            view[:] = src
            view.release()
            m.close()
        return time.perf_counter() - start

    if fresh:
        copies = fresh_copies  # noqa: F811

    warm = copies(2) / 2
    k = max(1, _count(warm, budget, 3, None) // SUB_BATCHES)
    return {"throughput": max(k * size / copies(k) for _ in range(SUB_BATCHES)), "k": k}


# --- the parent's side -----------------------------------------------------------------------
def _child(body: Callable[[], Dict[str, Any]], result_fd: int, keep: Tuple[int, ...], close: List[int]) -> None:
    """Run ``body`` in a forked child; its result (or error) goes to ``result_fd`` as JSON."""
    code = 1
    try:
        from ipc_specs.harness.worker import die_with_parent

        die_with_parent()
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent handles Ctrl-C and kills us
        for fd in close:
            if fd not in keep:
                os.close(fd)
        out: Dict[str, Any] = body()
        code = 0
    except BaseException as exc:  # everything goes back to the parent as text
        out = {"error": f"{type(exc).__name__}: {exc}"}
    try:
        os.write(result_fd, json.dumps(out).encode())
    finally:
        os._exit(code)


def _fork(body: Callable[[], Dict[str, Any]], result_fd: int, keep: Tuple[int, ...], close: List[int]) -> int:
    pid = os.fork()
    if pid == 0:  # pragma: no cover - runs in the child
        _child(body, result_fd, keep, close)
    return pid


def run_cell(backend: Any, size: int, scope: Any, budget: Budget, deadline_s: float) -> CellResult:
    """Measure ``backend`` (or a baseline name) at ``size`` bytes; never raises for the backend's faults."""
    plan = Plan()
    try:
        try:
            plan_for(backend, size, scope, plan)
        except Exception as exc:
            for fd in plan.fds:
                os.close(fd)
            return CellResult(error=f"setup: {type(exc).__name__}: {exc}")
        return _run_plan(backend, plan, size, budget, deadline_s)
    finally:
        for ch in plan.channels:
            try:
                ch.teardown()
            except Exception:
                pass  # the scope removes what it registered anyway


def _run_plan(backend: Any, plan: Plan, size: int, budget: Budget, deadline_s: float) -> CellResult:
    pq_r, pq_w = os.pipe()
    qp_r, qp_w = os.pipe()
    res_p = os.pipe()
    res_q = os.pipe()
    everything = plan.fds + [pq_r, pq_w, qp_r, qp_w, *res_p, *res_q]
    pids: Dict[str, int] = {}
    channels = plan.channels

    def opened(role: str) -> Tuple[Link, Link]:
        fwd, back = plan.links(role)
        for ch in channels:
            ch.detach()  # drop inherited references this process did not open
        assert fwd is not None and back is not None
        return fwd, back

    def body_p() -> Dict[str, Any]:
        if backend in (MEMCPY, MEMCPY_FRESH):
            return memcpy_role(size, budget, fresh=backend == MEMCPY_FRESH)
        fwd, back = opened("P")
        out = role_p(fwd, back, pq_w, qp_r, size, budget, plan.max_messages)
        fwd.close()
        back.close()
        return out

    def body_q() -> Dict[str, Any]:
        if backend in (MEMCPY, MEMCPY_FRESH):
            return {}
        fwd, back = opened("Q")
        out = role_q(fwd, back, pq_r, qp_w, size)
        fwd.close()
        back.close()
        return out

    try:
        # Each child keeps only its own control ends; the plan's links close the rest of plan.fds.
        control = [pq_r, pq_w, qp_r, qp_w, *res_p, *res_q]
        pids["P"] = _fork(body_p, res_p[1], (pq_w, qp_r, res_p[1], *plan.fds), control)
        pids["Q"] = _fork(body_q, res_q[1], (pq_r, qp_w, res_q[1], *plan.fds), control)
    finally:
        for fd in everything:
            if fd not in (res_p[0], res_q[0]):
                os.close(fd)
        for ch in channels:
            ch.detach()
    outs = _collect({"P": res_p[0], "Q": res_q[0]}, pids, deadline_s)
    errors = [f"{role}: {out['error']}" for role, out in outs.items() if "error" in out]
    if errors:
        return CellResult(error="; ".join(errors))
    p = outs["P"]
    return CellResult(throughput=p.get("throughput"), latency=p.get("latency"))


def _collect(fds: Dict[str, int], pids: Dict[str, int], deadline_s: float) -> Dict[str, Dict[str, Any]]:
    """Read each child's result, kill what is still running at the deadline, reap both."""
    end = time.monotonic() + deadline_s
    data: Dict[str, bytes] = {role: b"" for role in fds}
    open_fds = dict(fds)
    try:
        while open_fds:
            left = end - time.monotonic()
            if left <= 0:
                break
            ready, _, _ = select.select(list(open_fds.values()), [], [], min(left, 1.0))
            for role, fd in list(open_fds.items()):
                if fd in ready:
                    chunk = os.read(fd, 65536)
                    data[role] += chunk
                    if not chunk:
                        os.close(fd)
                        del open_fds[role]
    finally:
        for role, fd in open_fds.items():
            os.close(fd)
            os.kill(pids[role], signal.SIGKILL)
        for pid in pids.values():
            os.waitpid(pid, 0)
    outs: Dict[str, Dict[str, Any]] = {}
    for role in fds:
        if role in open_fds:
            outs[role] = {"error": f"still running after {deadline_s:g} s (killed)"}
            continue
        try:
            outs[role] = json.loads(data[role].decode() or "{}") if data[role] else {"error": "died without a result"}
        except ValueError:
            outs[role] = {"error": "unreadable result"}
    return outs
