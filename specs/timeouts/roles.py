"""Role bodies for timeout examples; each runs in a fresh forked worker.

Guarded code waits until shortly before the worker's deadline unless a
timeout interrupts it, so a timeout that never fires is reported as "the
guarded code ran to its end" instead of as a hang.  Times are taken with
``time.monotonic_ns()`` before entering a scope, which gives honest lower
bounds for when it may fire.
"""

from __future__ import annotations

import os
import select
import signal
import time
from typing import Any, Dict

from ..harness.worker import Proc

KINDS = ("sleep", "select", "spin")  # blocked in a sleep, blocked in a system call, pure Python


def budget_end(proc: Proc) -> float:
    """Monotonic time at which guarded code gives up waiting to be interrupted."""
    return proc.deadline - 0.75


def block(kind: str, end: float) -> None:
    """Wait until ``end`` in the way ``kind`` says; only an exception ends it early."""
    if kind == "select":
        r, w = os.pipe()
        try:
            while time.monotonic() < end:
                select.select([r], [], [], max(0.0, end - time.monotonic()))
        finally:
            os.close(r)
            os.close(w)
    elif kind == "spin":
        x = 0
        while time.monotonic() < end:
            x += 1
    else:
        while time.monotonic() < end:
            time.sleep(max(0.0, end - time.monotonic()))


def guarded(proc: Proc, ms: int, kind: str, linger_ms: int) -> Dict[str, Any]:
    """One scope around waiting code; then linger outside it to catch a second firing."""
    t = proc.open("open_timeouts")
    scope = t.timeout(ms / 1000)
    result: Dict[str, Any] = {"outcome": "guarded code ran to its end", "raised_inside": False, "began": False}
    result["t_enter"] = time.monotonic_ns()
    try:
        with scope:
            try:
                result["began"] = True
                block(kind, budget_end(proc))
            except TimeoutError:
                result["raised_inside"] = True
                result["t_raised"] = time.monotonic_ns()
                proc.note("interrupted", kind)
                raise
    except TimeoutError:
        result["outcome"] = "TimeoutError"
        # Raised before the guarded code began: a short timeout on a loaded machine can
        # expire while the scope is still being entered.  Taken after the fact, this
        # time is an upper bound of when it fired.
        result.setdefault("t_raised", time.monotonic_ns())
    result["fired"] = bool(scope.fired)
    result["later"] = _linger(proc, linger_ms)
    return result


def _linger(proc: Proc, ms: int) -> int:
    """Count TimeoutErrors raised during ``ms`` outside every scope (should be none).

    One stray is enough to judge; a timer that keeps firing is then silenced so
    the worker can still write its result.
    """
    end = time.monotonic() + ms / 1000
    try:
        while time.monotonic() < end:
            time.sleep(max(0.0, end - time.monotonic()))
    except TimeoutError:
        _silence_sigalrm()
        proc.note("stray_timeout")
        return 1
    return 0


def _silence_sigalrm() -> None:
    for _ in range(1000):  # the runaway handler may interrupt these very calls
        try:
            signal.signal(signal.SIGALRM, signal.SIG_IGN)
            signal.setitimer(signal.ITIMER_REAL, 0)
            return
        except TimeoutError:
            continue


def cancel_early(proc: Proc, ms: int, work_ms: int) -> Dict[str, Any]:
    """Enter a scope, work, cancel; stay inside past the old deadline."""
    t = proc.open("open_timeouts")
    scope = t.timeout(ms / 1000)
    out: Dict[str, Any] = {"fired_before_cancel": False, "stray": 0}
    try:
        with scope:
            out["t_entered"] = time.monotonic_ns()
            proc.sleep_ms(work_ms)
            out["t_cancel_start"] = time.monotonic_ns()
            out["left"] = proc.call("cancel", scope.cancel)
            out["t_cancel_end"] = time.monotonic_ns()
            out["stray"] = _linger(proc, ms + 150)
    except TimeoutError:
        out["fired_before_cancel"] = "left" not in out
        if not out["fired_before_cancel"]:
            out["stray"] += 1
    return out


def nested(proc: Proc, outer_ms: int, inner_ms: int, inner_blocks: bool, kind: str) -> Dict[str, Any]:
    """An inner scope inside an outer one; the outer scope must fire, on time, whatever the inner did."""
    t = proc.open("open_timeouts")
    outer, inner = t.timeout(outer_ms / 1000), t.timeout(inner_ms / 1000)
    end = budget_end(proc)
    out: Dict[str, Any] = {"outer_raised": False, "inner_caught": 0}
    out["t0"] = time.monotonic_ns()
    try:
        with outer:
            try:
                with inner:
                    if inner_blocks:
                        block(kind, end)
            except TimeoutError:
                if outer.fired:
                    raise  # the outer scope's expiry, passing through the inner scope
                out["inner_caught"] += 1
                proc.note("inner_expired")
            block(kind, end)  # back in the outer scope only: its deadline still holds
    except TimeoutError:
        out["outer_raised"] = True
        out["t_outer"] = time.monotonic_ns()
        proc.note("outer_expired")
    out["outer_fired"], out["inner_fired"] = bool(outer.fired), bool(inner.fired)
    return out
