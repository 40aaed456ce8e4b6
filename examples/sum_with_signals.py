"""Sum a series over several processes; workers announce completion with signals.

Mechanism: each worker writes its result record (worker index, partial sum)
into a shared pipe and then sends the parent a real-time signal (SIGRTMIN).
The parent keeps SIGRTMIN and SIGCHLD blocked and collects them synchronously
with signal.sigtimedwait(); each SIGRTMIN means "one complete record is in the
pipe". A SIGALRM watchdog (setitimer) bounds the whole run.

Signals alone carry no payload: a standard signal is one bit that the kernel
merges when it is already pending, and a real-time signal adds only queuing
and the sender's pid/uid (si_pid, si_uid). sigqueue()'s si_value is not
available from Python, so the numbers travel through the pipe.

Pitfalls of the original: it used signals and ``alarm`` as if their timing
told the parent the results were ready. Typical failures of that style, all
avoided here: standard signals sent by several workers merge while pending,
so counting handler calls loses completions; a signal arriving before its
handler is installed kills the parent; and work done inside asynchronous
handlers races the main code.

Why this version is correct: the signals are blocked *before* fork, so none
can arrive unhandled; real-time signals are queued, one per worker; waiting
with sigtimedwait() is synchronous, so no handler races the main code. Each
record is a single write smaller than PIPE_BUF (atomic, never interleaved)
made *before* the signal, so after n signals at least n whole records can be
read. SIGCHLD reveals a worker that died without reporting. Before the mask
is restored, leftover SIGRTMIN are drained (their default action is to kill).
"""

from __future__ import annotations

import functools
import os
import signal
import struct
import time

import _common

RECORD = struct.Struct("=Id")  # worker index, partial sum: 12 bytes < PIPE_BUF
REPORT = signal.SIGRTMIN
WAITED = {REPORT, signal.SIGCHLD}


def worker(index: int, parent: int, read_fd: int, write_fd: int, terms: int, processes: int) -> None:
    os.close(read_fd)
    record = RECORD.pack(index, _common.worker_sum(index, terms, processes))
    if os.write(write_fd, record) != RECORD.size:  # atomic: all or nothing
        raise OSError("short write to pipe")
    if os.getppid() == parent:  # do not signal whoever inherited us
        os.kill(parent, REPORT)


def main() -> None:
    args = _common.parse_args(__doc__.splitlines()[0])
    deadline = time.monotonic() + args.timeout
    parent = os.getpid()
    partials: dict[int, float] = {}
    old_mask = signal.pthread_sigmask(signal.SIG_BLOCK, WAITED)  # before any fork
    read_fd, write_fd = os.pipe()
    try:
        with _common.Workers() as workers:
            started: set[int] = set()
            for index in range(args.processes):
                job = functools.partial(worker, index, parent, read_fd, write_fd, args.terms, args.processes)
                started.add(workers.start(index, job))
            os.close(write_fd)
            write_fd = -1
            reporters: set[int] = set()
            with _common.alarm(args.timeout):  # SIGALRM watchdog for the whole collection
                while len(reporters) < args.processes:
                    info = signal.sigtimedwait(WAITED, 1.0)
                    if info is None or info.si_signo == signal.SIGCHLD:
                        workers.check()  # reaps finished workers, raises if one failed
                        continue
                    if info.si_pid not in started or info.si_pid in reporters:  # si_pid: the sender
                        raise _common.WorkerFailed(f"unexpected report from pid {info.si_pid}")
                    reporters.add(info.si_pid)
                    # One signal = one whole record already in the pipe (records
                    # may be in another order than the signals; that is fine).
                    record = b""
                    while len(record) < RECORD.size:  # loop anyway: reads may be short
                        chunk = os.read(read_fd, RECORD.size - len(record))
                        if not chunk:
                            raise _common.WorkerFailed("pipe closed before all records arrived")
                        record += chunk
                    index, value = RECORD.unpack(record)
                    partials[index] = value
                workers.wait(deadline)
    finally:
        # Workers are reaped now; drain queued reports so unblocking cannot kill us.
        while signal.sigtimedwait({REPORT}, 0) is not None:
            pass
        signal.pthread_sigmask(signal.SIG_SETMASK, old_mask)
        os.close(read_fd)
        if write_fd != -1:
            os.close(write_fd)
    _common.finish(partials, args.terms, args.processes)


if __name__ == "__main__":
    _common.run(main)
