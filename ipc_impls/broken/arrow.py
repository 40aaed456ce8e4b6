"""Broken Arrow stores: each works in a demo, and each breaks one rule of sharing
tables between processes.  Every class overrides one method of a reference
store; its docstring names the folk belief it embodies.
"""

from __future__ import annotations

import copy
from typing import Any, List

from ipc_specs.harness.resources import Scope

from ..arrow import MmapBackend, MmapReader, MmapStore, ShmBackend, ShmReader, ShmStore, ShmWriter, _pa
from . import Exhibit


class VariantShmStore(ShmStore):
    def __init__(self, name: str, fmt: str, writer: type, reader: type) -> None:
        super().__init__(name, fmt)
        self.writer, self.reader = writer, reader  # classes pickle by reference: spawn-safe

    def open_writer(self) -> Any:
        return self.writer(self.name, self.fmt)

    def open_reader(self) -> Any:
        return self.reader(self.name, self.fmt)


class ShmVariant(ShmBackend):
    """A backend claiming what the ``SharedMemory`` reference claims, with other ends."""

    def __init__(self, name: str, fmt: str, *, writer: type = ShmWriter, reader: type = ShmReader) -> None:
        super().__init__(fmt)
        self.name, self.writer, self.reader = name, writer, reader

    def setup(self, scope: Scope) -> Any:
        return VariantShmStore(super().setup(scope).name, self.fmt, self.writer, self.reader)


# --- table_read_elsewhere_equals_table_written ----------------------------------------------
class NumpyRoundTripWriter(ShmWriter):
    """"Arrow and pandas are interchangeable": every column goes through numpy with pandas'
    missing-value convention, so NaN and null merge into one NA, integers with nulls become
    floats, time zones and the schema's metadata are dropped."""

    def put(self, table: Any) -> None:
        pa = _pa()
        columns = [pa.array(col.to_numpy(), from_pandas=True) for col in table.columns]
        super().put(pa.Table.from_arrays(columns, names=table.column_names))


class PythonRowsWriter(ShmWriter):
    """"A table is just rows": the store keeps ``to_pylist()`` and rebuilds with
    ``from_pylist``, which re-infers every type — widths, units, time zones, decimal
    precision, dictionary encoding, nullability and metadata are gone."""

    def put(self, table: Any) -> None:
        super().put(_pa().Table.from_pylist(table.to_pylist()))


# --- read_maps_buffers_without_copying ------------------------------------------------------
class OSFileReader(MmapReader):
    """"It's a file, so read the file": ``pa.OSFile`` reads every message into the Arrow pool.
    Its buffers are read-only too, which is why read-only-ness proves nothing about copies."""

    def _source(self) -> Any:
        return _pa().OSFile(self.path)


class BytesCopyReader(ShmReader):
    """"bytes() is cheap": the segment is copied into a Python ``bytes`` first.  The Arrow
    pool does not see that allocation — only the buffer addresses give the copy away."""

    def _source(self) -> Any:
        assert self.shm is not None and self.shm.buf is not None
        return _pa().py_buffer(bytes(self.shm.buf))


class OSFileStore(MmapStore):
    def open_reader(self) -> Any:
        return OSFileReader(self.path, self.fmt)


class OSFileBackend(MmapBackend):
    def __init__(self) -> None:
        super().__init__("file")
        self.name = "broken-arrow-osfile-reader"

    def setup(self, scope: Scope) -> Any:
        return OSFileStore(super().setup(scope).path, self.fmt)


# --- shared_table_refuses_writes / writes_by_one_reader_never_reach_another ----------------------
def rewrapped(table: Any, memory: memoryview, base: int) -> Any:
    """``table`` with every flat column rebuilt over ``memory`` (a writable view of the bytes
    the table was read from, starting at address ``base``): same data, mutable buffers."""
    pa = _pa()

    def flat(arr: Any) -> Any:
        if arr.type.num_fields or pa.types.is_dictionary(arr.type):
            return arr  # nested columns are left as read
        bufs = [None if b is None else pa.py_buffer(memory[b.address - base:b.address - base + b.size])
                for b in arr.buffers()]
        return pa.Array.from_buffers(arr.type, len(arr), bufs, arr.null_count, arr.offset)

    columns = [pa.chunked_array([flat(c) for c in col.chunks], type=col.type) for col in table.columns]
    return pa.Table.from_arrays(columns, schema=table.schema)


class WritableCopyReader(ShmReader):
    """"Callers want to edit the table": the reader copies the segment into a ``bytearray``
    and hands out arrays over it — mutable Arrow buffers that claim to be shared views."""

    def get(self) -> Any:
        table = super().get()
        assert self.shm is not None and self.shm.buf is not None
        base = int(_pa().py_buffer(self.shm.buf).address)
        return rewrapped(table, memoryview(bytearray(self.shm.buf)), base)


class WritableSharedReader(ShmReader):
    """The seed article's pitfall — "treat a pyarrow object read from shared memory as
    writable": pyarrow refuses the in-place update, so the reader re-wraps the very same
    shared bytes through the writable ``shm.buf``.  Now every reader's edit lands in every
    other reader's table."""

    def get(self) -> Any:
        table = super().get()
        assert self.shm is not None and self.shm.buf is not None
        return rewrapped(table, self.shm.buf, int(_pa().py_buffer(self.shm.buf).address))


# --- rewrite_in_place_shows_in_tables_already_read ---------------------------------------------
class DeepCopyReader(ShmReader):
    """"Freeze it to be safe": a defensive ``copy.deepcopy`` of the table read turns the live
    view into a snapshot, so a writer's in-place update is never seen — while the store still
    claims ``live_view``."""

    def get(self) -> Any:
        return copy.deepcopy(super().get())


EXHIBITS: List[Exhibit] = [
    Exhibit(ShmVariant("broken-arrow-numpy-roundtrip", "stream", writer=NumpyRoundTripWriter),
            "table_read_elsewhere_equals_table_written",
            "NaN is not null and a time zone is data: a detour through numpy/pandas loses both."),
    Exhibit(ShmVariant("broken-arrow-python-rows", "file", writer=PythonRowsWriter),
            "table_read_elsewhere_equals_table_written",
            "The schema is part of the table: rebuilding from Python rows re-infers, and so changes, the types."),
    Exhibit(OSFileBackend(), "read_maps_buffers_without_copying",
            "Reading through OSFile copies into the Arrow pool, even though the buffers come back read-only."),
    Exhibit(ShmVariant("broken-arrow-bytes-copy", "stream", reader=BytesCopyReader),
            "read_maps_buffers_without_copying",
            "A bytes() copy is invisible to pa.total_allocated_bytes(); buffer addresses expose it."),
    Exhibit(ShmVariant("broken-arrow-writable-copy", "file", reader=WritableCopyReader),
            "shared_table_refuses_writes",
            "A table over a private bytearray is writable, so it is not the shared, read-only view it claims."),
    Exhibit(ShmVariant("broken-arrow-writable-shared-view", "stream", reader=WritableSharedReader),
            "writes_by_one_reader_never_reach_another",
            "A writable view of shared memory makes one reader's edit everyone's: copy before you change."),
    Exhibit(ShmVariant("broken-arrow-deepcopy-snapshot", "file", reader=DeepCopyReader),
            "rewrite_in_place_shows_in_tables_already_read",
            "A mapped table is live, not frozen: a reader that copies sees no rewrite, and must not claim to."),
]
