"""How much the harness costs per multi-process example, measured, not asserted.

Compares, in one run and on the same random process counts (1 to 8), the first
three in alternating blocks of ten examples so that the VM's drift hits all alike:

* a bare loop: ``os.pipe()``, fork k writers that each write 64 bytes and
  ``_exit``, read until EOF, ``waitpid`` each — the least a fork-per-example
  test can do;
* the same loop with the harness's gate (writers wait until all are forked and
  the parent has closed its copies), which correctness requires;
* the harness running the same example through ``Case.run`` in the fork
  placement (private directory, histories, result files, watchdog);
* the harness in the spawn placement with warm workers (FIFO backend, since
  spawned workers can only reach channels opened by name), and in the thread placement.

Usage: python benchmarks/harness_overhead.py [--examples 200] [--seed 1]
Targets (issue 2): fork overhead <= 1.5x the bare loop; spawn >= 300 examples/s.
"""

from __future__ import annotations

import argparse
import functools
import os
import random
import time
from typing import Any, Callable, Dict, List

from ipc_impls.streams import FifoBackend, PipeBackend
from ipc_specs import Harness, Role
from ipc_specs.harness.worker import Proc
from ipc_specs.strategies import Blob
from ipc_specs.streams.roles import write_then_close

PAYLOAD = b"x" * 64
#: Examples per block when loops alternate (see interleaved).
BLOCK = 10


def bare_example(k: int, *, gated: bool = False) -> None:
    r, w = os.pipe()
    # gated: the one step correctness adds, no child writes until the parent has forked
    # them all and closed its copies (else a "closed" end is not closed).
    gate_r, gate_w = os.pipe() if gated else (-1, -1)
    pids = []
    for _ in range(k):
        pid = os.fork()
        if pid == 0:
            os.close(r)
            if gated:
                os.close(gate_w)
                os.read(gate_r, 1)
            os.write(w, PAYLOAD)
            os._exit(0)
        pids.append(pid)
    os.close(w)
    if gated:
        os.close(gate_w)
        os.close(gate_r)
    while os.read(r, 65536):
        pass
    os.close(r)
    for pid in pids:
        os.waitpid(pid, 0)


def write_payload(proc: Proc, writer: int, writers: int) -> None:
    """What the bare loop's children do: open (an inherited pipe), write, close."""
    w = proc.open_writer()
    w.write(PAYLOAD)
    w.close()


def write_payload_fifo(proc: Proc, writer: int, writers: int) -> None:
    # The spec's writer role: for a FIFO, no writer may close before all have opened.
    write_then_close(proc, [Blob(len(PAYLOAD))], writer, writers)


def read_to_eof(proc: Proc) -> int:
    r = proc.open_reader()
    n = 0
    while True:
        chunk = r.read(65536)
        if not chunk:
            return n
        n += len(chunk)


def harness_example(harness: Harness, backend: Any, placement: str) -> Callable[[int], None]:
    case = harness.case(backend, "bytes_arrive_complete_and_in_order", placement)

    def run(k: int) -> None:
        # k processes in all, as in the bare loop's k writers (+ its reading parent).
        n = max(1, k - 1)
        writer = write_payload_fifo if backend.wiring == "named" else write_payload
        roles = [Role("R", read_to_eof)] + [Role(f"W{i}", writer, (i, n)) for i in range(n)]
        out = case.run(roles)
        assert out.value("R") == len(PAYLOAD) * max(1, k - 1)

    return run


def rate(label: str, fn: Callable[[int], None], counts: List[int]) -> float:
    fn(max(counts))  # warm up: imports, and a pool as large as any example needs
    t = time.perf_counter()
    for k in counts:
        fn(k)
    per_s = len(counts) / (time.perf_counter() - t)
    print(f"{label:<34} {per_s:8.1f} examples/s")
    return per_s


def interleaved(fns: Dict[str, Callable[[int], None]], counts: List[int], settle: Callable[[], None],
                block: int = BLOCK) -> Dict[str, float]:
    """Examples per second of each loop, run in alternating blocks of the same counts.

    The speed of this VM drifts by 2x over a minute; run one loop after the other and
    the ratio measures the drift.  Alternating blocks expose every loop to it alike.
    ``settle`` (reaping workers that were still exiting) is timed with the harness.
    """
    spent = dict.fromkeys(fns, 0.0)
    for fn in fns.values():
        fn(max(counts))  # warm up
    settle()
    for start in range(0, len(counts), block):
        for label, fn in fns.items():
            t = time.perf_counter()
            for k in counts[start:start + block]:
                fn(k)
            settle()
            spent[label] += time.perf_counter() - t
    rates = {label: len(counts) / s for label, s in spent.items()}
    for label, per_s in rates.items():
        print(f"{label:<34} {per_s:8.1f} examples/s")
    return rates


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=200)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    counts = [random.Random(args.seed).randint(1, 8) for _ in range(args.examples)]
    print(f"{args.examples} examples, 1-8 processes each (mean {sum(counts) / len(counts):.1f}), "
          f"{os.cpu_count()} CPUs")
    harness = Harness(deadline_s=30)
    try:
        fork_rates = interleaved({"bare fork loop": bare_example,
                                  "bare fork loop with a gate": functools.partial(bare_example, gated=True),
                                  "harness, fork placement": harness_example(harness, PipeBackend(), "fork")},
                                 counts, harness.settle)
        spawn = rate("harness, spawn placement (warm)", harness_example(harness, FifoBackend(), "spawn"), counts)
        thread = rate("harness, thread placement", harness_example(harness, PipeBackend(), "thread"), counts)
    finally:
        harness.close()
    bare, gated, fork = fork_rates.values()
    print(f"\nfork overhead: {bare / fork:.2f}x the bare loop (target <= 1.5x); "
          f"the gate alone: {bare / gated:.2f}x")
    print(f"spawn: {spawn:.0f} examples/s (target >= 300); thread: {thread:.0f} examples/s")


if __name__ == "__main__":
    main()
