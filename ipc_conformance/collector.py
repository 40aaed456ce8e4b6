"""Verdicts gathered from test reports: one source for the exit code, the matrix and the reports.

Verdicts travel inside ``report.user_properties`` so that they reach the
pytest-xdist controller from every worker unchanged.  The controller also learns
which cases were *scheduled* (from collection), so that a case that never
reported (its worker died, the run was interrupted) is shown as ``crashed`` or
``not run``, never as a pass and never left out.

Verdicts, worst first (a cell combines its placements; the worst one wins):

======== ====== ==============================================================
verdict  shown  meaning
======== ====== ==============================================================
crashed  CRASH  the process running the check died (a backend call in the
                parent, or a pytest-xdist worker): nothing was judged
error    ERROR  the backend broke the API, or the check left objects behind
fail     FAIL   a counterexample; every replay of the minimal example failed
flaky    FLAKY  a counterexample that some replays did not reproduce
not_run  --     scheduled but never run (the run was interrupted)
unresol. unres  the machine cannot host the check (a kernel limit named)
pass     pass   the rule held for every example drawn
unsupp.  n/a    the backend does not claim what the invariant needs
======== ====== ==============================================================
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, Iterable, List, Optional, Set, Tuple

ORDER = ["crashed", "error", "fail", "flaky", "not_run", "unresolved", "pass", "unsupported"]
SHORT = {"pass": "pass", "fail": "FAIL", "flaky": "FLAKY", "error": "ERROR", "crashed": "CRASH",
         "unsupported": "n/a", "unresolved": "unres", "not_run": "--"}
#: Verdicts that judged the backend (a pass means something only among these).
JUDGED = frozenset({"pass", "fail", "flaky", "error", "crashed"})
#: Verdicts that make the run fail.
FAILING = frozenset({"fail", "flaky", "error", "crashed"})
CASE_TEST = "::test_invariant["

CaseKey = Tuple[str, str, str]  # (backend, invariant, placement)


def case_of(nodeid: str) -> Optional[CaseKey]:
    """``(backend, invariant, placement)`` of a conformance test id, or None.

    Ids are ``test_invariant[<backend>-<invariant>-<placement>]``; invariant ids and
    placements have no hyphen, so the split from the right is unambiguous.
    """
    if CASE_TEST not in nodeid or not nodeid.endswith("]"):
        return None
    parts = nodeid.split(CASE_TEST, 1)[1][:-1].rsplit("-", 2)
    return (parts[0], parts[1], parts[2]) if len(parts) == 3 else None


@dataclass
class Cell:
    placements: Dict[str, Dict[str, Any]] = field(default_factory=dict)

    @property
    def verdict(self) -> str:
        verdicts = [p["verdict"] for p in self.placements.values()]
        return min(verdicts, key=ORDER.index) if verdicts else "not_run"

    @property
    def examples(self) -> int:
        return sum(int(p.get("examples") or 0) for p in self.placements.values())


class Collector:
    def __init__(self) -> None:
        self.cells: Dict[Tuple[str, str], Cell] = {}
        self.backends: Dict[str, Dict[str, Any]] = {}
        self.load_problems: List[Dict[str, str]] = []
        self.debris: List[str] = []
        #: Cases the run scheduled (after -k and deselection), by node id.
        self.scheduled: Dict[str, CaseKey] = {}
        self.reported: Set[str] = set()
        #: Backends named by --ipc-backend / IPC_BACKENDS: each must get a judged check.
        self.explicit: Dict[str, str] = {}  # name -> kind
        self.interrupted = False
        self.settings: Dict[str, Any] = {}

    # --- intake -------------------------------------------------------------------------
    def schedule(self, nodeids: Iterable[str]) -> None:
        for nodeid in nodeids:
            key = case_of(nodeid)
            if key is not None:
                self.scheduled[nodeid] = key

    def add_load_problem(self, problem: Dict[str, str]) -> None:
        if problem not in self.load_problems:
            self.load_problems.append(problem)

    def add(self, props: Dict[str, Any], nodeid: str = "") -> None:
        self.reported.add(nodeid)
        self.set_cell((props["ipc_backend"], props["ipc_invariant"], props["ipc_placement"]), {
            "verdict": props["ipc_verdict"],
            "detail": props.get("ipc_detail", ""),
            "examples": props.get("ipc_examples", 0),
            "counterexample": props.get("ipc_counterexample", ""),
            "reproduce": props.get("ipc_reproduce", ""),
            "replays": props.get("ipc_replays"),
            "duration_s": props.get("ipc_duration_s"),
            "blob": props.get("ipc_blob", ""),
        })

    def add_crash(self, nodeid: str, detail: str) -> bool:
        """A case whose process died before it could report (pytest-xdist's crash report)."""
        key = self.scheduled.get(nodeid) or case_of(nodeid)
        if key is None:
            return False
        self.reported.add(nodeid)
        self.set_cell(key, {"verdict": "crashed", "detail": detail, "examples": 0, "counterexample": "",
                            "reproduce": "", "replays": None, "duration_s": None, "blob": ""})
        return True

    def set_cell(self, key: CaseKey, entry: Dict[str, Any]) -> None:
        backend, inv_id, placement = key
        self.cells.setdefault((backend, inv_id), Cell()).placements[placement] = entry

    def finish(self) -> None:
        """Cases scheduled but never reported are ``not_run``; the run is then partial."""
        for nodeid, key in self.scheduled.items():
            if nodeid not in self.reported:
                self.set_cell(key, {"verdict": "not_run", "detail": "scheduled but not run (the run stopped early)",
                                    "examples": 0, "counterexample": "", "reproduce": "", "replays": None,
                                    "duration_s": None, "blob": ""})
                self.reported.add(nodeid)
                self.interrupted = True

    # --- judgement ----------------------------------------------------------------------
    def summary(self) -> Dict[str, int]:
        counts = {v: 0 for v in ORDER}
        for cell in self.cells.values():
            counts[cell.verdict] += 1
        counts["load_error"] = len(self.load_problems)
        counts["unchecked_backends"] = len(self.unchecked())
        return counts

    def unchecked(self) -> List[str]:
        """Explicitly selected backends that got no judged check, with the reason."""
        out = []
        kind_of = {n: m.get("kind") for n, m in self.backends.items()}
        kind_of.update(self.explicit)
        scheduled_kinds = {kind_of.get(b) for b, _, _ in self.scheduled.values()}
        for name, kind in self.explicit.items():
            verdicts = [c.verdict for (b, _), c in self.cells.items() if b == name]
            if any(v in JUDGED or v == "not_run" for v in verdicts):
                continue  # judged, or cut short by an interrupted run (which says PARTIAL)
            if not verdicts and kind in scheduled_kinds:
                continue  # its family ran and -k chose other backends' checks: the user's choice
            if not verdicts:
                why = f"no check of the {kind} family was selected"
            else:
                counts = {v: verdicts.count(v) for v in sorted(set(verdicts), key=ORDER.index)}
                why = "every selected check was " + ", ".join(f"{n} {v}" for v, n in counts.items())
            out.append(f"backend {name} ({kind}): nothing was checked: {why}")
        return out

    @property
    def partial(self) -> bool:
        return self.interrupted or any(c.verdict == "not_run" for c in self.cells.values())

    def status(self) -> str:
        """The run's verdict in one word: FAILED, PARTIAL, NOTHING-CHECKED or PASSED."""
        counts = self.summary()
        if any(counts[v] for v in FAILING) or counts["load_error"] or counts["unchecked_backends"]:
            return "FAILED"
        if self.partial:
            return "PARTIAL"
        if not any(counts[v] for v in JUDGED):
            return "NOTHING-CHECKED"
        return "PASSED"

    def per_backend(self) -> Dict[str, Dict[str, Any]]:
        """For each backend with cells: its verdict counts (one per invariant), the examples and
        seconds its checks took, and its own one-word status (as :meth:`status`, for it alone)."""
        out: Dict[str, Dict[str, Any]] = {}
        for (backend, _), cell in sorted(self.cells.items()):
            entry = out.setdefault(backend, {"status": "", "verdicts": {v: 0 for v in ORDER}, "examples": 0,
                                             "duration_s": 0.0})
            entry["verdicts"][cell.verdict] += 1
            entry["examples"] += cell.examples
            entry["duration_s"] += sum(float(p.get("duration_s") or 0) for p in cell.placements.values())
        for entry in out.values():
            counts = entry["verdicts"]
            entry["duration_s"] = round(entry["duration_s"], 3)
            entry["status"] = ("FAILED" if any(counts[v] for v in FAILING) else "PARTIAL" if counts["not_run"]
                               else "PASSED" if any(counts[v] for v in JUDGED) else "NOTHING-CHECKED")
        return out

    def examples_range(self) -> Tuple[int, int]:
        """Fewest and most examples a judged placement rested on (0, 0 when none)."""
        counts = [int(p.get("examples") or 0) for c in self.cells.values() for p in c.placements.values()
                  if p["verdict"] in JUDGED and p["verdict"] != "crashed"]
        return (min(counts), max(counts)) if counts else (0, 0)
