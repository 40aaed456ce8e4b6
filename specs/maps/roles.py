"""Role bodies for map examples (module-level, so spawned workers can unpickle them;
they return plain data for the checks to judge in the parent).

Processes are ordered by harness events (files in the example directory),
never by the map under test, so a broken map cannot hide its own failure.
"""

from __future__ import annotations

import hashlib
import os
import pickle
import subprocess
import time
from typing import Dict, List, Optional, Sequence, Tuple

from ..harness.fresh import run_fresh
from ..harness.worker import Proc
from ..strategies import Blob

#: One assignment: a key and the payload stored under it.
Item = Tuple[str, Blob]
#: A value as the checks compare it: (length, sha256 hex) or None for an absent key.
Digest = Optional[Tuple[int, str]]
COUNTER = "counter"


def digest(value: Optional[bytes]) -> Digest:
    return None if value is None else (len(value), hashlib.sha256(value).hexdigest())


def start_together(proc: Proc, me: int, procs: int) -> None:
    """Wait until every process of the example is ready, so their operations really overlap."""
    proc.signal(f"ready-{me}")
    for other in range(procs):
        proc.wait_for(f"ready-{other}")


# --- distinct keys ---------------------------------------------------------------------
def set_own_keys(proc: Proc, me: int, procs: int, items: Sequence[Item]) -> None:
    h = proc.open("open")
    start_together(proc, me, procs)
    for key, blob in items:
        h.set(key, blob.data)
    h.close()
    proc.signal(f"done-{me}")


def read_all_after(proc: Proc, procs: int, keys: Sequence[str]) -> Tuple[Dict[str, Digest], List[str]]:
    """Once every setter is done: each key's value (as a digest) and the keys the map lists.
    (It opens first: in threads, every role must have opened before any may go on.)"""
    h = proc.open("open")
    for other in range(procs):
        proc.wait_for(f"done-{other}")
    seen = {k: digest(h.get(k)) for k in keys}
    listed = sorted(h.keys())
    h.close()
    return seen, listed


# --- no stale cache ----------------------------------------------------------------------
def assign_in_rounds(proc: Proc, rounds: Sequence[Optional[Blob]]) -> None:
    """Round r: set the key to rounds[r] (delete it for None), then let the watcher look."""
    h = proc.open("open")
    proc.wait_for("watching")
    for r, blob in enumerate(rounds):
        if blob is None:
            h.delete("k")
        else:
            h.set("k", blob.data)
        proc.signal(f"set-{r}")
        proc.wait_for(f"seen-{r}")
    h.close()


def watch_with_one_handle(proc: Proc, rounds: int) -> List[Digest]:
    """Open one handle before any round, read through it once (filling any cache), then after each round."""
    h = proc.open("open")
    h.get("k")
    proc.signal("watching")
    seen = []
    for r in range(rounds):
        proc.wait_for(f"set-{r}")
        seen.append(digest(h.get("k")))
        proc.signal(f"seen-{r}")
    h.close()
    return seen


# --- locked read-modify-write ----------------------------------------------------------------
def locked_increments(proc: Proc, me: int, procs: int, times: int, pause_us: int) -> int:
    """Add 1 to the counter ``times`` times, each get and set inside one ``locked()`` body,
    sleeping ``pause_us`` between them (work a real update does there; the process is
    descheduled, and the others must still wait); after everyone is done, read it.
    The handle is used unrecorded: thousands of calls."""
    h = proc.open("open")
    raw = h.unwrapped
    start_together(proc, me, procs)
    proc.note("increments", f"{times} under locked(), {pause_us} us inside")
    for _ in range(times):
        with raw.locked():
            value = raw.get(COUNTER)
            if pause_us:
                time.sleep(pause_us / 1e6)
            raw.set(COUNTER, str(int(value or b"0") + 1).encode())
    proc.signal(f"done-{me}")
    for other in range(procs):
        proc.wait_for(f"done-{other}")
    final = h.get(COUNTER)
    h.close()
    return int(final or b"0")


# --- torn values -----------------------------------------------------------------------------
def rewrite_values(proc: Proc, readers: int, versions: Sequence[Blob], rounds: int) -> None:
    """Once the readers read, set the key to each version in turn, ``rounds`` times over."""
    h = proc.open("open")
    raw = h.unwrapped
    for r in range(readers):
        proc.wait_for(f"reading-{r}")
    proc.note("rewrites", f"{rounds} x {len(versions)} versions")
    payloads = [v.data for v in versions]
    for _ in range(rounds):
        for data in payloads:
            raw.set("k", data)
    proc.signal("written")
    h.close()


def read_while_rewritten(proc: Proc, me: int, min_reads: int) -> Dict[Digest, int]:
    """Read the key in a loop until the writer is done (and at least ``min_reads`` times);
    returns how often each distinct value was seen."""
    h = proc.open("open")
    raw = h.unwrapped
    seen: Dict[Digest, int] = {}
    done = os.path.join(proc.task.directory, "ev-written")
    proc.signal(f"reading-{me}")
    reads = 0
    while reads < min_reads or not os.path.exists(done):
        d = digest(raw.get("k"))
        seen[d] = seen.get(d, 0) + 1
        reads += 1
    proc.note("reads", str(reads))
    h.close()
    return seen


# --- limits ----------------------------------------------------------------------------------
def try_set(h: object, key: str, value: bytes) -> str:
    try:
        h.set(key, value)  # type: ignore[attr-defined]
    except Exception as exc:  # noqa: BLE001  (the refusal is the observation; which error varies)
        return type(exc).__name__
    return "ok"


def probe_limits(proc: Proc, fill: Sequence[Blob], target: str, value: Blob, over: Blob,
                 extra: str) -> Dict[str, object]:
    """Fill the map with ``fill`` (keys f0, f1, ...), set ``target`` to ``value`` and then to
    ``over``; when the map is full, also try a new key ``extra``, then again after deleting
    f1.  Returns every verdict and what the map holds after each."""
    h = proc.open("open")
    out: Dict[str, object] = {"fill": [try_set(h, f"f{i}", b.data) for i, b in enumerate(fill)]}
    out["set"] = try_set(h, target, value.data)
    out["after"] = digest(h.get(target))
    out["over"] = try_set(h, target, over.data)
    out["after_over"] = digest(h.get(target))
    if extra:
        out["extra"] = try_set(h, extra, b"x")
        out["extra_after"] = digest(h.get(extra))
        out["keys"] = len(h.keys())
        out["deleted"] = bool(h.delete("f1"))
        out["extra_again"] = try_set(h, extra, b"x")
    out["fill_after"] = [digest(h.get(f"f{i}")) for i in range(len(fill)) if not (extra and i == 1)]
    h.close()
    return out


# --- dict semantics ----------------------------------------------------------------------------
def run_ops(proc: Proc, ops: Sequence[Tuple[object, ...]]) -> List[object]:
    """Apply ("set", key, Blob), ("get", key), ("delete", key) or ("keys",) in order; each result
    as the model states it (digests for values, sorted keys)."""
    h = proc.open("open")
    seen: List[object] = []
    for op in ops:
        if op[0] == "set":
            h.set(op[1], op[2].data)  # type: ignore[attr-defined]
            seen.append(None)
        elif op[0] == "get":
            seen.append(digest(h.get(op[1])))
        elif op[0] == "delete":
            seen.append(bool(h.delete(op[1])))
        else:
            seen.append(sorted(h.keys()))
    h.close()
    return seen


# --- an attacher's exit ------------------------------------------------------------------------
#: What the fresh interpreter runs after fresh.LOAD_CHANNEL (stdlib only until it unpickles).
FRESH_SCRIPT = """
with open(sys.argv[1], "rb") as f:
    blob, items, how = pickle.load(f)
channel = load_channel(blob, "ipc_specs.maps")
handle = channel.open()
for key, value in items:
    handle.set(key, value)
sys.stdout.write("set %d\\n" % len(items))
sys.stdout.flush()
if how == "os._exit":
    os._exit(0)
if how == "close, exit":
    handle.close()
"""
EXIT_WAYS = ("close, exit", "exit without close", "os._exit")


def attacher_exits(proc: Proc, items: Sequence[Item], how: str,
                   keys: Sequence[str]) -> Tuple[int, str, Dict[str, Digest]]:
    """Run a fresh ``sys.executable`` that opens the map by name, sets ``items`` and exits
    ``how``; wait until every process it started is gone, then read ``keys`` here.

    Returns (its exit code, its output tail, each key's value now)."""
    task = os.path.join(proc.task.directory, "fresh-task")
    out_path = os.path.join(proc.task.directory, "fresh-out")
    with open(task, "wb") as f:
        pickle.dump((pickle.dumps(proc.channel), [(k, b.data) for k, b in items], how), f)
    with open(out_path, "wb") as out:
        rc = run_fresh(proc, FRESH_SCRIPT, [task], detail=how, stdout=out, stderr=subprocess.STDOUT)
    with open(out_path, errors="replace") as f:
        tail = f.read()[-600:]
    h = proc.open("open")
    now = {k: digest(h.get(k)) for k in keys}
    h.close()
    return rc, tail, now

