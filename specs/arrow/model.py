"""A picklable, pyarrow-free description of an Arrow table, and how two compare.

The parent process draws examples and judges them but must never import
pyarrow (it starts native threads, and the parent forks workers).  So a table
travels as a :class:`TableSpec`: a schema made of :class:`ArrowType` and
:class:`Field` values plus one list of plain Python values per column.  Workers
build the real table from it (``tables.build_table``) and describe what they read
back in the same terms (``tables.describe_table``), so the parent compares two
``TableSpec`` values and never an Arrow object.

Value conventions (what a column holds, per type id):

* ``int8`` … ``uint64``: ``int``;  ``float16/32/64``: ``float`` (NaN and ±inf
  allowed, every value exactly representable in the width);
* ``decimal128/256``: :class:`decimal.Decimal` with exactly ``scale`` places;
* ``bool``: ``bool``;  ``string``/``large_string``: ``str``;
  ``binary``/``large_binary``: ``bytes``;
* ``date32``: days since the epoch; ``date64``: milliseconds (a whole number of
  days); ``timestamp``: ticks of its unit since the epoch — integers, so that no
  time-zone database or datetime range is involved in judging equality;
* ``list``/``large_list``: a Python list;  ``struct``: a dict in field order;
* ``dictionary``: the decoded value (the encoding is part of the type);
* ``None`` is a null at any level.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, List, Optional, Tuple

Metadata = Tuple[Tuple[bytes, bytes], ...]

SIGNED = ("int8", "int16", "int32", "int64")
UNSIGNED = ("uint8", "uint16", "uint32", "uint64")
FLOATS = ("float16", "float32", "float64")
TIME_UNITS = ("s", "ms", "us", "ns")


@dataclass(frozen=True)
class ArrowType:
    """An Arrow data type: ``id`` plus its parameters and child fields.

    ``args``: ``(precision, scale)`` for decimals, ``(unit, tz or None)`` for
    timestamps, ``(index_id,)`` for dictionaries; ``children``: the item field
    of a list, the fields of a struct, the value field of a dictionary.
    """

    id: str
    args: Tuple[Any, ...] = ()
    children: Tuple[Field, ...] = ()

    def __repr__(self) -> str:
        inner = [repr(a) for a in self.args] + [repr(c) for c in self.children]
        return f"{self.id}({', '.join(inner)})" if inner else self.id


@dataclass(frozen=True)
class Field:
    name: str
    type: ArrowType
    nullable: bool = True
    metadata: Metadata = ()

    def __repr__(self) -> str:
        extra = "" if self.nullable else ", not null"
        if self.metadata:
            extra += f", metadata={dict(self.metadata)!r}"
        return f"{self.name!r}: {self.type!r}{extra}"


@dataclass(frozen=True)
class TableSpec:
    """Schema, values (one list per column) and record-batch lengths of a table."""

    fields: Tuple[Field, ...]
    columns: Tuple[Tuple[Any, ...], ...]
    batches: Tuple[int, ...] = ()
    metadata: Metadata = ()

    @property
    def num_rows(self) -> int:
        return sum(self.batches)

    def __repr__(self) -> str:
        cols = ", ".join(f"{f!r} = {list(c)!r}" for f, c in zip(self.fields, self.columns))
        meta = f", metadata={dict(self.metadata)!r}" if self.metadata else ""
        return f"TableSpec(batches={list(self.batches)}{meta}; {cols})"


# --- equality -----------------------------------------------------------------------------
def canonical(value: Any) -> Any:
    """A form where equal Arrow values are equal Python values: every NaN is one
    NaN, -0.0 is not 0.0 (Arrow keeps the sign bit), and nesting is hashable."""
    if isinstance(value, float):
        return "NaN" if math.isnan(value) else ("float", value.hex())
    if isinstance(value, Decimal):
        return ("decimal", str(abs(value) if value.is_zero() else value))  # Arrow has no -0 decimal
    if isinstance(value, dict):
        return ("struct", tuple(sorted((k, canonical(v)) for k, v in value.items())))  # order: the schema's
    if isinstance(value, (list, tuple)):
        return ("list", tuple(canonical(v) for v in value))
    if isinstance(value, bool):
        return ("bool", value)  # True must not equal the integer 1
    return value


def first_difference(want: TableSpec, got: TableSpec) -> Optional[Tuple[str, str, str]]:
    """``(where, got, expected)`` for the first way ``got`` differs from ``want``, or None.

    Schemas (names, types with time zones, nullability, field and schema
    metadata) must be identical; values must be equal with NaN equal to NaN and
    null distinct from NaN.  How rows are split into record batches is not compared.
    """
    if got.metadata != want.metadata:
        return "schema metadata", repr(dict(got.metadata)), repr(dict(want.metadata))
    if len(got.fields) != len(want.fields):
        return "schema", f"fields {list(got.fields)!r}", f"fields {list(want.fields)!r}"
    for i, (g, w) in enumerate(zip(got.fields, want.fields)):
        if g != w:
            return f"field {i}", repr(g), repr(w)
    if got.num_rows != want.num_rows:
        return "row count", str(got.num_rows), str(want.num_rows)
    for i, (gc, wc) in enumerate(zip(got.columns, want.columns)):
        for row, (g, w) in enumerate(zip(gc, wc)):
            if canonical(g) != canonical(w):
                return f"column {want.fields[i].name!r} row {row}", _show(g), _show(w)
    return None


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 120 else text[:119] + "…"


# --- same-layout rewrites -----------------------------------------------------------------
def flip(type_id: str, value: Any) -> Any:
    """A different value of the same fixed-width type (used to rewrite a table in place).

    ``~v`` for signed integers and ``max - v`` for unsigned ones never equal ``v``;
    a float flips sign, and 0, -0.0 and NaN become 1.0, so every value changes.
    """
    if type_id in SIGNED:
        return -value - 1
    if type_id in UNSIGNED:
        return (1 << int(type_id[4:])) - 1 - value
    if type_id in FLOATS:
        return 1.0 if (math.isnan(value) or value == 0) else -value
    raise ValueError(f"flip: {type_id} is not a fixed-width number type")


def flipped(spec: TableSpec) -> TableSpec:
    """``spec`` with every value changed and the byte layout of its IPC form kept:
    same schema, same lengths, no nulls added or removed."""
    columns = tuple(tuple(None if v is None else flip(f.type.id, v) for v in col)
                    for f, col in zip(spec.fields, spec.columns))
    return TableSpec(spec.fields, columns, spec.batches, spec.metadata)


def number_columns(spec: TableSpec) -> List[int]:
    """Indices of the columns whose type is a fixed-width integer or float."""
    return [i for i, f in enumerate(spec.fields) if f.type.id in SIGNED + UNSIGNED + FLOATS]
