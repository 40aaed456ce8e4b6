"""Signal state of the calling process, audited where a role used it.

The leak audit (``audit.py``) runs in the test process, so a forked or spawned
role that leaves a handler installed, a signal blocked or ITIMER_REAL armed is
never seen there: the worker exits first.  A role that installs handlers or
arms timers takes a :func:`take` before and after the code under test and
reports :func:`changes`, in the worker that used them.

Reading every handler costs a few microseconds (``getsignal`` of each catchable
signal): take it around a scope or a role, not around each operation.
"""

from __future__ import annotations

import signal
import time
from dataclasses import dataclass
from typing import Any, FrozenSet, List, Optional, Tuple

from .stalls import Mark, mark

#: Signals whose disposition cannot change (signal(7)): not worth reading.
_UNCATCHABLE = frozenset({int(signal.SIGKILL), int(signal.SIGSTOP)})


@dataclass(frozen=True)
class SignalState:
    handlers: Tuple[Tuple[int, Any], ...]
    mask: FrozenSet[int]
    itimer_real: Tuple[float, float]
    #: time.monotonic() just before and just after ITIMER_REAL was read: how much time
    #: passed between two readings is bounded from below by ``later.read_from - earlier.read_by``.
    read_from: float = 0.0
    read_by: float = 0.0
    #: The stall counters when the state was taken: a timer handed back by a thread that
    #: was kept from running between reading the clock and arming it comes back late by that.
    stalls: Optional[Mark] = None


#: Allowed between a timer's two readings beyond what the time between them explains:
#: getitimer and setitimer round to microseconds; a timer pushed later by a scope slips by
#: the time spent in it, milliseconds at least.  Added to it: the stalls measured
#: between the two readings (``stalls``), which a correct hand-back can suffer.
ROUNDING_S = 0.001


def take() -> SignalState:
    """Every catchable signal's handler, this thread's mask, and ITIMER_REAL."""
    handlers = []
    for sig in range(1, signal.NSIG):
        if sig in _UNCATCHABLE:
            continue
        try:
            handlers.append((sig, signal.getsignal(sig)))
        except (ValueError, OSError):
            continue
    mask = frozenset(int(s) for s in signal.pthread_sigmask(signal.SIG_BLOCK, []))
    read_from = time.monotonic()
    itimer = signal.getitimer(signal.ITIMER_REAL)
    return SignalState(tuple(handlers), mask, itimer, read_from, time.monotonic(), mark())


def signal_name(sig: int) -> str:
    """``SIGUSR1``; real-time signals have no enum member, so ``SIGRTMIN+3``."""
    try:
        return signal.Signals(sig).name
    except ValueError:
        rtmin = int(getattr(signal, "SIGRTMIN", 0))
        return f"SIGRTMIN+{sig - rtmin}" if rtmin and sig >= rtmin else f"signal {sig}"


def _show(handler: Any) -> str:
    return getattr(handler, "__qualname__", None) or repr(handler)


def stalled_s(before: SignalState, after: SignalState) -> float:
    """Seconds the taking thread was measurably kept from running between the two states."""
    return before.stalls.stalled_s(after.stalls) if before.stalls and after.stalls else 0.0


def changes(before: SignalState, after: SignalState) -> List[str]:
    """What differs, one readable line each; empty when the state was restored.

    ITIMER_REAL counts down, so a timer armed before is judged by its interval
    and by not having been pushed later: it may read at most what it read before,
    less the time that surely passed between the two readings (plus rounding, plus the
    time the thread was measurably kept from running: ``stalls``), and
    it may be gone only if it can have expired meanwhile; one that was not armed
    must not be.
    """
    found: List[str] = []
    old = dict(before.handlers)
    for sig, handler in after.handlers:
        if old.get(sig) is not handler and old.get(sig) != handler:
            found.append(f"handler of {signal_name(sig)} is {_show(handler)}, was {_show(old.get(sig))}")
    found += [f"{signal_name(s)} left blocked" for s in sorted(after.mask - before.mask)]
    found += [f"{signal_name(s)} left unblocked" for s in sorted(before.mask - after.mask)]
    (was, was_every), (now, now_every) = before.itimer_real, after.itimer_real
    allowed = ROUNDING_S + stalled_s(before, after)
    if was == 0 and now > 0:
        found.append(f"ITIMER_REAL left armed ({now:.6f} s left, interval {now_every:g} s)")
    elif was > 0 and (now > was or now_every != was_every):
        found.append(f"ITIMER_REAL changed from ({was:.6f}, {was_every:g}) to ({now:.6f}, {now_every:g})")
    elif was > 0 and was_every == 0 and now == 0 and was > (after.read_by - before.read_from) + ROUNDING_S:
        # Gone, yet it had more time left than can have passed: disarmed, not expired.
        found.append(f"ITIMER_REAL disarmed: {was:.6f} s were left, and at most "
                     f"{after.read_by - before.read_from:.6f} s passed")
    elif was > 0 and was_every == 0 and now > max(0.0, was - (after.read_from - before.read_by)) + allowed:
        passed = after.read_from - before.read_by
        found.append(f"ITIMER_REAL pushed later: {was:.6f} s left, and {now:.6f} s left at least "
                     f"{passed:.6f} s later (allowed {allowed * 1000:.3f} ms: rounding, and stalls seen)")
    return found
