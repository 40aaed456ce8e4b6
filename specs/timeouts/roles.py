"""Role bodies for timeout examples; each runs in a fresh forked worker.

Guarded code waits to be interrupted until a generous multiple of the scope's
own deadline (``common.give_up_at``), so a timeout that never fires is reported
as "never fired" in seconds, not after the worker's deadline.  Times are taken
with ``time.monotonic_ns()`` before entering a scope, which gives honest lower
bounds for when it may fire.  Roles catch the class the backend declares
(``common.timeout_class``) and record the class of whatever interrupted the
guarded code; they audit the signal state (``harness.sigstate``) around the
scopes they use, here in the worker, and note the scope's events in the history:
enter, armed (ITIMER_REAL just after entering), interrupted, fired (the SIGALRMs
delivered while it was active, ``observe.AlarmWatch``), exit, swallowed, restored.
"""

from __future__ import annotations

import os
import select
import signal
import time
from typing import Any, Dict, List, Optional

from ..harness import sigstate
from ..harness.control import measure_until_on_time
from ..harness.worker import Proc
from .common import give_up_at, timeout_class
from .observe import AlarmWatch
from .protocol import ScopeRefused

KINDS = ("sleep", "select", "spin")  # blocked in a sleep, blocked in a system call, pure Python
#: How a scope is left: its code returns early, its own timeout, an exception, cancel() then return.
PATHS = ("normal", "timeout", "exception", "cancel")
RAN_TO_END = "guarded code ran to its end"


class Boom(Exception):
    """The guarded code's own exception (the "exception" exit path)."""


def budget_end(proc: Proc) -> float:
    """Monotonic time at which guarded code gives up waiting, whatever the scope."""
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


def _name(exc: Optional[BaseException]) -> Optional[str]:
    return None if exc is None else type(exc).__name__


def guarded(proc: Proc, ms: int, kind: str, linger_ms: int) -> Dict[str, Any]:
    """One scope around waiting code; then linger outside it to catch a second firing."""
    t = proc.open("open_timeouts")
    expected = timeout_class(t)
    before = sigstate.take()
    scope = t.timeout(ms / 1000)
    result: Dict[str, Any] = {"outcome": RAN_TO_END, "interrupted_by": None, "raised_inside": False,
                              "began": False, "expected": expected.__name__, "is_expected": False}
    end = give_up_at(proc, ms / 1000)
    result["give_up_ms"] = (end - time.monotonic()) * 1000
    result["t_enter"] = proc.note("enter", f"{ms} ms")
    watch = AlarmWatch(proc)
    watch.start()
    try:
        with scope:
            try:
                result["began"] = True
                watch.armed()
                block(kind, end)
            except BaseException as exc:  # whatever it is, it is what interrupted the guarded code
                result["raised_inside"] = True
                result["interrupted_by"] = type(exc).__name__
                result["t_raised"] = proc.note("interrupted", type(exc).__name__)
                raise
    except Exception as exc:
        result["outcome"] = type(exc).__name__
        result["is_expected"] = isinstance(exc, expected)
        # Raised before the guarded code began: a short timeout on a loaded machine can
        # expire while the scope is still being entered.  Taken after the fact, this
        # time is an upper bound of when it fired.
        result.setdefault("t_raised", time.monotonic_ns())
    result["sigalrms"] = watch.stop()
    result["fired"] = bool(scope.fired)
    _note_exit(proc, result["fired"], result["interrupted_by"], result["outcome"])
    result["later"] = _linger(proc, linger_ms)
    result["leaks"] = _audit(proc, before)
    return result


def _note_exit(proc: Proc, fired: bool, inside: Optional[str], outside: str) -> None:
    proc.note("exit", f"fired={fired}, raised outside: {outside}")
    if fired and inside and outside == RAN_TO_END:
        proc.note("swallowed", f"the scope fired ({inside} inside) but nothing left the with")


def _audit(proc: Proc, before: sigstate.SignalState) -> List[str]:
    found = sigstate.changes(before, sigstate.take())
    proc.note("restored" if not found else "not_restored", "; ".join(found))
    return found


def _linger(proc: Proc, ms: float) -> int:
    """Count exceptions raised during ``ms`` outside every scope (should be none).

    One stray is enough to judge; a timer that keeps firing is then silenced so
    the worker can still write its result.
    """
    end = time.monotonic() + ms / 1000
    try:
        while time.monotonic() < end:
            time.sleep(max(0.0, end - time.monotonic()))
    except Exception as exc:
        _silence_sigalrm()
        proc.note("stray", type(exc).__name__)
        return 1
    return 0


def _silence_sigalrm() -> None:
    for _ in range(1000):  # the runaway handler may interrupt these very calls
        try:
            signal.signal(signal.SIGALRM, signal.SIG_IGN)
            signal.setitimer(signal.ITIMER_REAL, 0)
            return
        except Exception:
            continue


def leave_by(proc: Proc, t: Any, path: str, ms: int, kind: str) -> Dict[str, Any]:
    """Enter a scope of ``ms`` and leave it by ``path``; what happened, and when it was left.

    Every path but "timeout" leaves after a third of the duration (the scope is
    left early); "timeout" waits to be interrupted (up to ``give_up_at``).
    """
    expected = timeout_class(t)
    scope = t.timeout(ms / 1000)
    out: Dict[str, Any] = {"path": path, "raised": None, "fired": False, "refused": False, "entered": False}
    out["t_enter"] = proc.note("enter", f"{ms} ms, left by {path}")
    watch = AlarmWatch(proc)
    watch.start()
    try:
        with scope:
            out["entered"] = True
            watch.armed()
            if path == "timeout":
                block(kind, give_up_at(proc, ms / 1000))
            else:
                time.sleep(ms / 3000)
                if path == "exception":
                    raise Boom("the guarded code's own error")
                if path == "cancel":
                    proc.call("cancel", scope.cancel)
    except Exception as exc:
        out["raised"] = type(exc).__name__
        out["is_expected"] = isinstance(exc, expected)
        out["refused"] = isinstance(exc, ScopeRefused) and not out["entered"]
    out["sigalrms"] = watch.stop()
    out["t_exit"] = proc.note("exit", f"raised outside: {out['raised']}")
    out["fired"] = bool(scope.fired)
    return out


#: The caller's own ITIMER_REAL around an audited scope: far past the example's end, so it
#: never fires (SIGALRM's default action would end the worker), yet it is there to be compared.
CALLER_TIMER_S = 3600.0


def exit_paths(proc: Proc, path: str, ms: int, kind: str) -> Dict[str, Any]:
    """Leave one scope by ``path``, with a caller's ITIMER_REAL armed around it; audit the
    signal state (that timer neither disarmed nor pushed later); wait past the old deadline."""
    t = proc.open("open_timeouts")
    previous = signal.setitimer(signal.ITIMER_REAL, CALLER_TIMER_S)
    proc.note("caller_alarm", f"ITIMER_REAL {CALLER_TIMER_S:g} s (never due in the example)")
    try:
        before = sigstate.take()
        out = leave_by(proc, t, path, ms, kind)
        out["leaks"] = _audit(proc, before)
        past = max(0.0, (out["t_enter"] - time.monotonic_ns()) / 1e6 + ms + 150)
        out["stray"] = _linger(proc, past)
    finally:
        signal.setitimer(signal.ITIMER_REAL, *previous)
    out["expected"] = timeout_class(t).__name__
    return out


def outer_alarm(proc: Proc, path: str, ms: int, outer_ms: int, kind: str) -> List[Dict[str, Any]]:
    """Code outside the scope arms its own SIGALRM handler and ITIMER_REAL (``outer_ms``,
    later than the scope's deadline); a scope is left by ``path``; then the caller's handler
    must be back and its timer must fire at its deadline: not before it, and no later than a
    plain sleep of ``outer_ms`` measured just before and after (``harness.control``).  A late
    attempt is made again, up to ``control.TRIES`` times; every attempt, in order."""
    t = proc.open("open_timeouts")
    runs: List[Dict[str, Any]] = []

    def once() -> Optional[float]:
        runs.append(_caller_alarm_once(proc, t, path, ms, outer_ms, kind))
        fired = runs[-1]["caller_fired_ms"]
        return fired[0] - outer_ms if fired and "stray" not in runs[-1] else None

    attempts = measure_until_on_time(outer_ms, once, after=outer_ms < 1000)
    return [dict(run, **attempt) for run, attempt in zip(runs, attempts)]


def _caller_alarm_once(proc: Proc, t: Any, path: str, ms: int, outer_ms: int, kind: str) -> Dict[str, Any]:
    fired_at: List[int] = []

    def mine(signum: int, frame: Any) -> None:
        fired_at.append(time.monotonic_ns())

    previous = signal.signal(signal.SIGALRM, mine)
    t_armed = time.monotonic_ns()
    signal.setitimer(signal.ITIMER_REAL, outer_ms / 1000)
    proc.note("caller_alarm", f"own handler, ITIMER_REAL {outer_ms} ms")
    try:
        # Blocked only where the backend claims to interrupt blocking calls: a scope that cannot
        # (an exception sent to the thread) would otherwise land late, in the caller's handler.
        out = leave_by(proc, t, path, ms, kind)
        handler = signal.getsignal(signal.SIGALRM)
        out["handler_back"] = handler is mine
        out["handler_now"] = getattr(handler, "__qualname__", repr(handler))
        out["timer_left"] = signal.getitimer(signal.ITIMER_REAL)[0]
        proc.note("after_scope", f"caller's handler back: {out['handler_back']}, "
                                 f"ITIMER_REAL {out['timer_left']:.6f} s")
        # Wait for the caller's alarm, bounded by a generous multiple of its own delay.
        end = min(budget_end(proc), t_armed / 1e9 + 4 * outer_ms / 1000 + 0.5)
        try:
            while not fired_at and time.monotonic() < end:
                time.sleep(0.005)
        except Exception as exc:  # the scope's handler, still installed, fired out here
            out["stray"] = type(exc).__name__
        out["caller_fired_ms"] = [(f - t_armed) / 1e6 for f in fired_at]
        proc.note("caller_alarm_fired" if fired_at else "caller_alarm_never_fired",
                  ", ".join(f"{x:.3f} ms" for x in out["caller_fired_ms"]))
    finally:
        _silence_sigalrm()
        signal.signal(signal.SIGALRM, previous)
    out["waited_ms"] = (time.monotonic_ns() - t_armed) / 1e6
    return out


def near_deadline(proc: Proc, plan: List[List[int]], kind: str) -> Dict[str, Any]:
    """Scopes of ``ms`` whose guarded code ends ``early_us`` before the deadline (or after,
    when negative), one after the other: each either returns or is interrupted inside."""
    t = proc.open("open_timeouts")
    expected = timeout_class(t)
    before = sigstate.take()
    out: Dict[str, Any] = {"outside": [], "ended": [], "expected": expected.__name__}
    for i, (ms, early_us) in enumerate(plan):
        scope = t.timeout(ms / 1000)
        inside: Optional[str] = None
        try:
            try:
                with scope:
                    try:
                        block(kind, time.monotonic() + ms / 1000 - early_us / 1e6)
                    except BaseException as exc:
                        inside = type(exc).__name__
                        raise
            except expected:
                pass
            except Exception as exc:  # raised at exit, not from the guarded code
                out["outside"].append(f"scope {i} ({ms} ms, {early_us} µs early): {type(exc).__name__} at exit")
            time.sleep(0)  # a bytecode boundary outside the scope, where a late expiry would land
        except Exception as exc:
            out["outside"].append(f"after scope {i} ({ms} ms, {early_us} µs early): {type(exc).__name__}")
            _silence_sigalrm()
        out["ended"].append("interrupted" if inside else "returned")
    proc.note("scopes", f"{len(plan)}: " + ", ".join(out["ended"]))
    out["stray"] = _linger(proc, 30)
    out["leaks"] = _audit(proc, before)
    return out


def lateness(proc: Proc, ms: int, kind: str) -> List[Dict[str, Any]]:
    """A scope's lateness beside a control of the same duration (a plain sleep, see
    ``harness.control`` for why not a timer) measured just before and just after it, in
    this process (only before, for whole seconds: one second of control is enough)."""
    t = proc.open("open_timeouts")
    expected = timeout_class(t)

    def one() -> Optional[float]:
        scope = t.timeout(ms / 1000)
        end = give_up_at(proc, ms / 1000)
        t0 = proc.note("enter", f"{ms} ms")
        try:
            with scope:
                block(kind, end)
        except expected:
            return (proc.note("interrupted") - t0) / 1e6 - ms
        proc.note("never_fired", f"in {(end * 1e9 - t0) / 1e6:.0f} ms")
        return None

    return measure_until_on_time(ms, one, after=ms < 1000)


def cancel_early(proc: Proc, ms: int, work_ms: int) -> Dict[str, Any]:
    """Enter a scope, work, cancel; stay inside past the old deadline."""
    t = proc.open("open_timeouts")
    expected = timeout_class(t)
    scope = t.timeout(ms / 1000)
    out: Dict[str, Any] = {"fired_before_cancel": False, "stray": 0}
    watch = AlarmWatch(proc)
    watch.start()
    try:
        with scope:
            out["t_entered"] = time.monotonic_ns()
            watch.armed()
            proc.sleep_ms(work_ms)
            out["t_cancel_start"] = time.monotonic_ns()
            out["left"] = proc.call("cancel", scope.cancel)
            out["t_cancel_end"] = time.monotonic_ns()
            watch.armed()  # what cancel() left armed
            out["stray"] = _linger(proc, ms + 150)
    except expected:
        out["fired_before_cancel"] = "left" not in out
        if not out["fired_before_cancel"]:
            out["stray"] += 1
    finally:
        out["sigalrms"] = watch.stop()
    return out


def nested(proc: Proc, outer_ms: int, inner_ms: int, inner_blocks: bool, kind: str) -> Dict[str, Any]:
    """An inner scope inside an outer one; the outer scope must fire, on time, whatever the inner did."""
    t = proc.open("open_timeouts")
    expected = timeout_class(t)
    outer, inner = t.timeout(outer_ms / 1000), t.timeout(inner_ms / 1000)
    end = give_up_at(proc, max(outer_ms, inner_ms) / 1000)
    out: Dict[str, Any] = {"outer_raised": False, "inner_caught": 0, "raised_by": None,
                           "expected": expected.__name__}
    out["t0"] = proc.note("enter", f"outer {outer_ms} ms")
    watch = AlarmWatch(proc)
    watch.start()
    try:
        with outer:
            watch.armed()
            try:
                proc.note("enter", f"inner {inner_ms} ms")
                with inner:
                    watch.armed()
                    if inner_blocks:
                        block(kind, end)
            except expected:
                if outer.fired:
                    raise  # the outer scope's expiry, passing through the inner scope
                out["inner_caught"] += 1
                proc.note("inner_expired")
            block(kind, end)  # back in the outer scope only: its deadline still holds
    except Exception as exc:
        out["raised_by"] = type(exc).__name__
        out["outer_raised"] = isinstance(exc, expected)
        out["t_outer"] = proc.note("outer_expired", type(exc).__name__)
    finally:
        out["sigalrms"] = watch.stop()
    out["outer_fired"], out["inner_fired"] = bool(outer.fired), bool(inner.fired)
    out["gave_up_ms"] = (end * 1e9 - out["t0"]) / 1e6
    return out


def declared_class(proc: Proc) -> Dict[str, Any]:
    """The class the backend's timeouts raise and its ancestors, as names."""
    cls = timeout_class(proc.open("open_timeouts"))
    return {"name": cls.__qualname__, "mro": [(c.__module__, c.__qualname__) for c in cls.__mro__]}
