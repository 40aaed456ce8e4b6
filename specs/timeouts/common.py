"""What every timeout role needs whatever the form (``with`` scope, call, executor):
the exception class the backend declares, and a bound on waiting for it.

A timeouts object (what ``open_timeouts()`` returns) MAY carry ``exception``, the
class its timeouts raise; without it, ``TimeoutError``.  Roles catch that class,
never a bare TimeoutError, and record the class of whatever interrupted the
guarded code, so a verdict reads "interrupted by X, expected Y".
"""

from __future__ import annotations

import time
from typing import Any, Type

from ..harness.worker import Proc

#: An outcome that never comes is awaited this multiple of the scope's own duration ...
NEVER_FACTOR = 4
#: ... plus this (seconds): generous under load, yet a bug costs seconds, not a whole deadline.
NEVER_EXTRA_S = 0.5


def timeout_class(t: Any) -> Type[BaseException]:
    """The class ``t``'s timeouts raise: ``t.exception`` when it is an exception class,
    else TimeoutError.  ``t`` may be the recorded proxy a role gets from ``proc.open``."""
    target = t.unwrapped if hasattr(type(t), "unwrapped") else t
    declared = getattr(target, "exception", None)
    if isinstance(declared, type) and issubclass(declared, BaseException):
        return declared
    return TimeoutError


def give_up_at(proc: Proc, seconds: float) -> float:
    """Monotonic time at which code waiting to be interrupted after ``seconds`` stops waiting:
    a generous multiple of the scope's own deadline, never past the worker's deadline."""
    return min(proc.deadline - 0.75, time.monotonic() + NEVER_FACTOR * seconds + NEVER_EXTRA_S)
