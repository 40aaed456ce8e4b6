"""Where the time of the reference Arrow store's ``put`` goes, at one payload size.

``ipc-conformance bench`` finds the shared-memory Arrow path far below memcpy at 64 MiB.
This splits one ``put`` of a one-column uint8 table into its parts, in one process, each
the best of five:

* the IPC size computation (``MockOutputStream``, which copies nothing);
* memcpy into a buffer already touched, and into a freshly mapped one;
* the reference ``put`` (a new ``SharedMemory`` segment, then the IPC writer);
* the same copy and the same IPC write into a segment whose pages were touched before.

Usage::

    python benchmarks/arrow_put_breakdown.py [SIZE_MIB]        # default 64
"""

from __future__ import annotations

import mmap
import sys
import time
from typing import Any, Callable

from ipc_conformance.bench.cell import payload_of
from ipc_conformance.bench.links import table_of
from ipc_impls.arrow import ShmBackend, ipc_size, ipc_write, remove_shm, untracked_shm
from ipc_specs.harness.resources import ResourceRoot


def best(label: str, size: int, fn: Callable[[], Any], n: int = 5) -> None:
    times = []
    for _ in range(n):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    t = min(times)
    print(f"{label:52} {t * 1e3:9.2f} ms {size / t / 1e9:8.2f} GB/s")


def main() -> None:
    import pyarrow as pa

    size = int(float(sys.argv[1]) * (1 << 20)) if len(sys.argv) > 1 else 64 << 20
    payload = payload_of(size)
    table = table_of(payload)
    root = ResourceRoot()
    try:
        scope = root.scope()
        backend = ShmBackend("stream")
        best("ipc_size (MockOutputStream)", size, lambda: ipc_size("stream", table))
        dst = memoryview(bytearray(size))
        dst[:] = payload
        best("memcpy into touched memory", size, lambda: dst.__setitem__(slice(None), payload))

        def fresh() -> None:
            m = mmap.mmap(-1, size)
            view = memoryview(m)
            view[:] = payload
            view.release()
            m.close()

        best("memcpy into a fresh shared mapping", size, fresh)

        def put() -> None:
            store = backend.setup(scope)
            writer = store.open_writer()
            writer.put(table)
            writer.close()
            store.teardown()

        best("reference put (new segment + IPC write)", size, put)
        name = scope.name()
        scope.register("arrow_shm", name, lambda: remove_shm(name))
        shm = untracked_shm(name, create=True, size=ipc_size("stream", table))
        assert shm.buf is not None
        shm.buf[:size] = payload
        best("memcpy into a touched segment", size, lambda: shm.buf.__setitem__(slice(0, size), payload))

        def ipc_into_touched() -> None:
            sink = pa.FixedSizeBufferWriter(pa.py_buffer(shm.buf))
            ipc_write("stream", sink, table)
            sink.close()

        best("IPC write into a touched segment", size, ipc_into_touched)
        shm.close()
    finally:
        root.close()


if __name__ == "__main__":
    main()
