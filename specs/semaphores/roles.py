"""Role bodies for semaphore examples.

Module-level functions (spawned workers unpickle them by name) that return
plain data for the checks.  Handles come from ``proc.open("open")``, so every
acquire and release is in the history with its invoke and return times.

Two notes carry the occupancy measurement: ``inside`` is emitted after an
acquire has returned and ``leaving`` before the release is called, so each
process's [inside, leaving] interval lies within the time it held a unit.
"""

from __future__ import annotations

import functools
import os
import select
import signal
import time
from typing import Any, Callable, List, Sequence, Tuple, TypeVar

from ..harness.worker import Proc, Recorded, signal_event
from .protocol import error_signature

#: One occupancy round: how to acquire ("block", "try" or "timed"), the timeout, the hold time.
Round = Tuple[str, int, int]
#: One conservation step: ("try",), ("timed", ms), ("acquire",), ("release",) or ("value",).
Op = Tuple[Any, ...]


class PeerFailed(RuntimeError):
    """Another role of the example failed, so the event this one waits for will never come."""


RoleFn = TypeVar("RoleFn", bound=Callable[..., Any])


def announces_failure(fn: RoleFn) -> RoleFn:
    """Let the other roles stop waiting for this one when it fails, so the verdict is
    its error rather than their hang.  (``functools.wraps`` keeps the name, so spawned
    workers still find the role by it.)"""

    @functools.wraps(fn)
    def role(proc: Proc, *args: Any) -> Any:
        try:
            return fn(proc, *args)
        except BaseException:
            signal_event(proc.task.directory, f"failed-{proc.name}")
            raise

    return role  # type: ignore[return-value]


def wait_or_fail(proc: Proc, event: str) -> None:
    """``proc.wait_for(event)``, but raise :class:`PeerFailed` as soon as another role has failed."""
    await_events(proc.task.directory, event, 1)
    proc.note("saw", event)


def drain(h: Any, limit: int) -> int:
    """How many units are free, counted with try_acquire (up to ``limit``); they stay taken."""
    got = 0
    while got < limit and h.try_acquire():
        got += 1
    return got


def give_back(h: Any, units: int) -> None:
    for _ in range(units):
        h.release()


def acquire_by(h: Any, mode: str, wait_ms: int) -> bool:
    if mode == "try":
        return bool(h.try_acquire())
    if mode == "timed":
        return bool(h.acquire_timeout(wait_ms))
    h.acquire()
    return True


# --- occupancy ----------------------------------------------------------------------
def hold_and_release(proc: Proc, rounds: Sequence[Round]) -> int:
    """Acquire, stay inside for the round's hold time, release; returns rounds that got in."""
    h = proc.open("open")
    entered = 0
    for mode, wait_ms, hold_ms in rounds:
        if not acquire_by(h, mode, wait_ms):
            continue
        proc.note("inside")
        entered += 1
        proc.sleep_ms(hold_ms)
        proc.note("leaving")
        h.release()
    h.close()
    return entered


# --- conservation -------------------------------------------------------------------
def run_ops(proc: Proc, ops: Sequence[Op], expected: Sequence[Any], drain_limit: int) -> Tuple[List[Any], int]:
    """Apply ``ops`` in order, each observation a bool, an int, "ok" or "rejected: <error>".

    Stops at the first observation that differs from ``expected`` (a later blocking
    acquire could wait forever on a semaphore that already went wrong).  Otherwise
    ends by counting the free units with try_acquire, independently of value();
    returns -1 for that count when it stopped early.
    """
    h = proc.open("open")
    seen: List[Any] = []
    for op, want in zip(ops, expected):
        if op[0] == "release":
            try:
                h.release()
                seen.append("ok")
            except Exception as exc:  # the rejection is the observation
                seen.append(f"rejected: {error_signature(exc)}")
        elif op[0] == "value":
            seen.append(int(h.value()))
        else:
            seen.append(acquire_by(h, "block" if op[0] == "acquire" else op[0], op[1] if len(op) > 1 else 0))
        if seen[-1] != want:
            h.close()
            return seen, -1
    left = drain(h, drain_limit)
    h.close()
    return seen, left


# --- try and timed acquire on zero --------------------------------------------------------
@announces_failure
def hold_all(proc: Proc, units: int) -> None:
    """Take every unit, let the other role try, then give them back."""
    h = proc.open("open")
    for _ in range(units):
        h.acquire()
    proc.signal("held")
    wait_or_fail(proc, "tried")
    give_back(h, units)
    proc.signal("released")
    h.close()


@announces_failure
def try_while_held(proc: Proc, tries: int, units: int) -> Tuple[List[bool], bool]:
    """try_acquire while the holder has every unit, then once after it released them."""
    h = proc.open("open")
    wait_or_fail(proc, "held")
    results = [bool(h.try_acquire()) for _ in range(tries)]
    proc.signal("tried")
    wait_or_fail(proc, "released")
    after = bool(h.try_acquire()) if units else False
    if after:
        h.release()
    h.close()
    return results, after


@announces_failure
def timed_while_held(proc: Proc, timeouts_ms: Sequence[int], units: int) -> Tuple[List[bool], bool]:
    """acquire_timeout while the holder has every unit, then once after it released them."""
    h = proc.open("open")
    wait_or_fail(proc, "held")
    results = [bool(h.acquire_timeout(ms)) for ms in timeouts_ms]
    proc.signal("tried")
    wait_or_fail(proc, "released")
    after = bool(h.acquire_timeout(max(timeouts_ms))) if units else False
    if after:
        h.release()
    h.close()
    return results, after


# --- k releases, k waiters through ---------------------------------------------------------
def count_events(directory: str, prefix: str) -> int:
    return sum(1 for name in os.listdir(directory) if name.startswith(f"ev-{prefix}"))


def await_events(directory: str, prefix: str, count: int) -> int:
    """Block until ``count`` events named ``prefix…`` exist (the watchdog bounds the wait);
    raise :class:`PeerFailed` if some role failed first."""
    pause = 0.0002
    while True:
        seen = count_events(directory, prefix)
        if seen >= count:
            return seen
        failed = [n[len("ev-failed-"):] for n in os.listdir(directory) if n.startswith("ev-failed-")]
        if failed:
            raise PeerFailed(f"{', '.join(failed)} failed; {prefix} will not happen")
        time.sleep(pause)
        pause = min(pause * 2, 0.005)


@announces_failure
def releaser(proc: Proc, units: int, k: int, waiters: int, block_ms: int, settle_ms: int) -> None:
    """Hold every unit, release k of them, wait for k entries, then open the second round.

    Waiters do not release before the ``second-round`` signal, and this role
    releases nothing more before it, so at most k waiters can be inside before
    the ``second_round`` note on a correct semaphore; and it waits for k, so a
    lost wake-up leaves it (and a waiter) blocked: a hang, reported by the watchdog.
    """
    d = proc.task.directory
    h = proc.open("open")
    for _ in range(units):
        h.acquire()
    proc.signal("armed")
    proc.call("await_ready", await_events, d, "ready-", waiters, detail=f"{waiters} waiters")
    proc.sleep_ms(block_ms)  # most waiters are blocked by now; correctness does not depend on it
    give_back(h, k)
    proc.call("await_entries", await_events, d, "in-", k, detail=f"{k} entries")
    proc.sleep_ms(settle_ms)  # room for a semaphore that lets too many through to show it
    proc.note("second_round")
    proc.signal("second-round")
    give_back(h, units - k)
    h.close()


@announces_failure
def waiter(proc: Proc, index: int, timed_ms: int) -> int:
    """Block for a unit (with timed_ms > 0: in a loop of timed acquires), note entry,
    and hold it until the second round.  Returns the number of timed acquires that timed out."""
    h = proc.open("open")
    wait_or_fail(proc, "armed")
    proc.signal(f"ready-{index}")
    timeouts = 0
    if timed_ms > 0:
        while not h.acquire_timeout(timed_ms):
            timeouts += 1
    else:
        h.acquire()
    proc.note("inside")
    proc.signal(f"in-{index}")
    wait_or_fail(proc, "second-round")
    h.release()
    h.close()
    return timeouts


# --- limits ------------------------------------------------------------------------
def over_release(proc: Proc, cycles: int, below: int, readable: bool, drain_limit: int) -> Tuple[int, str, int, int]:
    """Acquire and release ``cycles`` units, release ``below`` more (each should be accepted),
    then one beyond the bound.

    Returns how many of the ``below`` releases were accepted, how the extra one
    ended ("ok" or the error signature), value() after it (-1 when not
    readable), and the free units counted by try_acquire (at most ``drain_limit``).
    """
    h = proc.open("open")
    for _ in range(cycles):
        h.acquire()
    give_back(h, cycles)
    accepted = 0
    for _ in range(below):
        try:
            h.release()
        except Exception:  # counted, not raised: the check says what was expected
            break
        accepted += 1
    try:
        h.release()
        verdict = "ok"
    except Exception as exc:
        verdict = error_signature(exc)
    value = int(h.value()) if readable else -1
    free = drain(h, drain_limit)
    h.close()
    return accepted, verdict, value, free


# --- named: unlink and reuse ------------------------------------------------------------
@announces_failure
def use_old_handle_after_unlink(proc: Proc, limit: int) -> int:
    """Open before the unlink; after the name is reused, count and give back the old units."""
    h = proc.open("open")
    proc.signal("opened")
    wait_or_fail(proc, "recreated")
    free = drain(h, limit)
    give_back(h, free)
    h.close()
    proc.signal("old-done")
    return free


@announces_failure
def unlink_and_reuse(proc: Proc, value: int, limit: int) -> int:
    """Unlink the name, create a new semaphore under it, count its units after the old handle is done."""
    wait_or_fail(proc, "opened")
    proc.call("unlink", proc.channel.unlink)
    h = Recorded(proc.call("reuse_name", proc.channel.reuse_name, value, detail=str(value)), proc)
    proc.signal("recreated")
    wait_or_fail(proc, "old-done")
    free = drain(h, limit)
    give_back(h, free)
    h.close()
    return free


# --- holder death ----------------------------------------------------------------------
PID_FILE = "holder-pid"


@announces_failure
def hold_until_killed(proc: Proc, units: int) -> None:
    h = proc.open("open")
    for _ in range(units):
        h.acquire()
    path = os.path.join(proc.task.directory, PID_FILE)
    with open(path + ".tmp", "w") as f:
        f.write(str(os.getpid()))
    os.replace(path + ".tmp", path)
    proc.signal("held")
    wait_or_fail(proc, "never")  # only SIGKILL (or a failed peer, or the watchdog) ends this role


@announces_failure
def kill_holder_then_count(proc: Proc, limit: int) -> int:
    """SIGKILL the holder, wait until it has exited, count the free units."""
    h = proc.open("open")
    wait_or_fail(proc, "held")
    with open(os.path.join(proc.task.directory, PID_FILE)) as f:
        pid = int(f.read())
    # The holder waits for an event nobody sends, so it is alive here and the
    # pidfd names it, not a process that reused its pid.
    pidfd = os.pidfd_open(pid)
    try:
        proc.call("kill", signal.pidfd_send_signal, pidfd, signal.SIGKILL, detail=f"SIGKILL pid {pid}")
        # A pidfd turns readable once the process has exited, and the kernel drops its
        # SEM_UNDO adjustments and file locks (exit_sem, exit_files) before that.
        proc.call("await_exit", select.select, [pidfd], [], [], detail=f"pid {pid}")
    finally:
        os.close(pidfd)
    free = drain(h, limit)
    give_back(h, free)
    h.close()
    return free

