"""The harness: run one example's roles in a placement and judge the outcome.

A :class:`Harness` lives for a session (it owns the private root directory and
the warm worker pools).  A :class:`Case` binds it to one backend, invariant and
placement; checks receive the case and call :meth:`Case.explore` to let
Hypothesis draw examples and :meth:`Case.run` to execute one.
"""

from __future__ import annotations

import ast
import os
import re
import time
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import hypothesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from hypothesis.errors import Flaky
from hypothesis.reporting import default as default_reporter
from hypothesis.reporting import with_reporter

from ..backend import NAMED_ONLY_PLACEMENTS, validate_channel
from ..invariant import Invariant, Unsupported, Violation, get_invariant
from . import history as hist
from .deadlines import (
    ADAPTIVE_AFTER,
    ADAPTIVE_DRAWN_FACTOR,
    ADAPTIVE_EARLY_FLOOR_S,
    ADAPTIVE_FLOOR_S,
    ADAPTIVE_PASS_FACTOR,
)
from .deadlines import longest_drawn_s as longest_drawn_s  # re-exported: checks bound their runs with these
from .deadlines import patience as patience
from .faults import INTERRUPT_PERIODS_US, INTERRUPTS, KILL_DELAYS_MS, KILL_PLACEMENTS, KILLS, PLACEMENTS_OF
from .guard import BackendCrashed as BackendCrashed  # defined there (placements needs it too)
from .guard import BackendError, ParentHang, parent_guard
from .inherit import FRESH_EXAMPLES, run_inheriting
from .inherit import prepare as prepare_start_method
from .interrupts import raise_if_interrupted
from .outcome import ApiBroken, HangFound, Outcome, ShrinkBudgetSpent, holders_note, hung_stack
from .outcome import Role as Role  # re-exported: Case.run takes them
from .placements import PLACEMENTS, RoleOutcome, run_forked, run_threaded, settle_forked
from .pool import Pool
from .probe import probe_parent_calls
from .resources import ResourceRoot, Scope, adopt_multiprocessing_tempdir
from .stillness import Stillness, window_for
from .worker import RoleTask

#: Hypothesis examples per check for each profile; choose with ``--ipc-profile`` or ``IPC_PROFILE``.
PROFILES: Dict[str, Dict[str, Any]] = {
    # The default: deep enough that a pass means something (the README says how long it takes).
    "standard": {"max_examples": 25},
    # A first look: a few examples per check.
    "fast": {"max_examples": 8},
    # CI: as many examples as fast, but the same ones every run (derandomized), so a red
    # CI run is about the code, and exploring new examples is left to fast and thorough.
    "ci": {"max_examples": 10, "derandomize": True},
    "thorough": {"max_examples": 150},
}
DEFAULT_DEADLINE_S = 10.0
#: The wiring whose channel is handed to each worker at its start (see inherit.py).
PROCESS_ARG = "process-arg"
#: The name the interrupt fault has among an example's drawn values (in microseconds).
INTERRUPT_KEY = "interrupt_every_us"
#: ... and the kills fault's: None, or (victim index among the killable roles, delay in ms).
KILL_KEY = "kill"
#: Per fault: its key among the drawn values, its strategy, and its value for "no fault".
_FAULT_DRAWS: Dict[str, Tuple[str, st.SearchStrategy[Any], Any]] = {
    INTERRUPTS: (INTERRUPT_KEY, st.sampled_from(INTERRUPT_PERIODS_US), 0),
    KILLS: (KILL_KEY, st.none() | st.tuples(st.integers(0, 7), st.sampled_from(KILL_DELAYS_MS)), None),
}
_FAULT_DRAWS_BY_KEY = {key: draw for key, draw, _ in _FAULT_DRAWS.values()}
FAULT_KEYS = tuple(_FAULT_DRAWS_BY_KEY)
#: Replays of a failing minimal example, to tell FAIL (every replay fails) from FLAKY.
DEFAULT_REPLAYS = 3
#: Seconds of shrinking a failure may take (from the first failing example) before the
#: best example found so far is reported as it is, with a note: well inside Hypothesis's
#: own five minutes, so that a failure whose examples each take seconds ends in seconds.
SHRINK_BUDGET_S = 15.0
#: What a worker process may allocate: far above any check's needs, far below the machine's RAM.
DEFAULT_WORKER_MEMORY_MIB = 2048



_BLOB = re.compile(r"@reproduce_failure\('([^']+)', (b'[^']*')\)")


class _Reporter:
    """Hypothesis's reporter, minus its advice to decorate a test function: checks run
    inside an inner function the user cannot decorate.  The failure blob it prints is
    kept instead, for a reproduce line that replays the example anywhere (``--ipc-replay``)."""

    def __init__(self) -> None:
        self.blob = ""

    def __call__(self, text: object) -> None:
        line = str(text)
        found = _BLOB.search(line)
        if found:
            self.blob = ast.literal_eval(found.group(2)).decode("ascii")
            return
        if line.startswith(("You can reproduce this", "You can add @seed")):
            return
        default_reporter(text)


def _take_blob(exc: BaseException) -> str:
    """Remove Hypothesis's "you can reproduce this … @reproduce_failure(…)" note from
    ``exc`` (newer versions attach it as a note rather than print it); return its blob."""
    notes = getattr(exc, "__notes__", None)
    if not notes:
        return ""
    blob = ""
    for note in list(notes):
        found = _BLOB.search(str(note))
        if found:
            blob = ast.literal_eval(found.group(2)).decode("ascii")
            notes.remove(note)
    return blob


class Harness:
    """Session-wide state: resources, warm pools, deadline and profile."""

    def __init__(self, *, deadline_s: float = DEFAULT_DEADLINE_S, profile: str = "standard",
                 root_parent: Optional[str] = None, shrink: bool = True, replays: int = DEFAULT_REPLAYS,
                 worker_memory_mib: int = DEFAULT_WORKER_MEMORY_MIB, faults: bool = True, replay: str = "",
                 early_hangs: bool = True, shrink_budget_s: float = SHRINK_BUDGET_S) -> None:
        if profile not in PROFILES:
            raise ValueError(f"unknown profile {profile!r}; expected one of {sorted(PROFILES)}")
        if deadline_s <= 0:
            raise ValueError(f"deadline must be positive, got {deadline_s}")
        if replays < 0:
            raise ValueError(f"replays must be 0 or more, got {replays}")
        if worker_memory_mib < 0:
            raise ValueError(f"worker memory must be 0 (no cap) or more MiB, got {worker_memory_mib}")
        self.deadline_s = deadline_s
        self.profile = profile
        self.shrink = shrink  # off only where the verdict matters, not the minimal example
        #: How often a failing minimal example is run again to tell FAIL from FLAKY.
        self.replays = replays
        #: Private memory a worker process may allocate on top of its start size (0: no cap).
        self.worker_memory = worker_memory_mib << 20
        #: Draw the faults invariants opt in to (``harness.faults``); off, only their own data.
        self.faults = faults
        #: A Hypothesis failure blob: every check runs exactly that example (one check at a time).
        self.replay = replay
        #: Call a hang as soon as every process sleeps with nothing able to wake it
        #: (stillness.py), not only at the deadline.  Off: the deadline alone.
        self.early_hangs = early_hangs
        #: Seconds of shrinking after the first failure before the best example so far is reported.
        self.shrink_budget_s = shrink_budget_s
        self.root = ResourceRoot(root_parent)
        self._pools: Dict[str, Pool] = {}
        #: Per backend name: None, or what its first setup/teardown did in a probe process.
        self._probed: Dict[str, Optional[Tuple[str, str]]] = {}

    def probe(self, backend: Any) -> None:
        """Raise :class:`BackendCrashed` (or :class:`ParentHang`) if ``setup``/``teardown``
        kill or block the process that calls them; found once per backend, in a probe
        process (``probe.py``), so that the parent never makes a call that would kill it."""
        if backend.name not in self._probed:
            self._probed[backend.name] = probe_parent_calls(backend, self.root, self.deadline_s)
        found = self._probed[backend.name]
        if found is not None:
            kind, what = found
            raise (ParentHang if kind == "hang" else BackendCrashed)(f"{backend.name}: {what}")

    def pool(self, method: str) -> Pool:
        if method not in self._pools:
            adopt_multiprocessing_tempdir()  # before the forkserver makes its socket
            prepare_start_method(method)
            self._pools[method] = Pool(method)
        return self._pools[method]

    def case(self, backend: Any, invariant_id: str, placement: str = "fork") -> Case:
        return Case(self, backend, get_invariant(invariant_id), placement)

    def persistent(self) -> tuple[frozenset[int], frozenset[int]]:
        """Pids and fds the harness keeps across examples on purpose (warm workers)."""
        pids: set[int] = set()
        fds: set[int] = set()
        for pool in self._pools.values():
            for proc, _ in pool.idle:
                pids.add(proc.pid)
                fds.update(pool.owned_fds.get(proc.pid, ()))
        return frozenset(pids), frozenset(fds)

    def settle(self) -> None:
        """Reap forked workers that were still exiting after their example (see
        :func:`~.placements.settle_forked`); call before counting child processes."""
        settle_forked()

    def close(self) -> List[str]:
        settle_forked()
        for pool in self._pools.values():
            pool.close()
        self._pools.clear()
        return self.root.close()


class Case:
    """A harness bound to one (backend, invariant, placement)."""

    def __init__(self, harness: Harness, backend: Any, invariant: Invariant, placement: str) -> None:
        if placement not in PLACEMENTS:
            raise ValueError(f"unknown placement {placement!r}; expected one of {PLACEMENTS}")
        self.harness = harness
        self.backend = backend
        self.invariant = invariant
        self.placement = placement
        self.example: Dict[str, Any] = {}
        self.examples_run = 0
        #: The drawn faults of the current example (see faults.py): 0 and None are none.
        self.interrupt_period_s = 0.0
        self.kill: Optional[Tuple[int, int]] = None  # (victim index among killable roles, delay ms)
        #: Hypothesis's failure blob of the last failing example (see ``--ipc-replay``).
        self.blob = ""
        #: The deadline of the current run (``run(deadline=)`` or the harness's), and its watch.
        self.run_deadline_s = harness.deadline_s
        self._asked_s: Optional[float] = None
        self.stillness = Stillness(window_for(harness.deadline_s), enabled=False)
        #: Passing examples of this check so far, and the slowest run among them (seconds).
        self.passing = 0
        self.slowest_pass_s = 0.0
        self._runs_s: List[float] = []  # the runs of the current example

    @property
    def capabilities(self) -> frozenset[str]:
        return frozenset(self.backend.capabilities)

    def claims(self, capability: str) -> bool:
        return capability in self.capabilities

    def require(self, *capabilities: str) -> None:
        missing = [c for c in capabilities if c not in self.capabilities]
        if missing:
            raise Unsupported(f"backend does not claim {', '.join(missing)}")

    # --- Hypothesis -----------------------------------------------------------------
    def explore(self, body: Callable[..., None], *, scale: float = 1.0,
                examples: Sequence[Dict[str, Any]] = (), pinned: Sequence[Dict[str, Any]] = (),
                **strategies: st.SearchStrategy) -> None:
        """Run ``body(**drawn)`` on examples Hypothesis draws from ``strategies``.

        ``pinned`` are the known-hard shapes the invariant is about (a payload at
        PIPE_BUF and PIPE_BUF + 1, capacity and capacity + 1, a message at the
        maximum size, zero length…), run first in every profile, before any random
        example (Hypothesis's ``@example``), so that the common bugs are found by
        the first examples.  Each is a dict of the body's keyword values; a value may
        be a callable, called with this case when the check runs (kernel limits are
        read at run time).  A pinned example that names no fault runs without one.
        ``examples`` is the older name of the same thing.
        """
        examples = list(examples) + [{k: (v(self) if callable(v) else v) for k, v in pin.items()} for pin in pinned]
        options = dict(PROFILES[self.harness.profile])
        options["max_examples"] = max(1, int(options["max_examples"] * scale))
        if self.backend.wiring == PROCESS_ARG and self.placement in FRESH_EXAMPLES:  # a process per role
            options["max_examples"] = min(options["max_examples"], FRESH_EXAMPLES[self.placement])
        # Hypothesis's explain phase reruns the failing example to point at lines "always run
        # by failing examples": here always the check's own expect(), never the backend (which
        # runs in other processes), so it costs time and misleads.  The phases of the settings
        # profile in force are kept otherwise (a caller's profile may drop shrinking too).
        in_force = settings.default.phases if settings.default is not None else tuple(Phase)
        options["phases"] = [p for p in in_force
                             if p is not Phase.explain and (self.harness.shrink or p is not Phase.shrink)]

        # Faults drawn here, with the value a pinned example gets unless it names one.
        drawn = {key: none for fault, (key, _, none) in _FAULT_DRAWS.items()
                 if self.harness.faults and fault in self.invariant.faults and self.placement in PLACEMENTS_OF[fault]}
        strategies = dict(strategies, **{key: _FAULT_DRAWS_BY_KEY[key] for key in drawn})
        examples = [{**drawn, **{k: v for k, v in pin.items() if k not in FAULT_KEYS or k in drawn}}
                    for pin in examples]

        failing: Dict[str, Any] = {}  # the first failure's time, the last failing example

        def example(**drawn: Any) -> None:
            if failing and time.monotonic() - failing["at"] > self.harness.shrink_budget_s:
                raise ShrinkBudgetSpent(failing["violation"], failing["drawn"], time.monotonic() - failing["at"])
            self.example = drawn
            if not failing:  # the examples a verdict rests on: shrinking steps are not more evidence
                self.examples_run += 1
            self._runs_s = []
            try:
                self._call(body, drawn)
            except Violation as violation:
                failing.setdefault("at", time.monotonic())
                failing.update(violation=violation, drawn=drawn)
                raise
            self.passing += 1  # only a passing example teaches how long this check needs
            self.slowest_pass_s = max([self.slowest_pass_s] + self._runs_s)

        for values in reversed(examples):
            example = hypothesis.example(**values)(example)
        example = given(**strategies)(example)
        example = settings(deadline=None, print_blob=True, report_multiple_bugs=False,
                           suppress_health_check=list(HealthCheck), **options)(example)

        # One database entry per backend/invariant/placement, so a counterexample
        # found for one backend is replayed for that backend only.
        key = f"{self.backend.name}/{self.invariant.id}/{self.placement}".encode()
        example._hypothesis_internal_add_digest = key  # type: ignore[attr-defined]
        if self.harness.replay:  # exactly the example a failure blob describes, no search
            example = hypothesis.reproduce_failure(hypothesis.__version__, self.harness.replay.encode())(example)
        reporter = _Reporter()
        try:
            with with_reporter(reporter):
                try:
                    example()
                finally:
                    self.blob = reporter.blob
        except HangFound as found:
            shown = ", ".join(f"{k}={v!r}" for k, v in self.example.items())
            found.violation.args = (f"{found.violation.args[0]}\nHanging example (not shrunk): {shown}",)
            # Each replay of a hang costs a whole deadline: one tells a hang from a stall.
            raise self._replay(found.violation, body, min(1, self.harness.replays)) from None
        except ApiBroken as broken:
            raise broken.error from None
        except ShrinkBudgetSpent as spent:
            self.example = spent.drawn
            shown = ", ".join(f"{k}={v!r}" for k, v in spent.drawn.items())
            spent.violation.args = (f"{spent.violation.args[0]}\nBest example after {spent.spent_s:.0f}s of shrinking "
                                    f"(the shrink budget; it may not be minimal): {shown}",)
            self.blob = ""  # Hypothesis printed none: the reproduce line cannot replay it exactly
            raise self._replay(spent.violation, body, self._replays_for(spent.violation)) from None
        except Violation as violation:
            self.blob = _take_blob(violation) or self.blob
            raise self._replay(violation, body, self._replays_for(violation)) from None
        except Flaky as flaky:
            for inner in getattr(flaky, "exceptions", ()):
                self.blob = _take_blob(inner) or self.blob
            unflaked = _unflake(flaky, self.invariant.id)
            if not isinstance(unflaked, Violation):
                raise unflaked from flaky
            # Hypothesis prints no failing case for an example that did not fail again
            # (nor shrinks it): without it a FLAKY verdict could not be reproduced.
            shown = ", ".join(f"{k}={v!r}" for k, v in self.example.items())
            unflaked.args = (f"{unflaked.args[0]}\nFailing test case (as drawn, not shrunk: it did not fail "
                             f"again): example({shown})",)
            raise self._replay(unflaked, body, self.harness.replays) from None

    def _replays_for(self, violation: Violation) -> int:
        # Each replay of a hang costs a wait: one tells a hang from a stall.
        return min(1, self.harness.replays) if violation.hang else self.harness.replays

    def _call(self, body: Callable[..., None], drawn: Dict[str, Any]) -> None:
        """Run ``body`` on one drawn example; the drawn fault is the harness's to apply."""
        args = dict(drawn)
        self.interrupt_period_s = args.pop(INTERRUPT_KEY, 0) / 1e6
        self.kill = args.pop(KILL_KEY, None)
        body(**args)

    def _replay(self, violation: Violation, body: Callable[..., None], runs: int) -> Violation:
        """Run the minimal example ``runs`` more times: FAIL if each run fails, else FLAKY.

        A conformance verdict must not hinge on one unlucky schedule, and a
        backend that fails one time in three is not "passing" either: the rate
        tells the two apart.  Any failure counts, not only this invariant's.
        """
        if runs == 0:
            violation.blob = self.blob
            return violation.replayed(0, 0)
        drawn = dict(self.example)
        failed = 0
        for _ in range(runs):
            try:
                self._call(body, drawn)
            except (Exception, HangFound, ApiBroken):
                failed += 1
        violation.blob = self.blob
        return violation.replayed(failed, runs)

    # --- one example ------------------------------------------------------------------
    def run(self, roles: Sequence[Role], *, channel_setup: Optional[Callable[[Any], None]] = None,
            deadline: Optional[float] = None) -> Outcome:
        """Set up a fresh channel, run ``roles`` in this case's placement, tear down.

        ``deadline`` (seconds; see :func:`patience`) is this run's own bound, derived
        from the example's parameters (a generous multiple of the timeout it drew) for
        an outcome that needs waiting.  Longer than the harness's deadline, it replaces
        it (one long blocking example).  Shorter, it is where a run whose roles are all
        asleep and record nothing is called hung (the adaptive deadline's test, see
        :meth:`_adaptive_s`), while a role that runs is still given the harness's whole
        deadline: a loaded machine, which leaves a role runnable, cannot make a pass a
        hang.  Either way a hang is also called as soon as every role sleeps in a wait
        no timer ends (stillness.py).
        """
        raise_if_interrupted()
        if deadline is not None and deadline <= 0:
            raise ValueError(f"deadline must be positive, got {deadline}")
        self.run_deadline_s = self.harness.deadline_s if deadline is None else max(deadline, self.harness.deadline_s)
        self._asked_s = deadline
        root = self.harness.root
        scope = root.scope()
        scope.start_method = self.placement if self.placement in NAMED_ONLY_PLACEMENTS else "fork"
        channel = None
        try:
            try:
                self.harness.probe(self.backend)
                with parent_guard(self.harness.deadline_s, f"{self.backend.name}.setup()"):
                    channel = self.backend.setup(scope)
                problems = validate_channel(self.backend.kind, channel)
                if problems:
                    raise BackendError("; ".join(problems))
            except BackendError as exc:
                raise ApiBroken(exc) from exc
            if channel_setup is not None:
                channel_setup(channel)
            victim = self._victim(roles)
            t0 = time.monotonic_ns()
            tasks = [
                RoleTask(r.proc, r.fn, r.args, channel, scope.directory,
                         "pool" if self.placement in ("spawn", "forkserver") else self.placement,
                         self.run_deadline_s, r.opens, self.harness.worker_memory,
                         interrupt_period_s=self.interrupt_period_s,
                         kill_after_s=self.kill[1] / 1000 if self.kill and r.proc == victim else -1.0,
                         exit=r.exit)
                for r in roles
            ]
            outcomes = self._dispatch(tasks, channel)
            per_proc = {t.proc: hist.load(t.proc, t.file("hist")) for t in tasks}
            outcome = Outcome(self.invariant.id, outcomes, hist.History(per_proc, t0), victim)
        finally:
            problems = self._teardown(channel, scope)
        hung = [p for p, r in outcome.roles.items() if r.status == "hung"]
        if hung and self.stillness.called:
            # Called in a second or a few, not at the deadline: cheap enough to shrink
            # like any failure (within the shrink budget).
            raise self._hang_violation(outcome, hung)
        if hung:
            raise HangFound(self._hang_violation(outcome, hung))
        if problems:
            raise RuntimeError(f"cleanup failed: {problems}")
        return outcome

    def _victim(self, roles: Sequence[Role]) -> Optional[str]:
        """The role the drawn ``kills`` fault picks, if any."""
        killable = [r.proc for r in roles if r.killable]
        if self.kill is None or not killable or self.placement not in KILL_PLACEMENTS:
            return None
        return killable[self.kill[0] % len(killable)]

    def _dispatch(self, tasks: List[RoleTask], channel: Any) -> Dict[str, RoleOutcome]:
        deadline = self.run_deadline_s
        asked = self._asked_s
        adaptive = self._adaptive_s() if asked is None else (asked if asked < deadline else None)
        self.stillness = Stillness(window_for(deadline if adaptive is None else adaptive),
                                   enabled=self.harness.early_hangs, lenient_after=adaptive,
                                   history_paths=[t.file("hist") for t in tasks])
        start = time.monotonic()
        if self.placement == "fork":
            outcomes = run_forked(tasks, channel, deadline, self.stillness)
        elif self.placement == "thread":
            outcomes = run_threaded(tasks, channel, deadline, self.stillness)
        elif self.backend.wiring == PROCESS_ARG:  # fresh workers, the channel among their arguments
            adopt_multiprocessing_tempdir()  # before the forkserver makes its socket
            try:
                outcomes = run_inheriting(tasks, channel, deadline, self.placement)
            except BackendError as exc:
                raise ApiBroken(exc) from exc
        else:
            outcomes = self.harness.pool(self.placement).run(tasks, channel, deadline, self.stillness)
        self._runs_s.append(time.monotonic() - start)
        return outcomes

    def _adaptive_s(self) -> Optional[float]:
        """The adaptive deadline of the next run, or None (the deadline alone).

        A run whose roles are all asleep and record nothing is called hung at the
        largest of: a floor (``ADAPTIVE_EARLY_FLOOR_S``, and ``ADAPTIVE_FLOOR_S`` once
        ``ADAPTIVE_AFTER`` examples of this check passed), ``ADAPTIVE_PASS_FACTOR`` times the slowest passing run of
        this check so far, and ``ADAPTIVE_DRAWN_FACTOR`` times the longest duration this
        example drew (plus the floor); never later than the deadline.  Why this cannot
        turn a pass into a hang: the call also needs every thread asleep (``S``), no
        timer and no history event for a window (stillness.py).  A slow or loaded
        machine leaves a starved role runnable (``R``), which resets the watch; a role
        sleeping in a timed wait the example drew wakes within the drawn duration,
        which the bound exceeds tenfold; what is left is a role waiting for a timer the
        check neither drew nor needed in any of its passing runs, twenty times over.
        """
        floor = ADAPTIVE_FLOOR_S if self.passing >= ADAPTIVE_AFTER else ADAPTIVE_EARLY_FLOOR_S
        bound = max(floor, ADAPTIVE_PASS_FACTOR * self.slowest_pass_s,
                    floor + ADAPTIVE_DRAWN_FACTOR * longest_drawn_s(self.example))
        return bound if bound < self.run_deadline_s else None

    def _teardown(self, channel: Any, scope: Scope) -> List[str]:
        problems: List[str] = []
        if channel is not None and callable(getattr(channel, "teardown", None)):
            try:
                with parent_guard(self.harness.deadline_s, f"{self.backend.name} channel.teardown()"):
                    channel.teardown()
            except Exception as exc:
                problems.append(f"channel.teardown raised {exc!r}")
        return problems + self.harness.root.release(scope)

    def _hang_violation(self, outcome: Outcome, hung: List[str]) -> Violation:
        parts = []
        for proc in hung:
            pending = outcome.history.pending(proc)
            parts.append(f"{proc} hung in {pending.op if pending else 'its body'}")
        when = "when called" if self.stillness.called else "at the deadline"
        stacks = "\n".join(f"{p} stack {when} (innermost first):\n{hung_stack(outcome.roles[p].output)}"
                           + holders_note(outcome.roles[p].output) for p in hung)
        focus = [e for p in hung for e in outcome.history.of(p)[-2:]]
        first = outcome.history.pending(hung[0])
        if not self.stillness.called:
            why = f"deadline {self.run_deadline_s:g}s"
        elif self.stillness.lenient:
            bound = "adaptive deadline" if self._asked_s is None else "the example's own deadline"
            why = (f"{bound} {self.stillness.lenient_after:.3g}s: every process asleep, none recorded "
                   f"anything for {self.stillness.window_s:g}s")
        else:
            why = f"every process asleep in a wait without a timeout, nothing ran for {self.stillness.window_s:g}s"
        got = "; ".join(parts) + f" ({why})"
        call = first.op if first else "body"
        culprit = outcome.culprit(hung[0])
        detail = ""
        if culprit not in hung:  # a peer that raised or died left the others waiting: it is the story
            got, call, detail = outcome._failure(culprit)
            got += f" (first; left waiting on it: {'; '.join(parts)})"
            focus = outcome.history.of(culprit)[-3:] + focus
        violation = Violation(
            self.invariant.id,
            got=got,
            expected="every operation to return",
            call=call,
            history=outcome.history.format(outcome.setups(focus) + focus) + detail + "\n" + stacks,
        )
        violation.hang = True
        return violation


_DEFAULT: Optional[Harness] = None


def default_harness() -> Harness:
    """A harness for use outside pytest (unittest, scripts); cleaned up at exit."""
    global _DEFAULT
    if _DEFAULT is None:
        import atexit

        _DEFAULT = Harness(
            deadline_s=float(os.environ.get("IPC_DEADLINE", DEFAULT_DEADLINE_S)),
            profile=os.environ.get("IPC_PROFILE", "standard"),
        )
        atexit.register(_DEFAULT.close)
    return _DEFAULT


def _unflake(flaky: Exception, invariant_id: str) -> Exception:
    """A failure that did not replay is still a failure of the backend: report the
    first violation Hypothesis saw, marked flaky, instead of a Hypothesis error."""
    found = [e for e in getattr(flaky, "exceptions", ()) if isinstance(e, Violation)]
    if not found:
        return flaky
    first = found[0]
    flagged = Violation(invariant_id, got=first.got, expected=first.expected, call=first.call,
                        history=first.history)
    flagged.intermittent = True  # the replays decide whether it is FLAKY
    return flagged
