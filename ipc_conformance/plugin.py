"""The pytest plugin: options, backend parametrisation, verdicts, matrix and report.

Registered through the ``pytest11`` entry point, so any pytest run in an
environment where ipc-conformance is installed sees its options; it *acts* only
when asked (see :mod:`.activation`).  Conformance test modules mark themselves
with ``pytest.mark.ipc_family("<kind>")`` and take the ``ipc_case`` argument,
which this plugin parametrises with every (backend, invariant, placement) of
that family; combinations a backend does not claim are still generated and
reported as skipped "unsupported: <why>".

Exit status: pytest's own, made stricter by the verdicts.  A run with a failing,
flaky, erroring or crashed cell, a backend that failed to load, or a selected
backend that got no judged check exits 1; a run that judged nothing exits 5
(pytest's "no tests"), even if every check was skipped as unsupported or
unresolved; an interrupted one keeps 2 and says PARTIAL.
"""

from __future__ import annotations

import os
import time
from typing import TYPE_CHECKING, Any, Dict, Generator, List, Union

import pytest

from . import options as opt
from .activation import asked_for

# ipc_specs' checks import Hypothesis; importing them at plugin load would import
# Hypothesis before pytest registers Hypothesis's own plugin (an assert-rewrite
# warning), and would cost every unrelated pytest run; the hooks import what they need.
if TYPE_CHECKING:
    from ipc_specs import Harness

    from .collector import Collector
    from .selection import Loaded, LoadProblem

_STATE: Dict[str, Any] = {}


def pytest_addoption(parser: pytest.Parser) -> None:
    opt.add_options(parser)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "ipc_family(kind): conformance tests of one backend kind")
    if asked_for(config):
        _activate(config)


def _activate(config: pytest.Config) -> None:
    """Validate the options, sweep an earlier crashed run's debris, load the backends
    (so that a bad one is reported whatever subset of the suite runs), latch SIGINT/SIGTERM."""
    if _STATE.get("active"):
        return
    from ipc_specs.harness.run import PROFILES

    from .collector import Collector
    from .selection import SpecSyntaxError, requested_specs

    values = opt.validated(config)
    try:
        specs = requested_specs(config.getoption("ipc_backend"))
    except SpecSyntaxError as exc:
        raise pytest.UsageError(f"--ipc-backend: {exc}") from None
    collector = Collector()
    profile = PROFILES[values["profile"]]
    collector.settings = {"profile": values["profile"], "max_examples": profile["max_examples"],
                          "derandomize": bool(profile.get("derandomize")), "deadline_s": values["deadline"],
                          "replays": values["replays"], "faults": values["faults"],
                          "placements": values["placements"], "worker_memory_mib": values["worker_memory"],
                          "hypothesis_seed": _hypothesis_seed(config)}
    _STATE.update(active=True, options=values, collector=collector, harness=None, items=None, started=time.time())
    if not hasattr(config, "workerinput"):  # the controller cleans up after crashed runs
        from ipc_specs.harness.resources import sweep_debris

        _register_removers()
        collector.debris = sweep_debris()
        _load_for_verdicts(config, collector, bool(specs))
    _install_sigterm()


def _hypothesis_seed(config: pytest.Config) -> Any:
    """Hypothesis's ``--hypothesis-seed``, when given (else each check draws from a fresh seed,
    or from one derived from the test under a derandomized profile)."""
    try:
        seed = config.getoption("hypothesis_seed")
    except ValueError:
        return None
    return None if seed is None else str(seed)


def _load_for_verdicts(config: pytest.Config, collector: Collector, explicit: bool) -> None:
    from .report import backend_meta
    from .selection import LoadProblem

    for item in _selection(config):
        if isinstance(item, LoadProblem):
            collector.add_load_problem({"source": item.source, "message": item.message})
        elif explicit:
            collector.explicit[item.backend.name] = item.backend.kind
            collector.backends.setdefault(item.backend.name, backend_meta(item.backend, item.source))


def _register_removers() -> None:
    """Import every family and implementation module, so that each kind of journalled
    object (POSIX queues, SysV semaphores, …) has its remover before debris is swept."""
    from ipc_impls import reference_backends
    from ipc_impls.broken import all_exhibits
    from ipc_specs import all_invariants

    all_invariants()
    reference_backends()
    all_exhibits()


def _install_sigterm() -> None:
    """SIGINT and SIGTERM become a KeyboardInterrupt that the harness cannot lose, so
    pytest unwinds and the cleanup runs (see ipc_specs.harness.interrupts)."""
    from ipc_specs.harness import interrupts

    interrupts.install()
    _STATE["sigterm_installed"] = True


def _selection(config: pytest.Config) -> List[Union[Loaded, LoadProblem]]:
    """Load the backends, once per process."""
    from .selection import duplicate_names, select

    if _STATE.get("items") is None:
        items = select(config.getoption("ipc_backend"))
        dups = duplicate_names(items)
        if dups:
            raise pytest.UsageError(f"backend names must be unique; repeated: {dups}")
        _STATE["items"] = items
    return _STATE["items"]


def harness(config: pytest.Config) -> Harness:
    from ipc_specs import Harness

    if _STATE.get("harness") is None:
        o = _STATE["options"]
        _STATE["harness"] = Harness(deadline_s=o["deadline"], profile=o["profile"], replays=o["replays"],
                                    worker_memory_mib=o["worker_memory"], faults=o["faults"], replay=o["replay"])
    return _STATE["harness"]


def pytest_report_header(config: pytest.Config) -> List[str]:
    if not _STATE.get("active"):
        return []
    from ipc_specs.limits import probe

    from .selection import Loaded

    s = _STATE["collector"].settings
    lines = [f"ipc-conformance: profile={s['profile']} (up to {s['max_examples']} examples per check) "
             f"deadline={s['deadline_s']:g}s placements={','.join(s['placements'])} "
             f"faults={'on' if s['faults'] else 'off'}"]
    lines.append("machine limits: " + ", ".join(f"{k}={v}" for k, v in probe().items()))
    lines.append("backends: " + ", ".join(
        i.backend.name if isinstance(i, Loaded) else f"{i.source} (LOAD ERROR)" for i in _selection(config)))
    from ipc_specs.harness.named import unaudited

    lines += [f"leak audit cannot see: {what}" for what in unaudited()]
    for line in _STATE["collector"].debris:
        lines.append(f"removed debris of an earlier crashed run: {line}")
    return lines


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    from .cases import parametrize

    if not {"ipc_case", "ipc_backend_item"} & set(metafunc.fixturenames):
        return  # not a conformance test: do not load any backend for it
    _activate(metafunc.config)  # the suite is collected: the plugin is asked for after all
    parametrize(metafunc, _selection(metafunc.config), _STATE["options"]["placements"], harness)


def pytest_collection_finish(session: pytest.Session) -> None:
    if not _STATE.get("active"):
        return
    cases = [i for i in session.items if "ipc_case" in getattr(i, "fixturenames", ())]
    if _STATE["options"]["replay"] and len(cases) != 1:
        raise pytest.UsageError(f"--ipc-replay replays one example of one check, but {len(cases)} checks are "
                                "selected: select exactly one with -k, as the reproduce line does")
    if not hasattr(session.config, "workerinput"):
        _STATE["collector"].schedule(item.nodeid for item in session.items)


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_node_collection_finished(node: Any, ids: List[str]) -> None:
    """The controller of an xdist run never collects: it learns what is scheduled here."""
    if _STATE.get("active"):
        _STATE["collector"].schedule(ids)


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: Any) -> Any:
    """Without pytest-xdist, conformance checks run in a child forked from pytest, so that a
    backend that crashes cannot take the run down (see :mod:`.contain`)."""
    if not _STATE.get("active"):
        return None
    from . import contain

    if not contain.wanted(item):
        return None
    if _STATE.get("contain_root") is None:
        from ipc_specs.harness.resources import ResourceRoot, worker_tag

        worker_tag()  # made here, so that every child's objects carry this run's tag
        _STATE["contain_root"] = ResourceRoot()
    removed = contain.run_contained(item, nextitem, _STATE["contain_root"].path,
                                    enter=_fresh_harness, leave=_close_harness)
    _STATE.setdefault("contained_debris", []).extend(removed)
    return True


def _fresh_harness() -> None:
    """In the runner: a harness made before the fork (pools, root) is the parent's; the
    runner makes its own on first use.  The parent's stays referenced: no finalizer of it
    may run here."""
    _STATE["parents_harness"] = _STATE.get("harness")
    _STATE["harness"] = None


def _close_harness() -> None:
    h = _STATE.pop("harness", None)
    if h is not None:
        problems = h.close()
        if problems:
            print(f"ipc-conformance: cleanup problems: {problems}")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Generator[None, Any, None]:
    outcome = yield
    if _STATE.get("active"):
        from .cases import record

        record(item, call, outcome.get_result(), _STATE["options"])


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if not _STATE.get("active"):
        return
    collector = _STATE["collector"]
    props = dict(report.user_properties)
    if "ipc_verdict" in props:
        collector.backends.setdefault(props["ipc_backend"], props["ipc_backend_meta"])
        collector.add(props, report.nodeid)
    elif report.when == "???" and report.failed:  # pytest-xdist: the worker died running it
        if collector.add_crash(report.nodeid, "the pytest-xdist worker running it died: "
                               + " ".join(str(report.longrepr).split())[:200]):
            _reproduce_crash(collector, report.nodeid)
    else:
        return
    if _STATE["options"]["progress"]:
        _show_progress(collector)


def _reproduce_crash(collector: Collector, nodeid: str) -> None:
    """A case whose xdist worker died gets the reproduce line every other verdict gets
    (``-n 0``: the crash is contained there too, see :mod:`.contain`)."""
    from . import reproduce
    from .collector import case_of

    key = case_of(nodeid)
    source = collector.backends.get(key[0], {}).get("source") if key else None
    if key is None or source is None:
        return
    test_id = nodeid.rsplit("::", 1)[-1]
    line = reproduce.command(source=source, test_id=test_id, opts=_STATE["options"], blob="", flaky=False)
    collector.cells[key[:2]].placements[key[2]]["reproduce"] = line


def _show_progress(collector: Collector) -> None:
    """One line, rewritten in place: cases done of those scheduled, and what failed so far."""
    from .collector import FAILING

    failing = sum(1 for c in collector.cells.values() for p in c.placements.values() if p["verdict"] in FAILING)
    _progress_file(len(collector.reported), len(collector.scheduled), failing)
    tr = _STATE.get("terminal")
    if tr is None or not getattr(tr, "isatty", False):
        return
    total = len(collector.scheduled) or "?"
    tr.rewrite(f"ipc-conformance: {len(collector.reported)}/{total} checks done, {failing} failing", erase=True)


def _progress_file(done: int, total: int, failing: int) -> None:
    """``IPCC_PROGRESS_FILE`` (set by the bench's guard, whose output goes to a log, not a
    terminal): "done total failing", replaced whole so that a reader never sees half a line."""
    path = os.environ.get("IPCC_PROGRESS_FILE")
    if not path:
        return
    try:
        with open(path + ".new", "w", encoding="ascii") as f:
            f.write(f"{done} {total} {failing}\n")
        os.replace(path + ".new", path)
    except OSError:
        pass  # progress is a courtesy: never a reason for the run to fail


def pytest_report_teststatus(report: pytest.TestReport, config: pytest.Config) -> Any:
    """With --ipc-progress (the CLI), conformance cases print no letter: the progress line counts them."""
    if _STATE.get("active") and _STATE["options"]["progress"] and "[" in report.nodeid \
            and "::test_invariant[" in report.nodeid and (report.when == "call" or report.skipped):
        return report.outcome, "", report.outcome.upper()
    return None


@pytest.hookimpl(trylast=True)
def pytest_sessionstart(session: pytest.Session) -> None:
    """pytest shows no report header under -q (as the CLI runs it): the header is written here then."""
    if not _STATE.get("active") or hasattr(session.config, "workerinput"):
        return
    tr = session.config.pluginmanager.get_plugin("terminalreporter")
    _STATE["terminal"] = tr
    if _STATE["options"]["progress"]:
        _quiet_xdist_status(session.config)
    if tr is not None and session.config.get_verbosity() < 0:
        for line in pytest_report_header(session.config):
            tr.write_line(line)


def _quiet_xdist_status(config: pytest.Config) -> None:
    """Under --ipc-progress, pytest-xdist's "bringing up nodes..." lines say nothing the
    progress line does not: its reporter writes them whenever the output is not a terminal."""
    reporter = config.pluginmanager.get_plugin("terminaldistreporter")
    if reporter is not None and hasattr(reporter, "ensure_show_status"):
        reporter.ensure_show_status = lambda: None  # an instance attribute: xdist itself is untouched


@pytest.hookimpl(trylast=True)  # after pytest-xdist has reaped its workers: a zombie's pid is alive
def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """The controller sweeps again at the end (an xdist worker that died mid-run could not
    remove its root or its journalled objects), marks what never ran, and makes the exit
    status agree with the verdicts."""
    if not _STATE.get("active") or hasattr(session.config, "workerinput"):
        return
    from ipc_specs.harness.resources import sweep_debris

    from .contain import shutdown

    collector = _STATE["collector"]
    late = _STATE.pop("contained_debris", []) + shutdown() + sweep_debris()
    collector.debris += late
    _STATE["late_debris"] = late
    if exitstatus == pytest.ExitCode.USAGE_ERROR:
        _STATE["quiet"] = True  # the usage error is the whole story
        return
    if exitstatus == pytest.ExitCode.INTERRUPTED:
        collector.interrupted = True
    collector.finish()
    collector.settings["duration_s"] = round(time.time() - _STATE["started"], 3)
    if not _judging(collector):
        return
    status = collector.status()
    if status == "FAILED" and session.exitstatus == 0:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
    elif status == "NOTHING-CHECKED" and session.exitstatus == 0:
        session.exitstatus = pytest.ExitCode.NO_TESTS_COLLECTED


def _judging(collector: Collector) -> bool:
    """Whether this run is a conformance run at all (self-tests alone are not)."""
    return bool(collector.cells or collector.load_problems or collector.explicit or collector.scheduled)


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    if not _STATE.get("active"):
        return
    from . import report as rpt
    from .matrix import failure_lines, matrix_lines

    tr = terminalreporter
    for line in _STATE.get("late_debris", []):
        tr.write_line(f"ipc-conformance: removed debris of a process of this run that died: {line}")
    collector = _STATE["collector"]
    if not _judging(collector) or _STATE.get("quiet"):
        return
    width = getattr(getattr(tr, "_tw", None), "fullwidth", 80)
    tr.section("IPC conformance matrix")
    lines = matrix_lines(collector, width)
    for line in lines[:-1]:
        tr.write_line(line)
    failures = failure_lines(collector, width)
    if failures:
        tr.section("IPC conformance failures")
        for line in failures:
            tr.write_line(line)
    paths = _STATE["options"]["report"]
    data = rpt.to_json(collector) if paths or os.environ.get("GITHUB_STEP_SUMMARY") else {}
    for path in paths:
        rpt.write_data(data, path)
        tr.write_line(f"report written to {path}")
    if os.environ.get("GITHUB_STEP_SUMMARY"):  # a GitHub Actions job: its summary page shows this
        from .report_md import append_step_summary

        try:
            tr.write_line(f"summary appended to {append_step_summary(data)}")
        except OSError as exc:
            tr.write_line(f"ipc-conformance: could not append to GITHUB_STEP_SUMMARY: {exc}")
    tr.write_line(lines[-1], bold=True, red=collector.status() != "PASSED", green=collector.status() == "PASSED")


def pytest_unconfigure(config: pytest.Config) -> None:
    _close_harness()
    root = _STATE.pop("contain_root", None)
    if root is not None:
        from .contain import shutdown

        shutdown()  # if the session did not finish (an internal error): the runner goes too
        root.close()
    if _STATE.pop("sigterm_installed", False):
        from ipc_specs.harness import interrupts

        interrupts.uninstall()
    _STATE.clear()
