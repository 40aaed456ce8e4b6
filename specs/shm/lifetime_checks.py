"""Invariants of a segment's lifetime: unlinking under live mappings, truncation under
a mapping (SIGBUS), and what happens when an unrelated interpreter attaches and exits
(the multiprocessing resource tracker, gh-82300)."""

from __future__ import annotations

import sys

from hypothesis import strategies as st

from .. import limits
from ..harness.run import Case, Role
from ..invariant import Level, expect, invariant, short_repr, shown_against
from ..strategies import Blob, blobs
from . import roles
from .protocol import ATTACHER_TRACKER_UNLINKS, NAMED_ATTACH, SURVIVES_ATTACHER_EXIT, TRUNCATABLE, UNLINKABLE

FAMILY = "shm"


@invariant(
    "unlinked_segment_stays_mapped_but_cannot_be_attached", family=FAMILY, level=Level.MUST,
    rule="After the name is removed, mappings that exist stay fully readable and writable, a new attach "
         "by name fails, and the segment is gone once the last mapping is closed.",
    source="shm_unlink(3): 'it removes a shared memory object name, and, once all processes have unmapped the "
           "object, deallocates and destroys the contents of the associated memory region. After a successful "
           "shm_unlink(), attempts to shm_open() an object with the same name fail'; shmctl(2) IPC_RMID: 'The "
           "segment will actually be destroyed only after the last process detaches it'; LTP open_posix_testsuite "
           "shm_unlink assertions 2-5",
    requires=[UNLINKABLE, NAMED_ATTACH],
)
def unlinked_segment_stays_mapped_but_cannot_be_attached(backend: object, case: Case) -> None:
    def body(offset: int, data: bytes, later: bytes) -> None:
        size = offset + max(len(data), len(later))
        out = case.run([Role("A", roles.hold_across_unlink, (offset, data, later)),
                        Role("U", roles.unlink_then_attach, opens=False)],
                       channel_setup=lambda ch: ch.create(size))
        before, after = out.value("A")
        attach, exists = out.value("U")
        h = out.history
        expect(before == data and after == later, case.invariant.id,
               got=f"the live mapping read, before unlink: {shown_against(before, data)}; "
                   f"after: {shown_against(after, later)}",
               expected="the bytes written before and after unlink (unlink leaves mappings alone)",
               call="read", history=h.format(h.of("A", "read")))
        expect(attach == "FileNotFoundError", case.invariant.id, got=f"attach after unlink: {attach}",
               expected="FileNotFoundError (the name is gone)", call="attach", history=h.format(h.of("U", "attach")))
        expect(not exists, case.invariant.id, got="exists() is True after the last mapping closed",
               expected="the segment gone", call="exists", history=h.format(h.of("U", "exists")))

    case.explore(body, scale=0.5, offset=st.sampled_from([0, 1, limits.page_size()]),
                 data=st.binary(min_size=1, max_size=64), later=st.binary(min_size=1, max_size=64))


@invariant(
    "truncated_object_kills_toucher_with_sigbus", family=FAMILY, level=Level.MUST,
    rule="When the object is truncated under a live mapping, touching a mapped page wholly past the new "
         "end kills the toucher with SIGBUS (neither a hang nor a read of stale or zero bytes).",
    source="mmap(2) ERRORS: 'SIGBUS Attempted access to a page of the buffer that lies beyond the end of the mapped "
           "file.'; ftruncate(2); posix_ipc documentation (paraphrase: SharedMemory's size= calls ftruncate)",
    requires=[TRUNCATABLE],
)
def truncated_object_kills_toucher_with_sigbus(backend: object, case: Case) -> None:
    page = limits.page_size()

    def body(pages: int, keep_pages: int, touch_page: int, within: int) -> None:
        keep = min(keep_pages, pages - 1)
        touch = keep + touch_page % (pages - keep)  # a page wholly past the new end
        offset = touch * page + within % page
        out = case.run([Role("T", roles.touch_after_truncate, (offset,)),
                        Role("U", roles.truncate_under_mapping, (keep * page,), opens=False)],
                       channel_setup=lambda ch: ch.create(pages * page))
        out.value("U")
        r = out.roles["T"]
        touched = out.history.of("T", "touch")
        expect(r.status == "crashed" and r.signal_name == "SIGBUS", case.invariant.id,
               got=f"T {r.describe()}" + (f": {r.value}" if r.status == "ok" else ""),
               expected=f"T killed by SIGBUS when it touched offset {offset} after truncation to {keep * page}",
               call="read", history=out.history.format(touched))

    case.explore(body, scale=0.5, pages=st.integers(1, 3), keep_pages=st.integers(0, 2),
                 touch_page=st.integers(0, 2), within=st.sampled_from([0, 1, page - 1]))


def _fresh_attach_example(case: Case, payload: Blob):  # type: ignore[no-untyped-def]
    data = payload.data

    def prefill(channel: object) -> None:
        channel.create(len(data))  # type: ignore[attr-defined]
        seg = channel.attach()  # type: ignore[attr-defined]
        seg.write(0, data)
        seg.close()

    out = case.run([Role("P", roles.attach_in_fresh_interpreter, (len(data),), opens=False)], channel_setup=prefill)
    rc, seen, err, now = out.value("P")
    expect(rc == 0 and seen == data.hex(), case.invariant.id,
           got=f"the fresh interpreter exited {rc} having read {seen[:48]!r}",
           expected=f"exit 0 after reading {short_repr(data)}", call="subprocess",
           history=out.history.format() + f"\nits stderr:\n{err}")
    return out, now


_TRACKER_SOURCE = ("CPython gh-82300 (formerly bpo-38119) 'resource tracker destroys shared memory segments when "
                   "other processes should still have valid access'; Python docs multiprocessing.shared_memory, "
                   "SharedMemory's track parameter (added in 3.13; paraphrase: a Python process not started "
                   "by multiprocessing from a common ancestor gets its own resource tracker, which deletes the "
                   "segment when the first such process exits, so such processes should pass track=False); "
                   "CPython Lib/test/_test_multiprocessing.py _TestSharedMemory.test_shared_memory_tracking and "
                   "test_shared_memory_untracking")


@invariant(
    "segment_survives_unrelated_attacher_exit", family=FAMILY, level=Level.MUST,
    rule="A fresh interpreter that attaches by name, reads, detaches and exits leaves the segment and its "
         "bytes in place. multiprocessing.shared_memory keeps this only with track=False (3.13+): with the "
         "default tracking (every version 3.9-3.13) the attacher's resource tracker unlinks it.",
    source=_TRACKER_SOURCE + "; shm_overview(7): 'POSIX shared memory objects have kernel persistence'",
    requires=[NAMED_ATTACH, SURVIVES_ATTACHER_EXIT],
    placements=["fork"],
)
def segment_survives_unrelated_attacher_exit(backend: object, case: Case) -> None:
    def body(payload: Blob) -> None:
        out, now = _fresh_attach_example(case, payload)
        expect(now == payload.data, case.invariant.id,
               got="the name is gone" if now is None else f"the segment now: {shown_against(now, payload.data)}",
               expected=f"the segment still there with its {payload!r} (Python {sys.version.split()[0]})",
               call="attach", history=out.history.format())

    case.explore(body, scale=0.25, payload=blobs(max_size=limits.page_size(), min_size=1))


@invariant(
    "tracked_attacher_exit_unlinks_segment", family=FAMILY, level=Level.HAZARD,
    rule="A documented CPython defect, not a recommendation: with multiprocessing's resource tracking (the "
         "default track=True, CPython 3.9-3.13), a fresh interpreter that only attaches registers the segment "
         "with its own tracker, which unlinks it when that interpreter exits, with a 'leaked shared_memory "
         "objects' warning. It applies to backends that declare the hazard, and confirms that it bites, so "
         "that code relying on the segment outliving such an attacher is caught.",
    source=_TRACKER_SOURCE,
    requires=[NAMED_ATTACH, ATTACHER_TRACKER_UNLINKS],
    placements=["fork"],
)
def tracked_attacher_exit_unlinks_segment(backend: object, case: Case) -> None:
    def body(payload: Blob) -> None:
        out, now = _fresh_attach_example(case, payload)
        expect(now is None, case.invariant.id,
               got=f"the segment still attaches and holds {short_repr(now)}",
               expected=f"the name unlinked by the attacher's resource tracker (Python {sys.version.split()[0]})",
               call="attach", history=out.history.format())

    case.explore(body, scale=0.25, payload=blobs(max_size=limits.page_size(), min_size=1))



