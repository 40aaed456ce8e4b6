"""Sum a series over several processes, returning partial sums through a FIFO.

Mechanism: a named pipe made with os.mkfifo() inside a private directory from
tempfile.mkdtemp() (mode 0700, unguessable name). Each worker opens the FIFO
by path and writes one line ``<index> <float.hex()>\\n``; the parent reads lines.

Pitfall of the original: the reader did ``read(1024)`` and split on
newlines, so a line cut by a chunk boundary was parsed as two broken numbers
(and a last chunk without a newline was lost). Also avoided here: a fixed,
guessable FIFO path that others could open or pre-create, and a reader left
hanging because opening a FIFO blocks until the other side opens too.

Why this version is correct: the parent iterates a *buffered* reader, which
reassembles lines that arrive split across read() chunks; every line is
written with one os.write() of at most PIPE_BUF bytes, which POSIX makes
atomic, so lines of different writers never interleave. The parent opens the
read end (non-blocking, so open() cannot hang) and a write end *before*
forking; the children inherit that write end and the parent closes its copy,
so EOF arrives exactly when every worker has exited or died, never earlier.
The directory is private and removed in ``finally``.
"""

from __future__ import annotations

import os
import select
import shutil
import tempfile
import time

import _common


def worker(index: int, path: str, inherited_fd: int, terms: int, processes: int) -> None:
    line = f"{index} {_common.worker_sum(index, terms, processes).hex()}\n".encode("ascii")
    assert len(line) <= select.PIPE_BUF, "larger writes are not atomic"
    fd = os.open(path, os.O_WRONLY)  # does not block: the parent's read end is open
    os.close(inherited_fd)  # our own write end now keeps the FIFO open
    try:
        if os.write(fd, line) != len(line):  # atomic: all or nothing
            raise OSError("short write to FIFO")
    finally:
        os.close(fd)


def main() -> None:
    args = _common.parse_args(__doc__.splitlines()[0])
    deadline = time.monotonic() + args.timeout
    directory = tempfile.mkdtemp(prefix=_common.NAME_PREFIX)
    partials: dict[int, float] = {}
    try:
        path = os.path.join(directory, "results.fifo")
        os.mkfifo(path, 0o600)
        # O_NONBLOCK so that open() returns at once; then make reads blocking.
        read_fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
        os.set_blocking(read_fd, True)
        with open(read_fd, "rb") as reader, _common.Workers() as workers:
            write_fd = os.open(path, os.O_WRONLY)  # a reader exists, so no blocking
            try:
                for index in range(args.processes):

                    def child(i: int = index) -> None:
                        reader.close()  # the child only writes
                        worker(i, path, write_fd, args.terms, args.processes)

                    workers.start(index, child)
            finally:
                os.close(write_fd)  # from now on only the workers hold write ends
            with _common.alarm(args.timeout):  # a hung worker must not block us forever
                # The buffered reader reassembles lines split across read() chunks.
                for line in reader:  # ends at EOF: every worker closed its write end
                    index_text, value_text = line.decode("ascii").split()
                    if int(index_text) in partials:
                        raise _common.WorkerFailed(f"two results from worker {index_text}")
                    partials[int(index_text)] = float.fromhex(value_text)
                workers.wait(deadline)
    finally:
        shutil.rmtree(directory, ignore_errors=True)
    _common.finish(partials, args.terms, args.processes)


if __name__ == "__main__":
    _common.run(main)
