"""Role bodies for file-exchange examples (module-level for spawned workers; plain return data)."""

from __future__ import annotations

import hashlib
import os
import time
from typing import Dict, Iterator, List, Sequence, Tuple

from ..harness.worker import Proc, wait_for_event

#: A version or result, drawn as (chunk count, chunk size, pause between chunks in ms).
Shape = Tuple[int, int, int]
Seen = Tuple[str, int, str]  # (name, length, sha256 hex)


def content(tag: int, shape: Shape) -> bytes:
    """Self-describing bytes: a header naming the tag and the length, then a body of the tag byte."""
    count, size, _ = shape
    total = max(count * size, 16)
    head = f"{tag:03d}:{total:010d}:".encode()
    return head + bytes([tag % 251 + 1]) * (total - len(head))


def slow_chunks(proc: Proc, data: bytes, shape: Shape) -> Iterator[bytes]:
    """Hand ``data`` over in ``count`` chunks, pausing between them like a slow writer."""
    count, _, pause_ms = shape
    step = -(-len(data) // count)
    for i in range(0, len(data), step):
        if i:
            proc.sleep_ms(pause_ms)
        yield data[i:i + step]


def digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()[:16]


def _happened(proc: Proc, event: str) -> bool:
    return wait_for_event(proc.task.directory, event, 0)


# --- atomic publish ---------------------------------------------------------------------------
def publish_versions(proc: Proc, shapes: Sequence[Shape]) -> List[Seen]:
    ch = proc.channel
    proc.wait_for("reader-ready")
    published = []
    for i, shape in enumerate(shapes):
        data = content(i, shape)
        proc.call("publish", ch.publish, slow_chunks(proc, data, shape), detail=f"version {i}, {len(data)} bytes")
        published.append((f"v{i}", len(data), digest(data)))
    proc.signal("published-all")
    return published


def watch_published(proc: Proc) -> List[Seen]:
    """Read the published file as fast as possible until the last version is out; every
    distinct thing seen is returned (as length and digest, in order)."""
    ch = proc.channel
    seen: List[Seen] = []
    last = None
    proc.signal("reader-ready")
    while True:
        done = _happened(proc, "published-all")  # checked before the read: that read sees the last version
        data = ch.read_published()
        if data != last:
            last = data
            entry = ("none", 0, "") if data is None else ("read", len(data), digest(data))
            seen.append(entry)
            proc.note("saw", f"{entry[1]} bytes {entry[2]}")
        if done:
            return seen


# --- O_APPEND log ----------------------------------------------------------------------------
def record_tag(writer: int, seq: int) -> int:
    return writer * 16 + seq % 16


def append_records(proc: Proc, writer: int, writers: int, records: int, size: int) -> None:
    log = proc.open("open_log")
    proc.signal(f"open-{writer}")
    for other in range(writers):  # everyone opened before anyone writes: the appends contend
        proc.wait_for(f"open-{other}")
    raw = log.unwrapped
    for seq in range(records):
        raw.append(bytes([record_tag(writer, seq)]) * size)
    proc.note("appended", f"{records} x {size} bytes")
    log.close()
    proc.signal(f"closed-{writer}")


def read_log_after(proc: Proc, writers: int) -> bytes:
    for w in range(writers):
        proc.wait_for(f"closed-{w}")
    return bytes(proc.call("read_log", proc.channel.read_log))


# --- private files -------------------------------------------------------------------------------
def use_then_inventory(proc: Proc, caps: Sequence[str], data: bytes) -> Tuple[List[Tuple[str, int]], bool]:
    """Use every claimed mechanism once, list (path, mode) of everything under the channel's
    directory, then clean up and say whether anything is left."""
    ch = proc.channel
    if "exchange" in caps:
        proc.call("submit", ch.submit, iter([data]))
    if "atomic_publish" in caps:
        proc.call("publish", ch.publish, iter([data]))
    if "append_log" in caps:
        log = proc.open("open_log")
        log.append(data)
        log.close()
    if "lock" in caps:
        lock = proc.open("open_lock")
        lock.acquire()
        lock.release()
        lock.close()
    found = []
    for root, _dirs, files in os.walk(ch.directory):
        for name in [root] + [os.path.join(root, f) for f in files]:
            found.append((os.path.relpath(name, ch.directory), os.lstat(name).st_mode))
    proc.call("cleanup", ch.cleanup)
    return found, os.path.lexists(ch.directory)


# --- result exchange (the seed article's temp files) -------------------------------------------
def submit_result(proc: Proc, me: int, shape: Shape) -> Seen:
    data = content(me, shape)
    name = proc.call("submit", proc.channel.submit, slow_chunks(proc, data, shape),
                     detail=f"{len(data)} bytes in {shape[0]} chunks")
    proc.signal(f"submitted-{me}")
    return name, len(data), digest(data)


def collect_results(proc: Proc, workers: int) -> List[Seen]:
    """Poll until every worker's result is there; return every distinct result seen on the way."""
    ch = proc.channel
    seen: Dict[Tuple[str, str], Seen] = {}
    while True:
        done = all(_happened(proc, f"submitted-{w}") for w in range(workers))
        results = ch.poll()
        for name, data in results.items():
            key = (name, digest(data))
            if key not in seen:
                seen[key] = (name, len(data), digest(data))
                proc.note("saw", f"{name}: {len(data)} bytes")
        if done and len(results) >= workers:
            return list(seen.values())
        time.sleep(0.0002)
