"""A reference whole-second timeout: nesting-aware scopes armed with ``alarm(2)``.

alarm() takes whole seconds, so this backend claims no ``sub_second``, and the checks
judge it on whole-second durations only; it is here to show that those whole-second
paths pass a correct backend, not only fail broken ones.  It is the setitimer reference
(:mod:`ipc_impls.timeouts`: a stack of absolute deadlines, one timer armed for the
earliest, the caller's handler and timer handed back) with one change, how the timer
is armed:

* ``alarm(ceil(left))``, never ``alarm(int(left))``: after an inner scope of one second
  inside an outer one of two, the outer one has 0.99… s left, and ``int()`` would give
  alarm(0), which cancels instead of arming (alarm(2)).  Rounding up, an expiry comes at
  most a second late and never early; one that comes before the deadline it was armed
  for (it cannot, but the reference handles a stale SIGALRM anyway) re-arms.
* a deadline already due cannot be armed (alarm(0) cancels), so it is delivered at once
  with a SIGALRM sent to the process itself.

The caller's own ITIMER_REAL is still saved and handed back with setitimer, as the
reference does: alarm() would round a sub-second caller timer to whole seconds, and
alarm and setitimer share the one timer (alarm(2), getitimer(2)), so the caller's
deadline is kept exactly.  ``cancel()`` returns the time left by the scope's own
monotonic deadline, not alarm()'s rounded seconds, so ``cancel`` is claimed.
"""

from __future__ import annotations

import math
import os
import signal
import time
from typing import FrozenSet

from ipc_specs.timeouts import protocol as p

from .timeouts import ItimerTimeouts, ItimerTimeoutsBackend


class AlarmTimeouts(ItimerTimeouts):
    """The nesting-aware scopes of :class:`ItimerTimeouts`, the timer armed with alarm()."""

    def _arm(self) -> None:
        deadlines = [s.deadline for s in self._live()] + ([self.outer] if self.outer is not None else [])
        if not deadlines:
            signal.alarm(0)
            return
        left = min(deadlines) - time.monotonic()
        if left > 0:
            signal.alarm(math.ceil(left))
        else:
            # Due already: delivered now (in bookkeeping, the handler defers it to its end).
            os.kill(os.getpid(), signal.SIGALRM)


class AlarmTimeoutsBackend(ItimerTimeoutsBackend):
    name = "alarm-timeouts"
    capabilities: FrozenSet[str] = frozenset({p.INTERRUPTS_BLOCKING, p.NESTING, p.CANCEL})
    factory: type = AlarmTimeouts


BACKENDS = [AlarmTimeoutsBackend()]
