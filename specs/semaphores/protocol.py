"""The semaphore contract: counting semaphores and the locks that are semaphores of one unit.

A semaphore channel is made in the parent with ``setup(scope)`` and then given
its initial value with ``create(value)`` (the checks draw the value, so the
backend cannot fix it at setup).  Each worker or thread then calls ``open()``
for a handle of its own.  The value is the number of units free: ``acquire``
takes one (waiting while there is none), ``release`` gives one back
(sem_overview(7); Python docs ``threading.Semaphore``).

Every backend also states its limits as two attributes the checks read:

* ``max_value``       the largest value the semaphore can hold (SEM_VALUE_MAX,
                      SEMVMX, 1 for a lock);
* ``overflow_error``  how a rejected release fails, as :func:`error_signature`
                      spells it: ``"ValueError"`` or ``"OSError(EOVERFLOW)"``.
"""

from __future__ import annotations

import errno

try:
    from typing import Protocol
except ImportError:  # pragma: no cover
    from typing_extensions import Protocol  # type: ignore

from ..backend import IntAttribute, Kind, register_kind

COUNTING = "counting"
BOUNDED = "bounded"
VALUE_READABLE = "value_readable"
TIMEOUTS = "timeouts"
HOLDER_DEATH_RELEASES = "holder_death_releases"
NAMED = "named"
THREAD_SAFE = "thread_safe"
RELEASE_BY_HOLDER_ONLY = "release_by_holder_only"

SEMAPHORE = register_kind(
    Kind(
        name="semaphore",
        summary="a counter of free units shared by processes: acquire takes one (waiting while none is free), "
        "release gives one back",
        capabilities={
            COUNTING: "create(value) takes any value from 0 to max_value; without it the object is a lock, "
            "created free (create(max_value) only)",
            BOUNDED: "a release that would raise the value above the value it was created with is rejected "
            "(BoundedSemaphore), raising the backend's overflow_error",
            VALUE_READABLE: "handle.value() returns the current value, never negative (sem_getvalue(3))",
            TIMEOUTS: "handle.acquire_timeout(ms) waits at most about ms milliseconds (sem_timedwait(3))",
            HOLDER_DEATH_RELEASES: "units held by a process that dies (even by SIGKILL) come back "
            "(SysV SEM_UNDO, flock(2)); without it they stay taken",
            NAMED: "channel.unlink() removes the name while handles already open keep working, and "
            "channel.reuse_name(value) then creates a new, independent semaphore under it (sem_unlink(3))",
            THREAD_SAFE: "handles may be opened and used from several threads of one process",
            RELEASE_BY_HOLDER_ONLY: "release() by a handle that holds no unit raises overflow_error and changes "
            "nothing (flock(2) locks); without it any process may release (Python docs multiprocessing.Lock."
            "release: 'This can be called from any process or thread')",
        },
        channel_members=("create", "open"),
        # max_value: the highest value create() accepts (SEM_VALUE_MAX, 1 for a lock; a
        # 64-bit counter at most); overflow_error: the name of what a rejected release raises.
        int_attributes=(IntAttribute("max_value", 1, 2**63 - 1),),
        str_attributes=("overflow_error",),
    )
)


class SemaphoreHandle(Protocol):
    """One process's (or thread's) view of the semaphore."""

    def acquire(self) -> None:
        """Take one unit, blocking while the value is 0."""

    def try_acquire(self) -> bool:
        """Take one unit and return True, or return False at once when the value is 0 (never block)."""

    def acquire_timeout(self, timeout_ms: int) -> bool:
        """(``timeouts``) Take one unit and return True, or return False after waiting
        at least ``timeout_ms`` milliseconds without one becoming free."""

    def release(self) -> None:
        """Give one unit back.  Raise the backend's ``overflow_error`` (and change
        nothing) when the value is at ``max_value`` or, for ``bounded`` backends, at
        the created value; ``release_by_holder_only`` backends also when this handle
        holds nothing."""

    def value(self) -> int:
        """(``value_readable``) The number of free units now."""

    def close(self) -> None:
        """Drop this handle; the semaphore itself lives on."""


class SemaphoreChannel(Protocol):
    def create(self, value: int) -> None:
        """Make the semaphore with ``value`` free units; called once, in the parent, before any role."""

    def open(self) -> SemaphoreHandle: ...

    def detach(self) -> None:
        """Drop references this process does not use (nothing, for most semaphores)."""

    def teardown(self) -> None:
        """Remove the semaphore; called once, in the parent, after the example."""


class NamedSemaphoreChannel(SemaphoreChannel, Protocol):
    """Extra members of channels whose backend claims ``named``."""

    def unlink(self) -> None:
        """Remove the name; handles already open keep working."""

    def reuse_name(self, value: int) -> SemaphoreHandle:
        """Create, exclusively, a new semaphore with ``value`` under the unlinked name, and open it."""


class SemaphoreBackend(Protocol):
    """The semaphore-specific attributes of a backend (besides name, kind, capabilities, wiring, setup)."""

    max_value: int
    overflow_error: str


def error_signature(exc: BaseException) -> str:
    """``ValueError``, or ``OSError(EOVERFLOW)`` for an OSError with an errno: how rejections are compared."""
    code = getattr(exc, "errno", None)
    if isinstance(exc, OSError) and code:
        return f"{type(exc).__name__}({errno.errorcode.get(code, code)})"
    return type(exc).__name__
