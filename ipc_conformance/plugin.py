"""The pytest plugin: options, backend parametrisation, verdicts, matrix and report.

Registered through the ``pytest11`` entry point, so any pytest run in an
environment where ipc-conformance is installed has these options.  Conformance
test modules mark themselves with ``pytest.mark.ipc_family("<kind>")`` and take
the ``ipc_case`` argument, which this plugin parametrises with every
(backend, invariant, placement) of that family; combinations a backend does not
claim are still generated and reported as skipped "unsupported: <why>".
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any, Dict, Generator, List, Union

import pytest

# ipc_specs' checks import Hypothesis; importing them at plugin load would import
# Hypothesis before pytest registers Hypothesis's own plugin (an assert-rewrite
# warning), so the hooks import what they need when they run.
if TYPE_CHECKING:
    from ipc_specs import Harness

    from .selection import Loaded, LoadProblem

# Kept equal to their ipc_specs counterparts by tests/selftest/test_plugin.py.
PROFILES = ("ci", "fast", "thorough")
PLACEMENTS = ("fork", "spawn", "forkserver", "thread")
DEFAULT_DEADLINE_S = 10.0
# The same as ipc_specs' (not imported here: the plugin loads without Hypothesis).
DEFAULT_REPLAYS = 3
DEFAULT_WORKER_MEMORY_MIB = 2048
_STATE: Dict[str, Any] = {}


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("ipc-conformance", "IPC conformance suite")
    group.addoption("--ipc-backend", action="append", default=[], metavar="MODULE:ATTR",
                    help="check this backend (repeatable); default: the reference backends and installed ones")
    group.addoption("--ipc-report", metavar="PATH", default=None,
                    help="write the verdicts as JSON (Markdown when PATH ends in .md)")
    group.addoption("--ipc-profile", choices=PROFILES, default=os.environ.get("IPC_PROFILE", "fast"),
                    help="how many Hypothesis examples per check: fast (default), ci, thorough; env IPC_PROFILE")
    group.addoption("--ipc-deadline", type=float, default=float(os.environ.get("IPC_DEADLINE", DEFAULT_DEADLINE_S)),
                    metavar="SECONDS", help="per-example deadline after which a worker counts as hung")
    group.addoption("--ipc-replays", type=int, default=int(os.environ.get("IPC_REPLAYS", DEFAULT_REPLAYS)),
                    metavar="N", help="replays of a failing minimal example: FAIL if all fail, else FLAKY with "
                    "the rate; env IPC_REPLAYS")
    group.addoption("--ipc-worker-memory", type=int, metavar="MIB",
                    default=int(os.environ.get("IPC_WORKER_MEMORY", DEFAULT_WORKER_MEMORY_MIB)),
                    help="private memory a worker process may allocate (RLIMIT_DATA above its start size; "
                    "0: no cap); env IPC_WORKER_MEMORY")
    group.addoption("--ipc-faults", choices=("on", "off"), default=os.environ.get("IPC_FAULTS", "on"),
                    help="draw the faults invariants opt in to (signals during blocking calls, a killed "
                    "writer) into their examples (default on); env IPC_FAULTS")
    group.addoption("--ipc-placements", default=",".join(PLACEMENTS), metavar="LIST",
                    help=f"comma-separated subset of {','.join(PLACEMENTS)}")


def pytest_configure(config: pytest.Config) -> None:
    from . import report as rpt
    from .selection import SpecSyntaxError, requested_specs

    config.addinivalue_line("markers", "ipc_family(kind): conformance tests of one backend kind")
    try:
        requested_specs(config.getoption("ipc_backend"))
    except SpecSyntaxError as exc:
        raise pytest.UsageError(str(exc)) from None
    placements = [p.strip() for p in config.getoption("ipc_placements").split(",") if p.strip()]
    unknown = sorted(set(placements) - set(PLACEMENTS))
    if unknown:
        raise pytest.UsageError(f"--ipc-placements: unknown {unknown}; expected a subset of {list(PLACEMENTS)}")
    if config.getoption("ipc_deadline") <= 0:
        raise pytest.UsageError("--ipc-deadline must be a positive number of seconds")
    if config.getoption("ipc_replays") < 0:
        raise pytest.UsageError("--ipc-replays must be 0 or more")
    if config.getoption("ipc_worker_memory") < 0:
        raise pytest.UsageError("--ipc-worker-memory must be 0 (no cap) or a number of MiB")
    _STATE.update(placements=placements, collector=rpt.Collector(), harness=None, items=None)
    if not hasattr(config, "workerinput"):  # the controller cleans up after crashed runs
        from ipc_specs.harness.resources import sweep_debris

        _register_removers()
        _STATE["collector"].debris = sweep_debris()
    # In xdist workers too: a worker terminated without unwinding leaves its journalled
    # objects for the next run to sweep, and multiprocessing's own temp dirs for good.
    _install_sigterm()


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
    """Load the backends (once per process, at collection: the controller of an
    xdist run never collects, it learns about backends from the reports)."""
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
        _STATE["harness"] = Harness(deadline_s=config.getoption("ipc_deadline"),
                                    profile=config.getoption("ipc_profile"),
                                    replays=config.getoption("ipc_replays"),
                                    worker_memory_mib=config.getoption("ipc_worker_memory"),
                                    faults=config.getoption("ipc_faults") == "on")
    return _STATE["harness"]


def pytest_report_header(config: pytest.Config) -> List[str]:
    from ipc_specs.limits import probe

    from .selection import Loaded

    limits = probe()
    lines = [f"ipc-conformance: profile={config.getoption('ipc_profile')} "
             f"deadline={config.getoption('ipc_deadline'):g}s placements={','.join(_STATE['placements'])}"]
    lines.append("machine limits: " + ", ".join(f"{k}={v}" for k, v in limits.items()))
    items = _selection(config)
    lines.append("backends: " + ", ".join(
        i.backend.name if isinstance(i, Loaded) else f"{i.source} (LOAD ERROR)" for i in items))
    for line in _STATE["collector"].debris:
        lines.append(f"removed debris of an earlier crashed run: {line}")
    return lines


class LeakFound(AssertionError):
    """A check passed but the backend (or the harness) left objects behind."""


class IpcCase:
    """One (backend, invariant, placement); ``run()`` judges it."""

    def __init__(self, config: pytest.Config, loaded: Loaded, invariant_id: str, placement: str) -> None:
        from ipc_specs import get_invariant

        self.config = config
        self.loaded = loaded
        self.invariant = get_invariant(invariant_id)
        self.placement = placement
        self.examples = 0

    @property
    def backend(self) -> Any:
        return self.loaded.backend

    def run(self) -> None:
        from ipc_specs import Unresolved, Unsupported, unsupported_reason
        from ipc_specs.harness import audit

        reason = unsupported_reason(self.backend, self.invariant, self.placement)
        if reason:
            pytest.skip(f"unsupported: {reason}")
        h = harness(self.config)
        case = h.case(self.backend, self.invariant.id, self.placement)
        h.settle()
        before = audit.take(h.root.journal_entries())
        passed = False
        try:
            self.invariant.check(self.backend, case)
            passed = True
        except Unsupported as exc:
            pytest.skip(f"unsupported: {exc}")
        except Unresolved as exc:
            pytest.skip(f"unresolved: {exc}")
        finally:
            self.examples = case.examples_run
            left = self._audit(h, before)
        if passed and left:
            raise LeakFound(f"{self.backend.name} left behind (now cleaned up): " + "; ".join(left))

    @staticmethod
    def _audit(h: Harness, before: Any) -> List[str]:
        """List and undo what the check left behind; the pools and multiprocessing's
        own helper processes are kept across tests on purpose."""
        from ipc_specs.harness import audit

        h.settle()
        after = audit.take(h.root.journal_entries())
        pids, fds = h.persistent()
        infra_pids, infra_fds = audit.infrastructure()
        keep = {"ignore_children": pids | infra_pids, "ignore_fds": fds | infra_fds}
        found = audit.leaks(before, after, **keep)
        if found:
            audit.clean(before, after, **keep)
        return found


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    from ipc_specs import all_invariants

    from .selection import Loaded

    if not {"ipc_case", "ipc_backend_item"} & set(metafunc.fixturenames):
        return  # not a conformance test: do not load any backend for it
    config = metafunc.config
    items = _selection(config)
    if "ipc_backend_item" in metafunc.fixturenames:
        metafunc.parametrize("ipc_backend_item", items, ids=[_item_id(i) for i in items])
    if "ipc_case" not in metafunc.fixturenames:
        return
    marker = metafunc.definition.get_closest_marker("ipc_family")
    if marker is None:
        raise pytest.UsageError(f"{metafunc.definition.nodeid}: ipc_case needs pytest.mark.ipc_family(kind)")
    family = marker.args[0]
    cases, ids = [], []
    for item in items:
        if not isinstance(item, Loaded) or item.backend.kind != family:
            continue
        for inv in all_invariants(family):
            for placement in _STATE["placements"]:
                cases.append(IpcCase(config, item, inv.id, placement))
                ids.append(f"{item.backend.name}-{inv.id}-{placement}")
    metafunc.parametrize("ipc_case", cases, ids=ids)


def _item_id(item: Union[Loaded, LoadProblem]) -> str:
    return item.backend.name if hasattr(item, "backend") else item.source


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Generator[None, Any, None]:
    outcome = yield
    report = outcome.get_result()
    params = item.callspec.params if hasattr(item, "callspec") else {}
    loading = params.get("ipc_backend_item")
    if report.when == "call" and loading is not None and hasattr(loading, "message"):
        report.user_properties.append(("ipc_load_problem", {"source": loading.source, "message": loading.message}))
    case = params.get("ipc_case")
    if not isinstance(case, IpcCase):  # pytest passes a placeholder for an empty parameter set
        return
    if report.when != "call" and not (report.when == "setup" and report.skipped):
        return
    from . import report as rpt

    verdict, detail, counterexample, replays = _verdict(report, call)
    reproduce = ""
    if verdict in ("fail", "flaky", "error"):
        reproduce = _reproduce_command(item, case)
        report.sections.append(("ipc-conformance", f"invariant {case.invariant.id}: {case.invariant.rule}\n"
                                f"source: {case.invariant.source}\nreproduce: {reproduce}"))
    report.user_properties += [
        ("ipc_backend_meta", rpt.backend_meta(case.backend, case.loaded.source)),
        ("ipc_backend", case.backend.name), ("ipc_invariant", case.invariant.id),
        ("ipc_placement", case.placement), ("ipc_verdict", verdict), ("ipc_detail", detail),
        ("ipc_examples", case.examples), ("ipc_counterexample", counterexample), ("ipc_reproduce", reproduce),
        ("ipc_replays", replays),
    ]


def _verdict(report: pytest.TestReport, call: pytest.CallInfo[None]) -> tuple[str, str, str, Any]:
    """``(verdict, detail, counterexample, replays)``; replays is ``{"runs", "failed"}`` or None."""
    from ipc_specs import Violation

    from . import report as rpt

    if report.skipped:
        reason = str(report.longrepr[2]) if isinstance(report.longrepr, tuple) else str(report.longrepr)
        reason = reason.replace("Skipped: ", "")
        return ("unresolved" if reason.startswith("unresolved") else "unsupported"), reason, "", None
    if report.passed:
        return "pass", "", "", None
    exc = call.excinfo.value if call.excinfo else None
    if isinstance(exc, Violation):
        notes = "\n".join(getattr(exc, "__notes__", []))
        verdict = "flaky" if exc.flaky else "fail"
        replays = {"failed": exc.replays[0], "runs": exc.replays[1]} if exc.replays else None
        return (verdict, f"got={exc.got}, but should be {exc.expected} [{exc.call}]", f"{exc}\n{notes}".strip(),
                replays)
    text = f"{type(exc).__name__}: {exc}" if exc is not None else str(report.longrepr)
    return "error", rpt.first_line(text), str(report.longrepr)[-4000:], None


def _reproduce_command(item: pytest.Item, case: IpcCase) -> str:
    backend = "" if case.loaded.source == "reference" else f" --backend {case.loaded.source}"
    profile = item.config.getoption("ipc_profile")
    test_id = item.name
    return f"ipc-conformance{backend} --profile {profile} -n 0 -k '{test_id}'"


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    props = dict(report.user_properties)
    collector = _STATE.get("collector")
    if collector is None:
        return
    if "ipc_load_problem" in props:
        collector.load_problems.append(props["ipc_load_problem"])
    if "ipc_verdict" in props:
        collector.backends[props["ipc_backend"]] = props["ipc_backend_meta"]
        collector.add(props)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """The controller sweeps again at the end: an xdist worker that died mid-run (OOM
    killer, SIGKILL) could not remove its root or its journalled objects itself."""
    collector = _STATE.get("collector")
    if hasattr(session.config, "workerinput") or collector is None:
        return
    from ipc_specs.harness.resources import sweep_debris

    late = sweep_debris()
    collector.debris += late
    _STATE["late_debris"] = late


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    for line in _STATE.get("late_debris", []):
        terminalreporter.write_line(f"ipc-conformance: removed debris of a worker of this run that died: {line}")
    collector = _STATE.get("collector")
    if collector is None or (not collector.cells and not collector.load_problems):
        return
    tr = terminalreporter
    tr.section("IPC conformance matrix")
    for line in collector.matrix_lines():
        tr.write_line(line)
    failures = collector.failure_lines()
    if failures:
        tr.section("IPC conformance failures")
        for line in failures:
            tr.write_line(line)
    path = config.getoption("ipc_report")
    if path:
        collector.write(path, {"profile": config.getoption("ipc_profile"),
                               "deadline_s": config.getoption("ipc_deadline"),
                               "replays": config.getoption("ipc_replays")})
        tr.write_line(f"report written to {path}")


def pytest_unconfigure(config: pytest.Config) -> None:
    h = _STATE.pop("harness", None)
    if h is not None:
        problems = h.close()
        if problems:
            print(f"ipc-conformance: cleanup problems: {problems}")
    if _STATE.pop("sigterm_installed", False):
        from ipc_specs.harness import interrupts

        interrupts.uninstall()
    _STATE.clear()
