"""Hypothesis strategies for Arrow tables, drawn as :class:`~.model.TableSpec` values.

Design: the parent process draws and judges examples but must not import
pyarrow (it forks workers, and pyarrow starts native threads), so these
strategies produce a *description* — schema plus plain Python values — that is
picklable, prints readably in a falsifying example, and shrinks like any
Hypothesis data (fewer rows, fewer columns, simpler types, nulls).  Workers
turn it into a real table with ``tables.build_table``.

Coverage an Arrow user would expect: integers of every width, signed and
unsigned, at their extremes; half, single and double floats with NaN, ±inf and
-0.0; decimal128 and decimal256 at their largest magnitudes; booleans; strings
and binaries, large and not; date32/date64; timestamps in s/ms/us/ns with and
without time zones (UTC, fixed offsets, IANA names); lists and large lists;
structs; dictionary-encoded columns; nulls at every level (also in non-empty
lists and inside structs); zero rows; many record batches, empty ones included;
field and schema metadata; non-nullable fields.  Everything is bounded: by
default at most 50 rows, 6 columns, nesting depth 2 and 5 batches.
"""

from __future__ import annotations

from decimal import Context, Decimal
from typing import Any, List, Optional, Sequence

from hypothesis import strategies as st

from .model import FLOATS, SIGNED, TIME_UNITS, UNSIGNED, ArrowType, Field, Metadata, TableSpec

TIME_ZONES = (None, "UTC", "+05:30", "-08:00", "America/New_York", "Asia/Kathmandu")
DICTIONARY_INDICES = SIGNED  # Arrow allows unsigned indices too, but pyarrow's writers favour signed ones
_DAY_MS = 86_400_000


def _int_values(type_id: str) -> st.SearchStrategy[int]:
    bits = int(type_id.lstrip("uint"))
    lo, hi = (0, (1 << bits) - 1) if type_id.startswith("u") else (-(1 << (bits - 1)), (1 << (bits - 1)) - 1)
    edges = sorted({lo, hi, 0, 1, min(hi, 127), max(lo, -1) if lo < 0 else 1})
    return st.one_of(st.sampled_from(edges), st.integers(lo, hi))


def _float_values(type_id: str) -> st.SearchStrategy[float]:
    special = st.sampled_from([float("nan"), float("inf"), float("-inf"), -0.0])
    finite_or_not = {"float16": st.floats(width=16), "float32": st.floats(width=32), "float64": st.floats()}
    return st.one_of(special, finite_or_not[type_id])


def _decimal_values(precision: int, scale: int) -> st.SearchStrategy[Decimal]:
    # decimal256 has up to 76 digits: the default context (28 digits) would round.
    ctx = Context(prec=precision + 2)
    quantum = Decimal(1).scaleb(-scale)
    top = ctx.subtract(ctx.power(Decimal(10), precision - scale), quantum)  # 99…9.9…9
    edges = st.sampled_from([top, ctx.minus(top), ctx.quantize(Decimal(0), quantum)])
    inner = st.decimals(min_value=ctx.minus(top), max_value=top, places=scale, allow_nan=False, allow_infinity=False)
    return st.one_of(edges, inner).map(lambda d: ctx.quantize(d, quantum))


def _timestamp_values() -> st.SearchStrategy[int]:
    lo, hi = -(1 << 63), (1 << 63) - 1
    return st.one_of(st.sampled_from([0, -1, 1, lo, hi]), st.integers(lo, hi))


def _leaf_values(t: ArrowType) -> st.SearchStrategy[Any]:
    tid = t.id
    if tid in SIGNED or tid in UNSIGNED:
        return _int_values(tid)
    if tid in FLOATS:
        return _float_values(tid)
    if tid.startswith("decimal"):
        return _decimal_values(*t.args)
    if tid == "bool":
        return st.booleans()
    if tid in ("string", "large_string"):
        return st.text(max_size=12)
    if tid in ("binary", "large_binary"):
        return st.binary(max_size=12)
    if tid == "date32":
        return _int_values("int32")
    if tid == "date64":
        days = ((1 << 63) - 1) // _DAY_MS
        return st.one_of(st.sampled_from([0, -1, days, -days]), st.integers(-days, days)).map(lambda d: d * _DAY_MS)
    if tid == "timestamp":
        return _timestamp_values()
    raise ValueError(f"no values for {t!r}")


def values_of(t: ArrowType, *, nullable: bool = True, max_list: int = 4) -> st.SearchStrategy[Any]:
    """Single values of type ``t``; ``None`` (null) is drawn only where ``nullable``."""
    if t.id in ("list", "large_list"):
        item = t.children[0]
        inner: st.SearchStrategy[Any] = st.lists(values_of(item.type, nullable=item.nullable, max_list=max_list),
                                                   max_size=max_list)
    elif t.id == "struct":
        inner = st.fixed_dictionaries({c.name: values_of(c.type, nullable=c.nullable, max_list=max_list)
                                       for c in t.children})
    elif t.id == "dictionary":
        inner = _leaf_values(t.children[0].type)
    else:
        inner = _leaf_values(t)
    return st.one_of(st.none(), inner) if nullable else inner


# --- types -------------------------------------------------------------------------------
def int_types() -> st.SearchStrategy[ArrowType]:
    return st.sampled_from(SIGNED + UNSIGNED).map(ArrowType)


def number_types() -> st.SearchStrategy[ArrowType]:
    """Fixed-width numbers: the types ``to_numpy(zero_copy_only=True)`` can view."""
    return st.sampled_from(SIGNED + UNSIGNED + FLOATS).map(ArrowType)


def leaf_types() -> st.SearchStrategy[ArrowType]:
    """One family at a time (so that floats are as likely as the eight integer types)."""
    decimals = st.one_of(
        st.integers(1, 38).flatmap(lambda p: st.integers(0, p).map(lambda s: ArrowType("decimal128", (p, s)))),
        st.integers(1, 76).flatmap(lambda p: st.integers(0, p).map(lambda s: ArrowType("decimal256", (p, s)))),
    )
    timestamps = st.builds(lambda u, tz: ArrowType("timestamp", (u, tz)), st.sampled_from(TIME_UNITS),
                           st.sampled_from(TIME_ZONES))

    def one_of_ids(*ids: str) -> st.SearchStrategy[ArrowType]:
        return st.sampled_from(ids).map(ArrowType)

    return st.one_of(int_types(), one_of_ids(*FLOATS), one_of_ids("bool"), one_of_ids("string", "large_string"),
                     one_of_ids("binary", "large_binary"), one_of_ids("date32", "date64"), timestamps, decimals)


def _names(*, min_size: int, max_size: int) -> st.SearchStrategy[List[str]]:
    # Short names, unique (pandas and dict-based code break on duplicates), "" allowed.
    return st.lists(st.text(max_size=4), min_size=min_size, max_size=max_size, unique=True)


def field_metadata() -> st.SearchStrategy[Metadata]:
    pairs = st.dictionaries(st.binary(min_size=1, max_size=6), st.binary(max_size=6), max_size=2)
    return pairs.map(lambda d: tuple(sorted(d.items())))


def fields_of(types: st.SearchStrategy[ArrowType], *, min_size: int, max_size: int,
              nulls: bool = True) -> st.SearchStrategy[List[Field]]:
    """Uniquely named fields; a field is non-nullable only when ``nulls`` is off or by a draw."""
    nullable = st.booleans() if nulls else st.just(False)

    def make(names: List[str]) -> st.SearchStrategy[List[Field]]:
        return st.tuples(*[st.builds(Field, st.just(n), types, nullable, field_metadata()) for n in names]).map(list)

    return _names(min_size=min_size, max_size=max_size).flatmap(make)


def arrow_types(*, max_depth: int = 2, dictionaries: bool = True) -> st.SearchStrategy[ArrowType]:
    """Any supported type, nested at most ``max_depth`` levels (a leaf is depth 0)."""
    base = leaf_types()
    if dictionaries:
        dict_values = st.one_of(st.sampled_from(("string", "large_string", "binary", "int32", "int64")).map(ArrowType),
                                st.sampled_from(FLOATS).map(ArrowType))
        base = st.one_of(base, st.builds(lambda i, v: ArrowType("dictionary", (i,), (Field("value", v),)),
                                         st.sampled_from(DICTIONARY_INDICES), dict_values))
    if max_depth <= 0:
        return base
    child = arrow_types(max_depth=max_depth - 1, dictionaries=False)  # dictionaries only at the top level
    item = st.builds(lambda t, n: Field("item", t, n), child, st.booleans())
    lists = st.builds(lambda kind, f: ArrowType(kind, (), (f,)), st.sampled_from(("list", "large_list")), item)
    structs = fields_of(child, min_size=1, max_size=3).map(lambda fs: ArrowType("struct", (), tuple(fs)))
    return st.one_of(base, lists, structs)


def batch_lengths(rows: int, *, max_batches: int) -> st.SearchStrategy[List[int]]:
    """Split ``rows`` into 0..max_batches record batches (empty batches allowed)."""
    if rows == 0:
        return st.lists(st.just(0), max_size=max_batches)

    def split(cuts: List[int]) -> List[int]:
        points = [0] + sorted(cuts) + [rows]
        return [b - a for a, b in zip(points, points[1:])]

    return st.lists(st.integers(0, rows), max_size=max_batches - 1).map(split)


@st.composite
def _tables(draw: Any, types: st.SearchStrategy[ArrowType], min_rows: int, max_rows: int, min_columns: int,
            max_columns: int, max_batches: int, nulls: bool) -> TableSpec:
    fields: Sequence[Field] = draw(fields_of(types, min_size=min_columns, max_size=max_columns, nulls=nulls))
    if not nulls:
        fields = [_without_nulls(f) for f in fields]
    rows = draw(st.integers(min_rows, max_rows)) if fields else 0  # rows need a column to live in
    columns = tuple(tuple(draw(st.lists(_column_values(draw, f), min_size=rows, max_size=rows))) for f in fields)
    batches = tuple(draw(batch_lengths(rows, max_batches=max_batches)))
    metadata = draw(field_metadata())
    return TableSpec(tuple(fields), columns, batches, metadata)


def _column_values(draw: Any, f: Field) -> st.SearchStrategy[Any]:
    if f.type.id != "dictionary":
        return values_of(f.type, nullable=f.nullable)
    # A few distinct values shared by many rows: what dictionary encoding is for.
    pool = draw(st.lists(_leaf_values(f.type.children[0].type), min_size=1, max_size=3))
    picked = st.sampled_from(pool)
    return st.one_of(st.none(), picked) if f.nullable else picked


def _without_nulls(f: Field) -> Field:
    t = f.type
    if t.children:
        t = ArrowType(t.id, t.args, tuple(_without_nulls(c) for c in t.children))
    return Field(f.name, t, False, f.metadata)


def arrow_tables(*, types: Optional[st.SearchStrategy[ArrowType]] = None, min_rows: int = 0, max_rows: int = 50,
                 min_columns: int = 0, max_columns: int = 6, max_depth: int = 2, max_batches: int = 5,
                 nulls: bool = True) -> st.SearchStrategy[TableSpec]:
    """Tables as :class:`TableSpec`; ``types`` restricts the column types, ``nulls=False``
    makes every field (and nested field) non-nullable, so no value is null."""
    return _tables(types if types is not None else arrow_types(max_depth=max_depth), min_rows, max_rows,
                   min_columns, max_columns, max_batches, nulls)


def number_tables(*, min_rows: int = 1, max_rows: int = 50, max_columns: int = 4,
                  max_batches: int = 4) -> st.SearchStrategy[TableSpec]:
    """Tables of fixed-width numbers without nulls, at least one column and row:
    what zero-copy numpy views and same-layout rewrites need."""
    return arrow_tables(types=number_types(), min_rows=min_rows, max_rows=max_rows, min_columns=1,
                        max_columns=max_columns, max_batches=max_batches, nulls=False)
