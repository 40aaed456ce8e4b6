"""Bounds on the backend calls the parent (the pytest process) must make itself, and the
errors that say the backend broke the API rather than an invariant.

Below both ``run`` (which bounds setup and teardown) and ``placements`` (which
bounds ``channel.detach()``), so that neither imports the other for it.
"""

from __future__ import annotations

import importlib
import threading
from typing import Any

#: signal's C core, without the enum conversions of its wrappers (typeshed has no stub for it).
_signal: Any = importlib.import_module("_signal")


class BackendError(Exception):
    """The backend broke the API itself (not an invariant): an error verdict."""


class ParentHang(BackendError):
    """A backend call made in the parent (setup, teardown, detach) did not return."""


class BackendCrashed(BackendError):
    """A backend call the parent must make killed the process that made it (a probe)."""


class parent_guard:
    """Bound a backend call that must run in the parent (the pytest process).

    Worker hangs are handled by the watchdog; a hang here would stall the whole
    suite, so SIGALRM interrupts it (PEP 475: the handler's exception ends the
    blocking call).  Only in the main thread, and only if no alarm is pending.

    A class over ``_signal`` rather than a generator over ``signal``: it runs
    three times an example while forked workers share the parent's pages, and
    each page the parent touches then costs a copy-on-write fault.
    """

    __slots__ = ("seconds", "what", "armed", "previous")

    def __init__(self, seconds: float, what: str) -> None:
        self.seconds = seconds
        self.what = what
        self.armed = False
        self.previous: Any = None

    def __enter__(self) -> None:
        if threading.get_ident() == threading.main_thread().ident and _signal.getitimer(_signal.ITIMER_REAL)[0] == 0:
            self.previous = _signal.signal(_signal.SIGALRM, self._on_alarm)
            self.armed = True
            _signal.setitimer(_signal.ITIMER_REAL, self.seconds)

    def __exit__(self, *exc: object) -> None:
        if self.armed:
            self.armed = False
            _signal.setitimer(_signal.ITIMER_REAL, 0)
            # None: the previous handler was not set from Python; SIG_DFL is what it was.
            _signal.signal(_signal.SIGALRM, _signal.SIG_DFL if self.previous is None else self.previous)

    def _on_alarm(self, signum: int, frame: Any) -> None:
        raise ParentHang(f"{self.what} did not return within {self.seconds:g}s")
