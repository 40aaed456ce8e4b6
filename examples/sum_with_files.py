"""Sum a series over several processes, returning partial sums through files.

Mechanism: a private directory from tempfile.mkdtemp() (mode 0700). Each
worker writes its result to a temporary file in that directory, flushes and
fsync()s it, then publishes it with os.replace() under its final name
``part-<index>.txt``. The parent polls for the final names and reads each file
as soon as it appears, while other workers are still running.

Pitfall of the original: the parent read the temp file while the writer
could still be writing it, so it could see an empty or half-written number
and worked only when the timing happened to be right. Also avoided here: a
fixed, guessable file name in a shared directory (symlink or pre-created file
attacks, clashes between concurrent runs) and sleeps used for ordering.

Why this version is correct: rename within one file system is atomic, so a
final name either does not exist yet or names a complete file; the reader
never sees a partial write. fsync() before the rename makes the content
durable before the name is (the reader here is on the same host and would
see the data anyway; fsync matters for crash safety). Every file carries its
worker index and an end marker, which the parent checks. The parent also
watches the workers so a dead one is reported instead of awaited forever, and
the directory is removed in ``finally``.
"""

from __future__ import annotations

import functools
import os
import shutil
import tempfile
import time

import _common


def final_path(directory: str, index: int) -> str:
    return os.path.join(directory, f"part-{index}.txt")


def worker(index: int, directory: str, terms: int, processes: int) -> None:
    text = f"{index} {_common.worker_sum(index, terms, processes).hex()} end\n"
    fd, temp_path = tempfile.mkstemp(prefix=f".part-{index}-", suffix=".tmp", dir=directory)
    try:
        with open(fd, "w", encoding="ascii") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(temp_path, final_path(directory, index))  # atomic publication
    except BaseException:
        os.unlink(temp_path)
        raise


def read_result(path: str, index: int) -> float:
    with open(path, encoding="ascii") as f:
        fields = f.read().split()
    if len(fields) != 3 or fields[0] != str(index) or fields[2] != "end":
        raise _common.WorkerFailed(f"malformed result file {path}: {fields}")
    return float.fromhex(fields[1])


def main() -> None:
    args = _common.parse_args(__doc__.splitlines()[0])
    deadline = time.monotonic() + args.timeout
    directory = tempfile.mkdtemp(prefix=_common.NAME_PREFIX)
    partials: dict[int, float] = {}
    try:
        with _common.Workers() as workers:
            for index in range(args.processes):
                workers.start(index, functools.partial(worker, index, directory, args.terms, args.processes))
            while len(partials) < args.processes:
                for index in range(args.processes):
                    path = final_path(directory, index)
                    if index not in partials and os.path.exists(path):
                        partials[index] = read_result(path, index)  # complete by construction
                workers.check()  # a failed worker will never publish: stop now
                if len(partials) < args.processes:
                    if time.monotonic() > deadline:
                        raise TimeoutError(f"only {len(partials)} of {args.processes} results appeared")
                    time.sleep(0.005)  # polling keeps this stdlib-only (inotify would avoid it)
            workers.wait(deadline)
    finally:
        shutil.rmtree(directory, ignore_errors=True)
    _common.finish(partials, args.terms, args.processes)


if __name__ == "__main__":
    _common.run(main)
