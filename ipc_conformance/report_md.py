"""The Markdown report (``--report out.md``) and the CI job summary (``$GITHUB_STEP_SUMMARY``).

Both are rendered from the report data of :func:`.report.to_json`.  Backend names,
details and counterexamples are user data: in running text they are escaped, in
code they go into code spans and fences long enough never to be closed from inside.
"""

from __future__ import annotations

import os
import re
from typing import Any, Dict, List, Mapping

from .collector import FAILING, SHORT
from .matrix import one_line
from .report_text import examples_text, settings_text

#: A job summary above GitHub's limit (1 MiB per step) is dropped whole: list at most this
#: many failures there (the Markdown and HTML reports list them all).
SUMMARY_FAILURES = 50
_MD_SPECIAL = re.compile(r"([\\`*_\[\]|~])")


def text(value: Any) -> str:
    """``value`` as Markdown text that renders as itself on one line (no markup, no HTML)."""
    one = " ".join(str(value).split())
    return _MD_SPECIAL.sub(r"\\\1", one.replace("&", "&amp;").replace("<", "&lt;"))


def code(value: Any) -> str:
    """``value`` as an inline code span on one line; in a table cell ``|`` still splits the
    cell, so it becomes the look-alike U+2223."""
    one = " ".join(str(value).split()).replace("|", "\u2223")
    ticks = "`" * (max((len(m) for m in re.findall(r"`+", one)), default=0) + 1)
    pad = " " if one.startswith("`") or one.endswith("`") else ""
    return f"{ticks}{pad}{one}{pad}{ticks}"


def fence(value: str, info: str = "") -> List[str]:
    ticks = "`" * max(3, max((len(m) for m in re.findall(r"`+", value)), default=0) + 1)
    return [ticks + info, value.rstrip("\n"), ticks]


def _by_backend(data: Mapping[str, Any]) -> Dict[str, List[Dict[str, Any]]]:
    out: Dict[str, List[Dict[str, Any]]] = {}
    for r in data["results"]:  # per backend, in catalogue order (report.to_json)
        out.setdefault(r["backend"], []).append(r)
    return out


def _note(r: Mapping[str, Any]) -> str:
    """Why a cell is what it is, when it is not a pass: the reason of its worst placement."""
    if r["verdict"] == "pass":
        return ""
    for placement, d in sorted(r["placements"].items()):
        if d["verdict"] == r["verdict"]:
            return f"{placement}: {d.get('detail', '')}"
    return ""


def to_markdown(data: Mapping[str, Any]) -> str:
    v = data["versions"]
    partial = " (the run was interrupted: some checks did not run)" if data["partial"] else ""
    lines = ["# IPC conformance report", "",
             f"**{data['status']}**{partial}. Python {text(v['python'])} on {text(v['platform'])}; "
             f"{settings_text(data)}; {examples_text(data)}; generated {data['generated']}.", ""]
    for backend, rows in _by_backend(data).items():
        meta = data["backends"].get(backend, {})
        status = data.get("per_backend", {}).get(backend, {}).get("status", "")
        lines += [f"## {text(backend)} ({text(meta.get('kind', '?'))}, {text(meta.get('source', '?'))}): {status}", "",
                  "| invariant | level | verdict | examples | placements | why |", "|---|---|---|---|---|---|"]
        for r in rows:
            places = ", ".join(f"{p}: {SHORT[d['verdict']]}" for p, d in sorted(r["placements"].items()))
            why = text(one_line(_note(r), 160))  # failures in full below
            lines.append(f"| {code(r['invariant'])} | {r['level']} | {SHORT[r['verdict']]} | {r['examples']} "
                         f"| {places} | {why} |")
        lines.append("")
    failures = [(r, p, d) for r in data["results"] for p, d in sorted(r["placements"].items())
                if d["verdict"] in FAILING]
    if failures:
        lines += ["## Failures", ""]
        for r, p, d in failures:
            lines += _failure(r, p, d)
    for problem in data["load_problems"]:
        lines.append(f"- **{text(problem['source'])}** failed to load: {text(problem['message'])}")
    for line in data["unchecked"]:
        lines.append(f"- {text(line)}")
    counts = ", ".join(f"{n} {SHORT.get(k, k)}" for k, n in data["summary"].items() if n)
    lines += ["", f"Summary: {data['status']}: {counts or 'no verdicts'}", ""]
    return "\n".join(lines)


def _failure(r: Mapping[str, Any], placement: str, d: Mapping[str, Any]) -> List[str]:
    lines = [f"### {SHORT[d['verdict']]} {text(r['backend'])} / {code(r['invariant'])} [{placement}]", "",
             text(d.get("detail", "")), "",
             f"- rule ({r['level']}): {text(r['rule'])}", f"- source: {text(r['source'])}",
             f"- examples: {d.get('examples', 0)}"]
    if d.get("replays"):
        lines.append(f"- replays of the minimal example: {d['replays']['failed']} of {d['replays']['runs']} failed")
    lines.append("")
    if d.get("counterexample"):
        lines += ["<details><summary>minimal example and history</summary>", ""]
        lines += fence(d["counterexample"]) + ["", "</details>", ""]
    if d.get("reproduce"):
        lines += ["Reproduce:", ""] + fence(d["reproduce"], "sh") + [""]
    return lines


def step_summary(data: Mapping[str, Any]) -> str:
    """A short summary for a CI job's page: the verdict per backend, then each failure with
    its reproduce line (at most :data:`SUMMARY_FAILURES`)."""
    lines = [f"### IPC conformance: {data['status']}", "", f"{settings_text(data)}; {examples_text(data)}.", "",
             "| backend | family | verdict | pass | FAIL | FLAKY | ERROR | CRASH | n/a | unres | -- |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for backend, entry in data.get("per_backend", {}).items():
        c = entry["verdicts"]
        kind = data["backends"].get(backend, {}).get("kind", "?")
        lines.append(f"| {text(backend)} | {text(kind)} | **{entry['status']}** | " + " | ".join(
            str(c.get(v, 0)) for v in ("pass", "fail", "flaky", "error", "crashed", "unsupported", "unresolved",
                                       "not_run")) + " |")
    for problem in data["load_problems"]:
        lines.append(f"| {text(problem['source'])} | ? | **LOAD ERROR** | " + " | ".join(["0"] * 8) + " |")
    failures = [(r, p, d) for r in data["results"] for p, d in sorted(r["placements"].items())
                if d["verdict"] in FAILING]
    if failures:
        lines += ["", "#### Failures", ""]
    for r, p, d in failures[:SUMMARY_FAILURES]:
        lines.append(f"- **{SHORT[d['verdict']]}** {text(r['backend'])} / {code(r['invariant'])} [{p}]: "
                     f"{text(str(d.get('detail', ''))[:400])}")
        if d.get("reproduce"):
            lines.append(f"  {code(d['reproduce'])}")
    if len(failures) > SUMMARY_FAILURES:
        lines.append(f"- … and {len(failures) - SUMMARY_FAILURES} more (see the full report)")
    for line in data["unchecked"]:
        lines.append(f"- {text(line)}")
    return "\n".join(lines) + "\n\n"


def append_step_summary(data: Mapping[str, Any]) -> str:
    """Append :func:`step_summary` to ``$GITHUB_STEP_SUMMARY`` when it names a file; returns its path or ""."""
    path = os.environ.get("GITHUB_STEP_SUMMARY", "")
    if not path:
        return ""
    with open(path, "a", encoding="utf-8") as f:
        f.write(step_summary(data))
    return path
