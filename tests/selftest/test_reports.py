"""The reports where users look (JSON, Markdown, JUnit XML, HTML, the CI job summary) say
what the matrix says, escape what backends and runs put in them, and keep their shape."""

from __future__ import annotations

import copy
import html.parser
import json
import os
import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any, Dict, List, Tuple

import pytest

from ipc_conformance import report, schema
from ipc_conformance.collector import SHORT
from ipc_conformance.report_html import to_html
from ipc_conformance.report_md import code, step_summary, to_markdown

from .report_sample import BAD, GOOD, INVARIANTS, REPRODUCE_FAIL, sample_collector
from .test_verdicts import matrix_marks

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def data() -> Dict[str, Any]:
    return report.to_json(sample_collector())


class Tags(html.parser.HTMLParser):
    """Every start tag of a page, with its attributes, and its text."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: List[Tuple[str, Dict[str, str]]] = []
        self.text: List[str] = []

    def handle_starttag(self, tag: str, attrs: List[Tuple[str, Any]]) -> None:
        self.tags.append((tag, {k: v or "" for k, v in attrs}))

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def parse(page: str) -> Tags:
    tags = Tags()
    tags.feed(page)
    return tags


def test_the_json_report_follows_its_schema_and_a_broken_one_does_not(data: Dict[str, Any]) -> None:
    assert schema.validate(data) == []
    assert data["schema"] == report.SCHEMA == schema.load()["properties"]["schema"]["const"]
    assert data["per_backend"][GOOD]["status"] == "PASSED" and data["per_backend"][BAD]["status"] == "FAILED"
    assert data["backends"][GOOD]["distribution"]["name"] == "ipc-conformance"
    assert data["backends"][BAD]["distribution"] is None  # a module of no installed package
    assert data["partial"] and data["interrupted"] and data["duration_s"] == 12.5
    fail = next(r for r in data["results"] if r["backend"] == BAD and r["verdict"] == "fail")
    assert fail["placements"]["fork"]["blob"] == "AAEC" and fail["duration_s"] == 0.25
    # The validator can fail: each of these breaks one rule of the schema.
    for path, value in ((("status",), "GREEN"), (("results", 0, "verdict"), "passed"),
                        (("results", 0, "placements", "fork", "examples"), -1), (("per_backend",), []),
                        (("backends", GOOD, "distribution"), {"name": "x"}), (("interrupted",), None),
                        (("results", 0, "placements", "fork", "replays"), {"runs": "3"})):
        broken = copy.deepcopy(data)
        target = broken
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = value
        assert schema.validate(broken), path
    missing = copy.deepcopy(data)
    del missing["results"][0]["placements"]["fork"]["blob"]
    assert schema.validate(missing) == ["$.results[0].placements.fork: missing 'blob'"]
    with pytest.raises(ValueError, match="does not check"):
        schema.validate({}, {"type": "object", "maxProperties": 3})


def test_results_come_in_catalogue_order(data: Dict[str, Any]) -> None:
    from ipc_specs import all_invariants

    order = [inv.id for inv in all_invariants("stream")]
    mine = [r["invariant"] for r in data["results"] if r["backend"] == BAD]
    assert mine == sorted(mine, key=order.index) and set(mine) == set(INVARIANTS)


def test_the_html_report_escapes_user_data_and_links_the_catalogue(data: Dict[str, Any]) -> None:
    page = to_html(data, extra_sections=[("Bench <plots>", "<p id='bench'>fragment</p>")])
    tags = parse(page)
    assert [t for t, _ in tags.tags].count("script") == 1  # the report's own three lines, nothing injected
    assert "<b>" not in page and "evil&lt;b&gt;&amp;amp;&#x27;&quot;twin" in page
    assert "&lt;script&gt;document.title" in page
    assert "\x00" not in page and "\x1b" not in page and "\\x1b[31m\\x00" in page
    assert not [a for _, attrs in tags.tags for k, a in attrs.items()
                if k in ("src", "href") and re.match(r"(https?:)?//", a)], "the page fetches nothing"
    assert "<link" not in page and "@import" not in page and "url(" not in page
    links = {a["href"] for t, a in tags.tags if t == "a"}
    assert {f"#{inv}" for inv in INVARIANTS} <= links  # the page's own appendix (test_catalogue_links_…)
    details = [a["id"] for t, a in tags.tags if t == "details" and "failure" in a.get("class", "")]
    assert len(details) == 4 and {f"#{d}" for d in details} <= links  # every failing cell links to its details
    assert "Bench &lt;plots&gt;" in page and "<p id='bench'>fragment</p>" in page
    text = " ".join(tags.text)
    for needed in (REPRODUCE_FAIL, "Failing test case: example(", "history (ms since example start",
                   "unsupported: backend does not claim blocking_open", "pipe_capacity", "No module named",
                   "verdicts rest on 10 examples per placement", "profile ci", "1 backend(s) failed to load"):
        assert needed in text, needed


def test_extra_sections_hold_figures_inline(data: Dict[str, Any]) -> None:
    from ipc_conformance.report_html import png_fragment, svg_fragment

    svg = ('<?xml version="1.0" encoding="utf-8" standalone="no"?>\n<!DOCTYPE svg PUBLIC "-//W3C//DTD SVG 1.1//EN"'
           ' "http://www.w3.org/Graphics/SVG/1.1/DTD/svg11.dtd">\n<svg xmlns="http://www.w3.org/2000/svg" '
           'width="10" height="10"><rect width="10" height="10"/></svg>\n')
    png = b"\x89PNG\r\n\x1a\n" + b"\x00" * 16
    page = to_html(data, extra_sections=[("Throughput", svg_fragment(svg)), ("Latency", png_fragment(png, "a<b"))])
    assert "<?xml" not in page and "<!DOCTYPE svg" not in page and '<rect width="10"' in page
    assert 'alt="a&lt;b" src="data:image/png;base64,iVBORw0KGgo' in page
    assert page.index("<h2>Throughput</h2>") < page.index("<h2>Latency</h2>") < page.index('id="machine"')
    with pytest.raises(ValueError):
        png_fragment(b"GIF89a", "x")


def test_catalogue_links_reach_the_catalogues_anchors(data: Dict[str, Any], tmp_path: Path) -> None:
    """docs/INVARIANTS.md heads each entry ``### `<id>` ``; GitHub's anchor for such a heading is
    the text lowercased, punctuation other than - and _ dropped, spaces made hyphens: the id.
    The HTML report links an id to ``#<id>``, an entry of its own appendix, so that its links
    live wherever the page is: here written outside any checkout, as an installed wheel (tox) does."""
    from ipc_conformance.report_appendix import PAGE_IDS
    from ipc_specs import all_invariants

    catalogue = (ROOT / "docs" / "INVARIANTS.md").read_text(encoding="utf-8")
    anchors = {re.sub(r"[^\w\- ]", "", h.lower()).replace(" ", "-")
               for h in re.findall(r"^#+ (.+)$", catalogue, flags=re.M)}
    ids = {inv.id for inv in all_invariants()}
    assert ids <= anchors and not ids & PAGE_IDS
    page = tmp_path / "r.html"
    report.write_data(data, str(page))
    tags = parse(page.read_text(encoding="utf-8"))
    targets = {a["id"] for _, a in tags.tags if "id" in a}
    hrefs = [a["href"] for t, a in tags.tags if t == "a"]
    assert not [h for h in hrefs if not h.startswith("#")], "every link stays in the page"
    assert {h[1:] for h in hrefs} <= targets  # none dead
    entries = [a["id"] for t, a in tags.tags if t == "div" and a.get("class") == "entry"]
    assert entries == [i for i in (inv.id for inv in all_invariants()) if i in INVARIANTS]  # catalogue order
    text = " ".join(tags.text)
    assert all(r["rule"] in text and r["source"] in text for r in data["results"])


def test_the_junit_report_is_what_ci_systems_read(data: Dict[str, Any], tmp_path: Path) -> None:
    root = ET.fromstring(report.to_junit(data))
    cases = root.findall("./testsuite/testcase")
    placements = sum(len(r["placements"]) for r in data["results"])
    assert len(cases) == placements + 1  # and the backend that failed to load
    for suite in root.findall("testsuite"):
        assert suite.get("name") and {"tests", "failures", "errors", "skipped", "time"} <= set(suite.attrib)
        mine = suite.findall("testcase")
        assert int(suite.get("tests", "")) == len(mine)
        assert int(suite.get("failures", "")) == len([c for c in mine if c.find("failure") is not None])
        assert int(suite.get("errors", "")) == len([c for c in mine if c.find("error") is not None])
        assert int(suite.get("skipped", "")) == len([c for c in mine if c.find("skipped") is not None])
    for case in cases:
        assert case.get("classname") and case.get("name") and float(case.get("time", "x")) >= 0
    by_verdict = {c.find("properties/property[@name='verdict']").get("value"): c  # type: ignore[union-attr]
                  for c in cases if c.find("properties") is not None and c.get("classname", "").endswith(BAD)}
    fail, flaky = by_verdict["fail"].find("failure"), by_verdict["flaky"].find("failure")
    error, crash = by_verdict["error"].find("error"), by_verdict["crashed"].find("error")
    assert fail is not None and flaky is not None and error is not None and crash is not None
    assert (fail.get("type"), flaky.get("type"), error.get("type"), crash.get("type")) == ("FAIL", "FLAKY", "ERROR",
                                                                                          "CRASH")
    assert flaky.get("message", "").startswith("FLAKY: ") and error.get("message", "").startswith("ERROR: ")
    assert (fail.text or "").rstrip().endswith("reproduce: " + REPRODUCE_FAIL)
    assert "\\x1b" in error.get("message", "")  # a control character XML cannot hold, shown escaped
    skipped = by_verdict["unsupported"].find("skipped")
    assert skipped is not None and "does not claim blocking_open" in skipped.get("message", "")


def test_the_markdown_report_and_the_job_summary(data: Dict[str, Any]) -> None:
    md = to_markdown(data)
    outside_code = re.sub(r"^(`{3,}).*?^\1$", "", md, flags=re.M | re.S)  # fenced blocks show text as is
    assert "<script>" not in outside_code and "<script>" in md and "evil&lt;b>&amp;amp;'\"twin" in md
    assert REPRODUCE_FAIL in md and "Failing test case: example(" in md
    assert "fork: unsupported: backend does not claim blocking\\_open" in md  # the reason of each n/a cell
    rows = [line.split(" | ")[0][2:] for line in md.splitlines() if line.startswith("| `")]
    assert rows == [code(r["invariant"]) for r in data["results"]]  # catalogue order, as the results
    summary = step_summary(data)
    assert f"| {report_text(BAD)} | stream | **FAILED** | 1 | 1 | 1 | 1 | 1 | 1 | 1 | 1 |" in summary
    assert code(REPRODUCE_FAIL) in summary and "LOAD ERROR" in summary
    assert code("a|b") == "`a\u2223b`" and code("x`y") == "``x`y``"


def report_text(value: str) -> str:
    from ipc_conformance.report_md import text

    return text(value)


def test_a_run_writes_every_report_asked_for_and_the_job_summary(tmp_path: Path) -> None:
    """Through the plugin: repeated --ipc-report, an .html one, and $GITHUB_STEP_SUMMARY appended to."""
    summary = tmp_path / "summary.md"
    summary.write_text("earlier step\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("IPC")}
    env.update(TMPDIR=str(tmp_path), IPCC_TMPDIR=str(tmp_path), IPC_PROFILE="ci", GITHUB_STEP_SUMMARY=str(summary),
               HYPOTHESIS_STORAGE_DIRECTORY=str(tmp_path / "hypothesis"))
    paths = [tmp_path / f"r.{ext}" for ext in ("json", "html", "xml", "md")]
    cmd = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "--pyargs",
           "ipc_conformance.suite.test_streams", "--ipc-placements", "fork", "--ipc-faults", "off",
           "--ipc-backend", "ipc_impls.broken.streams:EXHIBITS", "--ipc-backend", "ipc_impls.streams:PipeBackend",
           "-k", "write_rejects_text and (os-pipe or broken-accepts-text)", "--hypothesis-seed", "7"]
    for p in paths:
        cmd += ["--ipc-report", str(p)]
    out = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 1, out.stdout + out.stderr
    data = json.loads(paths[0].read_text())
    assert schema.validate(data) == [] and data["status"] == "FAILED" and data["settings"]["hypothesis_seed"] == "7"
    assert data["duration_s"] > 0 and all(r["duration_s"] >= 0 for r in data["results"])
    assert data["backends"]["os-pipe"]["distribution"]["name"] == "ipc-conformance"
    fail = next(r for r in data["results"] if r["verdict"] == "fail")["placements"]["fork"]
    assert fail["blob"] and fail["blob"] in fail["reproduce"]
    page = paths[1].read_text()
    matrices = re.findall(r'<table class="matrix">.*?</table>', page, flags=re.S)
    cells = [SHORT[v] for m in matrices for v in re.findall(r'<td class="v v-(\w+)"', m)]
    assert sorted(cells) == sorted(matrix_marks(out.stdout)) == ["FAIL", "pass"]  # one truth: matrix and page
    assert fail["reproduce"].replace("'", "&#x27;") in page and 'id="status"' in page
    assert ET.parse(str(paths[2])).getroot().get("failures") == "1"
    assert fail["reproduce"] in paths[3].read_text()
    text = summary.read_text()
    assert text.startswith("earlier step\n### IPC conformance: FAILED") and fail["reproduce"] in text
    assert f"summary appended to {summary}" in out.stdout
