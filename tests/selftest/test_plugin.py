"""The plugin and CLI face bad input, crashes and interruptions: each ends in a clear
message, the run goes on with the other backends, and nothing is left behind."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
import warnings
from pathlib import Path
from typing import List, Tuple

import pytest

from ipc_specs.harness.resources import sweep_debris

BAD_MODULE = '''
import time
from ipc_impls.streams import PipeBackend, PipeChannel

class Nameless:  # lacks most of the API
    name = "nameless"

class WrongKind(PipeBackend):
    name = "wrong-kind"
    kind = "bogus"

class UnknownClaim(PipeBackend):
    name = "unknown-claim"
    capabilities = frozenset({"teleportation"})

class TextClaims(PipeBackend):
    name = "text-claims"
    capabilities = "multi_writer"

class EmptyName(PipeBackend):
    name = ""

def factory_that_raises():
    raise RuntimeError("no backend today")

class SetupRaises(PipeBackend):
    name = "setup-raises"
    def setup(self, scope):
        raise OSError(28, "No space left on device")

class SetupHangs(PipeBackend):
    name = "setup-hangs"
    def setup(self, scope):
        time.sleep(3600)

class HalfChannel:
    def detach(self): pass
    def teardown(self): pass

class ChannelLacksMethods(PipeBackend):
    name = "channel-lacks-methods"
    def setup(self, scope):
        return HalfChannel()

class ReaderHangs(PipeChannel):
    def detach(self):  # keeps every write end open in every process: EOF never comes
        pass

class HangingBackend(PipeBackend):
    name = "hanging"
    def setup(self, scope):
        return ReaderHangs()

class HangingNamedBackend(PipeBackend):
    """Hangs like HangingBackend, holding a journalled POSIX shm object meanwhile."""
    name = "hanging-named"
    def setup(self, scope):
        import os
        name = scope.name()
        os.close(os.open("/dev/shm/" + name, os.O_CREAT | os.O_EXCL | os.O_RDWR, 0o600))
        scope.register("posix_shm", name, lambda: os.unlink("/dev/shm/" + name))
        return ReaderHangs()

TWINS = [PipeBackend(), PipeBackend()]

from ipc_impls.semaphores import PosixSemaphoreBackend
from ipc_impls.streams import FdReader

class NegativeMaxValue(PosixSemaphoreBackend):
    name = "negative-max-value"
    max_value = -1

class HugeMaxValue(PosixSemaphoreBackend):
    name = "huge-max-value"
    max_value = 10**30

class NoOverflowError(PosixSemaphoreBackend):
    name = "no-overflow-error"
    overflow_error = None

class NarrowSignature(PipeChannel):
    def open_writer(self, mode):  # the contract's open_writer takes no positional argument
        return super().open_writer()

class WrongSignature(PipeBackend):
    name = "wrong-signature"
    capabilities = frozenset({"eof_on_close"})
    def setup(self, scope):
        return NarrowSignature()

class WrongTypeChannel(PipeChannel):
    def open_reader(self, **kw):
        return "reader"  # a str, not a reader

class WrongReturnType(PipeBackend):
    name = "wrong-return-type"
    def setup(self, scope):
        return WrongTypeChannel()

class KeyErrorReader(FdReader):
    def read(self, n):
        raise KeyError("buffer")

class SurpriseChannel(PipeChannel):
    def open_reader(self, **kw):
        return KeyErrorReader(super().open_reader(**kw).fd)

class TextReader(FdReader):
    def read(self, n):
        return super().read(n).decode("latin-1")  # a text-mode file where bytes are due

class TextChannel(PipeChannel):
    def open_reader(self, **kw):
        return TextReader(super().open_reader(**kw).fd)

class ReadsText(PipeBackend):
    name = "reads-text"
    def setup(self, scope):
        return TextChannel()

class RaisesUnexpected(PipeBackend):
    name = "raises-unexpected"
    def setup(self, scope):
        return SurpriseChannel()
'''


# Loaded into the sub-runs of run() with -p: Hypothesis's default profile without the shrink
# (and explain) phases, which the harness inherits because it sets phases only to turn shrinking
# off.  No test here asserts a minimal example, only verdicts and messages, which the first
# failing example and its replays already give; shrinking one took 20-80 s of a sub-run.  The
# chaos run (test_chaos.py) still shrinks, and checks that nothing outlives it.
NO_SHRINK_PLUGIN = """
from hypothesis import Phase, settings
settings.register_profile("ipcc-selftest-no-shrink", phases=[Phase.explicit, Phase.reuse, Phase.generate, Phase.target])
settings.load_profile("ipcc-selftest-no-shrink")
"""


def run(tmp: Path, *args: str, timeout: float = 240, env_extra: Tuple[Tuple[str, str], ...] = ()
        ) -> subprocess.CompletedProcess:  # type: ignore[type-arg]
    (tmp / "badbackends.py").write_text(BAD_MODULE)
    (tmp / "ipcc_no_shrink.py").write_text(NO_SHRINK_PLUGIN)
    (tmp / "raises_at_import.py").write_text("raise RuntimeError('boom at import')\n")
    (tmp / "exits_at_import.py").write_text("raise SystemExit(3)\n")
    # Roots go to IPCC_TMPDIR (else /dev/shm): point both there, so the test sees all.
    env = dict(os.environ, PYTHONPATH=str(tmp), TMPDIR=str(tmp / "tmp"), IPCC_TMPDIR=str(tmp / "tmp"),
               **dict(env_extra))
    (tmp / "tmp").mkdir(exist_ok=True)
    cmd = [sys.executable, "-m", "pytest", "--pyargs", "ipc_conformance.suite", "-p", "no:cacheprovider",
           "-p", "ipcc_no_shrink", "-q", "--ipc-deadline", "2", "--ipc-placements", "fork", *args]
    return subprocess.run(cmd, cwd=tmp, env=env, capture_output=True, text=True, timeout=timeout)


UNLOADABLE = [
    ("raises_at_import:X", "importing module 'raises_at_import' failed: RuntimeError: boom at import"),
    ("exits_at_import:X", "importing module 'exits_at_import' failed: SystemExit: 3"),
    ("no_such_module:X", "No module named 'no_such_module'"),
    ("badbackends:NoSuchAttr", "module 'badbackends' has no attribute 'NoSuchAttr'"),
    ("badbackends:Nameless", "missing attribute 'kind'"),
    ("badbackends:WrongKind", "kind 'bogus' is not one of"),
    ("badbackends:UnknownClaim", "unknown capabilities ['teleportation']"),
    ("badbackends:TextClaims", "capabilities must be a set of str"),
    ("badbackends:EmptyName", "name must be a non-empty str"),
    ("badbackends:factory_that_raises", "raised RuntimeError: no backend today"),
    ("badbackends:NegativeMaxValue", "max_value must be between 1 and 9223372036854775807, got -1"),
    ("badbackends:HugeMaxValue", "max_value must be between 1 and 9223372036854775807, got 10000"),
    ("badbackends:NoOverflowError", "must state overflow_error as a non-empty str, got None"),
]


@pytest.fixture(scope="module")
def unloadable_run(tmp_path_factory: pytest.TempPathFactory) -> subprocess.CompletedProcess:  # type: ignore[type-arg]
    """One sub-run with every backend that cannot load, and os-pipe: each test below reads its
    own backend's part.  (One run per backend cost a pytest start-up each.)"""
    specs = [arg for spec, _ in UNLOADABLE for arg in ("--ipc-backend", spec)]
    return run(tmp_path_factory.mktemp("unloadable"), *specs, "--ipc-backend", "ipc_impls.streams:PipeBackend",
               "-k", "test_backend_is_valid")


@pytest.mark.parametrize(("spec", "message"), UNLOADABLE)
def test_a_backend_that_cannot_load_is_named_and_the_others_still_run(
        unloadable_run: subprocess.CompletedProcess, spec: str, message: str) -> None:  # type: ignore[type-arg]
    out = unloadable_run
    assert out.returncode == 1, out.stdout + out.stderr
    # Its own failure, with its message: pytest's failure list names the spec, and so do the
    # assertion of test_backend_is_valid and the matrix.
    failed = [line for line in out.stdout.splitlines() if line.startswith("FAILED ")]
    assert any(f"::test_backend_is_valid[{spec}]" in line for line in failed), out.stdout
    about = "\n".join(line for line in out.stdout.splitlines() if f"backend {spec}" in line)
    assert message in about, out.stdout
    # One failure per backend that cannot load, and os-pipe still loaded and was checked.
    assert f"{len(UNLOADABLE)} failed, 1 passed" in out.stdout


@pytest.mark.parametrize(("args", "message"), [
    (["--ipc-backend", "not-a-spec"], "expected MODULE:ATTR"),
    (["--ipc-backend", ":attr"], "expected MODULE:ATTR"),
    (["--ipc-placements", "fork,teleport"], "--ipc-placements: unknown ['teleport']"),
    (["--ipc-deadline", "0"], "--ipc-deadline '0': must be a positive number"),
    (["--ipc-backend", "badbackends:TWINS"], "backend names must be unique"),
    (["--ipc-replays", "-1"], "--ipc-replays '-1': must be 0 or more"),
    (["--ipc-worker-memory", "-5"], "--ipc-worker-memory '-5': must be 0 (no cap) or a number of MiB"),
    (["--ipc-faults", "maybe"], "--ipc-faults 'maybe': expected one of on, off"),
    (["--ipc-profile", "deep"], "--ipc-profile 'deep': expected one of standard, fast, ci, thorough"),
])
def test_usage_errors_stop_the_run_with_a_clear_message(tmp_path: Path, args: List[str], message: str) -> None:
    out = run(tmp_path, *args)
    assert out.returncode in (1, 2, 4), out.stdout + out.stderr  # UsageError (at configure or collection)
    assert message in out.stdout + out.stderr


@pytest.mark.parametrize(("spec", "message"), [
    ("badbackends:SetupRaises", "No space left on device"),
    ("badbackends:SetupHangs", "setup() did not return within 2s"),
    ("badbackends:ChannelLacksMethods", "channel from setup() has no callable 'open_reader'"),
])
def test_a_backend_that_breaks_the_api_is_an_error_verdict(tmp_path: Path, spec: str, message: str) -> None:
    out = run(tmp_path, "--ipc-backend", spec, "-k", "write_rejects_text")
    assert out.returncode == 1
    assert "ERROR" in out.stdout and message in out.stdout, out.stdout


@pytest.mark.parametrize(("spec", "message"), [
    ("badbackends:WrongSignature", "open_writer() missing 1 required positional argument"),
    ("badbackends:WrongReturnType", "raised AttributeError: 'str' object has no attribute 'read'"),
    ("badbackends:ReadsText", "read() returned str, expected bytes"),
    ("badbackends:RaisesUnexpected", "raised KeyError: 'buffer'"),
])
def test_a_backend_whose_methods_misbehave_fails_naming_the_call(tmp_path: Path, spec: str, message: str) -> None:
    # A generous deadline, faults off: on a loaded machine the writers that get EPIPE once the
    # reader has died can spend more than 2 s formatting their tracebacks (3.13 parses the
    # source to place its carets), and a storm of signals slows them further; the verdict
    # would then be a hang, not the backend's exception.
    out = run(tmp_path, "--ipc-backend", spec, "-k", "bytes_arrive_complete_and_in_order", "--ipc-faults", "off",
              "--ipc-deadline", "30")
    assert out.returncode == 1
    assert "FAIL" in out.stdout and message in out.stdout, out.stdout


def test_the_report_records_verdicts_and_the_exit_status_follows_them(tmp_path: Path) -> None:
    report = tmp_path / "r.json"
    out = run(tmp_path, "--ipc-backend", "ipc_impls.broken.streams:EXHIBITS", "--ipc-backend",
              "ipc_impls.streams:PipeBackend", "-k", "write_rejects_text", "--ipc-report", str(report))
    assert out.returncode == 1
    data = json.loads(report.read_text())
    assert data["schema"] == "ipc-conformance-report/3"
    verdicts = {(r["backend"], r["invariant"]): r["verdict"] for r in data["results"]}
    assert verdicts[("os-pipe", "write_rejects_text")] == "pass"
    assert verdicts[("broken-accepts-text", "write_rejects_text")] == "fail"
    assert "write_rejects_text" in out.stdout and "reproduce: " in out.stdout
    assert "ipc-conformance --backend ipc_impls.broken.streams:EXHIBITS" in out.stdout


def test_a_hung_backend_fails_within_its_deadline_and_leaves_nothing(tmp_path: Path) -> None:
    tag = f"t{os.getpid()}hang"
    out = run(tmp_path, "--ipc-backend", "badbackends:HangingBackend", "-k", "eof_after_last_writer_closes",
              env_extra=(("IPCC_RUN_TAG", tag),))
    assert out.returncode == 1 and "hung in read" in out.stdout, out.stdout
    assert_nothing_left(tmp_path, tag)


@pytest.mark.parametrize("signum, group", [(signal.SIGINT, False), (signal.SIGTERM, False), (signal.SIGINT, True)],
                         ids=["SIGINT", "SIGTERM", "SIGINT-to-the-group"])
def test_an_interrupt_in_the_middle_of_an_example_leaves_nothing(tmp_path: Path, signum: int, group: bool) -> None:
    """To pytest alone (``kill``), or to its whole process group as a terminal's Ctrl-C does:
    then the runner that ``-n 0`` forks for the checks (contain.py) gets it at the same time."""
    tag = f"t{os.getpid()}{signal.Signals(signum).name.lower()}{'g' if group else ''}"
    (tmp_path / "badbackends.py").write_text(BAD_MODULE)
    (tmp_path / "tmp").mkdir()
    env = dict(os.environ, PYTHONPATH=str(tmp_path), TMPDIR=str(tmp_path / "tmp"),
               IPCC_TMPDIR=str(tmp_path / "tmp"), IPCC_RUN_TAG=tag, **DIAGNOSABLE)
    report = tmp_path / "r.json"
    cmd = [sys.executable, "-m", "pytest", "--pyargs", "ipc_conformance.suite", "-p", "no:cacheprovider", "-q",
           "--ipc-deadline", "60", "--ipc-backend", "badbackends:HangingNamedBackend", "-k", "eof_after_last",
           "--ipc-report", str(report)]
    # A background job of a non-interactive shell starts with SIGINT ignored, and the
    # ignored disposition survives exec: restore the default, as a terminal run has it.
    proc = subprocess.Popen(cmd, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            start_new_session=True, preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    assert wait_for_example(tmp_path / "tmp", tag), "no example started"  # it holds a journalled object
    (os.killpg if group else os.kill)(proc.pid, signum)
    output = finish(proc, tmp_path, 60)
    assert "KeyboardInterrupt" in output or "Interrupted" in output or "!!!" in output, output
    assert_nothing_left(tmp_path, tag, session=proc.pid)
    # An interrupted run never looks complete: PARTIAL in the summary line and the report.
    assert proc.returncode == 2 and "ipc-conformance: PARTIAL" in output, output
    data = json.loads(report.read_text())
    assert data["partial"] and data["status"] == "PARTIAL" and data["summary"]["not_run"] >= 1, data["summary"]


class SubRunHung(AssertionError):
    """A sub-run that did not end in time (it was killed and swept)."""


#: A sub-run that hangs must say where: its output unbuffered, its stacks dumped on SIGABRT.
DIAGNOSABLE = {"PYTHONUNBUFFERED": "1", "PYTHONFAULTHANDLER": "1"}


def finish(proc: subprocess.Popen[bytes], tmp: Path, timeout: float) -> str:
    """What the run printed once it ended.  One that does not end in ``timeout`` fails the
    test, and leaves nothing running and nothing behind: its process group is killed and
    what it left is swept as the next run would (roots whose owner is dead)."""
    try:
        return proc.communicate(timeout=timeout)[0].decode()
    except subprocess.TimeoutExpired as hung:
        # Every process of the run shows where it waits (faulthandler, PYTHONFAULTHANDLER in
        # its environment, writes its threads' stacks on SIGABRT) before the group is killed.
        members = session_members(proc.pid)
        for pid in members:
            try:
                os.kill(pid, signal.SIGABRT)
            except ProcessLookupError:
                pass
        try:
            shown = proc.communicate(timeout=5)[0].decode(errors="replace")
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            shown = proc.communicate()[0].decode(errors="replace")
        os.killpg(proc.pid, signal.SIGKILL)
        end = time.monotonic() + 10
        while session_members(proc.pid) and time.monotonic() < end:
            time.sleep(0.1)
        swept = sweep_debris(str(tmp / "tmp"))
        raise SubRunHung(f"the run did not end within {timeout:g} s (processes {sorted(members)}; swept after "
                             f"killing them: {swept}); it printed:\n{shown[-12000:]}") from hung


def session_members(sid: int) -> set:  # type: ignore[type-arg]
    found = set()
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[3]) == sid and fields[0] != "Z":
                found.add(int(entry))
    return found


def assert_nothing_left(tmp: Path, tag: str, session: int = 0) -> None:
    deadline = time.monotonic() + 10
    while session and session_members(session) and time.monotonic() < deadline:
        time.sleep(0.1)  # workers die with their parent (PR_SET_PDEATHSIG); give them a moment
    if session:
        assert not session_members(session), "worker processes outlived the run"
    assert not [e for e in os.listdir("/dev/shm") if tag in e]
    # pytest-xdist makes pytest's own base temp dir when it replaces a dead worker; pytest keeps those.
    left = [e for e in os.listdir(tmp / "tmp") if not e.startswith("pytest-of-")]
    assert left == [], textwrap.shorten(str(left), 200)


def test_a_killed_xdist_worker_leaves_nothing_and_the_run_says_what_it_removed(tmp_path: Path) -> None:
    try:
        proc, output, tmp, tag = run_and_kill_its_worker(tmp_path / "first")
    except SubRunHung as hung:
        # Twice in about 25 interpreter runs of this suite, on CI-like machines, the run did not
        # end after its worker's death; never when the test ran alone (27 tries). The cause is
        # not known yet (pytest-xdist's own reports of hangs after a killed worker are open).
        # The stacks of that run are in this warning; the verdicts are asserted on a second run.
        warnings.warn(f"killed-worker sub-run hung, running it again: {hung}", stacklevel=1)
        proc, output, tmp, tag = run_and_kill_its_worker(tmp_path / "again")
    assert "crashed" in output, output  # pytest-xdist's own report of the dead worker
    assert "removed debris of a process of this run that died" in output, output
    assert_nothing_left(tmp, tag, session=proc.pid)
    # A crashed cell is never a pass: the same verdict in the exit code, matrix and report.
    assert proc.returncode == 1
    data = json.loads((tmp / "r.json").read_text())
    cell = data["results"][0]["placements"]["fork"]
    assert cell["verdict"] == "crashed" and "worker running it died" in cell["detail"], cell
    # Its reproduce line is every verdict's: -n 0 runs the check in a runner that may crash (contain.py).
    assert " -n 0 -k " in cell["reproduce"] and "badbackends:HangingNamedBackend" in cell["reproduce"], cell
    assert data["status"] == "FAILED" and "ipc-conformance: FAILED: 1 CRASH" in output, output


def run_and_kill_its_worker(tmp: Path) -> Tuple[subprocess.Popen[bytes], str, Path, str]:
    """A run whose one xdist worker is SIGKILLed, as the OOM killer would, while an example
    holds a journalled object; what it printed once it ended."""
    tag = f"t{os.getpid()}kill{tmp.name}"
    (tmp / "tmp").mkdir(parents=True)
    (tmp / "badbackends.py").write_text(BAD_MODULE)
    env = dict(os.environ, PYTHONPATH=str(tmp), TMPDIR=str(tmp / "tmp"),
               IPCC_TMPDIR=str(tmp / "tmp"), IPCC_RUN_TAG=tag, **DIAGNOSABLE)
    cmd = [sys.executable, "-m", "pytest", "--pyargs", "ipc_conformance.suite", "-p", "no:cacheprovider", "-q",
           # One worker and no replacement: once (in a run under load) the controller and the worker
           # that pytest-xdist started in place of the dead one were both left waiting on a lock.
           "-n", "1", "--max-worker-restart", "0",
           "--ipc-deadline", "60", "--ipc-placements", "fork", "--ipc-report", str(tmp / "r.json"),
           "--ipc-backend", "badbackends:HangingNamedBackend", "-k", "eof_after_last"]
    proc = subprocess.Popen(cmd, cwd=tmp, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            start_new_session=True)
    owner = wait_for_example(tmp / "tmp", tag)
    assert owner, "no example started"
    time.sleep(0.5)  # the worker is waiting for its hung roles by now, not talking to the controller
    os.kill(owner, signal.SIGKILL)
    return proc, finish(proc, tmp, 120), tmp, tag


def wait_for_example(scratch: Path, tag: str, timeout: float = 60) -> int:
    """The pid owning the root in which an example holds its journalled object."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if [e for e in os.listdir("/dev/shm") if tag in e]:
            for root in scratch.iterdir():
                journal = root / "journal"
                if journal.exists() and journal.read_text().strip():
                    return int((root / "owner").read_text())
        time.sleep(0.05)
    return 0


def test_a_kernel_limit_too_low_for_a_check_is_unresolved_naming_the_limit(tmp_path: Path) -> None:
    import resource

    def low_sigpending() -> None:  # lowering a soft limit needs no privilege
        resource.setrlimit(resource.RLIMIT_SIGPENDING, (40, resource.getrlimit(resource.RLIMIT_SIGPENDING)[1]))

    report = tmp_path / "r.json"
    env = dict(os.environ, TMPDIR=str(tmp_path), IPCC_TMPDIR=str(tmp_path))
    cmd = [sys.executable, "-m", "pytest", "--pyargs", "ipc_conformance.suite", "-p", "no:cacheprovider", "-q",
           "--ipc-placements", "fork", "-k", "realtime_signals_queue_every_instance", "--ipc-report", str(report)]
    out = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=240,
                         preexec_fn=low_sigpending)
    assert out.returncode == 5, out.stdout  # neither a pass nor a failure: nothing was judged
    assert "ipc-conformance: NOTHING-CHECKED" in out.stdout
    results = json.loads(report.read_text())["results"]
    assert results and all(r["verdict"] == "unresolved" for r in results), results
    assert "RLIMIT_SIGPENDING=40 is below" in results[0]["placements"]["fork"]["detail"]
    assert "unres" in out.stdout
