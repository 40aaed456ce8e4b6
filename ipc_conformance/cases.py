"""One conformance case (backend, invariant, placement): how it is generated, run and judged.

The verdict of a case is decided here, in the process that ran it, and attached
to its test report (``user_properties``), so that it reaches the controller of
an xdist run unchanged.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, Dict, List, Tuple, Union

import pytest

if TYPE_CHECKING:
    from ipc_specs import Harness

    from .selection import Loaded, LoadProblem


class LeakFound(AssertionError):
    """A check passed but the backend (or the harness) left objects behind."""


class IpcCase:
    """One (backend, invariant, placement); ``run()`` judges it."""

    def __init__(self, config: pytest.Config, loaded: Loaded, invariant_id: str, placement: str,
                 harness: Callable[[pytest.Config], Harness]) -> None:
        from ipc_specs import get_invariant

        self.config = config
        #: The plugin's (one harness per test process, made on first use): passed in, not
        #: imported, so that this module sits below the plugin.
        self.harness = harness
        self.loaded = loaded
        self.invariant = get_invariant(invariant_id)
        self.placement = placement
        self.examples = 0
        self.blob = ""

    @property
    def backend(self) -> Any:
        return self.loaded.backend

    def run(self) -> None:
        from ipc_specs import Unresolved, Unsupported, unsupported_reason
        from ipc_specs.harness import audit

        reason = unsupported_reason(self.backend, self.invariant, self.placement)
        if reason:
            pytest.skip(f"unsupported: {reason}")
        h = self.harness(self.config)
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
            self.blob = case.blob
            left = _audit(h, before)
        if passed and left:
            raise LeakFound(f"{self.backend.name} left behind (now cleaned up, unless said otherwise): "
                        + "; ".join(left))


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


def parametrize(metafunc: pytest.Metafunc, items: List[Union[Loaded, LoadProblem]], placements: List[str],
                harness: Callable[[pytest.Config], Harness]) -> None:
    from ipc_specs import all_invariants

    from .selection import Loaded

    config = metafunc.config
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
            for placement in placements:
                cases.append(IpcCase(config, item, inv.id, placement, harness))
                ids.append(f"{item.backend.name}-{inv.id}-{placement}")
    metafunc.parametrize("ipc_case", cases, ids=ids)


def _item_id(item: Union[Loaded, LoadProblem]) -> str:
    return item.backend.name if hasattr(item, "backend") else item.source


def record(item: pytest.Item, call: pytest.CallInfo[None], report: pytest.TestReport, opts: Dict[str, Any]) -> None:
    """Attach the case's verdict to its report (setup-time skips and call-time outcomes)."""
    from . import reproduce
    from .report import backend_meta

    params = item.callspec.params if hasattr(item, "callspec") else {}
    case = params.get("ipc_case")
    if not isinstance(case, IpcCase):  # pytest passes a placeholder for an empty parameter set
        return
    if report.when != "call" and not (report.when == "setup" and (report.skipped or report.failed)):
        return
    verdict, detail, counterexample, replays, flaky = _verdict(report, call)
    if verdict in ("fail", "flaky") and report.failed:
        # The traceback runs through the harness and Hypothesis only (the backend ran in other
        # processes, whose stacks the violation already quotes): the violation is the story.
        report.longrepr = counterexample
    line = ""
    if verdict in ("fail", "flaky", "error", "crashed"):
        line = reproduce.command(source=case.loaded.source, test_id=item.name, opts=opts, blob=case.blob,
                                 flaky=flaky)
        report.sections.append(("ipc-conformance", f"invariant {case.invariant.id}: {case.invariant.rule}\n"
                                f"source: {case.invariant.source}\nreproduce: {line}"))
    report.user_properties += [
        ("ipc_backend_meta", backend_meta(case.backend, case.loaded.source)),
        ("ipc_backend", case.backend.name), ("ipc_invariant", case.invariant.id),
        ("ipc_placement", case.placement), ("ipc_verdict", verdict), ("ipc_detail", detail),
        ("ipc_examples", case.examples), ("ipc_counterexample", counterexample), ("ipc_reproduce", line),
        ("ipc_replays", replays), ("ipc_duration_s", round(report.duration, 3)), ("ipc_blob", case.blob),
    ]


#: Hypothesis notes addressed to the author of a test function, which the user is not here.
_NOT_FOR_USERS = ("Explanation:", "You can reproduce", "You can add @seed")


def _verdict(report: pytest.TestReport, call: pytest.CallInfo[None]) -> Tuple[str, str, str, Any, bool]:
    """``(verdict, detail, counterexample, replays, flaky)``; replays is ``{"runs", "failed"}`` or None."""
    from ipc_specs import Violation
    from ipc_specs.harness.run import BackendCrashed

    from .contain import ChildCrashed
    from .report import first_line

    if report.skipped:
        reason = str(report.longrepr[2]) if isinstance(report.longrepr, tuple) else str(report.longrepr)
        reason = reason.replace("Skipped: ", "")
        return ("unresolved" if reason.startswith("unresolved") else "unsupported"), reason, "", None, False
    if report.passed:
        return "pass", "", "", None, False
    exc = call.excinfo.value if call.excinfo else None
    if isinstance(exc, Violation):
        notes = "\n".join(n for n in getattr(exc, "__notes__", []) if not str(n).startswith(_NOT_FOR_USERS))
        replays = {"failed": exc.replays[0], "runs": exc.replays[1]} if exc.replays else None
        head = exc.verdict_line()
        qualifier = head[head.index("("):] + " " if "(" in head else ""
        detail = f"{qualifier}got={exc.got}, but should be {exc.expected} [{exc.call}]"
        return ("flaky" if exc.flaky else "fail"), detail, f"{exc}\n{notes}".strip(), replays, exc.flaky
    if isinstance(exc, (BackendCrashed, ChildCrashed)):
        stack = getattr(exc, "stack", "")
        return "crashed", f"crashed: {exc}", f"{exc}\n\n{stack}".strip(), None, False
    text = f"{type(exc).__name__}: {exc}" if exc is not None else str(report.longrepr)
    return "error", first_line(text), str(report.longrepr)[-4000:], None, False
