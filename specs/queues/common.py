"""Helpers shared by the queue checks: preflight, payload strategies, verdict text."""

from __future__ import annotations

from typing import Any, List, Optional, Sequence

from hypothesis import strategies as st

from .. import limits as kernel
from ..harness.guard import BackendError
from ..harness.history import FAIL, INVOKE, OK, Event, History
from ..harness.run import Case
from ..invariant import Unresolved
from ..strategies import Blob, anchored_integers, kernel_edges
from .protocol import EMPTY_MESSAGES, MULTI_PROCESS, THREAD_SAFE, QueueLimits

#: A message drawn for a backend that claims no maximum is at most this large (memory and
#: time: eight of them per example) ...
UNBOUNDED_CAP = 4 << 20
#: ... and may be this many times the deepest kernel buffer (a pipe or a socket's; three, as
#: the stream family draws up to three pipe capacities), so that a receive that returns only
#: what one buffer held cannot pass.
BUFFER_DEPTHS = 3


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
    return checked_limits(limits)


def checked_limits(limits: object) -> QueueLimits:
    """``limits()``'s result, or one clear error: every check reads it, so a malformed one
    (a dict, a negative size) gives every check the same ERROR instead of a different crash each."""
    if not isinstance(limits, QueueLimits):
        raise BackendError(f"channel.limits() returned {type(limits).__name__} {limits!r:.80}, expected "
                           "ipc_specs.queues.protocol.QueueLimits")
    for name in ("max_messages", "max_bytes", "max_message_size", "max_priority"):
        value = getattr(limits, name)
        low = 0 if name in ("max_priority", "max_message_size") else 1
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < low):
            raise BackendError(f"channel.limits().{name} is {value!r}, expected None (no limit claimed) "
                               f"or an int >= {low}")
    return limits


def concurrent(case: Case) -> bool:
    """Whether several producers and consumers may use the channel at once: processes where
    ``multi_process`` is claimed, threads (in the thread placement) where ``thread_safe`` is.
    ``thread_safe`` without ``multi_process`` is the claim "safe for threads, not for
    concurrent processes", checked with several threads and one process per direction."""
    return case.claims(MULTI_PROCESS) or (case.placement == "thread" and case.claims(THREAD_SAFE))


def max_size(limits: QueueLimits, cap: int) -> int:
    return min(cap, limits.max_message_size) if limits.max_message_size is not None else cap


def unbounded_top() -> int:
    """The largest message drawn when no maximum is claimed: well past the kernel's buffers
    (read at run time), at most :data:`UNBOUNDED_CAP`."""
    deepest = max([kernel.pipe_capacity(), kernel.page_size()] + kernel.socket_buffers())
    return min(UNBOUNDED_CAP, BUFFER_DEPTHS * deepest)


def payload_sizes(case: Case, limits: QueueLimits, *, min_size: int = 0) -> st.SearchStrategy[int]:
    """Sizes up to the claimed maximum (the maximum and one below it likely) or, with none
    claimed, up to :func:`unbounded_top`; the kernel's boundaries (PIPE_BUF, a page, the
    pipe's capacity, the socket buffers, each ±1) likely either way."""
    top = max_size(limits, unbounded_top())
    low = min_size if case.claims(EMPTY_MESSAGES) else max(1, min_size)
    return anchored_integers(low, top, kernel_edges() + [low, low + 1, top - 1, top])


def payloads(case: Case, limits: QueueLimits, *, min_size: int = 0) -> st.SearchStrategy[Blob]:
    """Message payloads (as :class:`Blob`: take ``.data``), some all NUL bytes."""
    return st.builds(Blob, payload_sizes(case, limits, min_size=min_size), st.integers(0, 2**16), st.booleans())


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
