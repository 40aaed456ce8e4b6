"""Role bodies for the call and executor forms: ``timeouts.run(seconds, fn, *args, **kwargs)``.

Each runs in a fresh forked worker.  Guarded functions never wait longer than a
generous multiple of their own timeout (:func:`give_up_at`), so a timeout that never
comes is reported as "ran to its end", not as a hang.  Anything ``fn`` leaves behind
(a thread, a grandchild process) is stopped by the role itself before it returns.
"""

from __future__ import annotations

import threading
import time
from typing import Any, Dict, List, Optional

from ..harness import sigstate
from ..harness.control import ConcurrentControl
from ..harness.worker import Proc
from .common import NEVER_EXTRA_S, NEVER_FACTOR, timeout_class

MS = 10**6


def give_up_at(t0: float, ms: int) -> float:
    """When guarded code stops waiting to be interrupted: the scope form's generous multiple
    of its own timeout (``common.NEVER_FACTOR`` and ``NEVER_EXTRA_S``), counted from ``t0``."""
    return t0 + NEVER_FACTOR * ms / 1000 + NEVER_EXTRA_S


def wait_until(end: float, kind: str, stop: Optional[threading.Event] = None) -> None:
    """Block until ``end`` (sleeping, or spinning in pure Python); only an exception ends it early."""
    while time.monotonic() < end and not (stop is not None and stop.is_set()):
        if kind == "spin":
            for _ in range(1000):
                pass
        else:
            time.sleep(min(0.005, max(0.0, end - time.monotonic())))


# --- item 9: results and exceptions ---------------------------------------------------------
class CallAbort(BaseException):
    """A BaseException subclass that is not an Exception (like GeneratorExit)."""


def make_raised(what: str) -> Optional[BaseException]:
    if what == "value":
        return None
    if what == "__main__":
        # Defined now, with __module__ '__main__' (the test runner's, in a forked worker):
        # pickle cannot find it by name, which a process executor must cope with.
        cls = type("MainDefinedError", (Exception,), {"__module__": "__main__"})
        return cls("defined in __main__", 7)  # type: ignore[no-any-return]
    made: Dict[str, BaseException] = {
        "ValueError": ValueError("bad value", 3), "CallAbort": CallAbort("abort", 1),
        "SystemExit": SystemExit(3), "KeyboardInterrupt": KeyboardInterrupt("ctrl-c"),
    }
    return made[what]


def _returns_or_raises(raised: Optional[BaseException], a: Any, *, b: Any) -> Any:
    if raised is not None:
        raise raised
    return [a, b]


def result_passes(proc: Proc, what: str, ms: int) -> Dict[str, Any]:
    """run() around a function that returns at once, or raises ``what``."""
    t = proc.open("open_timeouts")
    raised = make_raised(what)
    before = sigstate.take()  # every handler, the mask and ITIMER_REAL: what a call must hand back
    try:
        got = t.run(ms / 1000, _returns_or_raises, raised, ("arg", 1), b={"kw": [2]})
        out: Dict[str, Any] = {"outcome": "returned", "equal": got == [("arg", 1), {"kw": [2]}], "got": repr(got)}
    except BaseException as exc:  # noqa: B902  (SystemExit and co. are what is checked)
        out = {"outcome": "raised", "got": f"{type(exc).__module__}.{type(exc).__qualname__}{exc.args!r}",
               "same": exc is raised or (raised is not None and type(exc) is type(raised) and exc.args == raised.args)}
    out["want"] = "a return value" if raised is None else \
        f"{type(raised).__module__}.{type(raised).__qualname__}{raised.args!r}"
    out["state_changes"] = sigstate.changes(before, sigstate.take())
    return out


# --- item 9: a call's timeout is raised, top-level or nested ------------------------------------
def timeout_raised(proc: Proc, ms: int, kind: str, nested: bool) -> Dict[str, Any]:
    """run(ms, blocking fn), alone or inside an outer run() with a generous deadline."""
    t = proc.open("open_timeouts")
    raw, cls = getattr(t, "unwrapped", t), timeout_class(t)
    stop = threading.Event()
    out: Dict[str, Any] = {}

    def blocked() -> str:
        wait_until(give_up_at(time.monotonic(), ms), kind, stop)
        return "ran to its end"

    def inner() -> Dict[str, Any]:
        r: Dict[str, Any] = {"t0": time.monotonic_ns()}
        try:
            r["returned"] = repr(raw.run(ms / 1000, blocked))
        except cls:
            r["t_raised"] = time.monotonic_ns()
        return r

    try:
        if nested:
            out = t.run(8 * ms / 1000 + 2, inner)
        else:
            out = inner()
    finally:
        stop.set()
    return out


# --- item 9: called again, re-entrantly and recursively ------------------------------------------
def _countdown(raw: Any, seconds: float, n: int) -> List[int]:
    """n, n-1, ..., 0: each level a call of run() inside the previous one."""
    return [n] + (raw.run(seconds, _countdown, raw, seconds, n - 1) if n > 0 else [])


def called_again(proc: Proc, depth: int, times: int) -> Dict[str, Any]:
    t = proc.open("open_timeouts")
    raw = getattr(t, "unwrapped", t)
    before = sigstate.take()
    got: List[Any] = []
    for _ in range(times):
        try:
            got.append(t.run(10.0, _countdown, raw, 10.0, depth))
        except Exception as exc:
            got.append(f"{type(exc).__name__}: {exc}")
    return {"got": got, "want": list(range(depth, -1, -1)),
            "state_changes": sigstate.changes(before, sigstate.take())}


# --- item 9: a per-call duration override cleans up like the default ------------------------------
def _ends(ending: str, ms: int, kind: str, stop: threading.Event) -> str:
    if ending == "raises":
        raise ValueError("from fn")
    if ending == "times out":
        wait_until(give_up_at(time.monotonic(), ms), kind, stop)
    return "done"


def durations_clean_up(proc: Proc, durations: List[int], kind: str) -> List[Dict[str, Any]]:
    """Calls with different durations (the first one the default, the others per-call
    overrides), each ending another way; the signal state after each (every handler, the
    mask, ITIMER_REAL) is compared with the state before it, here in the worker that used them."""
    t = proc.open("open_timeouts")
    cls = timeout_class(t)
    stop = threading.Event()
    out = []
    try:
        for i, ms in enumerate(durations):
            ending = ("times out", "returns", "raises")[i % 3]
            before = sigstate.take()
            try:
                t.run(ms / 1000, _ends, ending, ms, kind, stop)
            except (Exception, cls):
                pass  # what was raised is call_passes_results_and_exceptions_unchanged's business
            out.append({"ms": ms, "ending": ending, "changes": sigstate.changes(before, sigstate.take())})
    finally:
        stop.set()
    return out


# --- item 10: the outer deadline holds through a nested call -------------------------------------
def nested_outer_deadline(proc: Proc, outer_ms: int, inner_ms: int, kind: str) -> Dict[str, Any]:
    t = proc.open("open_timeouts")
    raw, cls = getattr(t, "unwrapped", t), timeout_class(t)
    stop = threading.Event()
    end = give_up_at(time.monotonic(), max(outer_ms, inner_ms))
    out: Dict[str, Any] = {"outer": "returned"}

    def blocked() -> None:
        wait_until(end, kind, stop)

    def outer_fn() -> None:
        raw.run(inner_ms / 1000, blocked)  # the outer expiry may pass through it: not caught here
        wait_until(end, kind, stop)

    ctl = ConcurrentControl(outer_ms / 1000)
    out["t0"] = time.monotonic_ns()
    try:
        t.run(outer_ms / 1000, outer_fn)
    except cls:
        out["outer"] = "raised"
    out["t_released"] = time.monotonic_ns()
    stop.set()
    out["control_lateness"] = ctl.result()
    return out

