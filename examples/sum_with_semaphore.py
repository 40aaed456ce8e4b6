"""Sum a series over several processes into one shared accumulator guarded by a semaphore.

Mechanism: a multiprocessing.shared_memory segment holds the accumulator
(a float64 running total and a uint64 count of reports); a
multiprocessing.Semaphore(1), a real POSIX semaphore shared by every process
forked from the same context, makes each worker's read-add-write of the
accumulator a critical section.

Pitfall of the original: it guarded the shared total with a
``threading.Semaphore``. That object lives in one process's memory: after
fork() every worker has its *own copy*, so acquiring it excludes nobody and
concurrent ``total += partial`` updates could overwrite each other (a lost
update), giving a wrong sum only sometimes.

Why this version is correct: the semaphore comes from the same multiprocessing
context as the processes, so all workers block on one kernel object; the
accumulator is in shared memory, not in a per-process copy; the count lets
the parent check that every worker added exactly once. Workers acquire with
a timeout (a worker killed inside the critical section would otherwise leave
the rest blocked forever). The segment is closed and unlinked in ``finally``
and any worker still alive is killed and joined. Floating-point addition is
not associative, so the last bits of the total depend on the order in which
workers finish; that is far below the 10 printed decimals.
"""

from __future__ import annotations

import multiprocessing
import struct
import time
from multiprocessing import shared_memory
from multiprocessing.synchronize import Semaphore

import _common

ACCUMULATOR = struct.Struct("=dQ")  # running total, number of workers that added


def worker(index: int, buf: memoryview, lock: Semaphore, args: tuple[int, int, float]) -> None:
    terms, processes, deadline = args
    partial = _common.worker_sum(index, terms, processes)  # long work: outside the lock
    if not lock.acquire(timeout=max(0.0, deadline - time.monotonic())):
        raise TimeoutError(f"worker {index}: semaphore not acquired before the deadline")
    try:  # critical section: read, add, write back
        total, count = ACCUMULATOR.unpack_from(buf, 0)
        ACCUMULATOR.pack_into(buf, 0, total + partial, count + 1)
    finally:
        lock.release()


def main() -> None:
    args = _common.parse_args(__doc__.splitlines()[0])
    deadline = time.monotonic() + args.timeout
    # "fork": children inherit the semaphore and the mapped segment directly.
    ctx = multiprocessing.get_context("fork")
    lock = ctx.Semaphore(1)
    shm = shared_memory.SharedMemory(name=_common.ipc_name("shm")[1:], create=True, size=ACCUMULATOR.size)
    procs: list[multiprocessing.process.BaseProcess] = []
    try:
        buf = shm.buf  # inherited by the forked workers
        assert buf is not None
        ACCUMULATOR.pack_into(buf, 0, 0.0, 0)
        for index in range(args.processes):
            worker_proc = ctx.Process(target=worker, args=(index, buf, lock, (args.terms, args.processes, deadline)))
            worker_proc.start()
            procs.append(worker_proc)
        for index, proc in enumerate(procs):
            proc.join(max(0.0, deadline - time.monotonic()))
            if proc.exitcode is None:
                raise TimeoutError(f"worker {index} still running at the deadline")
            if proc.exitcode != 0:
                raise _common.WorkerFailed(f"worker {index} exited with status {proc.exitcode}")
        total, count = ACCUMULATOR.unpack_from(buf, 0)
    finally:
        for proc in procs:
            if proc.is_alive():
                proc.kill()
            proc.join()
        shm.close()
        shm.unlink()
    if count != args.processes:
        raise _common.WorkerFailed(f"{count} of {args.processes} workers added their partial sum")
    _common.finish_total(total, args.terms)


if __name__ == "__main__":
    _common.run(main)
