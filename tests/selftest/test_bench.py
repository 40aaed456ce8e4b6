"""`ipc-conformance bench`: a tiny run (--quick, two backends) and what it writes.

The bench measures speed; nothing here asserts one.  These tests check the shape of
what it writes (JSON, table, plots), that every ratio is a positive finite number,
that nothing is left behind, and that the correctness guard reads conformance
verdicts right.
"""

from __future__ import annotations

import json
import math
import os
import secrets
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any, Dict, List

import pytest

from ipc_conformance import schema
from ipc_conformance.bench.guard import judge
from ipc_conformance.bench.output import SCHEMA, table
from ipc_conformance.bench.progress import bar_line
from ipc_impls.queues import PosixMqBackend
from ipc_impls.streams import PipeBackend

BACKENDS = ["os-pipe", "mmap-anonymous"]
try:
    import matplotlib  # noqa: F401

    HAVE_MATPLOTLIB = True
except ImportError:
    HAVE_MATPLOTLIB = False


def bench(tmp: Path, *extra: str, verify: bool = False) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, IPCC_RUN_TAG=f"bt{secrets.token_hex(4)}")
    only = [] if "--backend" in extra else ["--only", ",".join(BACKENDS)]
    guard = [] if verify else ["--no-verify"]
    argv = [sys.executable, "-m", "ipc_conformance.cli", "bench", "--quick", *guard, *only, *extra]
    proc = subprocess.run(argv, cwd=tmp, env=env, capture_output=True, text=True, timeout=120)
    leftovers = [e for e in os.listdir("/dev/shm") if env["IPCC_RUN_TAG"] in e]
    assert leftovers == [], f"got={leftovers}, but should be nothing left in /dev/shm [bench]"
    return proc


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory: pytest.TempPathFactory) -> Dict[str, Any]:
    tmp = tmp_path_factory.mktemp("bench")
    extra = ["--json", "out.json"] + (["--plot", "plot"] if HAVE_MATPLOTLIB else [])
    proc = bench(tmp, *extra)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return {"dir": tmp, "stdout": proc.stdout, "doc": json.loads((tmp / "out.json").read_text())}


def _ratios(doc: Dict[str, Any]) -> List[float]:
    return [entry[key] for row in doc["backends"] for entry in row["sizes"].values()
            for key in ("throughput_ratio", "latency_ratio") if not entry["skipped"]]


def test_the_json_has_every_backend_and_baseline_at_every_size(quick_run: Dict[str, Any]) -> None:
    doc = quick_run["doc"]
    assert doc["schema"] == SCHEMA == schema.load(schema.BENCH_PATH)["properties"]["schema"]["const"]
    assert schema.validate(doc, schema.schema_for(doc)) == []  # tmp_path's are checked by conftest.py
    assert [row["name"] for row in doc["backends"]] == BACKENDS
    sizes = [str(s) for s in doc["settings"]["sizes"]]
    assert set(doc["baselines"]) == {"memcpy", "memcpy-fresh", "bare-pipe"}
    for name, base in doc["baselines"].items():
        assert list(base["sizes"]) == sizes, name
        assert base["sizes"][sizes[-1]]["throughput"]["n"] == doc["settings"]["repeats"], name
    for row in doc["backends"]:
        assert list(row["sizes"]) == sizes
        for entry in row["sizes"].values():
            assert entry["errors"] == []
            stat = entry["throughput"]
            assert stat["min"] <= stat["q1"] <= stat["median"] <= stat["q3"] <= stat["max"]


def test_every_ratio_is_positive_and_finite(quick_run: Dict[str, Any]) -> None:
    ratios = _ratios(quick_run["doc"])
    assert len(ratios) == 2 * len(BACKENDS) * len(quick_run["doc"]["settings"]["sizes"])
    bad = [r for r in ratios if not (isinstance(r, float) and math.isfinite(r) and r > 0)]
    assert bad == [], f"got={bad}, but should be positive finite ratios [json]"


def test_no_verify_marks_every_backend_unverified_everywhere(quick_run: Dict[str, Any]) -> None:
    doc = quick_run["doc"]
    assert doc["guard"]["ran"] is False
    assert all(row["verified"] is False and row["verification"].startswith("unverified") for row in doc["backends"])
    for name in BACKENDS:
        assert f"{name} ?" in quick_run["stdout"]
    assert "? unverified" in quick_run["stdout"]


def test_the_table_fits_80_columns(quick_run: Dict[str, Any]) -> None:
    text = table(quick_run["doc"], width=200)  # wider terminals still get at most 80 columns
    assert max(len(line) for line in text.splitlines()) <= 80


@pytest.mark.skipif(not HAVE_MATPLOTLIB, reason="matplotlib is not installed here (tox installs the bench extra)")
def test_the_plots_are_a_png_and_an_svg(quick_run: Dict[str, Any]) -> None:
    png = (quick_run["dir"] / "plot.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    root = ET.parse(quick_run["dir"] / "plot.svg").getroot()
    assert root.tag == "{http://www.w3.org/2000/svg}svg"


@pytest.mark.skipif(not HAVE_MATPLOTLIB, reason="matplotlib is not installed here (tox installs the bench extra)")
def test_the_html_section_inlines_the_svg(quick_run: Dict[str, Any]) -> None:
    from ipc_conformance.bench import html_section

    title, fragment = html_section(quick_run["doc"])
    assert "payload size" in title
    assert "<svg" in fragment and "<?xml" not in fragment and "os-pipe" in fragment


def test_plot_without_matplotlib_is_a_clear_error_before_the_run(tmp_path: Path) -> None:
    if HAVE_MATPLOTLIB:
        pytest.skip("matplotlib is installed here")
    proc = bench(tmp_path, "--plot", "p")
    assert proc.returncode == 2 and "pip install 'ipc-conformance[bench]'" in proc.stderr


def test_the_guard_verifies_only_backends_that_passed_every_judged_check() -> None:
    pipe, mq = PipeBackend(), PosixMqBackend()
    report = {"results": [{"backend": "os-pipe", "verdict": "pass"}, {"backend": "os-pipe", "verdict": "unsupported"},
                          {"backend": "posix-mq", "verdict": "pass"}, {"backend": "posix-mq", "verdict": "flaky"}]}
    assert judge([pipe, mq], report) == {"os-pipe": "verified",
                                         "posix-mq": "unverified: conformance verdicts flaky"}
    only_unsupported = {"results": [{"backend": "os-pipe", "verdict": "unsupported"}]}
    assert judge([pipe], only_unsupported)["os-pipe"].startswith("unverified: no conformance check")
    assert judge([pipe], {}, "boom")["os-pipe"].startswith("unverified: the conformance run wrote no report")


BROKEN = '''
from ipc_impls.streams import PipeBackend


class SetupFails(PipeBackend):
    name = "setup-fails"

    def setup(self, scope):
        raise OSError("no channel today")
'''


def test_a_failing_backend_is_an_error_cell_and_the_others_still_run(tmp_path: Path) -> None:
    (tmp_path / "broken_bench.py").write_text(BROKEN)
    proc = bench(tmp_path, "--backend", "broken_bench.py:SetupFails", "--backend", "ipc_impls.streams:PipeBackend",
                 "--sizes", "64", "--repeats", "1", "--json", "out.json")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    rows = {row["name"]: row for row in json.loads((tmp_path / "out.json").read_text())["backends"]}
    broken = rows["setup-fails"]["sizes"]["64"]
    assert broken["throughput_ratio"] is None and "no channel today" in broken["errors"][0]
    assert rows["os-pipe"]["sizes"]["64"]["throughput_ratio"] > 0
    assert "ERR" in proc.stdout and "error: setup-fails at 64 B" in proc.stderr


@pytest.mark.skipif(not HAVE_MATPLOTLIB, reason="matplotlib is not installed here (tox installs the bench extra)")
def test_the_html_report_has_the_guards_verdicts_and_the_bench(quick_run: Dict[str, Any], tmp_path: Path) -> None:
    from ipc_conformance.bench import _write_report
    from ipc_conformance.report import to_json

    from .report_sample import sample_collector

    path = tmp_path / "bench.html"
    _write_report(quick_run["doc"], {"report": to_json(sample_collector())}, str(path))
    page = path.read_text()
    assert "<svg" in page and 'class="bench-plot"' in page  # the bench section
    assert "Verdict per backend" in page  # the guard's conformance report around it


def test_report_needs_the_guard_and_an_html_path(tmp_path: Path) -> None:
    for extra in (["--no-verify", "--report", "x.html"], ["--report", "x.json"]):
        proc = bench(tmp_path, *extra)
        assert proc.returncode == 2 and "--report takes a .html path" in proc.stderr, proc.stderr


def _doc(names: List[str], verified: bool) -> Dict[str, Any]:
    """A bench document as ``output.document`` shapes it, with one size and made-up figures."""
    stat = {"median": 1.0, "q1": 1.0, "q3": 1.0, "min": 1.0, "max": 1.0, "n": 1}
    base = {"sizes": {"64": {"throughput": stat, "latency": stat}}}
    entry = {"throughput": stat, "latency": stat, "throughput_ratio": 0.5, "latency_ratio": 0.25,
             "skipped": None, "errors": []}
    return {"settings": {"sizes": [64]}, "guard": {"note": "not checked"},
            "baselines": {"memcpy": base, "memcpy-fresh": base, "bare-pipe": base},
            "backends": [{"name": n, "verified": verified, "sizes": {"64": entry}} for n in names]}


def test_a_long_unverified_name_keeps_its_mark_and_the_table_its_width() -> None:
    long = "mp-simplequeue-adapter-with-a-longer-name"
    text = table(_doc(["mp-simplequeue-adapter", long], verified=False), width=200)
    assert "mp-simplequeue-ada… ?" in text  # 21 characters: a space still parts it from the figures
    rows = [line for line in text.splitlines() if line.startswith("mp-simplequeue")]
    assert len(rows) == 4 and all(line[:22].endswith("… ? ") for line in rows), rows
    assert max(len(line) for line in text.splitlines()) <= 80
    verified = table(_doc(["os-pipe"], verified=True))
    assert "os-pipe " in verified and "os-pipe ?" not in verified


def test_cpus_that_this_process_cannot_use_are_a_usage_error(tmp_path: Path) -> None:
    missing = max(os.sched_getaffinity(0)) + 1
    for value, says in ((str(missing), f"not usable here: {missing}"), ("x", "expected CPU numbers")):
        proc = bench(tmp_path, "--cpus", value)
        assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
        assert proc.stderr.count("\n") == 1 and "--cpus" in proc.stderr and says in proc.stderr, proc.stderr


def test_the_progress_bar_fills_estimates_and_fits_a_terminal_line() -> None:
    assert bar_line("bench", 27, 30, 54.0, "os-pipe 64 KiB") == "bench [#########.] 27/30 os-pipe 64 KiB ~6 s left"
    assert bar_line("guard", 0, 35, 3.0) == "guard [..........] 0/35 3 s"
    assert bar_line("guard", 35, 35, 12.4) == "guard [##########] 35/35 12 s"
    assert bar_line("guard", 0, None, 2.0) == "guard [..........] 0/? 2 s"  # the total is not known yet
    assert len(bar_line("bench", 1, 3, 1.0, "x" * 200)) <= 79


def test_the_progress_bar_draws_in_place_only_on_a_terminal() -> None:
    import io

    from ipc_conformance.bench.progress import Bar

    log, tty = io.StringIO(), io.StringIO()
    for stream, is_tty in ((log, False), (tty, True)):
        bar = Bar("bench", enabled=True, tty=is_tty, stream=stream)
        for done in range(31):
            bar.update(done, 30, "os-pipe")
        bar.close()
    assert "\r" not in log.getvalue() and len(log.getvalue().splitlines()) == 11  # a line per tenth done
    assert tty.getvalue().count("\r") == 31 + 2 and "\n" not in tty.getvalue()
    off = io.StringIO()
    Bar("bench", enabled=False, tty=True, stream=off).update(1, 2)
    assert off.getvalue() == ""


#: A gallery twin of the stream family that fails its conformance checks at once: it closes
#: the socket where it should shut down one direction.  Its family alone keeps the guard short
#: (about 20 s for the two backends on a loaded 2-CPU machine, measured 2026-12-06).
TWIN = "ipc_impls.broken.streams:FullCloseSocketBackend"


def test_the_guard_marks_a_twin_that_fails_its_checks_unverified_everywhere(tmp_path: Path) -> None:
    extra = ["--backend", "ipc_impls.streams:PipeBackend", "--backend", TWIN, "--sizes", "64", "--repeats", "1",
             "--json", "out.json", "--progress", "-n", "2"] + (["--report", "r.html"] if HAVE_MATPLOTLIB else [])
    proc = bench(tmp_path, *extra, verify=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    doc = json.loads((tmp_path / "out.json").read_text())
    assert doc["guard"]["ran"] is True and doc["guard"]["exit_code"] == 1  # the twin's failures
    rows = {row["name"]: row for row in doc["backends"]}
    assert rows["os-pipe"]["verified"] is True and rows["os-pipe"]["verification"] == "verified"
    twin = rows["broken-close-not-shutdown"]
    assert twin["verified"] is False and twin["verification"] == "unverified: conformance verdicts fail"
    lines = proc.stdout.splitlines()
    assert any(line.startswith("broken-close-not-s… ?") for line in lines), proc.stdout
    assert any(line.startswith("os-pipe ") for line in lines) and "os-pipe ?" not in proc.stdout
    assert "guard [" in proc.stderr and "\r" not in proc.stderr  # progress into a pipe: plain lines
    if HAVE_MATPLOTLIB:
        page = (tmp_path / "r.html").read_text()
        assert ('broken-close-not-shutdown <abbr title="unverified: conformance verdicts fail">unverified</abbr>'
                in page) and "<th>os-pipe</th>" in page


def test_the_bench_schema_rejects_what_the_bench_never_writes(quick_run: Dict[str, Any]) -> None:
    import copy

    bench_schema = schema.load(schema.BENCH_PATH)
    for path, value in ((("schema",), "ipc-conformance-bench/2"), (("backends", 0, "verified"), "yes"),
                        (("backends", 0, "kind"), "semaphore"), (("baselines", "memcpy", "sizes", "64"), {}),
                        (("backends", 0, "verification"), "maybe"), (("settings", "repeats"), 0),
                        (("backends", 0, "sizes", "64", "throughput"), {"median": 1.0})):
        broken = copy.deepcopy(quick_run["doc"])
        target = broken
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = value
        assert schema.validate(broken, bench_schema), path
