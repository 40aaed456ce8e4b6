"""Role body for scopes and threads: built in one thread, entered in another.

The worker's main thread first installs a sentinel SIGALRM handler and arms its own
ITIMER_REAL: code outside every scope, which must never see the scope's alarm and
must find its timer as it left it.  Which thread is the main one
is never told by its name (the role may rename it): ``threading.main_thread()``.
"""

from __future__ import annotations

import signal
import threading
import time
from typing import Any, Callable, Dict, List

from ..harness import stalls
from ..harness.worker import Proc
from .call_roles import give_up_at
from .common import timeout_class

#: The main thread's own ITIMER_REAL: never due during an example, so never fired early.
CALLER_TIMER_S = 3600.0


def _in(where: str, name: str, fn: Callable[[], None], limit: float) -> None:
    """Run ``fn`` in the main thread or in a new thread called ``name`` ('' for the default)."""
    if where == "main":
        fn()
        return
    th = threading.Thread(target=fn, name=name or None, daemon=True)
    th.start()
    th.join(max(0.0, limit - time.monotonic()))


def scope_in_threads(proc: Proc, ms: int, built_in: str, entered_in: str, thread_name: str,
                     rename_main: bool) -> Dict[str, Any]:
    t = proc.open("open_timeouts")
    raw, cls = getattr(t, "unwrapped", t), timeout_class(t)
    hits: List[int] = []
    box: Dict[str, Any] = {"outcome": "not entered"}

    def sentinel(signum: int, frame: Any) -> None:
        hits.append(time.monotonic_ns())

    previous = signal.signal(signal.SIGALRM, sentinel)
    # The main thread's own ITIMER_REAL, far from due: a scope that refuses must leave it counting
    # down as it was; one that works must hand it back (it is the process's only one).
    set_from = time.monotonic()
    signal.setitimer(signal.ITIMER_REAL, CALLER_TIMER_S)
    set_by = time.monotonic()
    if rename_main:
        threading.main_thread().name = "worker-main"
    limit = give_up_at(time.monotonic(), ms) + 1.0

    def build() -> None:
        try:
            box["scope"] = raw.timeout(ms / 1000)
        except Exception as exc:  # a refusal at construction counts as one at entry
            box["outcome"], box["refused"] = "refused", f"timeout() raised {type(exc).__name__}: {exc}"
            box["refused_in"] = _which()

    def enter() -> None:
        scope = box.get("scope")
        if scope is None:
            return
        box["t0"] = time.monotonic_ns()
        # Stalls of this thread while it enters and leaves: a correct hand-back of the
        # main thread's timer comes back late by any that fell inside it (harness.stalls).
        since = stalls.mark()
        try:
            enter_scope(scope)
        finally:
            box["stalled_s"] = since.stalled_s(stalls.mark())

    def enter_scope(scope: Any) -> None:
        try:
            with scope:
                box["outcome"] = "entered"
                try:
                    _spin(give_up_at(time.monotonic(), ms))
                    box["outcome"] = "ran to its end"
                except cls:
                    box["outcome"], box["t_raised"] = "timeout", time.monotonic_ns()
                    raise
        except cls:
            if box["outcome"] == "not entered":
                # Fired while the scope was still being entered (a 1 ms timeout on a loaded
                # machine): taken after the fact, this time is an upper bound of the firing.
                box["outcome"], box["t_raised"] = "timeout", time.monotonic_ns()
        except Exception as exc:
            if box["outcome"] == "not entered":
                box["outcome"], box["refused"] = "refused", f"{type(exc).__name__}: {exc}"
                box["refused_in"] = _which()
            else:
                box["outcome"] = f"raised {type(exc).__name__}: {exc}"

    try:
        _in(built_in, thread_name, build, limit)
        _in(entered_in, thread_name, enter, limit)
        read_from = time.monotonic()
        box["timer_after"] = signal.getitimer(signal.ITIMER_REAL)
        # What the caller's timer may read now if left alone: the time passed since it was
        # armed is bounded by the clock readings either side of the two calls.
        box["caller_left"] = (CALLER_TIMER_S - (time.monotonic() - set_from), CALLER_TIMER_S - (read_from - set_by))
        box["handler_after"] = "the sentinel" if signal.getsignal(signal.SIGALRM) is sentinel else \
            repr(signal.getsignal(signal.SIGALRM))
        time.sleep(ms / 1000 + 0.1)  # outside every scope: a stray alarm would land now
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
    box.pop("scope", None)
    box["sentinel_hits"] = len(hits)
    return box


def _which() -> str:
    """The main thread or another one, by identity (never by name)."""
    return "main" if threading.get_ident() == threading.main_thread().ident else "other"


def _spin(end: float) -> None:
    """Pure Python until ``end``: a thread-based scope can interrupt it, and so can a signal."""
    while time.monotonic() < end:
        for _ in range(1000):
            pass
