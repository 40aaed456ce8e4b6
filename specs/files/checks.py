"""Invariants of exchanging data through files: whole publishes, complete results,
O_APPEND records and private modes (the lock invariants are in ``lock_checks``).

Slow writers are simulated by the roles (a pause between chunks), never by
timing assertions: a check only says what a reader may see, not when.
"""

from __future__ import annotations

import stat
from typing import List, Tuple

from hypothesis import strategies as st

from .. import limits
from ..harness.resources import scratch_bases
from ..harness.run import Case, Role
from ..invariant import Level, Unresolved, expect, invariant, short_repr
from . import roles
from .protocol import (
    APPEND_LOG,
    ATOMIC_PUBLISH,
    EXCHANGE,
    PRIVATE_FILES,
)

FAMILY = "file"
#: The largest record the check draws.  Not a kernel limit: regular files have no PIPE_BUF
#: rule, O_APPEND makes each whole write() land at the end, so records well past 4096 bytes
#: (and 4097, just past PIPE_BUF) are drawn to show that no such boundary exists.
RECORD_MAX = 16384


def shapes() -> st.SearchStrategy[roles.Shape]:
    """(chunks, chunk size, pause ms): at least two chunks, so a half-written file exists for a while."""
    return st.tuples(st.integers(2, 5), st.sampled_from([1, 512, 4096, 65536]) | st.integers(1, 65536),
                     st.integers(3, 10))


@invariant(
    "reader_never_sees_partial_publish", family=FAMILY, level=Level.MUST,
    rule="A reader polling the published file while new versions are written sees nothing or some "
         "version whole, never a prefix, an empty file or a mix (write a temp file in the same directory, "
         "flush, fsync, then os.replace it over the old name).",
    source="rename(2): 'If newpath already exists, it will be atomically replaced, so that there is no point at "
           "which another process attempting to access newpath will find it missing.'; Python docs os.replace: 'If "
           "successful, the renaming will be an atomic operation (this is a POSIX requirement).'",
    requires=[ATOMIC_PUBLISH],
)
def reader_never_sees_partial_publish(backend: object, case: Case) -> None:
    def body(versions: List[roles.Shape]) -> None:
        out = case.run([Role("W", roles.publish_versions, (versions,), opens=False),
                        Role("R", roles.watch_published, opens=False)])
        published = out.value("W")
        seen = out.value("R")
        whole = {(n, d): name for name, n, d in published}
        for kind, n, d in seen:
            if kind == "none":
                continue
            expect((n, d) in whole, case.invariant.id, got=f"R read {n} bytes (digest {d}) matching no version",
                   expected="one of the published versions whole: " + ", ".join(f"{v} ({n2} bytes)"
                                                                                for v, n2, _ in published),
                   call="read_published", history=out.history.format(out.history.of("R", "saw")))
        expect(bool(seen) and (seen[-1][1], seen[-1][2]) == published[-1][1:], case.invariant.id,
               got=f"the last read gave {seen[-1][1] if seen else 0} bytes", expected="the last version whole",
               call="read_published", history=out.history.format())

    case.explore(body, versions=st.lists(shapes(), min_size=1, max_size=3))


@invariant(
    "appended_records_never_lost_or_torn", family=FAMILY, level=Level.MUST,
    rule="Records appended with O_APPEND by several processes at once, each in one complete write(), all "
         "land in the file, each whole and in its writer's order (without O_APPEND writers overwrite each "
         "other). No size limit like PIPE_BUF applies to regular files; what matters is that each write() "
         "writes the whole record (a short write would split it). On a local filesystem only: open(2) warns "
         "that O_APPEND may corrupt files on NFS.",
    source="open(2) O_APPEND: 'Before each write(2), the file offset is positioned at the end of the file, as "
           "if with lseek(2). The modification of the file offset and the write operation are performed as a "
           "single atomic step.' and 'O_APPEND may lead to corrupted files on NFS filesystems if more than one "
           "process appends data to a file at once'; write(2) NOTES, quoting POSIX.1-2008 XSI 2.9.7 'Thread "
           "Interactions with Regular File Operations': write() 'shall be atomic' with respect to the others on "
           "regular files",
    requires=[APPEND_LOG],
)
def appended_records_never_lost_or_torn(backend: object, case: Case) -> None:
    where = scratch_bases()[0]
    if limits.filesystem_type(where).startswith("nfs"):  # the rule does not hold there: not a failure
        raise Unresolved(f"the examples' directory {where} is on NFS, where open(2) says O_APPEND may corrupt files")

    def body(writers: int, records: int, size: int) -> None:
        rs = [Role(f"W{i}", roles.append_records, (i, writers, records, size)) for i in range(writers)]
        out = case.run(rs + [Role("R", roles.read_log_after, (writers,), opens=False)])
        log = out.value("R")
        for p in out.roles:
            out.value(p)
        total = writers * records * size
        h = out.history
        expect(len(log) == total, case.invariant.id, got=f"{len(log)} bytes in the log",
               expected=f"{total} ({writers} writers x {records} records x {size} bytes)", call="append",
               history=h.format(h.of("R")))
        seq = {w: 0 for w in range(writers)}
        for off in range(0, total, size):
            rec = log[off:off + size]
            expect(rec.count(rec[0]) == size, case.invariant.id, got=f"record at offset {off} torn: {short_repr(rec)}",
                   expected=f"{size} identical bytes (one append)", call="append", history=h.format(h.of("R")))
            w, n = divmod(rec[0], 16)
            expect(w in seq and n == seq[w] % 16, case.invariant.id, got=f"W{w} record {n} (mod 16) at offset {off}",
                   expected=f"W{w}'s record {seq.get(w, 0) % 16} next (per-writer order)", call="append",
                   history=h.format(h.of("R")))
            seq[w] += 1

    case.explore(body, writers=st.integers(2, 4), records=st.integers(1, 60),
                 size=st.sampled_from([1, 2, 512, 4096, 4097, RECORD_MAX]) | st.integers(1, RECORD_MAX))


@invariant(
    "files_created_private_and_removed", family=FAMILY, level=Level.MUST,
    rule="Every file the channel creates is mode 0600 and every directory 0700 (never world- or "
         "group-readable), and cleanup() leaves nothing behind.",
    source="Python docs tempfile.mkstemp: 'The file is readable and writable only by the creating user ID.'; "
           "tempfile.mkdtemp: 'The directory is readable, writable, and searchable only by the creating user ID.'; "
           "CPython Lib/test/test_tempfile.py test_file_mode",
    requires=[PRIVATE_FILES],
)
def files_created_private_and_removed(backend: object, case: Case) -> None:
    caps = sorted(case.capabilities)

    def body(data: bytes) -> None:
        out = case.run([Role("P", roles.use_then_inventory, (caps, data), opens=False)])
        found, left = out.value("P")
        wrong: List[Tuple[str, str]] = []
        for path, mode in found:
            want = 0o700 if stat.S_ISDIR(mode) else 0o600
            if stat.S_IMODE(mode) != want:
                wrong.append((path, f"{stat.S_IMODE(mode):04o} (want {want:04o})"))
        expect(not wrong, case.invariant.id, got=f"modes {wrong}", expected="0600 files and 0700 directories",
               call="create", history=out.history.format())
        expect(not left, case.invariant.id, got="the channel's directory still exists after cleanup()",
               expected="everything removed", call="cleanup", history=out.history.format())

    case.explore(body, scale=0.5, data=st.binary(min_size=1, max_size=64))


@invariant(
    "exchange_collector_sees_only_complete_results", family=FAMILY, level=Level.MUST,
    rule="A collector polling for the workers' result files reads each result whole: a file becomes "
         "visible under its final name only once its writer has finished it (write a temp file, then rename).",
    source="rename(2): 'If newpath already exists, it will be atomically replaced' (paraphrase: a name made by "
           "rename(2) appears only once the file behind it is complete, whereas a file created under its final name "
           "is visible, and readable half-written, from open(2) on); Python docs os.replace",
    requires=[EXCHANGE],
)
def exchange_collector_sees_only_complete_results(backend: object, case: Case) -> None:
    def body(results: List[roles.Shape]) -> None:
        k = len(results)
        rs = [Role(f"W{i}", roles.submit_result, (i, s), opens=False) for i, s in enumerate(results)]
        out = case.run([Role("C", roles.collect_results, (k,), opens=False)] + rs)
        sent = {out.value(f"W{i}")[0]: out.value(f"W{i}") for i in range(k)}
        seen = out.value("C")
        h = out.history
        for name, n, d in seen:
            want = sent.get(name)
            expect(want is not None and (n, d) == want[1:], case.invariant.id,
                   got=f"C read {name} as {n} bytes (digest {d})",
                   expected=f"{want[1]} bytes (digest {want[2]}) written by its worker" if want else
                   f"only the workers' results {sorted(sent)}", call="poll", history=h.format(h.of("C", "saw")))
        expect({s[0] for s in seen} == set(sent), case.invariant.id, got=f"results {sorted({s[0] for s in seen})}",
               expected=f"every worker's result {sorted(sent)}", call="poll", history=h.format(h.of("C", "saw")))

    case.explore(body, results=st.lists(shapes(), min_size=1, max_size=3))
