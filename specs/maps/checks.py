"""Invariants of sharing one map: concurrent assignments, fresh reads, locked updates, whole values.

Every multi-process check orders its processes with harness events (a reader
looks only after the writer's event) and judges what was read, never how fast:
the map itself gives no ordering, and the checks never assume one.
"""

from __future__ import annotations

from typing import Dict, List, Optional

from hypothesis import strategies as st

from .. import limits
from ..harness.history import INVOKE, Event, History
from ..harness.run import Case, Role
from ..invariant import Level, expect, invariant
from ..strategies import Blob, anchored_integers
from . import roles
from .protocol import KEY_ALPHABET, LOCKED_UPDATE, MAX_KEY_LEN

FAMILY = "map"
_SQLITE = "Python docs sqlite3 and sqlite.org 'Atomic Commit In SQLite'"


#: The largest value the checks other than the limits check write (a claimed maximum above
#: it is reached only there): keeps thousands of writes of drawn values cheap.
ROOM = 1 << 16


def value_sizes(case: Case) -> st.SearchStrategy[int]:
    """Value sizes up to the backend's max_value_size (at most ROOM), half the time at a
    boundary: 0, 1, a page, and the claimed maximum and maximum-1."""
    top = min(int(case.backend.max_value_size), ROOM)
    return anchored_integers(0, top, [0, 1, limits.page_size(), top - 1, top])


def values(case: Case) -> st.SearchStrategy[Blob]:
    return st.builds(Blob, value_sizes(case), st.integers(0, 2**16))


def map_keys() -> st.SearchStrategy[str]:
    """Keys every backend must take: 1 to MAX_KEY_LEN characters, the shortest and longest often."""
    lengths = anchored_integers(1, MAX_KEY_LEN, [1, MAX_KEY_LEN], deep=False)
    return lengths.flatmap(lambda n: st.text(KEY_ALPHABET, min_size=n, max_size=n))


@invariant(
    "concurrent_assignments_of_distinct_keys_all_survive", family=FAMILY, level=Level.MUST,
    rule="When several processes set distinct keys at the same time, every key ends up in the map with the "
         "value its process set, and the map lists exactly those keys (no insertion overwrites another).",
    source="Python docs multiprocessing 'Sharing state between processes' (Manager dict); " + _SQLITE
           + "; flock(2): an exclusive lock excludes every other holder",
    placements=["fork", "spawn", "thread"],
)
def concurrent_assignments_of_distinct_keys_all_survive(backend: object, case: Case) -> None:
    capacity = int(case.backend.capacity)

    def body(procs: int, keys: List[str], blobs: List[Blob]) -> None:
        keys = keys[:min(capacity, len(blobs))]
        share = [[(k, b) for k, b in zip(keys[i::procs], blobs[i::procs])] for i in range(procs)]
        rs = [Role(f"P{i}", roles.set_own_keys, (i, procs, items)) for i, items in enumerate(share)]
        out = case.run(rs + [Role("C", roles.read_all_after, (procs, keys))])
        for p in out.roles:
            out.value(p)
        seen, listed = out.value("C")
        for i, items in enumerate(share):
            for key, blob in items:
                got = seen[key]
                expect(got == roles.digest(blob.data), case.invariant.id,
                       got=f"C read {key!r} as {shown(got)}", expected=f"P{i}'s {blob} (P{i} set it and was done)",
                       call="get", history=out.history.format(_calls(out.history, f"P{i}", "set", key)
                                                              + _calls(out.history, "C", "get", key)))
        expect(listed == sorted(keys), case.invariant.id, got=f"keys() listed {len(listed)} keys",
               expected=f"the {len(keys)} keys set", call="keys", history=out.history.format(out.history.of("C")))

    # Pinned: four processes filling the map (up to 64 keys) with a page per value, so that
    # each is descheduled in the middle of its assignments even on a busy machine, where a
    # map whose insertions race loses keys.
    page = limits.page_size() if limits.page_size() <= int(case.backend.max_value_size) else 1
    n = min(capacity, 64)
    pinned = [{"procs": 4, "keys": [f"key{i}" for i in range(n)], "blobs": [Blob(page, i) for i in range(n)]}]
    case.explore(body, scale=0.5, procs=st.integers(2, 4),
                 keys=st.lists(map_keys(), min_size=2, max_size=24, unique=True),
                 blobs=st.lists(values(case), min_size=24, max_size=24), examples=pinned)


def _calls(h: History, proc: str, op: str, key: str) -> List[Event]:
    """The invoke and return of ``proc``'s first ``op`` of ``key`` (the history cuts keys short)."""
    invoked = [e for e in h.of(proc, op, INVOKE) if e.detail.startswith(repr(key)[:20])][:1]
    after = [e for e in h.of(proc, op) if invoked and e.t_ns > invoked[0].t_ns][:1]
    return invoked + after


def shown(d: roles.Digest) -> str:
    return "absent" if d is None else f"a {d[0]}-byte value (sha256 {d[1][:12]})"


@invariant(
    "open_handle_sees_completed_assignments", family=FAMILY, level=Level.MUST,
    rule="A handle opened (and read through) earlier sees each assignment and deletion another process "
         "completed before it reads: it never answers from a stale copy.",
    source="mmap(2) MAP_SHARED: updates are visible to every process mapping the region; " + _SQLITE
           + " (a new read transaction sees every committed write); Python docs multiprocessing.shared_memory",
    placements=["fork", "thread"],
)
def open_handle_sees_completed_assignments(backend: object, case: Case) -> None:
    def body(initial: Optional[Blob], rounds: List[Optional[Blob]]) -> None:
        def prefill(channel: object) -> None:
            if initial is not None:
                h = channel.open()  # type: ignore[attr-defined]
                h.set("k", initial.data)
                h.close()

        out = case.run([Role("W", roles.assign_in_rounds, (rounds,)),
                        Role("R", roles.watch_with_one_handle, (len(rounds),))], channel_setup=prefill)
        out.value("W")
        seen = out.value("R")
        reads = out.history.of("R", "get")
        for r, (blob, got) in enumerate(zip(rounds, seen)):
            want = None if blob is None else roles.digest(blob.data)
            expect(got == want, case.invariant.id, got=f"round {r}: R's handle read {shown(got)}",
                   expected=f"{'absent (W deleted it)' if blob is None else blob} (W's assignment, done before)",
                   call="get", history=out.history.format(reads[r + 1:r + 2]))

    blob = values(case)
    case.explore(body, initial=st.none() | blob, rounds=st.lists(st.none() | blob, min_size=1, max_size=5))


@invariant(
    "locked_read_modify_write_is_exact", family=FAMILY, level=Level.MUST,
    rule="When each of n processes adds 1 to a counter k times, every get and set inside one locked() body, "
         "the counter ends at exactly n*k (no increment is lost).",
    source="flock(2): only one process may hold an exclusive lock; sqlite.org 'BEGIN IMMEDIATE' takes the "
           "write lock at once; Python docs multiprocessing 'Synchronization between processes' (without a "
           "lock updates may be lost)",
    requires=[LOCKED_UPDATE],
    placements=["fork", "thread"],
)
def locked_read_modify_write_is_exact(backend: object, case: Case) -> None:
    def body(procs: int, times: int, pause_us: int) -> None:
        rs = [Role(f"P{i}", roles.locked_increments, (i, procs, times, pause_us)) for i in range(procs)]
        out = case.run(rs)
        for p in out.roles:
            got = out.value(p)
            expect(got == procs * times, case.invariant.id, got=f"{p} read the counter as {got}",
                   expected=f"{procs * times} ({procs} processes x {times} locked increments)", call="get",
                   history=out.history.format(out.history.of(p)[-3:]))

    # Pinned: a pause inside every body, so that each holder is descheduled while it holds
    # the lock; a lock that does not cover the body then loses updates on any machine.
    case.explore(body, scale=0.5, procs=st.integers(2, 4), times=anchored_integers(1, 200, [1]),
                 pause_us=st.sampled_from([0, 50, 500]),
                 examples=[{"procs": 3, "times": 20, "pause_us": 500}])


@invariant(
    "reader_never_sees_a_torn_value", family=FAMILY, level=Level.MUST,
    rule="While one process keeps replacing a key's value, a process reading it gets one of the values "
         "written (or the one before), whole: never part of one and part of another, nor a cut one.",
    source="flock(2) LOCK_SH/LOCK_EX (readers share, a writer excludes them); " + _SQLITE
           + " (a reader sees a committed state whole)",
    placements=["fork"],
)
def reader_never_sees_a_torn_value(backend: object, case: Case) -> None:
    def body(initial: Blob, versions: List[Blob], readers: int, rounds: int) -> None:
        def prefill(channel: object) -> None:
            h = channel.open()  # type: ignore[attr-defined]
            h.set("k", initial.data)
            h.close()

        written: Dict[roles.Digest, str] = {roles.digest(b.data): str(b) for b in [initial] + versions}
        rs = [Role(f"R{i}", roles.read_while_rewritten, (i, 50)) for i in range(readers)]
        out = case.run([Role("W", roles.rewrite_values, (readers, versions, rounds))] + rs, channel_setup=prefill)
        out.value("W")
        for i in range(readers):
            seen = out.value(f"R{i}")
            torn = [d for d in seen if d not in written]
            expect(not torn, case.invariant.id,
                   got=f"R{i} read {shown(torn[0] if torn else None)} ({seen.get(torn[0], 0) if torn else 0} times)",
                   expected="one of the values written, whole: " + ", ".join(written.values()), call="get",
                   history=out.history.format(out.history.of(f"R{i}")[-2:] + out.history.of("W")[-2:]))

    distinct = st.lists(values(case), min_size=2, max_size=4, unique_by=lambda b: b.size)
    # Pinned: two readers and the largest values, the longest copies, where a write that
    # readers can overlap shows on any machine.
    top, page = int(case.backend.max_value_size), limits.page_size()
    pinned = [{"initial": Blob(0), "versions": [Blob(min(page, top - 1), 1), Blob(min(2 * page, top), 2)],
               "readers": 2, "rounds": 1000}] if top > 1 else []
    case.explore(body, scale=0.5, initial=values(case), versions=distinct, readers=st.integers(1, 2),
                 rounds=st.integers(20, 100), examples=pinned)
