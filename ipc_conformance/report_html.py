"""The HTML report (``--report out.html``): one self-contained page, rendered from the report data.

No network: the CSS is inline, there are no fonts, images or scripts to fetch. The
failure details are ``<details>`` elements, which open on a click without any
script; a three-line script only opens the one a matrix cell links to (without it,
the link still scrolls there). Every string that comes from a backend or a run
(names, messages, counterexamples, reproduce lines) is escaped; only the extra
sections' fragments are inserted as they are (see :func:`to_html`).

Other commands add their own sections (e.g. the bench's plots) after the matrices::

    from ipc_conformance import report
    from ipc_conformance.report_html import png_fragment, svg_fragment

    data = json.load(open("conformance.json"))   # a JSON report, or report.to_json(collector)
    report.write_data(data, "out.html", extra_sections=[
        ("Throughput", svg_fragment(svg_text)), ("Latency", png_fragment(png_bytes, "latency plot"))])

Each cell shows its mark as text (``pass``, ``FAIL``, ``FLAKY`` …, the terminal's) and
the number of examples it rests on; the colours add to the text and keep their order
in greyscale: failures are dark, passes light, what was not judged white or hatched.
"""

from __future__ import annotations

import base64
import html
import re
from typing import Any, Dict, List, Mapping, Sequence, Tuple

from .collector import FAILING, ORDER, SHORT
from .report_appendix import appendix
from .report_text import Section, examples_text, settings_text

#: The verdicts in the order the legend shows them, with what each means.
MEANING = {"pass": "the rule held for every example drawn", "fail": "every replay of the minimal example failed",
           "flaky": "some replays of the minimal example passed", "error": "the backend broke the API or left "
           "objects behind", "crashed": "the process running the check died", "not_run": "scheduled but not run "
           "(the run was interrupted)", "unresolved": "the machine cannot host the check",
           "unsupported": "the backend does not claim what the invariant needs"}

CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;margin:1.5em auto;max-width:78em;padding:0 1em;
color:#111;background:#fff}
h1{font-size:1.5em;margin:.2em 0}h2{font-size:1.2em;margin:1.6em 0 .4em;border-bottom:1px solid #ccc}
code,pre{font:12.5px/1.4 ui-monospace,"DejaVu Sans Mono",monospace}
pre{background:#f6f6f6;border:1px solid #ddd;padding:.6em;overflow-x:auto;white-space:pre-wrap;word-break:break-all}
table{border-collapse:collapse;margin:.4em 0}th,td{border:1px solid #bbb;padding:.2em .45em;vertical-align:middle}
th{background:#f0f0f0;text-align:left}td.num{white-space:nowrap;text-align:right}
.status{display:inline-block;padding:.15em .6em;font-weight:bold;border:2px solid #000}
.matrix thead th{vertical-align:bottom}
.matrix th.b{writing-mode:vertical-rl;transform:rotate(180deg);white-space:nowrap;font-weight:normal;
text-align:left;padding:.4em .15em;max-height:16em}
.matrix td.inv{white-space:nowrap}.matrix td.inv small{color:#555}
.v{text-align:center;min-width:3.6em;font-weight:bold}.v small{display:block;font-weight:normal;font-size:.75em}
.v a{color:inherit}
.v-pass{background:#cfe8d2;color:#0b3d12}
.v-unsupported{background:#fff;color:#666;font-weight:normal;border-style:dotted}
.v-unresolved{background:#e4e4e4;color:#333;font-weight:normal;border-style:dashed}
.v-not_run{background:repeating-linear-gradient(45deg,#fff 0 4px,#d0d0d0 4px 8px);color:#222}
.v-flaky{background:#e59400;color:#000}
.v-fail{background:#b3261e;color:#fff}
.v-error{background:#5b2a86;color:#fff}
.v-crashed{background:#111;color:#fff}
.mark{display:inline-block;padding:0 .35em;border:1px solid #888}
details.failure{border:1px solid #999;margin:.4em 0;padding:.2em .6em}
details.failure[open]{background:#fcfcfc}
details.failure summary{cursor:pointer}
dl.facts{display:grid;grid-template-columns:max-content auto;gap:.15em .8em;margin:.5em 0}
dl.facts dt{font-weight:bold}dl.facts dd{margin:0}
.reproduce{background:#fffbe6;border-color:#c9a800}
.muted{color:#555}
.figure svg,.figure img{max-width:100%;height:auto}
.side{display:flex;flex-wrap:wrap;gap:1.5em;align-items:flex-start}
.side thead th{background:#ddd}
#catalogue .entry{border-top:1px solid #ddd;padding:.2em 0}#catalogue h3{font-size:1em;margin:.5em 0 .2em}
#catalogue .entry:target{background:#fffbe6}
"""

#: Opens the <details> a matrix cell links to (fragment navigation alone does not, in every browser).
SCRIPT = """
function openTarget(){var e=location.hash&&document.getElementById(location.hash.slice(1));
if(e&&e.tagName==='DETAILS'){e.open=true;}}
window.addEventListener('hashchange',openTarget);window.addEventListener('DOMContentLoaded',openTarget);
"""


_STATUS_CLASS = {"PASSED": "pass", "FAILED": "fail", "PARTIAL": "not_run", "NOTHING-CHECKED": "unsupported"}


#: Control characters (a backend's message may hold any): shown as escapes, not sent raw.
_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def esc(value: Any) -> str:
    return html.escape(_CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", str(value)), quote=True)


def failure_id(backend: str, invariant: str, placement: str, n: int) -> str:
    """A fragment id for a failure; the number keeps it unique and free of the backend's characters."""
    return f"f{n}-{invariant}-{placement}"


def to_html(data: Mapping[str, Any], extra_sections: Sequence[Section] = ()) -> str:
    """The report as one HTML page.

    ``extra_sections``: ``(title, fragment)`` pairs shown after the family matrices, each
    under its own heading (the title is escaped; the fragment is inserted as it is, so it
    must be trusted HTML, self-contained like the rest: inline ``<svg>`` or
    ``<img src="data:image/png;base64,…">``, no external URLs).  An invariant id links to
    ``#<id>``, its catalogue entry in the page's appendix (``report_appendix.py``).
    """
    ids = _failure_ids(data)
    status = data["status"]
    parts = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
             '<meta name="viewport" content="width=device-width, initial-scale=1">',
             f"<title>IPC conformance: {esc(status)}</title><style>{CSS}</style>",
             f"<script>{SCRIPT}</script></head><body>"]
    parts += _header(data)
    parts += _backends(data)
    for family, rows in _families(data).items():
        parts += _family(data, family, rows, ids)
    for title, fragment in extra_sections:
        parts += [f'<section class="extra"><h2>{esc(title)}</h2>', fragment, "</section>"]
    parts += _machine(data)
    parts += appendix(data, esc)
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


def svg_fragment(svg: str) -> str:
    """An SVG document (as matplotlib's ``savefig(format="svg")`` writes it) as a fragment an
    extra section can hold inline: without its XML declaration and DOCTYPE."""
    start = svg.find("<svg")
    if start < 0:
        raise ValueError("not an SVG document: no <svg element")
    return f'<div class="figure">{svg[start:]}</div>'


def png_fragment(png: bytes, alt: str) -> str:
    """A PNG image as a fragment an extra section can hold: an ``<img>`` with a data: URI."""
    if not png.startswith(b"\x89PNG\r\n\x1a\n"):
        raise ValueError("not a PNG image")
    data = base64.b64encode(png).decode("ascii")
    return f'<div class="figure"><img alt="{esc(alt)}" src="data:image/png;base64,{data}"></div>'


def _failure_ids(data: Mapping[str, Any]) -> Dict[Tuple[str, str, str], str]:
    out: Dict[Tuple[str, str, str], str] = {}
    for r in data["results"]:
        for p, d in sorted(r["placements"].items()):
            if d["verdict"] in FAILING:
                key = (r["backend"], r["invariant"], p)
                out[key] = failure_id(*key, len(out) + 1)
    return out


def _header(data: Mapping[str, Any]) -> List[str]:
    v = data["versions"]
    took = data.get("duration_s")
    notes = []
    if data.get("interrupted") or data["partial"]:
        notes.append("the run was interrupted: some checks did not run")
    out = ["<header><h1>IPC conformance report</h1>",
           f'<p><span class="status v v-{_STATUS_CLASS.get(data["status"], "not_run")}" id="status">'
           f'{esc(data["status"])}</span> {esc("; ".join(notes))}</p>',
           f"<p>{esc(settings_text(data))}; {esc(examples_text(data))}.<br>"
           f"Python {esc(v['python'])} on {esc(v['platform'])}; generated {esc(data['generated'])}"
           f"{f'; the run took {float(took):.1f} s' if took is not None else ''}.</p>"]
    counts = ", ".join([f"{n} {SHORT[k]}" for k, n in data["summary"].items() if n and k in SHORT]
                       + [f"{n} backend(s) {what}" for k, what in (("load_error", "failed to load"),
                                                                    ("unchecked_backends", "not checked at all"))
                          for n in [data["summary"].get(k, 0)] if n])
    out.append(f'<p id="summary">Summary: {esc(counts or "no verdicts")}.</p>')
    out.append("<p>Marks: " + " ".join(f'<span class="mark v v-{k}" title="{esc(MEANING[k])}">{esc(SHORT[k])}</span>'
                                          f" {esc(k.replace('_', ' '))}" for k in ORDER) + "</p></header>")
    return out


def _backends(data: Mapping[str, Any]) -> List[str]:
    out = ['<section id="backends"><h2>Verdict per backend</h2><table><thead><tr><th>backend</th><th>family</th>'
           "<th>verdict</th><th>invariants</th><th>examples</th><th>time</th><th>from</th></tr></thead><tbody>"]
    for name, entry in data.get("per_backend", {}).items():
        meta = data["backends"].get(name, {})
        dist = meta.get("distribution")
        origin = meta.get("source", "?") + (f" ({dist['name']} {dist['version']})" if dist else "")
        counts = ", ".join(f"{n} {SHORT[k]}" for k, n in entry["verdicts"].items() if n)
        cls = _STATUS_CLASS.get(entry["status"], "not_run")
        out.append(f'<tr class="backend"><td><code>{esc(name)}</code></td><td>{esc(meta.get("kind", "?"))}</td>'
                   f'<td class="v v-{cls}">{esc(entry["status"])}</td><td>{esc(counts)}</td>'
                   f'<td class="num">{int(entry["examples"])}</td>'
                   f'<td class="num">{float(entry["duration_s"]):.1f} s</td>'
                   f"<td>{esc(origin)}</td></tr>")
    out.append("</tbody></table>")
    for problem in data["load_problems"]:
        out.append(f'<p class="v-fail problem">LOAD ERROR <code>{esc(problem["source"])}</code>: '
                   f"{esc(problem['message'])}</p>")
    for line in data["unchecked"]:
        out.append(f'<p class="v-fail problem">{esc(line)}</p>')
    for line in data.get("debris_removed", []):
        out.append(f'<p class="muted">removed debris of an earlier crashed run: {esc(line)}</p>')
    out.append("</section>")
    return out


def _families(data: Mapping[str, Any]) -> Dict[str, List[Mapping[str, Any]]]:
    out: Dict[str, List[Mapping[str, Any]]] = {}
    for r in data["results"]:
        out.setdefault(r["family"], []).append(r)
    return out


def _family(data: Mapping[str, Any], family: str, rows: List[Mapping[str, Any]],
            ids: Dict[Tuple[str, str, str], str]) -> List[str]:
    backends = sorted({r["backend"] for r in rows})
    invariants: Dict[str, Mapping[str, Any]] = {}
    cells: Dict[Tuple[str, str], Mapping[str, Any]] = {}
    for r in rows:
        invariants.setdefault(r["invariant"], r)
        cells[(r["backend"], r["invariant"])] = r
    out = [f'<section class="family" id="family-{esc(family)}"><h2>{esc(family)} family</h2>',
           '<table class="matrix"><thead><tr><th>invariant</th>'
           + "".join(f'<th class="b" title="{esc(b)}">{esc(b)}</th>' for b in backends) + "</tr></thead><tbody>"]
    order = _catalogue_order()
    for inv_id, r in sorted(invariants.items(), key=lambda kv: order.get(kv[0], len(order))):
        link = f"#{inv_id}"
        out.append(f'<tr><td class="inv"><a href="{esc(link)}" title="{esc(r["rule"])}"><code>{esc(inv_id)}</code>'
                   f"</a> <small>{esc(r['level'])}</small></td>"
                   + "".join(_cell(cells.get((b, inv_id)), b, ids) for b in backends) + "</tr>")
    out.append("</tbody></table>")
    failures = [(r, p, d) for r in rows for p, d in sorted(r["placements"].items()) if d["verdict"] in FAILING]
    if failures:
        out.append(f"<h3>Failures ({len(failures)}): click one to open it</h3>")
    for r, p, d in failures:
        out += _failure(r, p, d, ids[(r["backend"], r["invariant"], p)])
    skipped = [(r, p, d) for r in rows for p, d in sorted(r["placements"].items())
               if d["verdict"] in ("unsupported", "unresolved", "not_run")]
    if skipped:
        out.append(f'<details class="skipped"><summary>Cells not judged, and why ({len(skipped)})</summary><ul>')
        out += [f"<li><code>{esc(r['backend'])}</code> / <code>{esc(r['invariant'])}</code> [{esc(p)}]: "
                f"{esc(SHORT[d['verdict']])}: {esc(d.get('detail', ''))}</li>" for r, p, d in skipped]
        out.append("</ul></details>")
    out.append("</section>")
    return out


def _catalogue_order() -> Dict[str, int]:
    from ipc_specs import all_invariants

    return {inv.id: n for n, inv in enumerate(all_invariants())}


def _cell(r: Any, backend: str, ids: Dict[Tuple[str, str, str], str]) -> str:
    if r is None:
        return '<td class="v v-not_run" title="not scheduled">--</td>'
    verdict = r["verdict"]
    places = "; ".join(f"{p}: {SHORT[d['verdict']]}, {int(d.get('examples') or 0)} examples"
                       + (f" ({d['detail']})" if d.get("detail") else "") for p, d in sorted(r["placements"].items()))
    mark = esc(SHORT[verdict])
    target = next((ids[(backend, r["invariant"], p)] for p, d in sorted(r["placements"].items())
                   if d["verdict"] == verdict and (backend, r["invariant"], p) in ids), "")
    if target:
        mark = f'<a href="#{target}">{mark}</a>'
    examples = f"<small>{int(r['examples'])} ex.</small>" if verdict in ("pass", "fail", "flaky", "error") else ""
    return f'<td class="v v-{verdict}" title="{esc(places)}">{mark}{examples}</td>'


def _failure(r: Mapping[str, Any], placement: str, d: Mapping[str, Any], anchor: str) -> List[str]:
    verdict = d["verdict"]
    example, history = _split_counterexample(str(d.get("counterexample", "")))
    facts = [("rule", f"{esc(r['rule'])} ({esc(r['level'])}, "
                      f'<a href="#{esc(r["invariant"])}">catalogue entry</a>)'),
             ("source", esc(r["source"])), ("examples", str(int(d.get("examples") or 0)))]
    if d.get("replays"):
        facts.append(("replays", f"the minimal example failed {int(d['replays']['failed'])} of "
                                 f"{int(d['replays']['runs'])} replays"))
    if d.get("duration_s") is not None:
        facts.append(("time", f"{float(d['duration_s']):.2f} s"))
    if d.get("blob"):
        facts.append(("failure blob", f"<code>{esc(d['blob'])}</code>"))
    out = [f'<details class="failure" id="{anchor}"><summary><span class="mark v v-{verdict}">{esc(SHORT[verdict])}'
           f"</span> <code>{esc(r['backend'])}</code> / <code>{esc(r['invariant'])}</code> [{esc(placement)}]: "
           f"{esc(d.get('detail', ''))}</summary>",
           '<dl class="facts">' + "".join(f"<dt>{k}</dt><dd>{v}</dd>" for k, v in facts) + "</dl>"]
    if history:
        out.append(f"<h4>The violation and the history, cut to what shows it</h4><pre>{esc(history)}</pre>")
    if example:
        out.append(f"<h4>Minimal example</h4><pre>{esc(example)}</pre>")
    if d.get("reproduce"):
        out.append(f'<h4>Reproduce</h4><pre class="reproduce">{esc(d["reproduce"])}</pre>')
    out.append("</details>")
    return out


def _split_counterexample(text: str) -> Tuple[str, str]:
    """``(minimal example, the rest)``: Hypothesis's "Failing test case" block is the minimal
    example; the violation, the cut history and the replay verdict come before it."""
    marker = "Failing test case:"
    if marker in text:
        head, _, tail = text.partition(marker)
        return marker + tail, head.rstrip()
    return "", text.rstrip()


def _machine(data: Mapping[str, Any]) -> List[str]:
    out = ['<section id="machine"><h2>Machine limits, versions and settings</h2><div class="side">']
    for title, table in (("versions", data["versions"]), ("machine limits (read at run time)", data["limits"]),
                         ("settings", data["settings"])):
        out.append(f"<table><thead><tr><th colspan=2>{esc(title)}</th></tr></thead><tbody>")
        out += [f"<tr><th>{esc(k)}</th><td>{esc(v)}</td></tr>" for k, v in table.items()]
        out.append("</tbody></table>")
    out.append("</div></section>")
    return out
