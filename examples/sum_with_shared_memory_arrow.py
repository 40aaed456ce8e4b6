"""Sum a series over several processes, returning partial sums as Arrow IPC streams in shared memory.

Mechanism: one multiprocessing.shared_memory segment with a fixed-size slot
per worker. Each worker serialises a one-row record batch (worker, start,
stop, partial) as an Arrow IPC *stream* straight into its slot through
pyarrow.FixedSizeBufferWriter, then stores the stream's length in the slot
header. After the workers have exited, the parent opens every slot with
pyarrow.ipc.open_stream() over the shared memory itself, so the columns it
reads are zero-copy views of the segment.

Pitfall of the original: it treated a pyarrow object read from shared
memory as writable. Arrow data is immutable, and NumPy views of it are
read-only (assigning into them raises ValueError); worse, they alias memory
that is unmapped when the segment is closed. Also avoided here: forking after
pyarrow is imported. pyarrow (and NumPy) start threads, and fork() copies only
the calling thread, so a child can deadlock on a lock another thread held.

Why this version is correct: the parent forks its workers *before* pyarrow or
NumPy is imported anywhere in it; each child imports pyarrow itself, after the
fork. Slots are disjoint and the parent reads only after every worker has
exited successfully, so no locking is needed. The parent copies what it keeps
(np.concatenate makes a private, writable array) before modifying anything,
and drops every Arrow object before closing the segment (a live export would
make close() fail with BufferError). The segment is unlinked in ``finally``.
"""

from __future__ import annotations

import functools
import struct
import time
from multiprocessing import shared_memory

import _common

SLOT = 4096  # bytes per worker; plenty for a one-row batch (~500 bytes)
HEADER = struct.Struct("=Q")  # length of the Arrow IPC stream in the slot; 0 = not written


def worker(index: int, shm: shared_memory.SharedMemory, terms: int, processes: int) -> None:
    import pyarrow as pa  # in the child, after fork(): see the module docstring

    chunk = _common.split_terms(terms, processes)[index]
    batch = pa.record_batch(
        {
            "worker": pa.array([index], pa.int32()),
            "start": pa.array([chunk.start], pa.int64()),
            "stop": pa.array([chunk.stop], pa.int64()),
            "partial": pa.array([_common.worker_sum(index, terms, processes)], pa.float64()),
        }
    )
    assert shm.buf is not None
    slot = shm.buf[index * SLOT : (index + 1) * SLOT]
    sink = pa.FixedSizeBufferWriter(pa.py_buffer(slot[HEADER.size :]))  # raises if it would overflow
    with pa.ipc.new_stream(sink, batch.schema) as writer:
        writer.write_batch(batch)
    HEADER.pack_into(slot, 0, sink.tell())  # length last: the slot is complete


def read_partials(shm: shared_memory.SharedMemory, processes: int) -> dict[int, float]:
    """Read every slot zero-copy; return plain Python copies (no Arrow object survives the call)."""
    import numpy as np
    import pyarrow as pa  # safe now: this process forks no more

    assert shm.buf is not None
    segment = pa.py_buffer(shm.buf)
    batches = []
    for index in range(processes):
        (length,) = HEADER.unpack_from(shm.buf, index * SLOT)
        if not 0 < length <= SLOT - HEADER.size:
            raise _common.WorkerFailed(f"worker {index} left no Arrow stream in its slot")
        start = index * SLOT + HEADER.size
        batches.extend(pa.ipc.open_stream(segment.slice(start, length)))  # no copy
    views = [batch.column("partial").to_numpy(zero_copy_only=True) for batch in batches]
    for batch, view in zip(batches, views):
        address = batch.column("partial").buffers()[1].address
        assert segment.address <= address < segment.address + segment.size, "expected a zero-copy view"
        assert not view.flags.writeable  # the original's mistake: writing into such a view
    values = np.concatenate(views) if views else np.empty(0)  # a private, writable copy
    indices = [batch.column("worker")[0].as_py() for batch in batches]
    if sorted(indices) != list(range(processes)):
        raise _common.WorkerFailed(f"slots hold results of workers {indices}")
    return dict(zip(indices, values.tolist()))


def main() -> None:
    args = _common.parse_args(__doc__.splitlines()[0])
    deadline = time.monotonic() + args.timeout
    size = args.processes * SLOT  # a new segment is zero-filled: every header reads 0
    shm = shared_memory.SharedMemory(name=_common.ipc_name("shm")[1:], create=True, size=size)
    done = False
    try:
        with _common.Workers() as workers:
            for index in range(args.processes):
                workers.start(index, functools.partial(worker, index, shm, args.terms, args.processes))
            workers.wait(deadline)  # every slot is final once its writer has exited
        partials = read_partials(shm, args.processes)
        done = True
    finally:
        shm.unlink()  # first: the name is what would outlive this process
        try:
            shm.close()  # raises BufferError while any Arrow view of the segment is alive
        except BufferError:
            if done:
                raise
            # read_partials() failed and its traceback still holds Arrow views;
            # keep the original error, the mapping goes when the process exits.
    _common.finish(partials, args.terms, args.processes)


if __name__ == "__main__":
    _common.run(main)
