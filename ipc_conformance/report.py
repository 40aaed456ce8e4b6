"""The run's verdicts written to a file: JSON, Markdown (``.md``) or JUnit XML (``.xml``).

All three are rendered from the same :class:`~.collector.Collector` as the terminal
matrix, so the exit code, the matrix and every report agree.

JSON schema (``schema: "ipc-conformance-report/2"``)::

    {
      "schema": str, "generated": ISO-8601 str,
      "status": "PASSED"|"FAILED"|"PARTIAL"|"NOTHING-CHECKED", "partial": bool,
      "versions": {"python", "platform", "ipc_conformance", "hypothesis", "pytest",
                   "posix_ipc", "sysv_ipc", "pyarrow"},      # "not installed" when absent
      "limits": {name: value},                                 # ipc_specs.limits.probe()
      "settings": {"profile", "max_examples", "derandomize", "deadline_s", "replays", ...},
      "debris_removed": [str],                                 # left by earlier crashed runs
      "backends": {name: {"kind", "wiring", "capabilities": [str], "source": str}},
      "load_problems": [{"source": str, "message": str}],
      "unchecked": [str],                 # selected backends that got no judged check, and why
      "results": [{"backend", "invariant", "family", "level", "rule", "source",
                   "verdict": one of collector.ORDER, "examples": int,
                   "placements": {placement: {"verdict", "detail", "examples": int,
                                              "counterexample": str, "reproduce": str,
                                              "replays": {"runs": int, "failed": int} | null,
                                              "duration_s": float | null}}}],
      "summary": {verdict: count, "load_error": int, "unchecked_backends": int}
    }

A (backend, invariant) verdict combines its placements: the worst one wins, in
the order of ``collector.ORDER``.
"""

from __future__ import annotations

import datetime
import json
import os
import platform
from importlib import metadata
from typing import Any, Dict, List, Optional
from xml.sax.saxutils import escape, quoteattr

from .collector import FAILING, ORDER, SHORT, Collector

SCHEMA = "ipc-conformance-report/2"
FORMATS = {".json": "JSON", ".md": "Markdown", ".xml": "JUnit XML"}


def report_problem(path: str) -> Optional[str]:
    """Why ``path`` cannot take a report, checked before the run starts (None: it can)."""
    ext = os.path.splitext(path)[1].lower()
    if ext not in FORMATS:
        known = ", ".join(f"{e} ({n})" for e, n in FORMATS.items())
        return f"--ipc-report {path!r}: unknown format {ext or '(no extension)'!r}; use one of {known}"
    parent = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(parent):
        return f"--ipc-report {path!r}: directory {parent!r} does not exist"
    if not os.access(parent, os.W_OK):
        return f"--ipc-report {path!r}: directory {parent!r} is not writable"
    if os.path.isdir(path):
        return f"--ipc-report {path!r} is a directory"
    return None


def to_json(collector: Collector) -> Dict[str, Any]:
    from ipc_specs import get_invariant
    from ipc_specs.limits import probe

    results = []
    for (backend, inv_id), cell in sorted(collector.cells.items()):
        inv = get_invariant(inv_id)
        results.append({"backend": backend, "invariant": inv_id, "family": inv.family,
                        "level": inv.level.value, "rule": inv.rule, "source": inv.source,
                        "verdict": cell.verdict, "examples": cell.examples, "placements": cell.placements})
    return {
        "schema": SCHEMA,
        "generated": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "status": collector.status(),
        "partial": collector.partial,
        "versions": versions(),
        "limits": probe(),
        "settings": collector.settings,
        "debris_removed": collector.debris,
        "backends": collector.backends,
        "load_problems": collector.load_problems,
        "unchecked": collector.unchecked(),
        "results": results,
        "summary": collector.summary(),
    }


def write(collector: Collector, path: str) -> None:
    data = to_json(collector)
    ext = os.path.splitext(path)[1].lower()
    if ext == ".md":
        text = to_markdown(data)
    elif ext == ".xml":
        text = to_junit(data)
    else:
        text = json.dumps(data, indent=2, default=str) + "\n"
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


def _settings_text(data: Dict[str, Any]) -> str:
    s = data["settings"]
    return (f"profile {s.get('profile')} (up to {s.get('max_examples')} examples per check"
            f"{', derandomized' if s.get('derandomize') else ''}), deadline {s.get('deadline_s')} s, "
            f"{s.get('replays')} replays of a failing example")


def to_markdown(data: Dict[str, Any]) -> str:
    v = data["versions"]
    lines = ["# IPC conformance report", "",
             f"**{data['status']}**{' (the run was interrupted: some checks did not run)' if data['partial'] else ''}"
             f". Python {v['python']} on {v['platform']}; {_settings_text(data)}; generated {data['generated']}.", ""]
    by_backend: Dict[str, List[Dict[str, Any]]] = {}
    for r in data["results"]:
        by_backend.setdefault(r["backend"], []).append(r)
    for backend, rows in by_backend.items():
        meta = data["backends"].get(backend, {})
        lines += [f"## {backend} ({meta.get('kind', '?')}, {meta.get('source', '?')})", "",
                  "| invariant | level | verdict | examples | placements |", "|---|---|---|---|---|"]
        for r in rows:
            places = ", ".join(f"{p}: {SHORT[d['verdict']]}" for p, d in sorted(r["placements"].items()))
            lines.append(f"| `{r['invariant']}` | {r['level']} | {SHORT[r['verdict']]} | {r['examples']} | {places} |")
        lines.append("")
    failures = [(r, p, d) for r in data["results"] for p, d in sorted(r["placements"].items())
                if d["verdict"] in FAILING]
    if failures:
        lines += ["## Failures", ""]
        for r, p, d in failures:
            lines += [f"- **{SHORT[d['verdict']]}** {r['backend']} / `{r['invariant']}` [{p}]: {d['detail']}"]
            if d.get("reproduce"):
                lines.append(f"  - reproduce: `{d['reproduce']}`")
        lines.append("")
    for problem in data["load_problems"]:
        lines.append(f"- **{problem['source']}** failed to load: {problem['message']}")
    for line in data["unchecked"]:
        lines.append(f"- {line}")
    counts = ", ".join(f"{n} {SHORT.get(k, k)}" for k, n in data["summary"].items() if n)
    lines += ["", f"Summary: {data['status']}: {counts or 'no verdicts'}", ""]
    return "\n".join(lines)


def to_junit(data: Dict[str, Any]) -> str:
    """One ``testcase`` per backend x invariant x placement, one ``testsuite`` per family."""
    suites: Dict[str, List[str]] = {}
    counts: Dict[str, Dict[str, int]] = {}
    for r in data["results"]:
        for placement, d in sorted(r["placements"].items()):
            name = f"{r['backend']}-{r['invariant']}-{placement}"
            body = _junit_body(d)
            props = "".join(f"<property name={quoteattr(k)} value={quoteattr(str(v))}/>" for k, v in
                            (("verdict", d["verdict"]), ("examples", d.get("examples", 0)),
                             ("level", r["level"]), ("reproduce", d.get("reproduce", ""))))
            time_s = d.get("duration_s") or 0
            suites.setdefault(r["family"], []).append(
                f'  <testcase classname={quoteattr("ipc_conformance." + r["family"])} name={quoteattr(name)} '
                f'time="{float(time_s):.3f}"><properties>{props}</properties>{body}</testcase>')
            c = counts.setdefault(r["family"], {"tests": 0, "failures": 0, "errors": 0, "skipped": 0})
            c["tests"] += 1
            kind = {"fail": "failures", "flaky": "failures", "error": "errors", "crashed": "errors"}.get(
                d["verdict"], "skipped" if d["verdict"] in ("unsupported", "unresolved", "not_run") else "")
            if kind:
                c[kind] += 1
    out = ['<?xml version="1.0" encoding="utf-8"?>', f'<testsuites name="ipc-conformance" status="{data["status"]}">']
    for fam, cases in suites.items():
        c = counts[fam]
        out.append(f'<testsuite name="{fam}" tests="{c["tests"]}" failures="{c["failures"]}" '
                   f'errors="{c["errors"]}" skipped="{c["skipped"]}">')
        out += cases
        out.append("</testsuite>")
    out.append("</testsuites>")
    return "\n".join(out) + "\n"


def _junit_body(d: Dict[str, Any]) -> str:
    verdict, detail = d["verdict"], d.get("detail", "")
    text = escape("\n".join(x for x in (d.get("counterexample", ""), "reproduce: " + d["reproduce"]
                                          if d.get("reproduce") else "") if x))
    if verdict in ("fail", "flaky"):
        return f"<failure type={quoteattr(SHORT[verdict])} message={quoteattr(detail)}>{text}</failure>"
    if verdict in ("error", "crashed"):
        return f"<error type={quoteattr(SHORT[verdict])} message={quoteattr(detail)}>{text}</error>"
    if verdict in ("unsupported", "unresolved", "not_run"):
        return f"<skipped message={quoteattr(SHORT[verdict] + ': ' + detail)}/>"
    return ""


def backend_meta(backend: Any, source: str) -> Dict[str, Any]:
    return {"kind": backend.kind, "wiring": backend.wiring, "capabilities": sorted(backend.capabilities),
            "source": source}


def first_line(text: Optional[str], limit: int = 300) -> str:
    line = (text or "").strip().splitlines()[0] if (text or "").strip() else ""
    return line if len(line) <= limit else line[: limit - 1] + "…"


__all__ = ["ORDER", "SCHEMA", "backend_meta", "first_line", "report_problem", "to_json", "write"]
