"""Verdicts collected from test reports, the conformance matrix, and the JSON/Markdown report.

Verdicts travel inside ``report.user_properties`` so that they reach the
pytest-xdist controller from every worker unchanged.

JSON schema (``schema: "ipc-conformance-report/1"``)::

    {
      "schema": str, "generated": ISO-8601 str,
      "versions": {"python", "platform", "ipc_conformance", "hypothesis", "pytest",
                   "posix_ipc", "sysv_ipc", "pyarrow"},      # "not installed" when absent
      "limits": {name: value},                                 # ipc_specs.limits.probe()
      "settings": {"profile": str, "deadline_s": float, "replays": int},
      "debris_removed": [str],                                 # left by earlier crashed runs
      "backends": {name: {"kind", "wiring", "capabilities": [str], "source": str}},
      "load_problems": [{"source": str, "message": str}],
      "results": [{"backend", "invariant", "family", "level", "rule", "source",
                   "verdict": "pass"|"fail"|"flaky"|"error"|"unsupported"|"unresolved",
                   "placements": {placement: {"verdict", "detail", "examples": int,
                                              "counterexample": str, "reproduce": str,
                                              "replays": {"runs": int, "failed": int} | null}}}],
      "summary": {verdict: count}
    }

A (backend, invariant) verdict combines its placements: the worst one wins, in
the order error > fail > flaky > unresolved > pass > unsupported.  A failing
minimal example is replayed ``replays`` times: "fail" when every replay failed,
"flaky" otherwise, with the count in ``replays``.
"""

from __future__ import annotations

import datetime
import json
import platform
from dataclasses import dataclass, field
from importlib import metadata
from typing import Any, Dict, List, Optional, Tuple

from ipc_specs import all_invariants, get_invariant
from ipc_specs.limits import probe

ORDER = ["error", "fail", "flaky", "unresolved", "pass", "unsupported"]
SHORT = {"pass": "pass", "fail": "FAIL", "flaky": "FLAKY", "error": "ERROR", "unsupported": "n/a",
         "unresolved": "unres"}


@dataclass
class Cell:
    placements: Dict[str, Dict[str, Any]] = field(default_factory=dict)

    @property
    def verdict(self) -> str:
        verdicts = [p["verdict"] for p in self.placements.values()]
        return min(verdicts, key=ORDER.index) if verdicts else "unsupported"


class Collector:
    def __init__(self) -> None:
        self.cells: Dict[Tuple[str, str], Cell] = {}
        self.backends: Dict[str, Dict[str, Any]] = {}
        self.load_problems: List[Dict[str, str]] = []
        self.debris: List[str] = []

    def add(self, props: Dict[str, Any]) -> None:
        key = (props["ipc_backend"], props["ipc_invariant"])
        cell = self.cells.setdefault(key, Cell())
        cell.placements[props["ipc_placement"]] = {
            "verdict": props["ipc_verdict"],
            "detail": props.get("ipc_detail", ""),
            "examples": props.get("ipc_examples", 0),
            "counterexample": props.get("ipc_counterexample", ""),
            "reproduce": props.get("ipc_reproduce", ""),
            "replays": props.get("ipc_replays"),
        }

    def summary(self) -> Dict[str, int]:
        counts = {v: 0 for v in ORDER}
        for cell in self.cells.values():
            counts[cell.verdict] += 1
        counts["load_error"] = len(self.load_problems)
        return counts

    # --- terminal ---------------------------------------------------------------------
    def matrix_lines(self) -> List[str]:
        lines: List[str] = []
        present = {inv_id for (_, inv_id) in self.cells}
        families: Dict[str, List[str]] = {}
        for inv in all_invariants():  # registry order: the order the specs declare them
            if inv.id in present:
                families.setdefault(inv.family, []).append(inv.id)
        for fam, inv_ids in families.items():
            names = [b for b, meta in self.backends.items()
                     if meta["kind"] == fam and any((b, i) in self.cells for i in inv_ids)]
            if names:
                lines += self._family_table(fam, inv_ids, names)
        for problem in self.load_problems:
            lines.append(f"backend {problem['source']}: ERROR {problem['message']}")
        counts = self.summary()
        lines.append("")
        parts = [f"{counts[v]} {v}" for v in ORDER if counts[v]]
        if counts["load_error"]:
            parts.append(f"{counts['load_error']} backend(s) failed to load")
        lines.append("verdicts: " + ", ".join(parts))
        return lines

    def _family_table(self, fam: str, inv_ids: List[str], names: List[str]) -> List[str]:
        def verdict(name: str, inv_id: str) -> str:
            cell = self.cells.get((name, inv_id))
            return SHORT[cell.verdict if cell else "unsupported"]

        width = max(len(i) for i in inv_ids) + 2
        col = max(8, *(len(n) + 2 for n in names))
        per_table = max(1, (160 - width) // col)  # split wide families instead of wrapping lines
        lines: List[str] = []
        for start in range(0, len(names), per_table):
            chunk = names[start:start + per_table]
            lines += ["", f"{fam} family".ljust(width) + "".join(n.rjust(col) for n in chunk)]
            lines += [i.ljust(width) + "".join(verdict(n, i).rjust(col) for n in chunk) for i in inv_ids]
        return lines

    def failure_lines(self) -> List[str]:
        lines = []
        for (backend, inv_id), cell in sorted(self.cells.items()):
            for placement, p in sorted(cell.placements.items()):
                if p["verdict"] in ("fail", "flaky", "error"):
                    rate = p.get("replays")
                    seen = f" (minimal example failed {rate['failed']} of {rate['runs']} replays)" if rate else ""
                    lines.append(f"{SHORT[p['verdict']]} {backend} / {inv_id} [{placement}]{seen}: {p['detail']}")
                    if p["reproduce"]:
                        lines.append(f"    reproduce: {p['reproduce']}")
        return lines

    # --- files ------------------------------------------------------------------------
    def to_json(self, settings: Dict[str, Any]) -> Dict[str, Any]:
        results = []
        for (backend, inv_id), cell in sorted(self.cells.items()):
            inv = get_invariant(inv_id)
            results.append({"backend": backend, "invariant": inv_id, "family": inv.family,
                            "level": inv.level.value, "rule": inv.rule, "source": inv.source,
                            "verdict": cell.verdict, "placements": cell.placements})
        return {
            "schema": "ipc-conformance-report/1",
            "generated": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "versions": versions(),
            "limits": probe(),
            "settings": settings,
            "debris_removed": self.debris,
            "backends": self.backends,
            "load_problems": self.load_problems,
            "results": results,
            "summary": self.summary(),
        }

    def write(self, path: str, settings: Dict[str, Any]) -> None:
        data = self.to_json(settings)
        if path.endswith(".md"):
            text = to_markdown(data)
        else:
            text = json.dumps(data, indent=2, sort_keys=False, default=str) + "\n"
        with open(path, "w", encoding="utf-8") as f:
            f.write(text)


def versions() -> Dict[str, str]:
    out = {"python": platform.python_version(), "platform": platform.platform()}
    for dist in ("ipc-conformance", "hypothesis", "pytest", "posix_ipc", "sysv_ipc", "pyarrow"):
        try:
            out[dist.replace("-", "_")] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            out[dist.replace("-", "_")] = "not installed"
    return out


def to_markdown(data: Dict[str, Any]) -> str:
    v = data["versions"]
    lines = ["# IPC conformance report", "",
             f"Python {v['python']} on {v['platform']}; profile {data['settings'].get('profile')}; "
             f"generated {data['generated']}.", ""]
    by_backend: Dict[str, List[Dict[str, Any]]] = {}
    for r in data["results"]:
        by_backend.setdefault(r["backend"], []).append(r)
    for backend, rows in by_backend.items():
        meta = data["backends"].get(backend, {})
        lines += [f"## {backend} ({meta.get('kind', '?')}, {meta.get('source', '?')})", "",
                  "| invariant | level | verdict | placements |", "|---|---|---|---|"]
        for r in rows:
            places = ", ".join(f"{p}: {d['verdict']}" for p, d in sorted(r["placements"].items()))
            lines.append(f"| `{r['invariant']}` | {r['level']} | {r['verdict']} | {places} |")
        lines.append("")
    for problem in data["load_problems"]:
        lines.append(f"- **{problem['source']}** failed to load: {problem['message']}")
    lines += ["", "Summary: " + ", ".join(f"{n} {k}" for k, n in data["summary"].items() if n), ""]
    return "\n".join(lines)


def backend_meta(backend: Any, source: str) -> Dict[str, Any]:
    return {"kind": backend.kind, "wiring": backend.wiring, "capabilities": sorted(backend.capabilities),
            "source": source}


def first_line(text: Optional[str], limit: int = 300) -> str:
    line = (text or "").strip().splitlines()[0] if (text or "").strip() else ""
    return line if len(line) <= limit else line[: limit - 1] + "…"
