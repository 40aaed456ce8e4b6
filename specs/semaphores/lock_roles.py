"""Role bodies for the losers' example: a holder of every unit, contenders that fail and
end (a stray release where it must be refused, a close, an exit of either kind), and a
third process that tries once they are gone.  Module-level, for spawned workers."""

from __future__ import annotations

from typing import Sequence, Tuple

from ..harness.worker import Proc
from .roles import acquire_by, announces_failure, give_back, wait_or_fail


@announces_failure
def hold_all_until(proc: Proc, units: int, event: str) -> None:
    h = proc.open("open")
    for _ in range(units):
        h.acquire()
    proc.signal("held")
    wait_or_fail(proc, event)
    give_back(h, units)
    proc.signal("released")
    h.close()


@announces_failure
def lose_then_end(proc: Proc, mode: str, wait_ms: int, stray_release: bool) -> bool:
    """One failed try or timed acquire; then (``stray_release``) a release of nothing, which
    the backend must refuse; then close.  How the process ends is the Role's ``exit``."""
    h = proc.open("open")
    wait_or_fail(proc, "held")
    got = acquire_by(h, mode, wait_ms)
    if got:
        proc.note("inside")
    elif stray_release:
        try:
            h.release()
        except Exception:  # noqa: BLE001  (recorded in the history: a refusal is what must happen)
            pass
    h.close()
    return got


@announces_failure
def third_after_losers(proc: Proc, losers: Sequence[str], units: int) -> Tuple[bool, bool]:
    """Once every loser has ended: a try (the holder still has every unit), then a try
    after the holder released."""
    early = proc.open("open")  # in the thread placement the parent detaches once every role has opened
    for name in losers:
        wait_or_fail(proc, f"exited-{name}")
    h = proc.open("open")  # and a handle opened afresh, as a newcomer's would be
    early.close()
    first = bool(h.try_acquire())
    if first:
        h.release()
    proc.signal("third-tried")
    wait_or_fail(proc, "released")
    after = bool(h.try_acquire()) if units else False
    if after:
        h.release()
    h.close()
    return first, after
