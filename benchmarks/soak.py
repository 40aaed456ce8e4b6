"""Soak: run the conformance suite on the reference backends again and again under
extra CPU load, and count false failures and leaked objects (the targets are 0 and 0).

Every reference backend passes every invariant it claims, so any failure here is a
false failure: a flaky check or a harness that breaks under load.  Each run gets its
own name tag (``IPCC_RUN_TAG``) and its own scratch directory (``IPCC_TMPDIR``), so
that what it leaves can be told from what other runs on the machine are using:

* /dev/shm entries and POSIX message queues whose names carry the run's tag (queues
  are listed through an mqueue file system, mounted for the soak if need be);
* anything left in the run's scratch directory (roots, FIFOs, socket files, and the
  temporary files of multiprocessing and tempfile: the run's TMPDIR points there too);
* processes still alive with the run's tag in their environment (workers);
* System V objects that appeared during the run and are still there after the next run
  (they carry no name, so another program's could appear meanwhile; a leak stays).

Usage: python benchmarks/soak.py [--runs 20] [--load 2] [--profile fast] [-- pytest args]
Takes 5-10 minutes a run on a 2-core machine under the default load.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from typing import Dict, List, Optional, Set, Tuple


def burn() -> None:
    while True:
        pass


def sysv_objects() -> Set[str]:
    found: Set[str] = set()
    for table in ("msg", "sem", "shm"):
        try:
            with open(f"/proc/sysvipc/{table}") as f:
                found |= {f"sysv {table} id {row.split()[1]}" for row in f.read().splitlines()[1:] if row.split()}
        except OSError:
            pass
    return found


def tagged_processes(tag: str) -> Set[str]:
    needle = f"IPCC_RUN_TAG={tag}".encode()
    found = set()
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/environ", "rb") as f:
                if needle in f.read():
                    found.add(f"process {pid}")
        except OSError:
            pass
    return found


def mqueue_mount() -> Tuple[Optional[str], str, bool]:
    """A directory listing the POSIX message queues, a note on how it was found, and
    whether the soak mounted it (and so must unmount it: another's mount is left alone).

    Queues are visible only through an ``mqueue`` file system, which many machines
    (containers, CI images) do not mount.  Root can mount one anywhere, so the soak
    does that when it must, and says when queues cannot be counted at all.
    """
    with open("/proc/mounts") as f:
        for line in f:
            fields = line.split()
            if len(fields) > 2 and fields[2] == "mqueue":
                return fields[1], f"POSIX queues counted in {fields[1]}", False
    point = tempfile.mkdtemp(prefix="soak-mqueue-")
    done = subprocess.run(["mount", "-t", "mqueue", "none", point], capture_output=True, text=True)
    if done.returncode == 0:
        return point, f"POSIX queues counted in {point} (an mqueue file system mounted for the soak)", True
    os.rmdir(point)
    why = done.stderr.strip()
    return None, f"POSIX queues NOT counted: no mqueue file system, and mounting one failed: {why}", False


def leftovers(tag: str, scratch: str, mqueue: Optional[str]) -> Set[str]:
    found = set()
    for directory in ("/dev/shm", mqueue):
        if directory and os.path.isdir(directory):
            found |= {f"{directory}/{e}" for e in os.listdir(directory) if tag in e}
    if os.path.isdir(scratch):
        found |= {os.path.join(scratch, e) for e in os.listdir(scratch)}
    else:
        found.add(f"{scratch} (removed during the run by someone else)")
    return found | tagged_processes(tag)


def confirm(suspects: Dict[str, int], now: int) -> int:
    """Count System V objects that outlived a whole further run (or the final wait) as leaks.

    They carry no name, so an object that appeared during a run may belong to another
    program on the machine.  A leak of the run stays for ever (nothing of that run is
    left to remove it); another program's object is normally gone a run later.  Those
    still present are reported and removed from the watch list.
    """
    present = sysv_objects()
    confirmed = sorted(ident for ident in suspects if ident in present)
    for ident in confirmed:
        print(f"    LEAK: {ident}, new during run {suspects[ident]}, still there at run {now}", flush=True)
    suspects.clear()
    return len(confirmed)


def stop(signum: int, frame: object) -> None:
    """Unwind once; a second SIGTERM (``timeout`` and ``pkill`` both send one) must not
    cut the clean-up short."""
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    sys.exit(128 + signum)


def run_suite(cmd: List[str], env: Dict[str, str], cwd: str, scratch: str) -> subprocess.CompletedProcess:
    """Run one pass of the suite; if the soak itself is stopped, stop it cleanly too.

    The suite turns SIGTERM into a clean stop (it removes what it made); only one that
    does not stop within a minute is killed, and then its debris is swept here.
    """
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=cwd)
    try:
        stdout, stderr = proc.communicate()
    except BaseException:
        proc.terminate()
        try:
            proc.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()
        from ipc_specs.harness.resources import sweep_debris

        sweep_debris(scratch)
        shutil.rmtree(scratch, ignore_errors=True)
        raise
    return subprocess.CompletedProcess(cmd, proc.returncode, stdout, stderr)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--load", type=int, default=2, help="CPU burner processes (default: one per core)")
    parser.add_argument("--profile", default="fast")
    parser.add_argument("pytest_args", nargs="*")
    args = parser.parse_args()
    # SIGTERM unwinds like Ctrl-C: the finally clauses stop the run in progress (see
    # run_suite), the burners, and unmount and remove what the soak made.
    signal.signal(signal.SIGTERM, stop)
    burners = [multiprocessing.Process(target=burn, daemon=True) for _ in range(args.load)]
    for b in burners:
        b.start()
    false_failures, leaks = 0, 0
    suspects: Dict[str, int] = {}  # System V objects new since a run began, and that run
    # pytest runs from here, not from the checkout: there ``ipc_conformance`` would be the
    # source folder, which has no ``suite``.  Hypothesis's database and pytest's base temp
    # dir (kept on purpose by pytest) live here too, apart from what a run is judged on.
    work = tempfile.mkdtemp(prefix="soak-work-")
    mqueue, how, mounted = mqueue_mount()
    print(how, flush=True)
    try:
        for run in range(1, args.runs + 1):
            tag = f"soak{secrets.token_hex(4)}"
            scratch = tempfile.mkdtemp(prefix="soak-")  # not "ipcc-": that is the roots' namespace
            sysv_before = sysv_objects()
            # TMPDIR too: what multiprocessing and tempfile make outside the suite's roots
            # (pymp-* directories, for one) then lands where this run counts it.
            env = dict(os.environ, IPCC_RUN_TAG=tag, IPCC_TMPDIR=scratch, TMPDIR=scratch)
            t = time.monotonic()
            cmd = [sys.executable, "-m", "pytest", "--pyargs", "ipc_conformance.suite", "-n", "2", "-q",
                   "-p", "no:cacheprovider", f"--basetemp={os.path.join(work, 'basetemp')}",
                   "--ipc-profile", args.profile, *args.pytest_args]
            out = run_suite(cmd, env, work, scratch)
            summary = (out.stdout.strip().splitlines() or ["(no output)"])[-1]
            time.sleep(3)  # let other users of System V objects finish theirs
            new = sorted(leftovers(tag, scratch, mqueue))
            shutil.rmtree(scratch, ignore_errors=True)
            leaks += len(new) + confirm(suspects, run)
            for ident in sorted(sysv_objects() - sysv_before):
                suspects.setdefault(ident, run)
            false_failures += out.returncode != 0
            print(f"run {run:2d}: exit {out.returncode} in {time.monotonic() - t:5.0f}s  {summary}"
                  + (f"  LEFT: {new}" if new else "")
                  + (f"  System V objects to check after the next run: {sorted(suspects)}" if suspects else ""),
                  flush=True)
            if out.returncode != 0:
                marks = ("FAIL ", "ERROR ", "FLAKY ", "FAILED ")
                failed: List[str] = [ln for ln in out.stdout.splitlines() if ln.startswith(marks)]
                print("\n".join("    " + ln for ln in failed[:20]), flush=True)
        time.sleep(30)
        leaks += confirm(suspects, args.runs + 1)
    finally:
        for b in burners:
            b.kill()
        shutil.rmtree(work, ignore_errors=True)
        if mqueue and mounted:
            subprocess.run(["umount", mqueue], check=False)
            shutil.rmtree(mqueue, ignore_errors=True)
    print(f"\n{args.runs} runs under {args.load} CPU burners: {false_failures} runs with false failures, "
          f"{leaks} leaked objects (targets: 0 and 0)")
    return 1 if false_failures or leaks else 0


if __name__ == "__main__":
    sys.exit(main())
