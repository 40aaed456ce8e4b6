"""Shared helpers for the IPC example programs in this directory.

Every example computes S = sum_{k=0}^{N-1} 1/(2k+1)^2 (which tends to pi^2/8),
splits the k range over several worker processes, moves the partial sums
back to the parent with one IPC mechanism, and prints ``pi ≈ sqrt(8*S)``.

This module only uses the standard library and must stay that way: the Arrow
example forks its workers before pyarrow is imported, so nothing here may pull
in pyarrow or numpy (numpy starts BLAS threads on import, and forking a
multi-threaded process is unsafe).

Test hooks (used by tests/selftest/test_examples.py, inert otherwise):
  IPCEX_NAME_LOG     if set, every name made by ipc_name() is appended to this
                     file, so a test can check the object is gone afterwards.
  IPCEX_FAIL_WORKER  if set to a worker index, that worker raises instead of
                     reporting, so a test can check cleanup on failure.
"""

from __future__ import annotations

import argparse
import contextlib
import math
import os
import secrets
import signal
import sys
import time
import traceback
from typing import Callable, Iterator, NoReturn

NAME_PREFIX = "ipcex-"


class WorkerFailed(RuntimeError):
    """A worker exited unsuccessfully or never delivered its result."""


def parse_args(description: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--processes", type=int, default=10, help="number of worker processes (>= 1)")
    parser.add_argument("--terms", type=int, default=1_000_000, help="number of series terms N (>= 0)")
    parser.add_argument("--timeout", type=float, default=120.0, help="give up after this many seconds")
    args = parser.parse_args()
    if args.processes < 1:
        parser.error("--processes must be at least 1")
    if args.terms < 0:
        parser.error("--terms must not be negative")
    return args


def split_terms(terms: int, processes: int) -> list[range]:
    """Split range(terms) into `processes` contiguous chunks with integer arithmetic.

    Chunk sizes differ by at most one; chunks may be empty when processes > terms.
    (The original used ``range(n/10)``, a TypeError on Python 3 and wrong for
    n not divisible by 10.)
    """
    bounds = [i * terms // processes for i in range(processes + 1)]
    return [range(bounds[i], bounds[i + 1]) for i in range(processes)]


def partial_sum(chunk: range) -> float:
    """Correctly rounded sum of the float terms 1/(2k+1)^2 for k in chunk."""
    # int / int true division is correctly rounded even for huge ints.
    return math.fsum(1 / (2 * k + 1) ** 2 for k in chunk)


def worker_sum(index: int, terms: int, processes: int) -> float:
    """What worker `index` computes; honours the IPCEX_FAIL_WORKER test hook."""
    if os.environ.get("IPCEX_FAIL_WORKER") == str(index):
        raise RuntimeError(f"worker {index}: failure injected by IPCEX_FAIL_WORKER")
    return partial_sum(split_terms(terms, processes)[index])


def expected_total(terms: int) -> float:
    """The same sum computed in-process, without any IPC, as a cross-check."""
    return partial_sum(range(terms))


def ipc_name(kind: str) -> str:
    """An unguessable name for a POSIX IPC object (leading slash included)."""
    name = f"/{NAME_PREFIX}{kind}-{os.getpid()}-{secrets.token_hex(8)}"
    log = os.environ.get("IPCEX_NAME_LOG")
    if log:
        with open(log, "a", encoding="utf-8") as f:
            f.write(f"{kind} {name}\n")
    return name


def finish(partials: dict[int, float], terms: int, processes: int) -> None:
    """Check every worker reported and the total is right, then print the one stdout line."""
    if sorted(partials) != list(range(processes)):
        raise WorkerFailed(f"results from workers {sorted(partials)}, expected 0..{processes - 1}")
    finish_total(math.fsum(partials[i] for i in range(processes)), terms)


def finish_total(total: float, terms: int) -> None:
    """Check the total against the in-process sum, then print the one stdout line."""
    expected = expected_total(terms)
    # Partial sums are rounded once each, so allow a few ulps, no more.
    if not math.isclose(total, expected, rel_tol=1e-13, abs_tol=0.0):
        raise WorkerFailed(f"IPC total {total!r} differs from in-process total {expected!r}")
    # Write UTF-8 bytes: '≈' must not depend on the locale's stdout encoding.
    sys.stdout.buffer.write(f"pi ≈ {math.sqrt(8 * total):.10f}\n".encode())
    sys.stdout.flush()


def run(main: Callable[[], None]) -> NoReturn:
    """Run main(); report WorkerFailed/TimeoutError on stderr and exit 1."""
    try:
        main()
    except (WorkerFailed, TimeoutError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(1)
    sys.exit(0)


@contextlib.contextmanager
def alarm(seconds: float) -> Iterator[None]:
    """Raise TimeoutError in the main thread if the block runs longer than `seconds`.

    Uses setitimer(ITIMER_REAL)/SIGALRM; a blocking read or wait interrupted by
    the signal raises instead of being retried (PEP 475). Timers are not
    inherited across fork(), so workers are unaffected. Enter it *inside*
    ``with Workers()`` so the timer is off before children are killed and reaped.
    """

    def on_alarm(signum: int, frame: object) -> None:
        raise TimeoutError(f"no result within {seconds} s")

    previous = signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


class Workers:
    """Forked children that are always reaped: ``with Workers() as w: w.start(fn)``.

    The child runs fn() and leaves with os._exit(), so it never returns into the
    parent's code (no parent ``finally`` runs twice, no stdio buffer is flushed
    twice). On leaving the ``with`` block every child still running is killed
    and reaped, whether the block succeeded or raised.
    """

    def __init__(self) -> None:
        self.running: dict[int, int] = {}  # pid -> worker index

    def __enter__(self) -> Workers:
        return self

    def start(self, index: int, fn: Callable[[], None]) -> int:
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:  # child
            code = 1
            try:
                fn()
                code = 0
            except BaseException:
                traceback.print_exc()
            finally:
                os._exit(code)
        self.running[pid] = index
        return pid

    def check(self) -> None:
        """Reap finished children without blocking; raise if one failed."""
        for pid, index in list(self.running.items()):
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                del self.running[pid]
                code = os.waitstatus_to_exitcode(status)
                if code != 0:
                    raise WorkerFailed(f"worker {index} (pid {pid}) exited with status {code}")

    def wait(self, deadline: float) -> None:
        """Wait (polling gently) until every child exited successfully."""
        while self.running:
            self.check()
            if self.running:
                if time.monotonic() > deadline:
                    raise TimeoutError(f"workers {sorted(self.running.values())} still running")
                time.sleep(0.005)

    def __exit__(self, *exc_info: object) -> None:
        for pid in list(self.running):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            os.waitpid(pid, 0)
            del self.running[pid]
