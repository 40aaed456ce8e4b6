"""Role bodies for Arrow examples.

Module-level (spawned workers unpickle them), importing pyarrow only inside
the body, and returning plain data — :class:`~.model.TableSpec` descriptions,
numbers, strings — never an Arrow object, so the parent stays free of pyarrow.
Every table (and view) from ``get()`` is dropped before ``reader.close()``:
a mapping cannot be closed under live buffers.
"""

from __future__ import annotations

import gc
from typing import Any, Callable, Dict, List, Sequence, Tuple

from ..harness.worker import Proc
from .model import TableSpec, flip, flipped


def put_table(proc: Proc, spec: TableSpec) -> TableSpec:
    """Build the table, put it, announce it; returns what was built (a builder self-check)."""
    from . import tables

    table = tables.build_table(spec)
    w = proc.open_writer()
    w.put(table)
    proc.signal("put")
    w.close()
    return tables.describe_table(table)


def _with_table(proc: Proc, fn: Callable[..., Any], *args: Any) -> Any:
    """Get the table, run ``fn(reader, table, *args)`` and close the reader.

    The table and every view of it live only inside ``fn``'s frame, so they are
    gone by ``close()``: a SharedMemory cannot be closed under exported buffers
    (BufferError).  gc.collect() drops any cycle that still holds one.
    """
    r = proc.open_reader()
    result = fn(r, r.get(), *args)
    gc.collect()
    r.close()
    return result


def get_and_measure(proc: Proc) -> Dict[str, Any]:
    """Get the table and measure, around ``get()`` only, what it allocated and where its buffers are."""
    import pyarrow as pa

    proc.wait_for("put")
    r = proc.open_reader()
    before = pa.total_allocated_bytes()
    result = _measure(r, r.get(), pa.total_allocated_bytes() - before)
    gc.collect()
    r.close()
    return result


def _measure(r: Any, table: Any, allocated: int) -> Dict[str, Any]:
    from . import tables

    start, size = r.region()
    buffers = tables.table_buffers(table)
    outside = [f"{col!r}: {b.size} B at {b.address:#x}" for col, b in buffers
               if not (start <= b.address and b.address + b.size <= start + size)]
    return {
        "table": tables.describe_table(table),
        "allocated": allocated,
        "region": (start, size),
        "mapping": mapping_of(start),
        "buffers": len(buffers),
        "buffer_bytes": sum(b.size for _, b in buffers),
        "outside": outside,
    }


def mapping_of(address: int) -> str:
    """The /proc/self/maps line of the mapping that contains ``address`` (proc(5)), or ''."""
    with open("/proc/self/maps") as f:
        for line in f:
            lo, hi = (int(x, 16) for x in line.split()[0].split("-"))
            if lo <= address < hi:
                return line.strip()
    return ""


def try_writes(proc: Proc, columns: Sequence[int]) -> List[str]:
    """Every way a reader could write into the table it got, and whether each was refused.

    Writes store the value already there (harmless even when accepted): this
    role asks only whether the object *lets* one write.
    """
    proc.wait_for("put")
    return _with_table(proc, _write_attempts, columns)  # type: ignore[no-any-return]


def _write_attempts(r: Any, table: Any, columns: Sequence[int]) -> List[str]:
    import numpy as np

    from . import tables

    findings: List[str] = []
    for col, buf in tables.table_buffers(table):
        if buf.is_mutable:
            findings.append(f"{col!r}: Buffer.is_mutable is True ({buf.size} B)")
        if _accepts(memoryview(buf), 0):
            findings.append(f"{col!r}: memoryview(buffer)[0] = … was accepted")
        if _accepts(np.frombuffer(buf, dtype=np.uint8), 0):
            findings.append(f"{col!r}: np.frombuffer(buffer)[0] = … was accepted")
    for col, arr in tables.number_views(table, columns):
        if arr.flags.writeable:
            findings.append(f"{col!r}: to_numpy(zero_copy_only=True).flags.writeable is True")
        if _accepts(arr, 0):
            findings.append(f"{col!r}: to_numpy(zero_copy_only=True)[0] = … was accepted")
    return findings


def _accepts(target: Any, i: int) -> bool:
    try:
        target[i] = target[i]
    except (TypeError, ValueError):  # memoryview: TypeError; numpy: ValueError (read-only)
        return False
    return True


def scribble_then_copy(proc: Proc, spec: TableSpec, columns: Sequence[int]) -> Dict[str, Any]:
    """A careless reader: write a changed value through the table's memory wherever that
    is let through; then the careful way: an explicit copy, changed; returns what it saw."""
    proc.wait_for("put")
    result = _with_table(proc, _scribble, spec, columns)
    proc.signal("scribbled")
    return result  # type: ignore[no-any-return]


def _scribble(r: Any, table: Any, spec: TableSpec, columns: Sequence[int]) -> Dict[str, Any]:
    import numpy as np

    from . import tables

    accepted: List[str] = []
    copies_ok = True
    for i in columns:
        type_id, name = spec.fields[i].type.id, spec.fields[i].name
        for chunk in table.column(i).chunks:
            if not len(chunk):
                continue
            view = chunk.to_numpy(zero_copy_only=True)
            new = flip(type_id, view[0].item())
            data = np.frombuffer(chunk.buffers()[1], dtype=view.dtype, count=len(chunk),
                                 offset=chunk.offset * view.itemsize)
            for how, target in (("to_numpy view", view), ("np.frombuffer(data buffer)", data)):
                try:
                    target[0] = new
                    accepted.append(f"{name!r}: write through {how}")
                except ValueError:
                    pass
            copy = np.array(view, copy=True)
            copies_ok &= bool(copy.flags.writeable)
            copy[:] = [flip(type_id, v.item()) for v in view]  # changes every element of the copy
    return {"accepted": accepted, "copies_writable": copies_ok, "own_table_after": tables.describe_table(table)}


def get_after(proc: Proc, event: str) -> TableSpec:
    """Get and describe the table once ``event`` has happened."""
    from . import tables

    proc.wait_for(event)
    return _with_table(proc, lambda r, table: tables.describe_table(table))  # type: ignore[no-any-return]


def put_then_rewrite(proc: Proc, spec: TableSpec) -> None:
    """Put ``spec``; once a reader has looked, rewrite it in place with every value changed."""
    from . import tables

    first, second = tables.build_table(spec), tables.build_table(flipped(spec))
    w = proc.open_writer()
    w.put(first)
    proc.signal("put")
    proc.wait_for("seen")
    w.rewrite(second)
    proc.signal("rewritten")
    w.close()


def look_twice(proc: Proc) -> Tuple[TableSpec, TableSpec]:
    """Describe one table from ``get()`` before and after the writer rewrote the region."""
    from . import tables

    def twice(r: Any, table: Any) -> Tuple[TableSpec, TableSpec]:
        before = tables.describe_table(table)
        proc.signal("seen")
        proc.wait_for("rewritten")
        return before, tables.describe_table(table)

    proc.wait_for("put")
    return _with_table(proc, twice)  # type: ignore[no-any-return]
