"""What one example produced, and how a failure reads.

:class:`Role` is what :meth:`Case.run <ipc_specs.harness.run.Case.run>` is given: one
process (or thread) of an example.  :class:`Outcome` is what it returns: each role's
result and the merged history, and the violation a role that did not finish normally
becomes, naming the role whose failure came first.  The exceptions carry a verdict
through Hypothesis (a hang, a broken API, a spent shrinking budget), and the helpers
read a dead or hung worker's output: its last words and where it was stuck.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

from ..invariant import Violation
from . import history as hist
from .guard import BackendError
from .holders import HOLDERS_MARK
from .placements import RoleOutcome
from .worker import EXITS, HANG_MARKERS


@dataclass(frozen=True)
class Role:
    """One process (or thread) of an example: ``fn(proc, *args)`` runs in a worker."""

    proc: str
    fn: Callable[..., Any]
    args: Tuple[Any, ...] = ()
    opens: bool = True  # False: the role holds no endpoint, so it drops inherited ones at once
    #: May be the victim of the ``kills`` fault; it must call ``proc.arm_kill()``.
    killable: bool = False
    #: How the worker ends once its result is written (see ``worker.EXITS``): "" as always
    #: (``os._exit``, unannounced); "_exit" or "normal" also signal ``exited-<proc>`` once done,
    #: and "normal" first runs what a normal interpreter exit would (fork placement only).
    exit: str = ""

    def __post_init__(self) -> None:
        if self.exit not in EXITS:
            raise ValueError(f"Role {self.proc}: exit={self.exit!r}, expected one of {EXITS}")


class ApiBroken(BaseException):
    """Carries a :class:`BackendError` through Hypothesis without replays or shrinking:
    a backend whose setup hangs or returns no usable channel fails every example alike."""

    def __init__(self, error: BackendError) -> None:
        super().__init__(str(error))
        self.error = error


class HangFound(BaseException):
    """Raised through Hypothesis to stop at the first hang instead of shrinking.

    Every shrink step of a hanging example would cost a whole deadline; the
    first hanging example is reported as found (Hypothesis draws small ones first).
    """

    def __init__(self, violation: Violation) -> None:
        super().__init__(str(violation))
        self.violation = violation


class ShrinkBudgetSpent(BaseException):
    """Raised through Hypothesis when shrinking has used :data:`SHRINK_BUDGET_S`: the
    last failing example is the best (smallest) one found so far (a shrinker accepts
    only smaller failing examples), so that one is reported."""

    def __init__(self, violation: Violation, drawn: Dict[str, Any], spent_s: float) -> None:
        super().__init__(str(violation))
        self.violation = violation
        self.drawn = drawn
        self.spent_s = spent_s


@dataclass
class Outcome:
    invariant: str
    roles: Dict[str, RoleOutcome]
    history: hist.History
    #: The role drawn to be SIGKILLed by the ``kills`` fault, if any (it may have finished first).
    victim: Optional[str] = None

    def value(self, proc: str) -> Any:
        """The role's return value; a role that did not finish normally is a violation."""
        r = self.roles[proc]
        if r.status != "ok":
            raise self.violation_for(proc, expected="every operation of the example to succeed")
        return r.value

    def values(self) -> Dict[str, Any]:
        return {p: self.value(p) for p in self.roles}

    def violation_for(self, proc: str, *, expected: str) -> Violation:
        """``proc`` did not finish normally; the violation names the role whose failure came
        first (see :meth:`culprit`), not a peer that failed only because it was left waiting."""
        culprit = self.culprit(proc)
        got, call, detail = self._failure(culprit)
        focus = self.history.of(culprit)[-3:]
        if culprit != proc:
            own, _, _ = self._failure(proc)
            got += f" (first; then {own})"
            focus = focus + self.history.of(proc)[-2:]
        return Violation(self.invariant, got=got, expected=expected, call=call,
                         history=self.history.format(self.setups(focus) + focus) + detail)

    def culprit(self, proc: str) -> str:
        """Of the roles that raised, died or exited early, the one that did so first (by its
        last event); ``proc`` itself if it did so first or none did."""
        failed = {p: self._failed_at(p) for p, r in self.roles.items() if r.status in ("raised", "crashed", "exited")}
        if not failed or (proc in failed and failed[proc] <= min(failed.values())):
            return proc
        return min(failed, key=lambda p: failed[p])

    def _failed_at(self, proc: str) -> int:
        events = self.history.of(proc)
        fails = [e for e in events if e.phase == hist.FAIL]
        return (fails[-1] if fails else events[-1]).t_ns if events else self.history.t0_ns

    def setups(self, focus: Sequence[hist.Event]) -> List[hist.Event]:
        """What the other processes did last before the failure shown by ``focus``: the event
        that set it up (a close before an early EOF, a signal, a kill armed) often is theirs."""
        if not focus:
            return []
        shown = {e.proc for e in focus}
        before = min(e.t_ns for e in focus)
        picked: Dict[Tuple[str, str], hist.Event] = {}
        invoked: Dict[str, List[str]] = {}
        for e in self.history.events:
            if e.proc in shown or e.t_ns > before:
                continue
            picked[(e.proc, "last")] = e  # its latest event, a note maybe (a signal, a kill armed)
            if e.phase == hist.INVOKE:
                invoked.setdefault(e.proc, []).append(e.op)
            elif invoked.get(e.proc) and invoked[e.proc][-1] == e.op:
                invoked[e.proc].pop()
                picked[(e.proc, "call")] = e  # and the return of its latest call (a close, a send)
        return sorted(set(picked.values()), key=lambda e: e.t_ns)

    def _failure(self, proc: str) -> Tuple[str, str, str]:
        """``(got, call, detail)`` for a role that did not finish normally."""
        r = self.roles[proc]
        pending = self.history.pending(proc)
        events = self.history.of(proc)
        # The call that raised, not a note the harness added after it (the interrupt
        # storm's count, say): a role that raised has its failing call's FAIL event last.
        failed = [e for e in events if e.phase == hist.FAIL]
        call = pending.op if pending else (failed[-1].op if failed and r.status == "raised"
                                           else events[-1].op if events else "start")
        detail = f"\n{proc} traceback:\n{_tail(r.traceback)}" if r.traceback else ""
        if r.status in ("crashed", "exited") and r.output.strip():
            detail += f"\n{proc} output:\n{last_words(r.output)}"
        return f"{proc} {r.describe()}" + (f" in {call}" if pending else ""), call, detail


def hung_stack(output: str, lines: int = 14) -> str:
    """The frames faulthandler dumped at the deadline, innermost first, for the main thread."""
    starts = [output.rfind(m) for m in HANG_MARKERS if m in output]
    dump = output[max(starts):] if starts else output
    # With several threads faulthandler lists the others first and then the one that
    # took the signal, the main thread (helper threads such as the interrupt storm's
    # run with signals blocked): that is where the role is stuck.
    current = dump.find("Current thread ")
    if current >= 0:
        dump = dump[current:].split("\nThread 0x", 1)[0]
    frames = [ln for ln in dump.splitlines() if ln.strip().startswith("File ")]
    # The harness's own frames (and Hypothesis's) say nothing about where the backend hung.
    own = [ln for ln in frames if not any(m in ln for m in _OWN_FRAMES)]
    return "\n".join((own or frames)[:lines]) or (
        "(no stack: the worker never started its body, or it blocked or handled SIGABRT)")


# The harness by its own directory, not any path with "/harness/" in it (a checkout may sit in one).
_OWN_FRAMES = (os.path.dirname(os.path.abspath(__file__)) + os.sep, f"{os.sep}hypothesis{os.sep}", "<frozen ",
               f"{os.sep}multiprocessing{os.sep}", f"{os.sep}_pytest{os.sep}", f"{os.sep}pluggy{os.sep}")


def _tail(text: str, lines: int = 12) -> str:
    return "\n".join(text.rstrip().splitlines()[-lines:])


def last_words(output: str) -> str:
    """What a process that died wrote: when a fatal signal made faulthandler dump its stack,
    the last lines it printed before, the error line and the innermost frames (the dump's
    own tail is the outermost frames, the test runner's, which say nothing).  For role
    workers here, and for the runner ``ipc_conformance.contain`` forks for the checks."""
    at = output.rfind("Fatal Python error")
    if at < 0:
        return _tail(output)
    before = _tail(output[:at], lines=4)
    dump = output[at:]
    return "\n".join(filter(None, [before, dump.splitlines()[0], "innermost frames first:", hung_stack(dump, lines=8)]))


def holders_note(output: str) -> str:
    """The lines placements wrote into a hung worker's output before aborting it: who
    still holds the write end of the pipe it was reading (see holders.py)."""
    lines = [ln[len(HOLDERS_MARK):].strip() for ln in output.splitlines() if ln.startswith(HOLDERS_MARK)]
    return "".join(f"\n{ln}" for ln in lines)
