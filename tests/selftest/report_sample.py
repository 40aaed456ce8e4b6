"""A Collector holding every kind of cell, built directly (no run): the reports' test data.

Backend names and messages carry markup and control characters, as user data may.
"""

from __future__ import annotations

from typing import Any, Dict

from ipc_conformance.collector import Collector

FAMILY = "stream"
GOOD = "os-pipe"
BAD = "evil<b>&amp;'\"twin"
SCRIPT = "<script>document.title='pwned'</script>"
REPRODUCE_FAIL = ("ipc-conformance --backend mine:Evil -n 0 "
                  "-k 'test_invariant[x-bytes_arrive_complete_and_in_order-fork]' --replay AAEC")
INVARIANTS = {
    "bytes_arrive_complete_and_in_order": "fail",
    "eof_after_last_writer_closes": "flaky",
    "small_writes_never_interleave": "error",
    "blocking_open_waits_for_peer": "unsupported",
    "zero_length_write_is_not_eof": "not_run",
    "write_rejects_text": "crashed",
    "nonblocking_small_write_is_all_or_nothing": "unresolved",
    "write_without_reader_raises_broken_pipe": "pass",
}
COUNTEREXAMPLE = (
    "[bytes_arrive_complete_and_in_order] got=b'ab', but should be b'ba' " + SCRIPT + " [read]\n"
    "history (ms since example start; per process: operation, arguments, result):\n"
    "      7.579  W1   → write          b'<b>'\n"
    "      7.712  R    ← read           b''\n"
    "(FAIL (the minimal example failed 3 of 3 replays))\n"
    "Failing test case: example(\n    plans=[[Blob(0, 0)], [Blob(1, 0)]],\n)")


def _entry(verdict: str) -> Dict[str, Any]:
    detail = {"fail": "(the minimal example failed 3 of 3 replays) got=b'ab', but should be b'ba' " + SCRIPT,
              "flaky": "(found intermittently; the minimal example failed 1 of 3 replays) got=EOF, but should be data",
              "error": "LeakFound: left behind \x1b[31m\x00 a descriptor <fd 7>",
              "crashed": "crashed: setup() died by SIGSEGV",
              "unsupported": "unsupported: backend does not claim blocking_open",
              "unresolved": "unresolved: pipe_capacity below what the check needs",
              "pass": ""}.get(verdict, "")
    entry: Dict[str, Any] = {"ipc_verdict": verdict, "ipc_detail": detail, "ipc_examples": 10 if verdict in (
        "pass", "fail", "flaky", "error") else 0, "ipc_duration_s": 0.25}
    if verdict in ("fail", "flaky", "error", "crashed"):
        entry["ipc_reproduce"] = REPRODUCE_FAIL if verdict == "fail" else f"ipc-conformance -k {verdict}-case"
        entry["ipc_counterexample"] = COUNTEREXAMPLE if verdict == "fail" else f"{verdict} text {SCRIPT}"
    if verdict in ("fail", "flaky"):
        entry["ipc_replays"] = {"runs": 3, "failed": 3 if verdict == "fail" else 1}
        entry["ipc_blob"] = "AAEC" if verdict == "fail" else ""
    return entry


def sample_collector() -> Collector:
    c = Collector()
    c.settings = {"profile": "ci", "max_examples": 10, "derandomize": True, "deadline_s": 5.0, "replays": 3,
                  "faults": True, "placements": ["fork", "thread"], "worker_memory_mib": 2048,
                  "hypothesis_seed": None, "duration_s": 12.5}
    meta = {"kind": FAMILY, "wiring": "inherit", "capabilities": ["eof_on_close"]}
    c.backends[GOOD] = dict(meta, source="reference", module="ipc_impls.streams")
    c.backends[BAD] = dict(meta, source="mine.py:Evil", module="mine")
    for inv, verdict in INVARIANTS.items():
        for backend, v in ((GOOD, "unsupported" if verdict == "unsupported" else "pass"), (BAD, verdict)):
            nodeid = f"t.py::test_invariant[{backend}-{inv}-fork]"
            c.schedule([nodeid])
            if v != "not_run":
                props = dict(_entry(v), ipc_backend=backend, ipc_invariant=inv, ipc_placement="fork")
                c.add(props, nodeid)
        thread = f"t.py::test_invariant[{GOOD}-{inv}-thread]"
        c.schedule([thread])
        c.add(dict(_entry("pass"), ipc_backend=GOOD, ipc_invariant=inv, ipc_placement="thread"), thread)
    c.load_problems.append({"source": "typo<mod>:X", "message": "No module named 'typo<mod>'"})
    c.finish()
    return c
