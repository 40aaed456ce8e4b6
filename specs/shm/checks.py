"""Invariants of the bytes in a shared segment: who sees which writes, how big it is,
what a fresh one holds, and what a read-only mapping allows.

Every multi-process check orders its processes with harness events (a process
reads only after the writer's event) or a file lock: shared memory itself gives
no ordering, and the checks never assume one.
"""

from __future__ import annotations

from typing import List, Tuple

from hypothesis import strategies as st

from .. import limits
from ..harness.run import Case, Role
from ..invariant import Level, expect, invariant, shown_against
from ..strategies import Blob, anchored_integers, blobs, boundary_sizes
from . import roles
from .protocol import EXACT_SIZE, NAMED_ATTACH, READ_ONLY_ATTACH

FAMILY = "shm"


def segment_sizes(*, min_size: int = 1) -> st.SearchStrategy[int]:
    """Requested sizes, biased to 1 and the page boundaries where rounding shows."""
    return boundary_sizes(max_size=3 * limits.page_size() + 1, min_size=min_size)


def _layout(payloads: List[Blob], gaps: List[int], tail: int) -> Tuple[List[roles.Region], int]:
    """Place the payloads one after another with gaps; returns the regions and the size needed."""
    regions, at = [], 0
    for blob, gap in zip(payloads, gaps):
        at += gap
        regions.append((at, blob.data))
        at += blob.size
    return regions, at + tail


def _create(size: int):  # type: ignore[no-untyped-def]
    return lambda channel: channel.create(size)


@invariant(
    "write_visible_to_other_processes_after_sync", family=FAMILY, level=Level.MUST,
    rule="Bytes one process writes into the segment are read by every other process that maps it, "
         "once a synchronisation point orders the write before the read; no flush or copy is needed.",
    source="mmap(2) MAP_SHARED: 'Updates to the mapping are visible to other processes mapping the same region'; "
           "shm_overview(7); CPython Lib/test/_test_multiprocessing.py _TestSharedMemory.test_shared_memory_basics",
)
def write_visible_to_other_processes_after_sync(backend: object, case: Case) -> None:
    page = limits.page_size()

    def body(payloads: List[Blob], gaps: List[int], tail: int) -> None:
        regions, size = _layout(payloads, gaps, tail)
        rs = [Role(f"P{i}", roles.write_own_then_read_all, (i, regions)) for i in range(len(regions))]
        out = case.run(rs, channel_setup=_create(size))
        for p in out.roles:
            seen = out.value(p)
            for i, ((off, want), got) in enumerate(zip(regions, seen)):
                expect(got == want, case.invariant.id, got=f"{p} read at offset {off}: {shown_against(got, want)}",
                       expected=f"P{i}'s write (P{i} signalled wrote-{i} before the read)",
                       call="read", history=out.history.format(out.history.of(p, "read")[i:i + 1]))

    case.explore(body, payloads=st.integers(2, 4).flatmap(
        lambda k: st.lists(blobs(max_size=page + 1, min_size=1), min_size=k, max_size=k)),
        gaps=st.lists(anchored_integers(0, page, [0, 1, page - 1]), min_size=4, max_size=4),
        tail=st.sampled_from([0, 1, page]),
        # Pinned: adjacent writes, the second straddling a page boundary (page + 1 bytes).
        pinned=[{"payloads": [Blob(1, 1), Blob(page + 1, 2)], "gaps": [0, 0, 0, 0], "tail": 0}])


@invariant(
    "locked_increments_are_exact", family=FAMILY, level=Level.MUST,
    rule="When every read-modify-write of a counter in the segment is done under one exclusive lock, "
         "no increment is lost: k processes adding 1 n times leave exactly k*n.",
    source="flock(2) LOCK_EX: 'Only one process may hold an exclusive lock for a given file at a given time.'; "
           "mmap(2) MAP_SHARED; Python docs multiprocessing.Value: 'Operations like += which involve a read and "
           "write are not atomic' (so without the lock increments may be lost)",
)
def locked_increments_are_exact(backend: object, case: Case) -> None:
    def body(procs: int, times: int, offset: int) -> None:
        rs = [Role(f"P{i}", roles.locked_increments, (i, procs, offset, times)) for i in range(procs)]
        out = case.run(rs, channel_setup=_create(offset + roles.COUNTER))
        for p in out.roles:
            got = out.value(p)
            expect(got == procs * times, case.invariant.id, got=f"{p} read the counter as {got}",
                   expected=f"{procs * times} ({procs} processes x {times} locked increments)", call="read",
                   history=out.history.format(out.history.of(p)[-3:]))

    case.explore(body, procs=st.integers(2, 4), times=st.integers(1, 300),
                 offset=st.sampled_from([0, 8, limits.page_size() - roles.COUNTER, limits.page_size()]))


@invariant(
    "new_segment_has_requested_size_and_fill", family=FAMILY, level=Level.MUST,
    rule="A new segment maps at least the requested number of bytes (exactly that many when the backend "
         "claims exact_size), and every byte holds the backend's documented fill value.",
    source="ftruncate(2): 'If the file previously was shorter, it is extended, and the extended part reads as null "
           "bytes'; shm_overview(7): 'A newly created shared memory object has a length of zero.'; mmap(2); CPython "
           "Lib/test/_test_multiprocessing.py _TestSharedMemory.test_shared_memory_basics; sysv_ipc documentation "
           "(paraphrase: a new SharedMemory is filled with init_character, a space by default)",
)
def new_segment_has_requested_size_and_fill(backend: object, case: Case) -> None:
    def body(size: int) -> None:
        out = case.run([Role("P", roles.size_and_contents)], channel_setup=_create(size))
        n, data = out.value("P")
        exact = case.claims(EXACT_SIZE)
        expect(n == size if exact else n >= size, case.invariant.id, got=f"length() == {n}",
               expected=f"{'exactly' if exact else 'at least'} the requested {size} bytes", call="length",
               history=out.history.format())
        fill = case.backend.fill_byte
        bad = next((i for i, b in enumerate(data[:size]) if b != fill), None)
        expect(bad is None, case.invariant.id,
               got=f"byte {bad} of a fresh segment is {data[bad] if bad is not None else 0:#04x}",
               expected=f"every byte {fill:#04x} (the backend's claimed fill)", call="read",
               history=out.history.format())

    # Pinned: one byte, and a page + 1 (a size that is not a whole number of pages).
    case.explore(body, size=segment_sizes(), pinned=[{"size": 1}, {"size": lambda c: limits.page_size() + 1}])


@invariant(
    "attach_by_name_sees_creators_bytes", family=FAMILY, level=Level.MUST,
    rule="A process that did not inherit the segment attaches by its name and reads what the creator "
         "wrote before it existed, and its own writes are read by a third process attaching later.",
    source="shm_open(3): 'A POSIX shared memory object is in effect a handle which can be used by unrelated "
           "processes to mmap(2) the same region of shared memory.'; shmget(2) (a key names a System V segment); "
           "Python docs multiprocessing.shared_memory.SharedMemory (paraphrase: create=False attaches to the "
           "existing block of that name)",
    requires=[NAMED_ATTACH],
    placements=["spawn", "forkserver"],
)
def attach_by_name_sees_creators_bytes(backend: object, case: Case) -> None:
    def body(payload: Blob, gap: int) -> None:
        data = payload.data
        reply_at = len(data) + gap
        size = reply_at + len(data)

        def prefill(channel: object) -> None:
            channel.create(size)  # type: ignore[attr-defined]
            seg = channel.attach()  # type: ignore[attr-defined]
            seg.write(0, data)
            seg.close()

        out = case.run([Role("R", roles.read_then_answer, (0, len(data), reply_at)),
                        Role("V", roles.read_answer, (reply_at, len(data)))], channel_setup=prefill)
        got = out.value("R")
        expect(got == data, case.invariant.id, got=f"R read: {shown_against(got, data)}",
               expected="the creator's bytes", call="read", history=out.history.format())
        back = out.value("V")
        expect(back == data[::-1], case.invariant.id, got=f"V read: {shown_against(back, data[::-1])}",
               expected="R's write", call="read", history=out.history.format())

    case.explore(body, payload=blobs(max_size=limits.page_size() + 1, min_size=1),
                 gap=st.sampled_from([0, 1, limits.page_size()]))


@invariant(
    "read_only_attachment_rejects_writes", family=FAMILY, level=Level.MUST,
    rule="A write through a read-only attachment raises and leaves the segment unchanged.",
    source="mmap(2) PROT_READ; Python docs mmap (ACCESS_READ: a read-only memory map; CPython raises TypeError 'mmap"
           " can't modify a readonly memory map.'); CPython Lib/test/test_mmap.py test_access_parameter; shmat(2) "
           "SHM_RDONLY",
    requires=[READ_ONLY_ATTACH],
)
def read_only_attachment_rejects_writes(backend: object, case: Case) -> None:
    def body(offset: int, data: bytes) -> None:
        out = case.run([Role("P", roles.write_through_read_only, (offset, data))],
                       channel_setup=_create(offset + len(data)))
        verdict, before, after = out.value("P")
        expect(verdict != "accepted", case.invariant.id, got="the write through the read-only mapping returned",
               expected="an exception (PermissionError, TypeError or the backend's read-only error)",
               call="write", history=out.history.format())
        expect(after == before, case.invariant.id, got=f"the segment now: {shown_against(after, before)}",
               expected="the segment unchanged", call="read", history=out.history.format())

    case.explore(body, scale=0.5, offset=st.sampled_from([0, 1, limits.page_size()]),
                 data=st.binary(min_size=1, max_size=64))
