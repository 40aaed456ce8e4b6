"""What a run tells its user: one truth across exit code, matrix, JSON and Markdown.

Each test runs the suite the way a library author would (a pytest subprocess in a
scratch directory) and checks that the verdict it prints is the verdict it means:
no green run that checked nothing, no crash shown as a pass, a reproduce line that
reproduces.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any, Dict, List, Tuple

import pytest

from ipc_conformance.report import to_markdown

STREAM = "ipc_impls.streams:PipeBackend"
CHECKED = "bytes_arrive_complete_and_in_order"


def suite(tmp: Path, *args: str, timeout: float = 300) -> Tuple[subprocess.CompletedProcess, Dict[str, Any]]:  # type: ignore[type-arg]
    """Run the installed suite with a JSON report; returns the process and the report ({} if none)."""
    (tmp / "tmp").mkdir(exist_ok=True)
    report = tmp / "r.json"
    if report.exists():
        report.unlink()
    env = {k: v for k, v in os.environ.items() if not k.startswith("IPC")}
    env.update(TMPDIR=str(tmp / "tmp"), IPCC_TMPDIR=str(tmp / "tmp"), IPC_PROFILE="ci",
               HYPOTHESIS_STORAGE_DIRECTORY=str(tmp / "hypothesis"))
    cmd = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "--ipc-deadline", "5",
           "--ipc-report", str(report), *args]
    out = subprocess.run(cmd, cwd=tmp, env=env, capture_output=True, text=True, timeout=timeout)
    return out, (json.loads(report.read_text()) if report.exists() else {})


MARKS = {"pass", "FAIL", "FLAKY", "ERROR", "CRASH", "n/a", "unres", "--"}


def matrix_marks(stdout: str) -> List[str]:
    """Every mark in the matrix's table rows (``invariant_id  mark mark …``, or marks alone
    on the line after an id too long for its column)."""
    section = stdout.split("IPC conformance matrix", 1)[1].split("\nipc-conformance: ", 1)[0]
    marks: List[str] = []
    for line in section.splitlines():
        words = line.split()
        cells = words if line.startswith("          ") else words[1:]
        if cells and all(w in MARKS for w in cells):
            marks += cells
    return marks


def summary_line(stdout: str) -> str:
    return [line for line in stdout.splitlines() if line.startswith("ipc-conformance: ")][-1]


@pytest.mark.parametrize("workers", [[], ["-n", "2"]], ids=["in-process", "xdist"])
def test_a_crash_in_the_parents_own_calls_is_a_crash_cell_everywhere(tmp_path: Path, workers: List[str]) -> None:
    out, data = suite(tmp_path, "--pyargs", "ipc_conformance.suite.test_streams", "--ipc-placements", "fork",
                      "--ipc-backend", "ipc_impls.broken.chaos:PARENT_CRASHERS", "--ipc-backend", STREAM,
                      "-k", CHECKED, *workers)
    assert out.returncode == 1, out.stdout + out.stderr  # the run survived and failed
    verdicts = {r["backend"]: r["verdict"] for r in data["results"]}
    assert verdicts == {"chaos-setup-segfaults": "crashed", "chaos-teardown-exits": "crashed", "os-pipe": "pass"}
    details = {r["backend"]: r["placements"]["fork"]["detail"] for r in data["results"]}
    assert "setup() died by SIGSEGV" in details["chaos-setup-segfaults"]
    assert "teardown() exited the process with code 3" in details["chaos-teardown-exits"]
    assert data["status"] == "FAILED" and data["summary"]["crashed"] == 2 and data["summary"]["pass"] == 1
    assert summary_line(out.stdout) == "ipc-conformance: FAILED: 2 CRASH, 1 pass"
    assert sorted(matrix_marks(out.stdout)) == ["CRASH", "CRASH", "pass"]
    markdown = to_markdown(data)
    assert markdown.count("| CRASH |") == 2 and "**FAILED**" in markdown


@pytest.mark.parametrize("workers", [[], ["-n", "2"]], ids=["in-process", "xdist"])
def test_a_crash_the_probe_cannot_see_ends_only_its_own_check(tmp_path: Path, workers: List[str]) -> None:
    """setup() crashing on a later example, a role of the thread placement segfaulting: under
    xdist the worker dies, under -n 0 the child forked for the check (contain.py); the run goes on."""
    out, data = suite(tmp_path, "--pyargs", "ipc_conformance.suite.test_streams", "--ipc-placements", "fork,thread",
                      "--ipc-backend", "ipc_impls.broken.chaos:LATE_CRASHERS", "--ipc-backend", STREAM,
                      "-k", CHECKED, *workers)
    assert out.returncode == 1, out.stdout + out.stderr
    cells = {(r["backend"], p): c["verdict"] for r in data["results"] for p, c in r["placements"].items()}
    assert cells == {("chaos-setup-segfaults-later", "fork"): "crashed",
                     ("chaos-setup-segfaults-later", "thread"): "unsupported",
                     ("chaos-segfaults-in-thread", "fork"): "fail",  # a forked role's death is the backend's
                     ("chaos-segfaults-in-thread", "thread"): "crashed",
                     ("os-pipe", "fork"): "pass", ("os-pipe", "thread"): "pass"}, cells
    assert summary_line(out.stdout) == "ipc-conformance: FAILED: 2 CRASH, 1 pass"
    assert sorted(matrix_marks(out.stdout)) == ["CRASH", "CRASH", "pass"]
    later = next(r for r in data["results"] if r["backend"] == "chaos-setup-segfaults-later")["placements"]["fork"]
    assert "-k 'test_invariant[chaos-setup-segfaults-later-" in later["reproduce"], later
    if not workers:  # the child's faulthandler dump names the backend's frame, innermost first
        assert "died by SIGSEGV" in later["detail"], later
        assert re.search(r'File ".*chaos\.py", line \d+ in setup', later["counterexample"]), later
        assert "_pytest" not in later["counterexample"], later


def test_a_backend_that_fails_to_load_fails_whatever_subset_runs(tmp_path: Path) -> None:
    out, data = suite(tmp_path, "--pyargs", "ipc_conformance.suite.test_queues", "--ipc-backend", "typo_mod:X")
    assert out.returncode == 1, out.stdout
    assert data["status"] == "FAILED" and data["load_problems"][0]["source"] == "typo_mod:X"
    assert "No module named 'typo_mod'" in out.stdout and "FAILED" in summary_line(out.stdout)


def test_a_backend_of_no_selected_family_is_not_a_pass(tmp_path: Path) -> None:
    out, data = suite(tmp_path, "--pyargs", "ipc_conformance.suite.test_queues", "--ipc-backend", STREAM)
    assert out.returncode == 1, out.stdout
    assert data["unchecked"] == ["backend os-pipe (stream): nothing was checked: no check of the stream family "
                                 "was selected"]
    assert "nothing was checked" in out.stdout and summary_line(out.stdout).startswith("ipc-conformance: FAILED")


def test_a_backend_whose_every_check_is_unsupported_is_not_a_pass(tmp_path: Path) -> None:
    out, data = suite(tmp_path, "--pyargs", "ipc_conformance.suite.test_streams", "--ipc-backend", STREAM,
                      "-k", "blocking_open_waits_for_peer and fork")  # a FIFO-only invariant
    assert out.returncode == 1, out.stdout
    assert data["unchecked"] == ["backend os-pipe (stream): nothing was checked: every selected check was "
                                 "1 unsupported"]


def test_the_reproduce_line_reproduces_from_another_directory(tmp_path: Path) -> None:
    """Non-default settings travel in the line, and the failure blob replays the exact
    example without the first run's Hypothesis database."""
    first = tmp_path / "first"
    first.mkdir()
    out, data = suite(first, "--pyargs", "ipc_conformance.suite.test_streams", "--ipc-placements", "fork",
                      "--ipc-faults", "off", "--ipc-backend", "ipc_impls.broken.streams:EXHIBITS",
                      "-k", "broken-accepts-text-write_rejects_text")
    assert out.returncode == 1, out.stdout
    fork = data["results"][0]["placements"]["fork"]
    line = fork["reproduce"]
    assert "--faults off" in line and "--deadline 5" in line and "--placements fork" in line, line
    assert "--replay" in line and "-n 0" in line, line
    # The failure reads as the violation, not as the harness's and Hypothesis's frames.
    assert "harness/run.py" not in out.stdout and "Explanation:" not in out.stdout, out.stdout
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("IPC")}
    env.update(HYPOTHESIS_STORAGE_DIRECTORY=str(elsewhere / "fresh-db"), TMPDIR=str(first / "tmp"),
               PATH=os.path.dirname(sys.executable) + os.pathsep + env.get("PATH", ""))
    again = subprocess.run(line, shell=True, cwd=elsewhere, env=env, capture_output=True, text=True, timeout=300)
    assert again.returncode == 1, again.stdout + again.stderr
    assert fork["detail"].split(" [")[0] in again.stdout or "write_rejects_text" in again.stdout
    assert "FAIL" in summary_line(again.stdout)
    assert "reproduce_failure" not in again.stdout + out.stdout  # Hypothesis's advice is not for the user


def test_the_plugin_is_inert_where_it_is_not_asked_for(tmp_path: Path) -> None:
    (tmp_path / "test_theirs.py").write_text(
        "import signal, sys\n"
        "def test_their_own_sigterm_disposition():\n"
        "    assert signal.getsignal(signal.SIGTERM) == signal.SIG_DFL\n"
        "    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler\n"
        "def test_no_family_was_imported():\n"
        "    assert 'ipc_specs' not in sys.modules and 'ipc_impls' not in sys.modules\n")
    debris = tmp_path / "ipcc-root-of-a-dead-run"
    debris.mkdir()
    (debris / "owner").write_text("999999999")
    env = {k: v for k, v in os.environ.items() if not k.startswith("IPC")}
    env.update(TMPDIR=str(tmp_path), IPCC_TMPDIR=str(tmp_path))
    # A background job of a non-interactive shell (a CI script started with `&`) starts with
    # SIGINT ignored, which survives exec, and Python then keeps it: start from the default
    # disposition, as a terminal run has it, so that what is compared is the plugin's doing.
    out = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "test_theirs.py"],
                         cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120,
                         preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    assert out.returncode == 0, out.stdout + out.stderr
    assert "ipc-conformance:" not in out.stdout and "IPC conformance" not in out.stdout  # no header, no matrix
    assert debris.exists()  # nothing swept: it is not this run's business


@pytest.mark.parametrize(("args", "env", "message"), [
    (["--ipc-deadline", "inf"], {}, "--ipc-deadline 'inf': must be a positive number"),
    (["--ipc-deadline", "nan"], {}, "--ipc-deadline 'nan': must be a positive number"),
    (["--ipc-deadline", "1e308"], {}, "--ipc-deadline '1e308': must be a positive number"),
    (["--ipc-placements", ""], {}, "--ipc-placements '': empty"),
    (["--ipc-report", "missing-dir/r.json"], {}, "does not exist"),
    (["--ipc-report", "r.txt"], {}, "unknown format '.txt'"),
    ([], {"IPCC_TMPDIR": "/nonexistent/dir"}, "IPCC_TMPDIR='/nonexistent/dir' does not exist"),
    ([], {"IPCC_TMPDIR": "FILE"}, "is not a directory"),
    ([], {"IPCC_TMPDIR": "DANGLING"}, "is a dangling symbolic link"),
    ([], {"IPCC_TMPDIR": "OPEN"}, "world-writable without the sticky bit"),
], ids=["inf", "nan", "1e308", "no-placements", "report-dir", "report-format", "tmp-missing", "tmp-file",
        "tmp-dangling", "tmp-open"])
def test_bad_values_stop_at_the_door(tmp_path: Path, args: List[str], env: Dict[str, str], message: str) -> None:
    (tmp_path / "FILE").write_text("")
    os.symlink(tmp_path / "gone", tmp_path / "DANGLING")
    (tmp_path / "OPEN").mkdir()
    os.chmod(tmp_path / "OPEN", 0o777)
    environ = {k: v for k, v in os.environ.items() if not k.startswith("IPC")}
    environ.update({k: (str(tmp_path / v) if v.isupper() else v) for k, v in env.items()})
    cmd = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--pyargs", "ipc_conformance.suite.test_timeouts",
           "--ipc-backend", "ipc_impls.timeouts:BACKENDS", *args]
    out = subprocess.run(cmd, cwd=tmp_path, env=environ, capture_output=True, text=True, timeout=120)
    assert out.returncode == 4, out.stdout + out.stderr  # a usage error, before anything ran
    errors = [line for line in out.stderr.splitlines() if line.startswith("ERROR:")]
    assert len(errors) == 1 and message in errors[0], out.stderr


@pytest.mark.parametrize("width", [80, 100, 200])
def test_the_matrix_fits_the_terminal(width: int) -> None:
    from ipc_conformance.collector import Collector
    from ipc_conformance.matrix import matrix_lines
    from ipc_impls import reference_backends
    from ipc_specs import all_invariants

    collector = Collector()
    collector.settings = {"profile": "standard", "max_examples": 25}
    for backend in reference_backends():
        collector.backends[backend.name] = {"kind": backend.kind}
        for inv in all_invariants(backend.kind):
            collector.add({"ipc_backend": backend.name, "ipc_invariant": inv.id, "ipc_placement": "fork",
                           "ipc_verdict": "pass", "ipc_examples": 25}, nodeid=f"{backend.name}{inv.id}")
    lines = matrix_lines(collector, width)
    assert max(len(line) for line in lines) <= width, max(lines, key=len)
    assert lines[-1] == "ipc-conformance: PASSED: " + f"{len(collector.cells)} pass"
    for inv in all_invariants():  # every invariant id is printed whole, never cut
        assert any(line.split()[:1] == [inv.id] for line in lines), inv.id


def test_list_is_a_preflight_step(tmp_path: Path) -> None:
    cli = os.path.join(os.path.dirname(sys.executable), "ipc-conformance")
    good = subprocess.run([cli, "list", "--backend", STREAM], capture_output=True, text=True, timeout=120)
    assert good.returncode == 0, good.stderr
    bad = subprocess.run([cli, "list", "--backend", "typo_mod:X"], capture_output=True, text=True, timeout=120,
                         cwd=tmp_path)
    assert bad.returncode == 1 and "LOAD ERROR" in bad.stdout
    malformed = subprocess.run([cli, "list", "--backend", "no-colon"], capture_output=True, text=True, timeout=120)
    assert malformed.returncode != 0 and "Traceback" not in malformed.stderr
    assert malformed.stderr.strip().splitlines() == [malformed.stderr.strip()] and "--backend" in malformed.stderr


def test_every_family_can_be_selected_by_name() -> None:
    import importlib.util

    from ipc_conformance.cli import _module_for
    from ipc_specs import kinds

    for kind in kinds():
        assert importlib.util.find_spec(f"ipc_conformance.suite.test_{_module_for(kind)}"), kind


def test_a_backend_deselected_by_k_in_a_family_that_ran_is_not_flagged() -> None:
    """A reproduce line selects one twin's check out of a module's EXHIBITS: the others
    were left out by the user's -k, not forgotten by the suite."""
    from ipc_conformance.collector import Collector

    c = Collector()
    c.explicit = {"a": "stream", "b": "stream", "q": "queue"}
    c.schedule(["t.py::test_invariant[a-eof_after_last_writer_closes-fork]"])
    c.add({"ipc_backend": "a", "ipc_invariant": "eof_after_last_writer_closes", "ipc_placement": "fork",
           "ipc_verdict": "fail"}, "t.py::test_invariant[a-eof_after_last_writer_closes-fork]")
    assert c.unchecked() == ["backend q (queue): nothing was checked: no check of the queue family was selected"]
