"""The run's verdicts written to files: JSON, Markdown (``.md``), JUnit XML (``.xml``), HTML (``.html``).

Every report is rendered from :func:`to_json` of the same :class:`~.collector.Collector`
as the terminal matrix and the exit code, so they all agree.  The Markdown and HTML
writers live in :mod:`.report_md` and :mod:`.report_html`; the JSON Schema of the JSON
report is ``ipc_conformance/report.schema.json`` (checked by :mod:`.schema`).

JSON report (``schema: "ipc-conformance-report/3"``)::

    {
      "schema": str, "generated": ISO-8601 str, "duration_s": float | null,   # the whole run
      "status": "PASSED"|"FAILED"|"PARTIAL"|"NOTHING-CHECKED",
      "partial": bool,              # some scheduled check did not run (PARTIAL unless FAILED)
      "interrupted": bool,          # the run was stopped (Ctrl-C, SIGTERM, a dead worker's cases)
      "versions": {"python", "platform", "ipc_conformance", "hypothesis", "pytest",
                   "posix_ipc", "sysv_ipc", "pyarrow"},      # "not installed" when absent
      "limits": {name: value},                                 # ipc_specs.limits.probe()
      "settings": {"profile", "max_examples", "derandomize", "deadline_s", "replays",
                   "hypothesis_seed": str | null, ...},
      "debris_removed": [str],                                 # left by earlier crashed runs
      "backends": {name: {"kind", "wiring", "capabilities": [str], "source": str, "module": str,
                          "distribution": {"name", "version"} | null}},   # the package it came from
      "per_backend": {name: {"status", "verdicts": {verdict: int}, "examples": int, "duration_s": float}},
      "load_problems": [{"source": str, "message": str}],
      "unchecked": [str],                 # selected backends that got no judged check, and why
      "results": [{"backend", "invariant", "family", "level", "rule", "source",   # per backend, in
                   "verdict": one of collector.ORDER, "examples": int,            # catalogue order
                   "duration_s": float,
                   "placements": {placement: {"verdict", "detail", "examples": int,
                                              "counterexample": str, "reproduce": str,
                                              "replays": {"runs": int, "failed": int} | null,
                                              "duration_s": float | null,
                                              "blob": str}}}],     # Hypothesis failure blob ("" if none)
      "summary": {verdict: count, "load_error": int, "unchecked_backends": int}
    }

A (backend, invariant) verdict combines its placements: the worst one wins, in
the order of ``collector.ORDER``.  Schema /3 added ``duration_s``, ``interrupted``,
``per_backend``, ``settings.hypothesis_seed``, ``backends.*.module`` and ``.distribution``,
``results.*.duration_s`` and ``placements.*.blob``; nothing was removed.
"""

from __future__ import annotations

import datetime
import functools
import json
import os
import platform
import re
from importlib import metadata
from typing import Any, Dict, List, Mapping, Optional, Sequence
from xml.sax.saxutils import escape, quoteattr

from .collector import ORDER, SHORT, Collector
from .report_text import Section

SCHEMA = "ipc-conformance-report/3"
FORMATS = {".json": "JSON", ".md": "Markdown", ".xml": "JUnit XML", ".html": "HTML"}


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
    from ipc_specs import all_invariants, get_invariant
    from ipc_specs.limits import probe

    order = {inv.id: n for n, inv in enumerate(all_invariants())}  # catalogue order
    results = []
    for (backend, inv_id), cell in sorted(collector.cells.items(), key=lambda kv: (kv[0][0], order.get(kv[0][1], 0))):
        inv = get_invariant(inv_id)
        took = sum(float(p.get("duration_s") or 0) for p in cell.placements.values())
        results.append({"backend": backend, "invariant": inv_id, "family": inv.family,
                        "level": inv.level.value, "rule": inv.rule, "source": inv.source,
                        "verdict": cell.verdict, "examples": cell.examples, "duration_s": round(took, 3),
                        "placements": {p: dict(d, blob=d.get("blob") or "") for p, d in cell.placements.items()}})
    backends = {name: dict(meta, module=meta.get("module", ""), distribution=distribution_of(meta.get("module")))
                for name, meta in collector.backends.items()}
    return {
        "schema": SCHEMA,
        "generated": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "duration_s": collector.settings.get("duration_s"),
        "status": collector.status(),
        "partial": collector.partial,
        "interrupted": collector.interrupted,
        "versions": versions(),
        "limits": probe(),
        "settings": dict({"hypothesis_seed": None}, **collector.settings),
        "debris_removed": collector.debris,
        "backends": backends,
        "per_backend": collector.per_backend(),
        "load_problems": collector.load_problems,
        "unchecked": collector.unchecked(),
        "results": results,
        "summary": collector.summary(),
    }


def write(collector: Collector, paths: Sequence[str], extra_sections: Sequence[Section] = ()) -> None:
    """Write one report per path, its format chosen by the extension (see :data:`FORMATS`).

    ``extra_sections`` go into an HTML report only, after the matrices: ``(title, fragment)``
    pairs whose title is escaped and whose fragment is trusted HTML (see :func:`.report_html.to_html`).
    """
    data = to_json(collector)
    for path in [paths] if isinstance(paths, str) else paths:
        write_data(data, path, extra_sections)


def write_data(data: Mapping[str, Any], path: str, extra_sections: Sequence[Section] = ()) -> None:
    """Write the report ``data`` (as :func:`to_json` returns it, or as read back from a JSON report) to ``path``."""
    from .report_html import to_html
    from .report_md import to_markdown

    ext = os.path.splitext(path)[1].lower()
    if ext == ".md":
        text = to_markdown(data)
    elif ext == ".xml":
        text = to_junit(data)
    elif ext == ".html":
        text = to_html(data, extra_sections=extra_sections)
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


def distribution_of(module: Optional[str]) -> Optional[Dict[str, str]]:
    """The installed distribution (name, version) that provides ``module``, or None (a module
    of the current directory, a file given by path, or not found)."""
    if not module:
        return None
    names = _packages_distributions().get(module.split(".")[0])
    if not names:
        return None
    try:
        return {"name": names[0], "version": metadata.version(names[0])}
    except metadata.PackageNotFoundError:
        return None


@functools.lru_cache(maxsize=1)
def _packages_distributions() -> Mapping[str, List[str]]:
    """Top-level import name -> distributions (``packages_distributions`` is 3.10+; on 3.9,
    the ``top_level.txt`` that setuptools writes, which covers most installed packages)."""
    found = getattr(metadata, "packages_distributions", None)
    if found is not None:
        return found()  # type: ignore[no-any-return]
    out: Dict[str, List[str]] = {}
    for dist in metadata.distributions():
        for top in (dist.read_text("top_level.txt") or "").split():
            out.setdefault(top, []).append(dist.metadata["Name"])
    return out


# --- JUnit XML ----------------------------------------------------------------------------
#: How each verdict shows in JUnit: the element, and the attribute count it adds to.
_JUNIT = {"fail": ("failure", "failures"), "flaky": ("failure", "failures"), "error": ("error", "errors"),
          "crashed": ("error", "errors"), "unsupported": ("skipped", "skipped"),
          "unresolved": ("skipped", "skipped"), "not_run": ("skipped", "skipped")}
#: Characters XML 1.0 forbids even escaped (a backend's message may hold any of them).
_XML_ILLEGAL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def _xml_text(text: Any) -> str:
    return _XML_ILLEGAL.sub(lambda m: f"\\x{ord(m.group()):02x}", str(text))


def _attr(text: Any) -> str:
    return quoteattr(_xml_text(text))


def to_junit(data: Mapping[str, Any]) -> str:
    """JUnit XML as CI systems read it: one ``testsuite`` per family, one ``testcase`` per
    backend x invariant x placement (classname ``ipc_conformance.<family>.<backend>``, name
    ``<invariant>[<placement>]``).  FAIL and FLAKY are ``failure``, ERROR and CRASH ``error``,
    told apart by the element's ``type``, the message's first word and the ``verdict``
    property; the failure text ends with the reproduce line.  Backends that failed to load
    or got no check are ``error`` cases of a ``backends`` suite."""
    suites: Dict[str, List[str]] = {}
    counts: Dict[str, Dict[str, float]] = {}
    for r in data["results"]:
        for placement, d in sorted(r["placements"].items()):
            time_s = float(d.get("duration_s") or 0)
            props = "".join(f"<property name={_attr(k)} value={_attr(v)}/>" for k, v in (
                ("verdict", d["verdict"]), ("examples", d.get("examples", 0)), ("level", r["level"]),
                ("reproduce", d.get("reproduce", "")), ("blob", d.get("blob", ""))) if v != "")
            suites.setdefault(r["family"], []).append(
                f'  <testcase classname={_attr("ipc_conformance." + r["family"] + "." + r["backend"])} '
                f'name={_attr(r["invariant"] + "[" + placement + "]")} time="{time_s:.3f}">'
                f'<properties>{props}</properties>{_junit_body(r, d)}</testcase>')
            _count(counts, r["family"], d["verdict"], time_s)
    for problem in data["load_problems"]:
        suites.setdefault("backends", []).append(_junit_problem(problem["source"], "LOAD ERROR", problem["message"]))
        _count(counts, "backends", "error", 0)
    for line in data["unchecked"]:
        suites.setdefault("backends", []).append(_junit_problem(line.split(" (")[0], "NOTHING CHECKED", line))
        _count(counts, "backends", "error", 0)
    total = {k: sum(c[k] for c in counts.values()) for k in ("tests", "failures", "errors", "skipped", "time")}
    out = ['<?xml version="1.0" encoding="utf-8"?>',
           f'<testsuites name="ipc-conformance" {_counts_attrs(total)} status={_attr(data["status"])}>']
    for fam, cases in suites.items():
        out.append(f"<testsuite name={_attr(fam)} {_counts_attrs(counts[fam])}>")
        out += cases
        out.append("</testsuite>")
    out.append("</testsuites>")
    return "\n".join(out) + "\n"


def _count(counts: Dict[str, Dict[str, float]], suite: str, verdict: str, time_s: float) -> None:
    c = counts.setdefault(suite, {"tests": 0, "failures": 0, "errors": 0, "skipped": 0, "time": 0.0})
    c["tests"] += 1
    c["time"] += time_s
    if verdict in _JUNIT:
        c[_JUNIT[verdict][1]] += 1


def _counts_attrs(c: Mapping[str, float]) -> str:
    return (f'tests="{int(c["tests"])}" failures="{int(c["failures"])}" errors="{int(c["errors"])}" '
            f'skipped="{int(c["skipped"])}" time="{c["time"]:.3f}"')


def _junit_body(r: Mapping[str, Any], d: Mapping[str, Any]) -> str:
    verdict = d["verdict"]
    if verdict not in _JUNIT:
        return ""
    element = _JUNIT[verdict][0]
    message = f"{SHORT[verdict]}: {d.get('detail', '')}"
    if element == "skipped":
        return f"<skipped message={_attr(message)}/>"
    text = "\n".join(x for x in (f"{r['invariant']} ({r['level']}): {r['rule']}", f"source: {r['source']}",
                                  d.get("counterexample", ""),
                                  "reproduce: " + d["reproduce"] if d.get("reproduce") else "") if x)
    return f"<{element} type={_attr(SHORT[verdict])} message={_attr(message)}>{escape(_xml_text(text))}</{element}>"


def _junit_problem(name: str, what: str, message: str) -> str:
    return (f'  <testcase classname="ipc_conformance.backends" name={_attr(name)} time="0.000">'
            f"<error type={_attr(what)} message={_attr(what + ': ' + message)}/></testcase>")


def backend_meta(backend: Any, source: str) -> Dict[str, Any]:
    return {"kind": backend.kind, "wiring": backend.wiring, "capabilities": sorted(backend.capabilities),
            "source": source, "module": type(backend).__module__}


def first_line(text: Optional[str], limit: int = 300) -> str:
    line = (text or "").strip().splitlines()[0] if (text or "").strip() else ""
    return line if len(line) <= limit else line[: limit - 1] + "…"


def __getattr__(name: str) -> Any:  # ``report.to_markdown`` and ``report.to_html``, without an import cycle
    if name == "to_markdown":
        from .report_md import to_markdown

        return to_markdown
    if name == "to_html":
        from .report_html import to_html

        return to_html
    raise AttributeError(name)


__all__ = ["ORDER", "SCHEMA", "Section", "backend_meta", "first_line", "report_problem", "to_json", "to_junit",
           "write", "write_data"]
