"""Model-based testing: a Hypothesis state machine compares a queue with a model.

The model is one list of ``(data, tag)`` in arrival order; which message a
receive takes is the model's only policy: the first (FIFO), the oldest of the
highest priority (a stable heap order, mq_receive(3)), or msgrcv(2)'s choice by
type.  The machine runs *inside a worker role*, so a backend that blocks forever
is stopped by the harness watchdog, never hanging the test process; it only
blocks where the model says the operation must succeed.
"""

from __future__ import annotations

import time
import traceback
from typing import Any, Dict, FrozenSet, List, Optional, Tuple

from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, precondition, rule, run_state_machine_as_test

from ..harness.worker import Proc
from ..strategies import Blob, anchored_integers
from .common import max_size
from .protocol import (
    BOUNDED_CAPACITY,
    EMPTY_MESSAGES,
    MAX_MESSAGE_SIZE,
    NONBLOCKING,
    PRIORITIES,
    SYNCHRONOUS_SEND,
    TIMEOUTS,
    TYPE_SELECTION,
    QueueLimits,
    fits,
    msgrcv_model,
)
from .roles import apply

#: (steps, message) of every failing example seen; the shortest is reported.
FAILURES: List[Tuple[List[str], str]] = []


class Budget:
    """Past ``soft_end`` every example does nothing, so shrinking ends well before the
    harness deadline; the shortest failure recorded so far is what gets reported."""

    def __init__(self, soft_end: float) -> None:
        self.soft_end = soft_end

    def exhausted(self) -> bool:
        return time.monotonic() > self.soft_end


def pick(claims: FrozenSet[str], model: List[Tuple[bytes, int]], select: int) -> Optional[int]:
    """Index of the message the queue must hand out, or None when none may be."""
    if TYPE_SELECTION in claims:
        return msgrcv_model(model, select)
    if not model:
        return None
    if PRIORITIES in claims:
        top = max(t for _, t in model)
        return next(i for i, (_, t) in enumerate(model) if t == top)
    return 0


def _bytes_of(size: int, seed: int) -> bytes:
    return Blob(size, seed).data


def build(proc: Proc, end: Any, claims: FrozenSet[str], limits: QueueLimits, budget: Budget) -> type:
    """A machine class bound to one endpoint and one backend's claims."""
    top = max_size(limits, 256)
    low = 0 if EMPTY_MESSAGES in claims else 1
    # One process sends before it receives: messages stay small (256 bytes at most), so that
    # a socket or pipe queue claiming no capacity never fills (its sender would wait for itself).
    data = st.builds(_bytes_of, anchored_integers(low, top, [low, low + 1, top - 1, top]), st.integers(0, 99))
    if PRIORITIES in claims:
        prio = int(limits.max_priority or 0)
        tags: Any = st.sampled_from([0, 1, prio])
    elif TYPE_SELECTION in claims:
        tags = st.integers(1, 4)
    else:
        tags = st.none()
    selects = st.integers(-5, 5) if TYPE_SELECTION in claims else st.just(0)
    waits: List[Any] = [st.just(0)] if NONBLOCKING in claims else []
    if TIMEOUTS in claims:
        waits.append(st.integers(1, 5))
    can_fail_fast = bool(waits)
    fail_fast = st.one_of(*waits) if waits else st.none()

    class QueueMachine(RuleBasedStateMachine):
        def __init__(self) -> None:
            super().__init__()
            self.model: List[Tuple[bytes, int]] = []
            self.steps: List[str] = []
            self.idle = budget.exhausted()
            if not self.idle:
                proc.note("example", "new")
                self.drain_leftovers()

        def drain_leftovers(self) -> None:
            """Start empty even after a failed example left messages behind."""
            if NONBLOCKING in claims:
                for _ in range(4096):
                    if apply(end, ("recv", 0, 0, None))[0] != "ok":
                        break

        def step(self, text: str, result: Any) -> Any:
            self.steps.append(f"{text} -> {result!r}"[:160])
            return result

        def check(self, ok: bool, message: str) -> None:
            if not ok:
                FAILURES.append((list(self.steps), message))
                raise AssertionError(message)

        def tag_of(self, tag: Optional[int]) -> int:
            return tag if tag is not None else (1 if TYPE_SELECTION in claims else 0)

        @initialize()
        def start(self) -> None:
            pass

        @rule(payload=data, tag=tags, wait=st.one_of(st.none(), fail_fast))
        def send(self, payload: bytes, tag: Optional[int], wait: Optional[int]) -> None:
            if self.idle:
                return
            room = BOUNDED_CAPACITY not in claims or fits(limits, [len(d) for d, _ in self.model], len(payload))
            if not room and wait is None:
                return  # would block forever in one process: the full queue is judged by fill_up
            r = self.step(f"send({len(payload)} bytes, tag={tag}, timeout_ms={wait})",
                          apply(end, ("send", payload, tag, wait)))
            if room:
                self.check(r[0] == "ok", f"send into a queue with room {r}, but should be accepted")
                self.model.append((payload, self.tag_of(tag)))
            else:
                self.check(r[:2] == ("err", "Full"), f"send into a full queue {r}, but should be queue.Full")

        @precondition(lambda self: BOUNDED_CAPACITY in claims and can_fail_fast)
        @rule(wait=fail_fast)
        def fill_up(self, wait: int) -> None:
            if self.idle:
                return
            size = top  # the largest messages fill a byte-limited queue in the fewest steps
            while fits(limits, [len(d) for d, _ in self.model], size):
                r = self.step("send(fill)", apply(end, ("send", b"f" * size, None, None)))
                self.check(r[0] == "ok", f"send while the queue has room {r}, but should be accepted")
                self.model.append((b"f" * size, self.tag_of(None)))
            r = self.step(f"send(over capacity, timeout_ms={wait})", apply(end, ("send", b"x" * size, None, wait)))
            self.check(r[:2] == ("err", "Full"), f"send into a full queue {r}, but should be queue.Full")

        @precondition(lambda self: MAX_MESSAGE_SIZE in claims)
        @rule(excess=st.integers(1, 64))
        def send_oversize(self, excess: int) -> None:
            if self.idle:
                return
            n = int(limits.max_message_size or 0) + excess
            r = self.step(f"send({n} bytes, over the maximum)", apply(end, ("send", b"o" * n, None, 0 if
                                                                       NONBLOCKING in claims else None)))
            self.check(r[:2] == ("err", "ValueError"), f"oversize send {r}, but should be ValueError")

        @rule(select=selects, wait=st.one_of(st.none(), fail_fast))
        def receive(self, select: int, wait: Optional[int]) -> None:
            if self.idle:
                return
            k = pick(claims, self.model, select)
            if k is None and wait is None:
                return  # would block forever: only a failing-fast receive may meet an empty queue
            if k is not None and SYNCHRONOUS_SEND not in claims:
                wait = None  # a feeder thread may not have delivered yet: wait for it
            r = self.step(f"receive(select={select}, timeout_ms={wait})", apply(end, ("recv", select, wait, None)))
            if k is None:
                self.check(r[:2] == ("err", "Empty"),
                           f"receive with nothing suitable queued {r}, but should be queue.Empty")
                return
            want = self.model.pop(k)
            got = (r[1][0], r[1][1]) if r[0] == "ok" else r
            if PRIORITIES in claims or TYPE_SELECTION in claims:
                self.check(got == want, f"receive gave {got!r}, but should be {want!r} (the model)")
            else:
                self.check(r[0] == "ok" and got[0] == want[0],
                           f"receive gave {got!r}, but should be {want[0]!r} (the model)")

        def teardown(self) -> None:
            if self.idle:
                return
            # Drain what the model holds so the next example starts empty.
            while self.model:
                k = pick(claims, self.model, 0)
                want = self.model.pop(k or 0)
                r = self.step("receive(drain)", apply(end, ("recv", 0, 1000 if TIMEOUTS in claims else None, None)))
                self.check(r[0] == "ok" and r[1][0] == want[0],
                           f"drain gave {r!r}, but should be {want[0]!r} (the model)")
            if NONBLOCKING in claims:
                r = self.step("receive(probe empty)", apply(end, ("recv", 0, 0, None)))
                self.check(r[:2] == ("err", "Empty"), f"the drained queue still gave {r!r}, but should be queue.Empty")

    return QueueMachine


def run_machine(proc: Proc, claims: FrozenSet[str], limits: QueueLimits, seed: int, max_examples: int,
                shrink: bool) -> Optional[Dict[str, Any]]:
    """Role body: run the machine on one endpoint; returns None or the failure and its steps."""
    end = proc.open("open")
    started = time.monotonic()
    budget = Budget(started + 0.5 * max(0.0, proc.deadline - started))
    FAILURES.clear()
    machine = build(proc, end, claims, limits, budget)
    machine._hypothesis_internal_use_seed = seed  # type: ignore[attr-defined]
    # No explain phase: its coverage tracing is slow, and the report is our own.
    phases = [p for p in Phase if p is not Phase.explain and (shrink or p is not Phase.shrink)]
    options = settings(max_examples=max_examples, stateful_step_count=12, deadline=None, database=None,
                       phases=phases, suppress_health_check=list(HealthCheck), print_blob=False)
    try:
        run_state_machine_as_test(machine, settings=options)
    except Exception as exc:
        if not FAILURES:
            return {"error": f"{type(exc).__name__}: {exc}".splitlines()[0], "steps": [],
                    "traceback": traceback.format_exc()[-1500:]}
    finally:
        proc.note("machine_done", f"{time.monotonic() - started:.3f}s")
    end.close()
    if FAILURES:
        steps, message = min(FAILURES, key=lambda f: len(f[0]))
        return {"error": message, "steps": steps}
    return None
