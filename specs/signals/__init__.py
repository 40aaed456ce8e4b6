"""Signals and alarms: the process's signal facilities (alarm, ITIMER_REAL, kill, mask,
sigtimedwait, handlers, wakeup fd).  See ``protocol`` for the contract; ``checks``
(timers), ``pending_checks`` (coalescing, queueing, order), ``handler_checks`` and
``restore_checks`` (the per-role signal-state audit) for the invariants; ``roles`` for what the forked workers run."""

from . import checks, handler_checks, pending_checks, restore_checks  # noqa: F401  (register the invariants)
from .protocol import SIGNAL, SignalChannel, SignalFacilities

__all__ = ["SIGNAL", "SignalChannel", "SignalFacilities"]
