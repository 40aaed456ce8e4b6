"""The chaos gallery through the pytest plugin: a verdict for each, nothing left behind.

One pytest run checks every chaos backend (``ipc_impls.broken.chaos``) the way a
backend author would run the suite, in its own session with a private TMPDIR
and name tag.  Then: each backend got the verdict it must get with the detail
that explains it, the run ended (a hang is bounded by the deadline, not by this
test's timeout), and no process, /dev/shm entry or scratch file survived it.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from typing import Any, Dict, List

import pytest

from ipc_conformance.schema import validate
from ipc_impls.broken.chaos import CHAOS, CHECKED, Chaos

from .test_plugin import assert_nothing_left

#: The chaos backend whose failure Hypothesis shrinks, as it would any backend author's: shrinking
#: reruns the crash a few hundred times through the harness, and only this run checks that
#: nothing outlives that.  The other crashing backends' shrinking reran the same crash-and-clean-up
#: path each time for ~80 s per backend under CI load; their verdicts come from the first failing
#: example and its replays, with or without it.
SHRUNK = "chaos-exits-mid-write"
# Loaded into the sub-run with -p: Hypothesis's default profile loses its shrink (and explain)
# phases for every test but SHRUNK's.  The harness inherits them: it sets phases only to turn
# shrinking off.
SHRINK_PLUGIN = f"""
import pytest
from hypothesis import Phase, settings

settings.register_profile("ipcc-selftest-no-shrink", phases=[Phase.explicit, Phase.reuse, Phase.generate, Phase.target])


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_call(item):
    settings.load_profile("default" if "[{SHRUNK}-" in item.nodeid else "ipcc-selftest-no-shrink")
    yield
"""


@pytest.fixture(scope="module")
def chaos_run(tmp_path_factory: pytest.TempPathFactory) -> Dict[str, Any]:
    tmp = tmp_path_factory.mktemp("chaos")
    (tmp / "tmp").mkdir()
    (tmp / "ipcc_chaos_shrink.py").write_text(SHRINK_PLUGIN)
    tag = f"t{os.getpid()}chaos"
    # The deadline is generous for a loaded CI box: an example of eight processes writing
    # while another tears down a 64 MiB heap must not pass for a hang.
    env = dict(os.environ, TMPDIR=str(tmp / "tmp"), IPCC_TMPDIR=str(tmp / "tmp"), IPCC_RUN_TAG=tag,
               PYTHONPATH=os.pathsep.join(filter(None, [str(tmp), os.environ.get("PYTHONPATH")])))
    # Not an xdist worker itself: its run tag must stay the one given, which the leaking twins
    # put in their names and keys, and by which the other worker's audit leaves them to it.
    for var in [v for v in env if v.startswith("PYTEST_XDIST_")]:
        del env[var]
    cmd = [sys.executable, "-m", "pytest", "--pyargs", "ipc_conformance.suite", "-p", "no:cacheprovider",
           "-p", "ipcc_chaos_shrink", "-q",
           "--ipc-deadline", "8", "--ipc-worker-memory", "64", "--ipc-placements", "fork",
           "--ipc-backend", "ipc_impls.broken.chaos:BACKENDS", "-k", CHECKED, "--ipc-report", str(tmp / "r.json")]
    proc = subprocess.Popen(cmd, cwd=tmp, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            start_new_session=True)
    output = proc.communicate(timeout=600)[0].decode()
    left = _remove_what_the_audit_left(tag, output)  # as the report tells its reader to
    assert proc.returncode == 1, output  # failures, not a crash or an internal error (3) of pytest
    report = json.loads((tmp / "r.json").read_text())
    assert validate(report) == []  # every report a self-test writes follows report.schema.json
    return {"tmp": tmp, "tag": tag, "sid": proc.pid, "output": output, "left": left,
            "results": {r["backend"]: r for r in report["results"]}}


def _remove_what_the_audit_left(tag: str, output: str) -> List[str]:
    """The objects the leaking twins made under their own names that the audit left in place
    (it cannot prove them theirs): the twins put the run's tag in their semaphores' names,
    and the report gives each System V id's removal command."""
    import sysv_ipc

    left = [f"/dev/shm/{e}" for e in os.listdir("/dev/shm") if e.startswith(f"sem.{leak_prefix_of(tag)}")]
    for path in left:
        os.unlink(path)
    for ident in sorted(set(re.findall(r"ipcrm -m (\d+)", output))):
        try:
            sysv_ipc.remove_shared_memory(int(ident))
            left.append(f"System V segment {ident}")
        except sysv_ipc.ExistentialError:
            pass
    return left


def leak_prefix_of(tag: str) -> str:
    """The twins' names start with it; under pytest-xdist the sub-run's tag gets the
    outer worker's id appended (it inherits PYTEST_XDIST_WORKER), hence no dash here."""
    return f"leak-{tag}"


@pytest.mark.parametrize("chaos", CHAOS, ids=[c.backend.name for c in CHAOS])
def test_chaos_backend_gets_its_verdict(chaos: Chaos, chaos_run: Dict[str, Any]) -> None:
    result = chaos_run["results"][chaos.backend.name]
    placement = result["placements"]["fork"]
    assert result["invariant"] == CHECKED
    assert placement["verdict"] == chaos.verdict, placement
    text = placement["detail"] + "\n" + placement["counterexample"]
    assert chaos.shows in text, text[:2000]


def test_a_segfaulting_worker_shows_its_innermost_frames(chaos_run: Dict[str, Any]) -> None:
    """faulthandler's dump ends with the outermost frames (the test runner's): the report
    shows the frames where the worker died, the backend's first."""
    text = chaos_run["results"]["chaos-segfaults"]["placements"]["fork"]["counterexample"]
    frames = text.split("innermost frames first:\n", 1)[1].splitlines()
    assert "in string_at" in frames[0] and "chaos.py" in frames[1] and "in fault" in frames[1], text[:2000]


def test_a_flaky_backend_reports_its_rate(chaos_run: Dict[str, Any]) -> None:
    placement = chaos_run["results"]["chaos-fails-every-other-example"]["placements"]["fork"]
    rate = placement["replays"]
    assert rate["runs"] == 3 and 0 <= rate["failed"] < rate["runs"], rate
    assert "FLAKY" in chaos_run["output"]


def test_a_leak_is_listed_and_cleaned(chaos_run: Dict[str, Any]) -> None:
    detail = chaos_run["results"]["chaos-leaks-objects"]["placements"]["fork"]["counterexample"]
    assert "/dev/shm/ipcc_" in detail and "-> /dev/null" in detail, detail[:2000]


def test_a_leak_under_the_backends_own_names_is_named(chaos_run: Dict[str, Any]) -> None:
    """Names the suite did not choose are found by diffing /dev/shm and the System V tables:
    a semaphore is left in place (it could be another process's) with the command that removes
    it; a segment the test process itself created is removed."""
    sem = chaos_run["results"]["chaos-leaks-named-semaphore"]["placements"]["fork"]["counterexample"]
    assert f"named POSIX semaphore /{leak_prefix_of(chaos_run['tag'])}" in sem and "left in place" in sem, sem[:2000]
    assert "remove with: rm /dev/shm/sem." in sem, sem[:2000]
    seg = chaos_run["results"]["chaos-leaks-sysv-segment"]["placements"]["fork"]["counterexample"]
    assert "this process created, now removed: System V shared memory segment id" in seg, seg[:2000]
    assert any(line.startswith("/dev/shm/sem.leak-") for line in chaos_run["left"]), chaos_run["left"]
    with open("/proc/sysvipc/shm") as f:  # none of the sub-run's own segments is left
        assert not [row for row in f.read().splitlines()[1:] if row.split()[4] == str(chaos_run["sid"])]


def test_chaos_leaves_nothing_behind(chaos_run: Dict[str, Any]) -> None:
    assert_nothing_left(chaos_run["tmp"], chaos_run["tag"], session=chaos_run["sid"])
