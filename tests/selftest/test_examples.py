"""Run every program in examples/ and check its answer and that it cleans up.

Each example is run with ``sys.executable`` in its own session, with TMPDIR
pointing at a fresh private directory and the IPCEX_NAME_LOG hook of
examples/_common.py recording every POSIX IPC name it makes. Afterwards:

* stdout is exactly one line ``pi ≈ <x>`` where x is sqrt(8*S) rounded to 10
  decimals, S = sum_{k<N} 1/(2k+1)^2 computed exactly here with integers;
* the TMPDIR is empty, no process of the example's session is left, every
  logged name is gone, and no new /dev/shm (or /dev/mqueue) entry carrying
  the examples' names exists;
* no new System V object exists (/proc/sysvipc, the data ``ipcs`` shows).

/dev/shm and the System V tables are shared with every other process on the
machine, and other suites may run at the same time (while this file was
written, another process created a SysV message queue mid-run). So new
entries that cannot be attributed to the example (the examples use no System
V objects at all) are reported as warnings; set IPCEX_STRICT_LEAKS=1 to make
them failures on a quiet machine.
"""

from __future__ import annotations

import functools
import importlib.util
import math
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

EXAMPLES_DIR = Path(__file__).resolve().parents[2] / "examples"
EXAMPLES = {  # program -> third-party module it needs (None: stdlib only)
    "sum_with_semaphore.py": None,
    "sum_with_signals.py": None,
    "sum_with_pipe.py": None,
    "sum_with_fifo.py": None,
    "sum_with_message_queue.py": "posix_ipc",
    "sum_with_shared_memory_arrow.py": "pyarrow",
    "sum_with_sockets.py": None,
    "sum_with_files.py": None,
}
# Boundary pairs rather than the full product: no terms, fewer terms than
# processes, one process, and an uneven split of a larger range.
SIZES = [(1, 0), (3, 1), (10, 10), (1, 12345), (10, 12345)]
TIMEOUT = 120.0
STRICT = os.environ.get("IPCEX_STRICT_LEAKS") == "1"


def example_param(name: str) -> object:
    module = EXAMPLES[name]
    missing = module is not None and importlib.util.find_spec(module) is None
    return pytest.param(name, id=name[:-3], marks=pytest.mark.skipif(missing, reason=f"{module} is not installed"))


ALL_EXAMPLES = [example_param(name) for name in EXAMPLES]


@functools.cache
def expected_outputs(terms: int) -> frozenset[str]:
    """sqrt(8*S) rounded to 10 decimals, from exact integer arithmetic.

    S = num/den with den = lcm((2k+1)^2) = lcm(2k+1)^2. isqrt(floor(y)) equals
    floor(sqrt(y)), so r = floor(sqrt(8*S) * 10^14) is exact and its last four
    digits decide the rounding exactly. The programs compute in floating point
    (error around 1e-15), so if the exact value lies within 1e-14 of a
    rounding boundary both neighbours are accepted.
    """
    if terms == 0:
        return frozenset({"0.0000000000"})
    den = 1
    for k in range(terms):
        den = math.lcm(den, 2 * k + 1)
    den *= den
    num = sum(den // (2 * k + 1) ** 2 for k in range(terms))
    q, rest = divmod(math.isqrt(8 * num * 10**28 // den), 10**4)
    candidates = {q + (rest >= 5000)}
    if rest in (4999, 5000):
        candidates |= {q, q + 1}
    return frozenset(f"{c // 10**10}.{c % 10**10:010d}" for c in candidates)


def test_expected_outputs_known_values() -> None:
    assert expected_outputs(1) == {"2.8284271247"}  # sqrt(8)
    assert expected_outputs(2) == {f"{math.sqrt(8 * (1 + 1 / 9)):.10f}"}


def test_every_example_is_listed() -> None:
    assert sorted(p.name for p in EXAMPLES_DIR.glob("sum_with_*.py")) == sorted(EXAMPLES)


def shm_entries() -> set[str]:
    found = set(os.listdir("/dev/shm"))
    if os.path.isdir("/dev/mqueue"):
        found |= {f"mqueue:{name}" for name in os.listdir("/dev/mqueue")}
    return found


def sysv_objects() -> set[str]:
    found = set()
    for kind in ("shm", "msg", "sem"):
        path = Path("/proc/sysvipc") / kind
        if path.exists():
            for line in path.read_text().splitlines()[1:]:
                key, ident = line.split()[:2]
                found.add(f"{kind} key={key} id={ident}")
    return found


def session_processes(sid: int) -> list[str]:
    """Live (non-zombie) processes in session `sid`."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path("/proc", entry, "stat").read_text()
            except OSError:
                continue
            fields = stat.rsplit(")", 1)[1].split()  # state ppid pgrp session ...
            if int(fields[3]) == sid and fields[0] != "Z":
                found.append(stat.split(")")[0] + ")")
    return found


def leftover_names(log: Path) -> list[str]:
    left = []
    for line in log.read_text().splitlines() if log.exists() else []:
        kind, name = line.split()
        if kind == "shm" and os.path.exists("/dev/shm" + name):
            os.unlink("/dev/shm" + name)
            left.append(line)
        elif kind == "mq":
            import posix_ipc

            try:
                posix_ipc.unlink_message_queue(name)
                left.append(line)
            except posix_ipc.ExistentialError:
                pass
    return left


def run_example(name: str, processes: int, terms: int, extra_env: dict[str, str]) -> subprocess.CompletedProcess[bytes]:
    """Run one example and assert it left nothing behind; return its result."""
    private = Path(tempfile.mkdtemp(prefix="ipcex-t"))  # short path: AF_UNIX limit
    tmpdir = private / "tmp"
    tmpdir.mkdir()
    log = private / "names.log"
    env = dict(os.environ, TMPDIR=str(tmpdir), IPCEX_NAME_LOG=str(log), **extra_env)
    cmd = [sys.executable, str(EXAMPLES_DIR / name), "--processes", str(processes), "--terms", str(terms)]
    shm_before, sysv_before = shm_entries(), sysv_objects()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
    try:
        # communicate() also waits for grandchildren that inherited stdout/stderr.
        out, err = proc.communicate(timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        pytest.fail(f"{name} did not finish within {TIMEOUT} s")
    try:
        stray = session_processes(proc.pid)
        for _ in range(100):  # e.g. multiprocessing's resource tracker, on its way out
            if not stray:
                break
            time.sleep(0.02)
            stray = session_processes(proc.pid)
        if stray:
            os.killpg(proc.pid, signal.SIGKILL)
        new_shm = shm_entries() - shm_before
        for _ in range(50):  # let other processes' short-lived entries go away
            if not new_shm:
                break
            time.sleep(0.02)
            new_shm &= shm_entries()
        # Other tests run in parallel (pytest-xdist) and create ipcex-* entries of their
        # own, so only names carrying this example's pid are attributed to it; the
        # name log above covers every object the example named itself.
        ours = sorted(e for e in new_shm if f"-{proc.pid}-" in e)
        others = sorted(new_shm - set(ours)) + sorted(sysv_objects() - sysv_before)
        leaked = {
            "processes": stray,
            "logged names": leftover_names(log),
            "/dev/shm": ours,
            "unattributed (IPCEX_STRICT_LEAKS=1)": others if STRICT else [],
            "TMPDIR": sorted(os.listdir(tmpdir)),
        }
    finally:
        shutil.rmtree(private, ignore_errors=True)
    detail = f"{name} --processes {processes} --terms {terms}\nstderr:\n{err.decode(errors='replace')}"
    assert not any(leaked.values()), f"left behind: {leaked}\n{detail}"
    return subprocess.CompletedProcess(cmd, proc.returncode, out, err)


@pytest.mark.parametrize(("processes", "terms"), SIZES)
@pytest.mark.parametrize("name", ALL_EXAMPLES)
def test_example_prints_pi_and_cleans_up(name: str, processes: int, terms: int) -> None:
    result = run_example(name, processes, terms, {})
    stderr = result.stderr.decode(errors="replace")
    assert result.returncode == 0, stderr
    assert "leaked" not in stderr, stderr  # resource_tracker warnings
    out = result.stdout.decode("utf-8")
    assert out.startswith("pi ≈ ") and out.endswith("\n") and out.count("\n") == 1, repr(out)
    assert out[len("pi ≈ ") : -1] in expected_outputs(terms), f"{out!r}, expected {sorted(expected_outputs(terms))}"


@pytest.mark.parametrize("name", ALL_EXAMPLES)
def test_example_fails_cleanly_when_a_worker_fails(name: str) -> None:
    result = run_example(name, 3, 1000, {"IPCEX_FAIL_WORKER": "1"})
    stderr = result.stderr.decode(errors="replace")
    assert result.returncode != 0, stderr
    assert result.stdout == b"", result.stdout
    assert "failure injected" in stderr, stderr
