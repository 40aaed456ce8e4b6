"""Without pytest-xdist, conformance checks run in a process forked from pytest.

Under pytest-xdist a crash is contained already: a worker that dies is reported
as crashed (``plugin.pytest_runtest_logreport``) and replaced.  Under ``-n 0`` a
check would run in the pytest process itself, and a backend that segfaults there
(``setup()`` on its fifth example, a role of the thread placement, a finalizer)
would end the whole run: no matrix, no report, exit 139.  The probe of
``ipc_specs.harness.probe`` sees only a crash on the first call.

So the plugin runs the checks in a *runner*: a child forked from pytest after
collection, which has the same items.  For each check the parent sends the
runner its node id; the runner runs the check's protocol (setup, call,
teardown), writes the test reports as JSON and says so; the parent logs them as
if it had run the check.  A runner that dies is that check's verdict,
``crashed``, with the signal and the innermost frames of its Python stack
(faulthandler); the next check gets a new runner, and the run goes on.  One
runner serves check after check, as an xdist worker does, so its warm spawn and
forkserver pools are kept (a child per check would start them for each check).

Not contained: items that are not conformance checks (the project's self-tests),
runs under ``--pdb`` (the user wants the failing check in the process they debug).
Warnings raised in the runner do not reach pytest's warnings summary.
"""

from __future__ import annotations

import faulthandler
import json
import os
import select
import signal
import time
import traceback
import warnings
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Optional

import pytest

#: Exit code of a runner that was told to stop, or whose parent closed its command pipe.
_DONE = 0
#: Exit code of a runner that was interrupted (SIGINT/SIGTERM) and cleaned up.
_INTERRUPTED = 2
#: Exit code of a runner in which pytest's own protocol raised (its traceback is in ``<stack>.exc``).
_BROKEN = 3
#: How long an interrupted parent lets the runner clean up before it kills it.
_GRACE_S = 15.0


class ChildCrashed(Exception):
    """The process running a check died before it reported; the message says how,
    ``stack`` where it was (the innermost frames of its faulthandler dump)."""

    def __init__(self, how: str, stack: str = "") -> None:
        super().__init__(how)
        self.stack = stack


@dataclass
class Runner:
    pid: int
    commands: int  # the parent's write end: one line per check
    done: int  # the parent's read end: one byte per check reported
    stack: str  # where the runner's faulthandler writes
    scratch: str


_RUNNER: Optional[Runner] = None


def wanted(item: pytest.Item) -> bool:
    """Contain this item: a conformance check, not in an xdist worker (whose own crash
    xdist reports), not under ``--pdb``."""
    config = item.config
    return ("ipc_case" in getattr(item, "fixturenames", ()) and not hasattr(config, "workerinput")
            and not config.getoption("usepdb", False))


def run_contained(item: pytest.Item, nextitem: Optional[pytest.Item], scratch: str, *,
                  enter: Callable[[], None], leave: Callable[[], None]) -> List[str]:
    """Run ``item`` in the runner (forked first if there is none) and log its reports here,
    or a crash report.  ``scratch`` is a private directory; a new runner calls ``enter``
    before its first check and ``leave`` (which closes the harness it made) before it exits.
    Returns the debris removed after a runner died (for the session's summary)."""
    global _RUNNER
    ihook = item.ihook
    ihook.pytest_runtest_logstart(nodeid=item.nodeid, location=item.location)
    if _RUNNER is None:
        _RUNNER = _fork_runner(item.session, scratch, enter, leave)
    runner = _RUNNER
    out = os.path.join(scratch, f"reports-{time.monotonic_ns()}.json")
    following = nextitem.nodeid if nextitem is not None and wanted(nextitem) else ""
    command = f"{item.nodeid}\t{following}\t{out}\n".encode()
    removed: List[str] = []
    try:
        os.write(runner.commands, command)
    except BrokenPipeError:  # it died between two checks: that is no check's verdict
        _stop(runner.pid, 0.0)
        removed = _forget(runner)
        runner = _RUNNER = _fork_runner(item.session, scratch, enter, leave)
        os.write(runner.commands, command)
    try:
        try:
            status = _await(runner)
        except (KeyboardInterrupt, SystemExit, pytest.exit.Exception):
            _abandon(runner, 1.0)  # the run ends; a Ctrl-C reached the runner too: time to clean up
            raise
        except BaseException as exc:  # raised here while waiting, e.g. pytest-timeout's Failed
            removed += _abandon(runner, 0.0)
            reports = [_stopped_report(item, exc)]
        else:
            if status is None:
                reports = _read_reports(item.config, out)
            else:
                _RUNNER = None
                crash = ChildCrashed(_how_it_died(status),
                                     _read(runner.stack + ".exc") or _last_words(runner.stack))
                reports = [_crash_report(item, crash)]
                removed += _forget(runner)
    finally:
        _remove(out)
    for report in reports:
        ihook.pytest_runtest_logreport(report=report)
    ihook.pytest_runtest_logfinish(nodeid=item.nodeid, location=item.location)
    return removed


def shutdown() -> List[str]:
    """Tell the runner to finish (tear down, close its harness) and reap it; returns the
    debris swept if it had to be killed."""
    global _RUNNER
    runner, _RUNNER = _RUNNER, None
    if runner is None:
        return []
    try:
        os.close(runner.commands)  # end of commands: the runner leaves its loop
        _stop(runner.pid, _GRACE_S)
    finally:
        removed = _forget(runner)
    return removed


# --- the parent's side ----------------------------------------------------------------------
def _fork_runner(session: pytest.Session, scratch: str, enter: Callable[[], None],
                 leave: Callable[[], None]) -> Runner:
    from ipc_specs.harness.placements import FORK_SHIELD

    commands_r, commands_w = os.pipe()
    done_r, done_w = os.pipe()
    stack = os.path.join(scratch, f"stack-{time.monotonic_ns()}")
    mask = signal.pthread_sigmask(signal.SIG_BLOCK, FORK_SHIELD)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # fork with threads: the runner runs checks only
            pid = os.fork()
        if pid == 0:
            os.close(commands_w)
            os.close(done_r)
            _serve(session, commands_r, done_w, stack, mask, enter, leave)
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, mask)
    os.close(commands_r)
    os.close(done_w)
    return Runner(pid, commands_w, done_r, stack, scratch)


def _await(runner: Runner) -> Optional[int]:
    """None once the runner reported the check; its wait status if it died first.  What
    interrupts the wait, the caller handles (:func:`_abandon`): a Ctrl-C reached the
    runner too, and a SIGTERM sent to pytest alone is passed on."""
    from ipc_specs.harness.interrupts import raise_if_interrupted

    while True:
        raise_if_interrupted()  # one lost inside a finalizer or hook (see interrupts.py)
        ready, _, _ = select.select([runner.done], [], [], 0.5)
        if ready and os.read(runner.done, 1):
            return None
        pid, status = os.waitpid(runner.pid, os.WNOHANG)
        if pid:
            return status
        if ready:  # end of file and not reaped yet: it is exiting
            time.sleep(0.01)


def _abandon(runner: Runner, patience_s: float) -> List[str]:
    """Stop a runner in the middle of a check (see :func:`_stop`); the debris swept."""
    global _RUNNER
    _RUNNER = None
    try:
        _stop(runner.pid, patience_s)
    finally:
        removed = _forget(runner)
    return removed


def _stop(pid: int, patience_s: float) -> None:
    """Wait ``patience_s`` for the runner to exit, then SIGTERM (its handler unwinds the
    check, which cleans up), then after :data:`_GRACE_S` SIGKILL."""
    until = time.monotonic() + patience_s
    sent = False
    while True:
        try:
            if os.waitpid(pid, os.WNOHANG)[0]:
                return
        except ChildProcessError:
            return
        now = time.monotonic()
        if now >= until and not sent:
            os.kill(pid, signal.SIGTERM)
            sent, until = True, now + _GRACE_S
        elif now >= until:
            os.kill(pid, signal.SIGKILL)  # what it left, the sweep removes
            os.waitpid(pid, 0)
            return
        time.sleep(0.01)


def _forget(runner: Runner) -> List[str]:
    """Close the parent's ends of a finished runner's pipes, remove its stack file and
    sweep what a runner that died left (its root is debris once its owner is gone)."""
    from ipc_specs.harness.resources import sweep_debris

    for fd in (runner.commands, runner.done):
        try:
            os.close(fd)
        except OSError:
            pass
    _remove(runner.stack)
    return sweep_debris()


def _read_reports(config: pytest.Config, path: str) -> List[pytest.TestReport]:
    with open(path) as f:
        data = json.load(f)
    reports: List[pytest.TestReport] = [config.hook.pytest_report_from_serializable(config=config, data=d)
                                        for d in data]
    return reports


def _how_it_died(status: int) -> str:
    from ipc_specs.harness.sigstate import signal_name

    if os.WIFSIGNALED(status):
        how = f"died by {signal_name(os.WTERMSIG(status))}"
    elif os.WIFEXITED(status) and os.WEXITSTATUS(status) == _INTERRUPTED:
        how = "was interrupted (SIGINT or SIGTERM sent to it alone)"
    elif os.WIFEXITED(status) and os.WEXITSTATUS(status) == _BROKEN:
        how = "stopped: pytest's own protocol raised there (its traceback follows)"
    elif os.WIFEXITED(status):
        how = f"exited with code {os.WEXITSTATUS(status)}"
    else:
        how = f"ended with wait status {status}"
    return f"the process running this check (forked from pytest, which goes on) {how}"


def _crash_report(item: pytest.Item, crash: ChildCrashed) -> pytest.TestReport:
    """A failed call report, made by the item's own makereport hooks so that the plugin
    records a ``crashed`` verdict with its reproduce line, as for any other outcome."""
    def crashed() -> None:
        raise crash

    call = pytest.CallInfo.from_call(crashed, when="call")
    report: pytest.TestReport = item.ihook.pytest_runtest_makereport(item=item, call=call)
    report.longrepr = "\n\n".join(filter(None, [str(crash), crash.stack]))  # not this module's traceback
    return report


def _stopped_report(item: pytest.Item, exc: BaseException) -> pytest.TestReport:
    """A failed call report for a check stopped by an exception raised in this process
    while it waited for the runner (pytest-timeout's ``Failed``, say): the check ends as
    it would have in this process, with that exception, and the runner is gone."""
    def stopped() -> None:
        raise exc

    call = pytest.CallInfo.from_call(stopped, when="call")
    report: pytest.TestReport = item.ihook.pytest_runtest_makereport(item=item, call=call)
    report.longrepr = (f"{type(exc).__name__}: {exc}\n\nraised in pytest's process while the check ran in its "
                       "runner, which was then stopped (SIGTERM, then SIGKILL) and its objects swept")
    return report


# --- the runner's side ----------------------------------------------------------------------
def _serve(session: pytest.Session, commands: int, done: int, stack: str, mask: Any,
           enter: Callable[[], None], leave: Callable[[], None]) -> None:
    """Never returns: runs the checks it is sent until the command pipe ends, then ``_exit``."""
    from ipc_specs.harness.worker import die_with_parent

    code = _BROKEN
    try:
        die_with_parent()  # a SIGKILLed pytest takes its runner along (the next run sweeps)
        fd = os.open(stack, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        faulthandler.enable(file=fd, all_threads=True)  # a fatal signal writes the stacks here
        signal.pthread_sigmask(signal.SIG_SETMASK, mask)
        enter()
        try:
            _loop(session, commands, done)
        finally:
            leave()
        code = _DONE
    except KeyboardInterrupt:
        code = _INTERRUPTED  # the parent was interrupted too, or reports it
    except BaseException:  # noqa: B036 (whatever it is, the parent must hear of it, not a traceback here)
        _write(stack + ".exc", traceback.format_exc())
    os._exit(code)


def _loop(session: pytest.Session, commands: int, done: int) -> None:
    from _pytest.runner import runtestprotocol

    items: Dict[str, pytest.Item] = {i.nodeid: i for i in session.items}
    config = session.config
    with os.fdopen(commands, "r") as lines:
        try:
            for line in lines:
                nodeid, following, out = line.rstrip("\n").split("\t")
                reports = runtestprotocol(items[nodeid], log=False, nextitem=items.get(following))
                data = [config.hook.pytest_report_to_serializable(config=config, report=r) for r in reports]
                with open(out + ".tmp", "w", opener=lambda p, f: os.open(p, f, 0o600)) as f:
                    json.dump(data, f)
                os.replace(out + ".tmp", out)
                os.write(done, b".")
        finally:
            session._setupstate.teardown_exact(None)  # what the last check left set up


def _last_words(stack: str) -> str:
    """The innermost frames of the runner's faulthandler dump, if it wrote one."""
    from ipc_specs.harness.outcome import last_words

    dump = _read(stack)
    return f"its Python stack when it died:\n{last_words(dump)}" if dump.strip() else ""


def _read(path: str) -> str:
    try:
        with open(path, errors="replace") as f:
            return f.read()[-8000:]
    except OSError:
        return ""


def _write(path: str, text: str) -> None:
    try:
        with open(path, "w", opener=lambda p, f: os.open(p, f, 0o600)) as f:
            f.write(text)
    except OSError:
        pass


def _remove(path: str) -> None:
    for p in (path, path + ".tmp", path + ".exc"):
        try:
            os.unlink(p)
        except FileNotFoundError:
            pass
