"""Sum a series over several processes, returning partial sums through os.pipe().

Mechanism: one anonymous pipe per worker, created before fork(). The worker
writes a single length-prefixed frame (4-byte big-endian length, then the
partial sum as ASCII float.hex()) and exits; the parent reads each pipe.

Pitfalls of the original: it did ``os.write(fd, str(s))`` (a TypeError on
Python 3: pipes carry bytes) and took ``os.read(r, 1024)`` to be the whole
payload (a read may return fewer bytes than were written, and nothing marks
where a message ends). Also avoided here: leaving unused pipe ends open after
fork, so a reader waiting for EOF hangs because it still holds a write end.

Why this version is correct: payloads are bytes; the length prefix tells the
reader exactly how much to expect and read_exactly() loops over short reads;
after fork each side closes the ends it does not use, so EOF arrives as soon
as the worker exits (or dies), which the parent reports instead of hanging.
float.hex() round-trips the float exactly.
"""

from __future__ import annotations

import os
import select
import struct
import time

import _common

HEADER = struct.Struct(">I")  # payload length in bytes


def read_exactly(fd: int, size: int, deadline: float) -> bytes:
    """Read exactly `size` bytes, looping over short reads; fail on early EOF."""
    chunks: list[bytes] = []
    remaining = size
    while remaining:
        # select() first, so a worker that hangs cannot block us past the deadline.
        if not select.select([fd], [], [], max(0.0, deadline - time.monotonic()))[0]:
            raise TimeoutError("no data from a worker before the deadline")
        chunk = os.read(fd, remaining)
        if not chunk:
            raise _common.WorkerFailed(f"pipe closed after {size - remaining} of {size} bytes")
        chunks.append(chunk)
        remaining -= len(chunk)
    return b"".join(chunks)


def write_all(fd: int, data: bytes) -> None:
    """os.write may write less than asked (pipes larger than PIPE_BUF); loop."""
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def worker(index: int, read_fd: int, write_fd: int, terms: int, processes: int) -> None:
    os.close(read_fd)  # the child only writes
    payload = _common.worker_sum(index, terms, processes).hex().encode("ascii")
    write_all(write_fd, HEADER.pack(len(payload)) + payload)
    os.close(write_fd)


def main() -> None:
    args = _common.parse_args(__doc__.splitlines()[0])
    deadline = time.monotonic() + args.timeout
    read_fds: list[int] = []
    partials: dict[int, float] = {}
    try:
        with _common.Workers() as workers:
            for index in range(args.processes):
                read_fd, write_fd = os.pipe()
                read_fds.append(read_fd)

                # child() runs only in the forked child. Read ends of earlier
                # pipes are inherited too: close them so it holds nothing extra.
                def child(i: int = index, r: int = read_fd, w: int = write_fd) -> None:
                    for fd in read_fds[:-1]:
                        os.close(fd)
                    worker(i, r, w, args.terms, args.processes)

                workers.start(index, child)
                os.close(write_fd)  # the parent only reads: keep no write end open
            for index, read_fd in enumerate(read_fds):
                (length,) = HEADER.unpack(read_exactly(read_fd, HEADER.size, deadline))
                partials[index] = float.fromhex(read_exactly(read_fd, length, deadline).decode("ascii"))
                if os.read(read_fd, 1):
                    raise _common.WorkerFailed(f"worker {index} sent trailing bytes")
            workers.wait(deadline)
    finally:
        for fd in read_fds:
            os.close(fd)
    _common.finish(partials, args.terms, args.processes)


if __name__ == "__main__":
    _common.run(main)
