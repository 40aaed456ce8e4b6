"""Invariants of Arrow tables shared between processes.

The parent draws :class:`~.model.TableSpec` descriptions and never imports
pyarrow (it forks workers; pyarrow starts native threads), so every check first
makes sure pyarrow can be imported *by the workers* without importing it here,
and judges only the plain data the roles return.
"""

from __future__ import annotations

import importlib.util
from typing import Any, List

from ..harness.run import Case, Role
from ..invariant import Level, Unresolved, expect, invariant
from . import roles
from .model import TableSpec, first_difference, flipped, number_columns
from .protocol import LIVE_VIEW, READ_ONLY_VIEWS, ZERO_COPY
from .strategies import arrow_tables, number_tables

FAMILY = "arrow"
#: What get() may allocate from the Arrow pool without copying data: nothing.
#: (pyarrow reads IPC from a buffer or memory map as slices; measured: 0 bytes with pyarrow 14-26 here.)
MAX_ALLOCATED = 0
SHM_DIR = "/dev/shm"  # shm_overview(7): where Linux keeps POSIX shared memory objects


def _need_pyarrow() -> None:
    # find_spec does not import: the parent must stay free of pyarrow's threads.
    for module in ("pyarrow", "numpy"):
        if importlib.util.find_spec(module) is None:
            raise Unresolved(f"{module} not installed")


def _same(case: Case, got: TableSpec, want: TableSpec, call: str, history: str, when: str = "") -> None:
    diff = first_difference(want, got)
    if diff is not None:
        where, shown, wanted = diff
        expect(False, case.invariant.id, got=f"{where}{when}: {shown}", expected=f"{wanted} (as put)",
               call=call, history=history)


def _builder_agrees(built: TableSpec, spec: TableSpec) -> None:
    """The writer's table must be the drawn one, or the suite (not the backend) is wrong."""
    diff = first_difference(spec, built)
    if diff is not None:
        raise AssertionError(f"suite bug: tables.build_table differs from the drawn spec at {diff}")


def _put_and_get(case: Case, spec: TableSpec) -> Any:
    out = case.run([Role("W", roles.put_table, (spec,)), Role("R", roles.get_and_measure)])
    _builder_agrees(out.value("W"), spec)
    return out


@invariant(
    "table_read_elsewhere_equals_table_written", family=FAMILY, level=Level.MUST,
    rule="A table got in another process equals the table put: the same schema (names, types with widths, "
         "units and time zones, nullability, field and schema metadata) and the same values, NaN as NaN "
         "and null as null; only how rows are split into record batches may differ.",
    source="Arrow columnar format specification, section 'Serialization and Interprocess Communication (IPC)', "
           "https://arrow.apache.org/docs/format/Columnar.html (paraphrase: a stream or file carries the schema, "
           "with custom metadata, and record batches whose buffers are the columns' memory, so reading rebuilds the "
           "same arrays); Arrow Python docs 'Streaming, Serialization, and IPC', "
           "https://arrow.apache.org/docs/python/ipc.html",
)
def table_read_elsewhere_equals_table_written(backend: object, case: Case) -> None:
    _need_pyarrow()

    def body(spec: TableSpec) -> None:
        out = _put_and_get(case, spec)
        _same(case, out.value("R")["table"], spec, "get", out.history.format())

    case.explore(body, spec=arrow_tables())


@invariant(
    "read_maps_buffers_without_copying", family=FAMILY, level=Level.MUST,
    rule="get() copies nothing: every buffer of the table lies inside the reader's mapping of the "
         "shared-memory object, and the Arrow memory pool does not grow; read-only buffers prove nothing, "
         "because a copying read returns read-only buffers too.",
    source="Arrow Python docs 'Streaming, Serialization, and IPC', section 'Efficiently Writing and Reading Arrow "
           "Data', https://arrow.apache.org/docs/python/ipc.html: 'we can memory map the file, so that Arrow can "
           "directly reference the data mapped from disk and avoid having to allocate its own memory', shown with "
           "pa.total_allocated_bytes(); mmap(2) MAP_SHARED; pyarrow.OSFile (paraphrase: an OSFile read copies into "
           "Arrow memory, and its buffers are read-only too, so read-only proves no zero copy)",
    requires=[ZERO_COPY],
)
def read_maps_buffers_without_copying(backend: object, case: Case) -> None:
    _need_pyarrow()

    def body(spec: TableSpec) -> None:
        out = _put_and_get(case, spec)
        got = out.value("R")
        h = out.history.format(out.history.of("R", "get"))
        start, size = got["region"]
        expect(_maps_shm(got["mapping"], start, size), case.invariant.id,
               got=f"region {start:#x}+{size} in mapping {got['mapping'] or '(none)'!r}",
               expected=f"a mapping of a {SHM_DIR} object that holds the whole region", call="region", history=h)
        expect(not got["outside"], case.invariant.id,
               got=f"{len(got['outside'])} of {got['buffers']} buffers outside the mapping "
                   f"{start:#x}+{size}: {'; '.join(got['outside'][:3])}",
               expected="every buffer inside the shared mapping (a view, not a copy)", call="get", history=h)
        expect(got["allocated"] <= MAX_ALLOCATED, case.invariant.id,
               got=f"get() allocated {got['allocated']} B from the Arrow pool "
                   f"(the table's buffers hold {got['buffer_bytes']} B)",
               expected=f"at most {MAX_ALLOCATED} B (pa.total_allocated_bytes() delta, measured in the reader)",
               call="get", history=h)

    # At least one row and column: a table without buffers passes "every buffer is
    # inside the mapping" vacuously, and Hypothesis likes to start with such tables.
    case.explore(body, spec=arrow_tables(min_rows=1, min_columns=1))


def _maps_shm(line: str, start: int, size: int) -> bool:
    """Whether a /proc/self/maps line maps a shared-memory object over [start, start+size).

    Not necessarily MAP_SHARED: pyarrow maps files opened "r" MAP_PRIVATE|PROT_READ,
    whose untouched pages on Linux are the shared page-cache pages themselves.
    """
    parts = line.split()
    if len(parts) < 6 or not parts[5].startswith(SHM_DIR + "/"):
        return False
    lo, hi = (int(x, 16) for x in parts[0].split("-"))
    return lo <= start and start + size <= hi


def _viewable(spec: TableSpec) -> List[int]:
    """Fixed-width number columns without nulls: the ones numpy can view without a copy."""
    return [i for i in number_columns(spec) if all(v is not None for v in spec.columns[i])]


@invariant(
    "shared_table_refuses_writes", family=FAMILY, level=Level.MUST,
    rule="Buffers of a table read from shared memory are immutable: Buffer.is_mutable is False, and "
         "memoryview, np.frombuffer and to_numpy(zero_copy_only=True) views of them refuse writes.",
    source="pyarrow.Buffer.is_mutable, https://arrow.apache.org/docs/python/generated/pyarrow.Buffer.html; Python "
           "docs memoryview.readonly; numpy's ValueError 'assignment destination is read-only' for a non-writeable "
           "array; pyarrow.py_buffer (paraphrase: the buffer is mutable exactly when the object it wraps is, e.g. a "
           "bytearray)",
    requires=[READ_ONLY_VIEWS],
)
def shared_table_refuses_writes(backend: object, case: Case) -> None:
    _need_pyarrow()

    def body(spec: TableSpec) -> None:
        out = case.run([Role("W", roles.put_table, (spec,)), Role("R", roles.try_writes, (_viewable(spec),))])
        out.value("W")
        findings = out.value("R")
        expect(not findings, case.invariant.id, got="; ".join(findings[:4]) + (" …" if len(findings) > 4 else ""),
               expected="every write through the table's buffers and views refused", call="get",
               history=out.history.format(out.history.of("R", "get")))

    case.explore(body, spec=arrow_tables(max_rows=20))


@invariant(
    "writes_by_one_reader_never_reach_another", family=FAMILY, level=Level.MUST,
    rule="Whatever one reader does with the table it got — writing through its memory wherever that is "
         "let through, or changing an explicit copy, which must be writable — a process that gets the "
         "table afterwards sees exactly the table put.",
    source="mmap(2) MAP_SHARED: 'Updates to the mapping are visible to other processes mapping the same region' (so "
           "a writable view of shared memory is a write to every reader); numpy docs numpy.array (copy=True)",
)
def writes_by_one_reader_never_reach_another(backend: object, case: Case) -> None:
    _need_pyarrow()

    def body(spec: TableSpec) -> None:
        out = case.run([Role("W", roles.put_table, (spec,)),
                        Role("R1", roles.scribble_then_copy, (spec, number_columns(spec))),
                        Role("R2", roles.get_after, ("scribbled",))])
        out.value("W")
        r1 = out.value("R1")
        h = out.history.format(out.history.of("R1", "signal") + out.history.of("R2", "get"))
        expect(r1["copies_writable"], case.invariant.id, got="np.array(view, copy=True) is read-only",
               expected="an explicit copy to be writable", call="copy", history=h)
        scribbled = "; ".join(r1["accepted"]) or "no write through the table was accepted"
        _same(case, out.value("R2"), spec, "get", h, when=f" (after R1: {scribbled})")
        if not r1["accepted"]:
            _same(case, r1["own_table_after"], spec, "get", h, when=" in R1's own table after it changed a copy")

    case.explore(body, spec=number_tables(max_rows=20))


@invariant(
    "rewrite_in_place_shows_in_tables_already_read", family=FAMILY, level=Level.MUST,
    rule="A table from get() is a view of shared memory, not a snapshot: when the writer rewrites the "
         "region in place, a table a reader already holds shows the new values — read-only means the "
         "reader cannot write, not that the bytes cannot change; copy the table to freeze it.",
    source="mmap(2) MAP_SHARED: 'Updates to the mapping are visible to other processes mapping the same region' (so "
           "a table read through a mapping shows an in-place rewrite, while a copied table does not)",
    requires=[LIVE_VIEW],
)
def rewrite_in_place_shows_in_tables_already_read(backend: object, case: Case) -> None:
    _need_pyarrow()

    def body(spec: TableSpec) -> None:
        out = case.run([Role("W", roles.put_then_rewrite, (spec,)), Role("R", roles.look_twice)])
        out.value("W")
        before, after = out.value("R")
        h = out.history
        focus = h.format(h.of("W", "signal") + h.of("R", "saw"))
        _same(case, before, spec, "get", focus, when=" before the rewrite")
        diff = first_difference(flipped(spec), after)
        if diff is not None:
            where, shown, wanted = diff
            stale = first_difference(spec, after) is None
            expect(False, case.invariant.id,
                   got=f"{where} after the rewrite: {shown}" + (" (the old table: a snapshot)" if stale else ""),
                   expected=f"{wanted}, the value rewritten in place", call="rewrite", history=focus)

    case.explore(body, spec=number_tables(max_rows=20))
