"""Sum a series over several processes, returning partial sums through a POSIX message queue.

Mechanism: a posix_ipc.MessageQueue created exclusively (O_CREX) with mode
0600 under an unguessable name. The workers inherit the open queue descriptor
across fork() and each sends one message (worker index, partial sum); the
parent receives one message per worker. The queue is unlinked in ``finally``.
(sysv_ipc.MessageQueue is the System V alternative: created with
``sysv_ipc.IPC_CREX`` under a random key and destroyed with ``remove()``; its
objects live in the kernel and show up in ``ipcs -q`` until removed.)

Pitfalls avoided here (the original worked only by luck): a fixed, guessable
queue name opened with plain O_CREAT silently reuses a queue left over by a
crashed earlier run (stale messages then corrupt the sum) or one planted by
another user; a queue that is never unlinked outlives the program, because
POSIX queues persist until unlinked or reboot; and a blocking receive() waits
forever for a worker that died.

Why this version is correct: O_CREX fails instead of reusing an existing
queue, and the random name cannot be predicted; message queues keep message
boundaries, so one receive() returns exactly one whole message; receive() has
a timeout and the parent checks its workers between waits, so a dead worker
is reported instead of awaited; close() and unlink() run in ``finally``.
"""

from __future__ import annotations

import functools
import struct
import time

import _common
import posix_ipc

RECORD = struct.Struct("=Id")  # worker index, partial sum


def worker(index: int, queue: posix_ipc.MessageQueue, terms: int, processes: int, deadline: float) -> None:
    record = RECORD.pack(index, _common.worker_sum(index, terms, processes))
    # send() blocks while the queue is full; bound that wait too.
    queue.send(record, timeout=max(0.0, deadline - time.monotonic()))


def main() -> None:
    args = _common.parse_args(__doc__.splitlines()[0])
    deadline = time.monotonic() + args.timeout
    name = _common.ipc_name("mq")
    # Linux lets unprivileged users have at most 10 messages per queue by
    # default (/proc/sys/fs/mqueue/msg_max); senders simply wait for room.
    queue = posix_ipc.MessageQueue(
        name, posix_ipc.O_CREX, mode=0o600, max_messages=min(args.processes, 10), max_message_size=RECORD.size
    )
    partials: dict[int, float] = {}
    try:
        with _common.Workers() as workers:
            for index in range(args.processes):
                workers.start(index, functools.partial(worker, index, queue, args.terms, args.processes, deadline))
            while len(partials) < args.processes:
                workers.check()  # a failed worker will never send: stop now
                if time.monotonic() > deadline:
                    raise TimeoutError(f"only {len(partials)} of {args.processes} workers reported")
                try:
                    message, _priority = queue.receive(timeout=0.1)
                except posix_ipc.BusyError:  # timed out; look at the workers again
                    continue
                index, value = RECORD.unpack(message)  # one receive() = one whole message
                if index in partials or index >= args.processes:
                    raise _common.WorkerFailed(f"unexpected message from worker {index}")
                partials[index] = value
            workers.wait(deadline)
    finally:
        queue.close()
        posix_ipc.unlink_message_queue(name)
    _common.finish(partials, args.terms, args.processes)


if __name__ == "__main__":
    _common.run(main)
