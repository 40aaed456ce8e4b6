"""Role bodies for shared-memory examples (module-level, so spawned workers can
unpickle them; they return plain data for the check to judge in the parent)."""

from __future__ import annotations

import fcntl
import os
import pickle
from typing import List, Optional, Sequence, Tuple

from ..harness.fresh import run_fresh
from ..harness.worker import Proc

Region = Tuple[int, bytes]  # (offset, payload)


def write_own_then_read_all(proc: Proc, me: int, regions: Sequence[Region]) -> List[bytes]:
    """Write my region, then (after everyone's write event) read every region."""
    seg = proc.open("attach")
    offset, data = regions[me]
    seg.write(offset, data)
    proc.signal(f"wrote-{me}")
    for other in range(len(regions)):
        proc.wait_for(f"wrote-{other}")
    seen = [seg.read(off, len(d)) for off, d in regions]
    seg.close()
    return seen


COUNTER = 8  # bytes of the little-endian counter


def locked_increments(proc: Proc, me: int, procs: int, offset: int, times: int) -> int:
    """Add 1 to the counter ``times`` times, each read-modify-write under an exclusive flock.

    The lock is a file in the example's private directory, independent of the
    backend and of the harness's events, as a real program would use one.
    """
    seg = proc.open("attach")
    raw = seg.unwrapped  # thousands of calls: keep them out of the history
    fd = os.open(os.path.join(proc.task.directory, "counter.lock"), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    if me == 0:
        seg.write(offset, bytes(COUNTER))  # a fresh segment need not be zeros (sysv_ipc fills with spaces)
        proc.signal("zeroed")
    proc.wait_for("zeroed")
    proc.signal(f"ready-{me}")
    for other in range(procs):  # start together, so the increments really contend
        proc.wait_for(f"ready-{other}")
    proc.note("increments", f"{times} under flock")
    for _ in range(times):
        fcntl.flock(fd, fcntl.LOCK_EX)
        try:
            value = int.from_bytes(raw.read(offset, COUNTER), "little")
            raw.write(offset, (value + 1).to_bytes(COUNTER, "little"))
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    os.close(fd)
    proc.signal(f"done-{me}")
    for other in range(procs):
        proc.wait_for(f"done-{other}")
    final = int.from_bytes(seg.read(offset, COUNTER), "little")
    seg.close()
    return final


def size_and_contents(proc: Proc) -> Tuple[int, bytes]:
    seg = proc.open("attach")
    n = seg.length()
    data = seg.unwrapped.read(0, n)
    seg.close()
    return n, data


def read_then_answer(proc: Proc, offset: int, n: int, reply_at: int) -> bytes:
    """Attach by name, read what the creator wrote, write it back reversed at ``reply_at``."""
    seg = proc.open("attach")
    got = bytes(seg.read(offset, n))
    seg.write(reply_at, got[::-1])
    seg.close()
    proc.signal("answered")
    return got


def read_answer(proc: Proc, reply_at: int, n: int) -> bytes:
    proc.wait_for("answered")
    seg = proc.open("attach")
    got = bytes(seg.read(reply_at, n))
    seg.close()
    return got


def hold_across_unlink(proc: Proc, offset: int, data: bytes, later: bytes) -> Tuple[bytes, bytes]:
    """Keep a mapping while another process unlinks the name; it must stay fully usable."""
    seg = proc.open("attach")
    seg.write(offset, data)
    proc.signal("attached")
    proc.wait_for("unlinked")
    before = seg.read(offset, len(data))
    seg.write(offset, later)
    after = seg.read(offset, len(later))
    seg.close()
    proc.signal("closed")
    return before, after


def unlink_then_attach(proc: Proc) -> Tuple[str, bool]:
    """Unlink, try a new attach (it must fail), and after the last close ask whether it exists."""
    ch = proc.channel
    proc.wait_for("attached")
    proc.call("unlink", ch.unlink)
    try:
        seg = proc.call("attach", ch.attach)
        seg.close()
        attach = "attached"
    except FileNotFoundError:
        attach = "FileNotFoundError"
    except Exception as exc:  # noqa: BLE001  (the check reports what was raised)
        attach = type(exc).__name__
    proc.signal("unlinked")
    proc.wait_for("closed")
    return attach, bool(proc.call("exists", ch.exists))


def write_through_read_only(proc: Proc, offset: int, data: bytes) -> Tuple[str, bytes, bytes]:
    ro = proc.open("attach", read_only=True)
    before = ro.read(offset, len(data))
    try:
        ro.write(offset, data)
        verdict = "accepted"
    except Exception as exc:  # noqa: BLE001  (any error is a refusal; which one varies by backend)
        verdict = type(exc).__name__
    rw = proc.open("attach")
    after = rw.read(offset, len(data))
    rw.close()
    ro.close()
    return verdict, before, after


def touch_after_truncate(proc: Proc, offset: int) -> str:
    seg = proc.open("attach")
    seg.read(offset, 1)  # mapped and readable before the truncation
    proc.signal("attached")
    proc.wait_for("truncated")
    proc.note("touch", f"offset {offset}")
    seg.read(offset, 1)  # past the new end of the object: SIGBUS
    return "survived the touch"


def truncate_under_mapping(proc: Proc, size: int) -> None:
    proc.wait_for("attached")
    proc.call("truncate", proc.channel.truncate, size)
    proc.signal("truncated")


# --- an unrelated interpreter ----------------------------------------------------------------
#: What the fresh interpreter runs after fresh.LOAD_CHANNEL (stdlib only until it unpickles).
FRESH_SCRIPT = """
blob, n = bytes.fromhex(sys.argv[1]), int(sys.argv[2])
channel = load_channel(blob, "ipc_specs.shm")
seg = channel.attach()
sys.stdout.write(seg.read(0, n).hex())
seg.close()
"""


def attach_in_fresh_interpreter(proc: Proc, n: int) -> Tuple[int, str, str, Optional[bytes]]:
    """Run a new ``sys.executable`` that attaches, reads ``n`` bytes, detaches and exits;
    wait until every process it started (a resource tracker) is gone, then attach again.

    Returns (exit code, what it read as hex, its stderr tail, what a new attach reads
    now or None when the name is gone).
    """
    out_path = os.path.join(proc.task.directory, "fresh-out")
    err_path = os.path.join(proc.task.directory, "fresh-err")
    blob = pickle.dumps(proc.channel).hex()
    with open(out_path, "wb") as out, open(err_path, "wb") as err:
        rc = run_fresh(proc, FRESH_SCRIPT, [blob, str(n)], detail="python -c attach/read/close", stdout=out,
                       stderr=err)
    with open(out_path) as f:
        seen = f.read().strip()
    with open(err_path, errors="replace") as f:
        err_tail = f.read()[-600:]
    try:
        seg = proc.call("attach", proc.channel.attach)
    except FileNotFoundError:
        return rc, seen, err_tail, None
    now = seg.read(0, n)
    seg.close()
    return rc, seen, err_tail, now

