"""The conformance matrix as terminal text that fits the terminal's width.

Backends become numbered columns (``B1``, ``B2`` …, named in a legend above each
table) so that a column is six characters wide whatever the backend's name; an
invariant id too long for its column gets a line of its own, its verdicts on
the next.  A family with more backends than fit is split into several tables.
"""

from __future__ import annotations

import textwrap
from typing import Dict, List

from .collector import ORDER, SHORT, Collector

CELL = 6  # "FLAKY", "CRASH", "ERROR", "unres" and a space
MIN_ID = 24


def matrix_lines(collector: Collector, width: int = 80) -> List[str]:
    from ipc_specs import all_invariants

    width = max(40, width)
    lines = header_lines(collector, width)
    present = {inv_id for (_, inv_id) in collector.cells}
    families: Dict[str, List[str]] = {}
    for inv in all_invariants():  # registry order: the order the specs declare them
        if inv.id in present:
            families.setdefault(inv.family, []).append(inv.id)
    for fam, inv_ids in families.items():
        names = [b for b in _backend_order(collector) if collector.backends.get(b, {}).get("kind") == fam
                 and any((b, i) in collector.cells for i in inv_ids)]
        if names:
            lines += family_table(collector, fam, inv_ids, names, width)
    for problem in collector.load_problems:
        lines += _wrap(f"backend {problem['source']}: LOAD ERROR {problem['message']}", width)
    for line in collector.unchecked():
        lines += _wrap(line, width)
    lines += [""] + _wrap(summary_line(collector), width)
    return lines


def _backend_order(collector: Collector) -> List[str]:
    seen = list(collector.backends)
    return seen + sorted({b for (b, _) in collector.cells} - set(seen))


def header_lines(collector: Collector, width: int) -> List[str]:
    s = collector.settings
    low, high = collector.examples_range()
    span = f"{low}" if low == high else f"{low}-{high}"
    rests = f"; verdicts rest on {span} examples per placement" if high else ""
    text = (f"profile {s.get('profile', '?')} (up to {s.get('max_examples', '?')} examples per check"
            f"{', derandomized' if s.get('derandomize') else ''}){rests}")
    legend = "marks: " + ", ".join(f"{SHORT[v]} {v.replace('_', ' ')}" for v in ORDER)
    return _wrap(text, width) + _wrap(legend, width)


def family_table(collector: Collector, fam: str, inv_ids: List[str], names: List[str], width: int) -> List[str]:
    id_width = min(max(len(i) for i in inv_ids) + 1, max(MIN_ID, width - CELL * len(names)))
    per_table = max(1, (width - id_width) // CELL)
    numbered = {name: f"B{n}" for n, name in enumerate(names, 1)}
    lines: List[str] = []
    for start in range(0, len(names), per_table):
        chunk = names[start:start + per_table]
        legend = "  ".join(f"{numbered[n]} {n}" for n in chunk)
        lines += [""] + _wrap(f"{fam} family: {legend}", width)
        lines.append(" " * id_width + "".join(numbered[n].rjust(CELL) for n in chunk))
        for inv_id in inv_ids:
            cells = "".join(_mark(collector, n, inv_id).rjust(CELL) for n in chunk)
            if len(inv_id) < id_width:
                lines.append(inv_id.ljust(id_width) + cells)
            else:
                lines += [inv_id, " " * id_width + cells]
    return lines


def _mark(collector: Collector, backend: str, inv_id: str) -> str:
    cell = collector.cells.get((backend, inv_id))
    return SHORT[cell.verdict] if cell else SHORT["not_run"]


def summary_line(collector: Collector) -> str:
    counts = collector.summary()
    parts = [f"{counts[v]} {SHORT[v] if v != 'pass' else 'pass'}" for v in ORDER if counts[v]]
    if counts["load_error"]:
        parts.append(f"{counts['load_error']} backend(s) failed to load")
    if counts["unchecked_backends"]:
        parts.append(f"{counts['unchecked_backends']} backend(s) not checked at all")
    return f"ipc-conformance: {collector.status()}: " + (", ".join(parts) or "no verdicts")


def failure_lines(collector: Collector, width: int = 80) -> List[str]:
    lines: List[str] = []
    for (backend, inv_id), cell in sorted(collector.cells.items()):
        for placement, p in sorted(cell.placements.items()):
            if p["verdict"] in ("fail", "flaky", "error", "crashed"):
                detail = one_line(p["detail"], max(60, width * 2))
                lines.append(f"{SHORT[p['verdict']]} {backend} / {inv_id} [{placement}]: {detail}")
                if p["reproduce"]:
                    lines.append(f"    reproduce: {p['reproduce']}")
    return lines


def one_line(text: str, limit: int) -> str:
    line = " ".join((text or "").split())
    return line if len(line) <= limit else line[: limit - 1] + "…"


def _wrap(text: str, width: int) -> List[str]:
    return textwrap.wrap(text, width, subsequent_indent="    ", break_long_words=False,
                         break_on_hyphens=False) or [""]
