"""Helpers shared by the queue checks: preflight, payload strategies, verdict text."""

from __future__ import annotations

from typing import Any, List, Optional, Sequence

from hypothesis import strategies as st

from ..harness.history import FAIL, INVOKE, OK, Event, History
from ..harness.run import Case
from ..invariant import Unresolved
from ..strategies import Blob
from .protocol import EMPTY_MESSAGES, QueueLimits

#: Payload size examples use when a backend claims no maximum.
DEFAULT_MAX = 4096


def preflight(case: Case) -> QueueLimits:
    """Set a channel up once in the parent: a machine that cannot host the backend's
    configuration says so here (``Unresolved``) instead of failing every example."""
    scope = case.harness.root.scope()
    channel = None
    try:
        channel = case.backend.setup(scope)
        limits: QueueLimits = channel.limits()
    except PermissionError as exc:
        raise Unresolved(f"{case.backend.name}: the kernel refused its configuration ({exc})") from exc
    finally:
        if channel is not None:
            channel.teardown()
        problems = case.harness.root.release(scope)
    if problems:
        raise RuntimeError(f"cleanup failed: {problems}")
    return limits


def max_size(limits: QueueLimits, cap: int = DEFAULT_MAX) -> int:
    return min(cap, limits.max_message_size) if limits.max_message_size is not None else cap


def payloads(case: Case, limits: QueueLimits, *, min_size: int = 0, cap: int = DEFAULT_MAX) -> st.SearchStrategy[bytes]:
    """Message payloads biased to 0, 1, the maximum, and NUL bytes."""
    top = max_size(limits, cap)
    low = min_size if case.claims(EMPTY_MESSAGES) else max(1, min_size)
    sizes = st.one_of(st.sampled_from(sorted({low, low + 1, top - 1, top} & set(range(low, top + 1)))),
                      st.integers(low, top))
    return st.builds(lambda n, seed, nul: b"\0" * n if nul else Blob(n, seed).data,
                     sizes, st.integers(0, 2**16), st.booleans())


def op_end(history: History, proc: str, op: str, index: int) -> tuple[Event, Optional[Event]]:
    """The ``index``-th invocation of ``op`` by ``proc`` and the event that ended it."""
    events = history.of(proc)
    invokes = [i for i, e in enumerate(events) if e.op == op and e.phase == INVOKE]
    i = invokes[index]
    end = next((e for e in events[i + 1:] if e.op == op and e.phase in (OK, FAIL)), None)
    return events[i], end


def err_name(result: Sequence[Any]) -> str:
    """``("err", "Full", None)`` -> ``queue.Full``; ``("ok", v)`` -> ``returned …``."""
    if result[0] == "ok":
        return f"returned {result[1]!r}"[:120]
    return f"raised {result[1]}" + (f" (errno {result[2]})" if result[2] else "")


def data_of(results: Sequence[Sequence[Any]]) -> List[Any]:
    return [r[1][0] if r[0] == "ok" else err_name(r) for r in results]
