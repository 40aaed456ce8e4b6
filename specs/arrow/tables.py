"""The pyarrow side of :mod:`.model`: build a table from a :class:`TableSpec`, and
describe a table read back as a :class:`TableSpec`.

Imported only inside workers (role bodies import it lazily): the parent process
must stay free of pyarrow's native threads because it forks.
"""

from __future__ import annotations

from typing import Any, Dict, Iterator, List, Optional, Sequence, Tuple

import numpy as np
import pyarrow as pa

from .model import FLOATS, ArrowType, Field, Metadata, TableSpec

_SIMPLE = {
    "int8": pa.int8, "int16": pa.int16, "int32": pa.int32, "int64": pa.int64,
    "uint8": pa.uint8, "uint16": pa.uint16, "uint32": pa.uint32, "uint64": pa.uint64,
    "float16": pa.float16, "float32": pa.float32, "float64": pa.float64, "bool": pa.bool_,
    "string": pa.string, "large_string": pa.large_string, "binary": pa.binary,
    "large_binary": pa.large_binary, "date32": pa.date32, "date64": pa.date64,
}
#: Integer types whose bits the temporal types share (``Array.view`` reinterprets, no copy).
_STORAGE = {"date32": pa.int32(), "date64": pa.int64(), "timestamp": pa.int64()}


# --- spec -> pyarrow ---------------------------------------------------------------------
def to_pa_type(t: ArrowType) -> pa.DataType:
    if t.id in _SIMPLE:
        return _SIMPLE[t.id]()
    if t.id == "decimal128":
        return pa.decimal128(*t.args)
    if t.id == "decimal256":
        return pa.decimal256(*t.args)
    if t.id == "timestamp":
        return pa.timestamp(t.args[0], tz=t.args[1])
    if t.id in ("list", "large_list"):
        item = to_pa_field(t.children[0])
        return pa.list_(item) if t.id == "list" else pa.large_list(item)
    if t.id == "struct":
        return pa.struct([to_pa_field(c) for c in t.children])
    if t.id == "dictionary":
        return pa.dictionary(_SIMPLE[t.args[0]](), to_pa_type(t.children[0].type))
    raise ValueError(f"no Arrow type for {t!r}")


def to_pa_field(f: Field) -> pa.Field:
    return pa.field(f.name, to_pa_type(f.type), nullable=f.nullable, metadata=dict(f.metadata) or None)


def _mask(values: Sequence[Any]) -> Optional[pa.Array]:
    return pa.array([v is None for v in values], pa.bool_()) if any(v is None for v in values) else None


def build_array(t: ArrowType, values: Sequence[Any], dictionary: Optional[pa.Array] = None) -> pa.Array:
    """An array of type ``t`` holding ``values`` (see the value conventions in :mod:`.model`)."""
    if t.id == "float16":
        # Building half floats from Python floats is recent in pyarrow; from numpy it always worked.
        raw = np.array([0.0 if v is None else v for v in values], dtype=np.float16)
        return pa.array(raw, type=pa.float16(), mask=np.array([v is None for v in values], dtype=bool))
    if t.id in ("list", "large_list"):
        offsets = [0]
        for v in values:
            offsets.append(offsets[-1] + (len(v) if v is not None else 0))
        child = build_array(t.children[0].type, [x for v in values if v is not None for x in v])
        cls = pa.ListArray if t.id == "list" else pa.LargeListArray
        off = pa.array(offsets, pa.int32() if t.id == "list" else pa.int64())
        return cls.from_arrays(off, child, type=to_pa_type(t), mask=_mask(values))
    if t.id == "struct":
        kids = [build_array(c.type, [None if v is None else v[c.name] for v in values]) for c in t.children]
        return pa.StructArray.from_arrays(kids, fields=[to_pa_field(c) for c in t.children], mask=_mask(values))
    if t.id == "dictionary":
        assert dictionary is not None, "dictionary columns share one dictionary across batches"
        lookup = {_key(v): i for i, v in enumerate(dictionary.to_pylist())}
        indices = pa.array([None if v is None else lookup[_key(v)] for v in values], _SIMPLE[t.args[0]]())
        return pa.DictionaryArray.from_arrays(indices, dictionary)
    return pa.array(list(values), type=to_pa_type(t))


def _key(v: Any) -> Any:
    # Dictionary entries are distinct *bit patterns*: NaN is one entry, -0.0 and 0.0 are two.
    return ("float", "nan" if v != v else v.hex()) if isinstance(v, float) else (type(v).__name__, v)


def _dictionary_for(t: ArrowType, values: Sequence[Any]) -> pa.Array:
    """One dictionary for the whole column: the IPC file format cannot replace a
    dictionary between batches, and the stream format need not."""
    seen: Dict[Any, Any] = {}
    for v in values:
        if v is not None:
            seen.setdefault(_key(v), v)
    return build_array(t.children[0].type, list(seen.values()))


def build_table(spec: TableSpec) -> pa.Table:
    schema = pa.schema([to_pa_field(f) for f in spec.fields], metadata=dict(spec.metadata) or None)
    dictionaries = {i: _dictionary_for(f.type, spec.columns[i])
                    for i, f in enumerate(spec.fields) if f.type.id == "dictionary"}
    batches, start = [], 0
    for n in spec.batches:
        arrays = [build_array(f.type, spec.columns[i][start:start + n], dictionaries.get(i))
                  for i, f in enumerate(spec.fields)]
        batches.append(pa.RecordBatch.from_arrays(arrays, schema=schema))
        start += n
    return pa.Table.from_batches(batches, schema=schema)


# --- pyarrow -> spec ---------------------------------------------------------------------
def _metadata(md: Optional[Dict[bytes, bytes]]) -> Metadata:
    return tuple(sorted((md or {}).items()))


def describe_type(t: pa.DataType) -> ArrowType:
    for name, make in _SIMPLE.items():
        if t == make():
            return ArrowType(name)
    if pa.types.is_decimal(t):
        return ArrowType(f"decimal{t.bit_width}", (t.precision, t.scale))
    if pa.types.is_timestamp(t):
        return ArrowType("timestamp", (t.unit, t.tz))
    if pa.types.is_list(t) or pa.types.is_large_list(t):
        return ArrowType("list" if pa.types.is_list(t) else "large_list", (), (describe_field(t.value_field),))
    if pa.types.is_struct(t):
        return ArrowType("struct", (), tuple(describe_field(t.field(i)) for i in range(t.num_fields)))
    if pa.types.is_dictionary(t):
        value = Field("value", describe_type(t.value_type))
        return ArrowType("dictionary", (describe_type(t.index_type).id,), (value,))
    return ArrowType(f"other:{t}")


def describe_field(f: pa.Field) -> Field:
    return Field(f.name, describe_type(f.type), f.nullable, _metadata(f.metadata))


def describe_values(arr: pa.Array) -> List[Any]:
    """The values of ``arr`` in the conventions of :mod:`.model` (slices and nulls honoured)."""
    t = arr.type
    nulls = arr.is_null().to_pylist() if arr.null_count else [False] * len(arr)
    tid = describe_type(t).id
    if tid in _STORAGE:
        return list(arr.view(_STORAGE[tid]).to_pylist())
    if tid in FLOATS:
        raw = arr.to_numpy(zero_copy_only=False)
        return [None if n else float(x) for n, x in zip(nulls, raw)]
    if pa.types.is_list(t) or pa.types.is_large_list(t):
        flat = iter(describe_values(arr.flatten()))
        return [None if n is None else [next(flat) for _ in range(n)] for n in arr.value_lengths().to_pylist()]
    if pa.types.is_struct(t):
        kids = [describe_values(k) for k in arr.flatten()]
        names = [t.field(i).name for i in range(t.num_fields)]
        return [None if nulls[r] else {n: k[r] for n, k in zip(names, kids)} for r in range(len(arr))]
    if pa.types.is_dictionary(t):
        return describe_values(arr.dictionary_decode())
    return list(arr.to_pylist())


def describe_table(table: pa.Table) -> TableSpec:
    schema = table.schema
    columns = tuple(tuple(v for chunk in col.chunks for v in describe_values(chunk)) for col in table.columns)
    return TableSpec(tuple(describe_field(f) for f in schema), columns,
                     tuple(len(b) for b in table.to_batches()), _metadata(schema.metadata))


# --- buffers -----------------------------------------------------------------------------
def _array_buffers(arr: pa.Array) -> Iterator[pa.Buffer]:
    for b in arr.buffers():  # this array's and its children's, depth first
        if b is not None:
            yield b
    if pa.types.is_dictionary(arr.type):
        yield from _array_buffers(arr.dictionary)


def table_buffers(table: pa.Table) -> List[Tuple[str, pa.Buffer]]:
    """Every non-empty buffer of ``table`` with the column it belongs to."""
    out: List[Tuple[str, pa.Buffer]] = []
    for name, col in zip(table.column_names, table.columns):
        for chunk in col.chunks:
            out += [(name, b) for b in _array_buffers(chunk) if b.size > 0]
    return out


def number_views(table: pa.Table, columns: Sequence[int]) -> List[Tuple[str, Any]]:
    """Zero-copy numpy views of the chosen fixed-width columns, one per non-empty chunk."""
    return [(table.column_names[i], chunk.to_numpy(zero_copy_only=True))
            for i in columns for chunk in table.column(i).chunks if len(chunk)]
