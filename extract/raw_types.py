"""The Arrow types a raw feature value may have: those Apache Iceberg holds exactly, as they are.

Why: the corpus store keeps extract's rows in Iceberg with extract's own schema, so that a stored
row and a fresh ``binfeat extract`` row are one schema (``pa.concat_tables`` of the two works, a
model trained on either reads the other). Iceberg has signed 32- and 64-bit integers only, one
list type, no 8/16-bit integers, no half floats; pyiceberg would silently convert such Arrow types
(uint32 into a 32-bit int, where values of 2**31 and more do not fit). So a group declares:

* integers by their width on disk: 8- and 16-bit fields (signed or not) as ``int32``; unsigned
  32-bit fields as ``int64``; unsigned 64-bit fields (addresses, offsets, sizes, flag words of 64
  bits) as ``decimal128(20, 0)``, which holds 0 .. 2**64-1 exactly (``int64`` would turn values of
  2**63 and more negative; damaged files have them);
* ``list_`` (not large or fixed-size lists), ``string`` and ``binary`` (not their large variants).

:func:`inexact` says what is wrong with a type (the registry refuses such a declaration);
:func:`python_values` reads a raw column back as the Python values ``compute`` returned (a
``decimal128(p, 0)`` value as an ``int``, not a ``Decimal``), which is what ``vectorize`` expects;
:func:`array_of` builds a raw column from those values.
"""

from __future__ import annotations

from typing import Any

import pyarrow as pa

# What to declare instead of a type Iceberg would convert (the reason, then the replacement).
_INSTEAD: dict[pa.DataType, str] = {
    pa.int8(): "int32 (Iceberg has no 8-bit integers)",
    pa.int16(): "int32 (Iceberg has no 16-bit integers)",
    pa.uint8(): "int32 (Iceberg has no unsigned integers)",
    pa.uint16(): "int32 (Iceberg has no unsigned integers)",
    pa.uint32(): "int64 (Iceberg has no unsigned integers; a uint32 >= 2**31 does not fit an int32)",
    pa.uint64(): "decimal128(20, 0) (Iceberg has no unsigned integers; an int64 would make values >= 2**63 "
                 "negative)",
    pa.float16(): "float32 (Iceberg has no half floats)",
    pa.large_string(): "string (Iceberg has one string type)",
    pa.large_binary(): "binary (Iceberg has one binary type)",
    pa.date64(): "date32 (Iceberg dates are days)",
}
_EXACT_LEAVES = frozenset({pa.bool_(), pa.int32(), pa.int64(), pa.float32(), pa.float64(), pa.string(),
                           pa.binary(), pa.date32(), pa.time64("us")})
_MAX_DECIMAL_PRECISION = 38  # Iceberg's decimal(P, S): P <= 38


def inexact(t: pa.DataType, where: str = "") -> list[str]:
    """Why Iceberg cannot hold values of ``t`` exactly as ``t`` (one line per place; empty: it can)."""
    at = f" at {where}" if where else ""
    if t in _EXACT_LEAVES:
        return []
    if t in _INSTEAD:
        return [f"{t}{at}: declare {_INSTEAD[t]}"]
    if pa.types.is_decimal128(t):
        return [] if t.precision <= _MAX_DECIMAL_PRECISION else [f"{t}{at}: Iceberg decimals have at most 38 digits"]
    if pa.types.is_fixed_size_binary(t):
        return []
    if pa.types.is_timestamp(t):
        return [] if t.unit == "us" and t.tz in (None, "UTC", "+00:00") else [
            f"{t}{at}: declare timestamp('us') or timestamp('us', tz='UTC') (Iceberg timestamps are microseconds)"]
    if pa.types.is_struct(t):
        return [p for f in t for p in inexact(f.type, f"{where}.{f.name}" if where else f.name)]
    if pa.types.is_list(t):
        return inexact(t.value_type, f"{where}[]")
    if pa.types.is_map(t):
        return inexact(t.key_type, f"{where}{{key}}") + inexact(t.item_type, f"{where}{{value}}")
    if pa.types.is_large_list(t) or pa.types.is_fixed_size_list(t):
        return [f"{t}{at}: declare pa.list_(...) (Iceberg has one list type, without a fixed size)",
                *inexact(t.value_type, f"{where}[]")]
    if pa.types.is_dictionary(t):
        return [f"{t}{at}: declare its value type {t.value_type} (Iceberg has no dictionary type)"]
    return [f"{t}{at}: Iceberg has no such type"]


def _has_integral_decimal(t: pa.DataType) -> bool:
    if pa.types.is_decimal(t):
        return t.scale == 0
    return any(_has_integral_decimal(t.field(i).type) for i in range(t.num_fields))


def _decimals_as(t: pa.DataType, integer: pa.DataType) -> pa.DataType:
    """``t`` with each ``decimal(p, 0)`` replaced by ``integer`` (nested types rebuilt field by field)."""
    if pa.types.is_decimal(t) and t.scale == 0:
        return integer
    if pa.types.is_struct(t):
        return pa.struct([f.with_type(_decimals_as(f.type, integer)) for f in t])
    if pa.types.is_list(t):
        return pa.list_(t.value_field.with_type(_decimals_as(t.value_type, integer)))
    if pa.types.is_large_list(t):
        return pa.large_list(t.value_field.with_type(_decimals_as(t.value_type, integer)))
    if pa.types.is_fixed_size_list(t):
        return pa.list_(t.value_field.with_type(_decimals_as(t.value_type, integer)), t.list_size)
    if pa.types.is_map(t):
        return pa.map_(_decimals_as(t.key_type, integer), _decimals_as(t.item_type, integer))
    return t


def array_of(values: list[Any], t: pa.DataType) -> pa.Array:
    """``pa.array(values, type=t)``, with the same result, faster where ``t`` holds whole decimals.

    Why: Arrow converts a Python int into a ``decimal128`` one value at a time through Python's
    decimal module (about a third of a row's Arrow conversion on ELF files); built as ``uint64`` and
    cast, the column is the same (the cast is exact for 0 .. 2**64-1). Values that do not fit
    ``uint64`` (or are no ints) take the direct conversion, which accepts or refuses them as before.
    """
    if _has_integral_decimal(t):
        try:
            return pa.array(values, type=_decimals_as(t, pa.uint64())).cast(t, safe=True)
        except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError, OverflowError, TypeError,
                ValueError):
            pass
    return pa.array(values, type=t)


def python_values(column: pa.Array | pa.ChunkedArray) -> list[Any]:
    """The column's values as Python objects, whole decimals (``decimal128(p, 0)``) as ``int``.

    Why: ``compute`` returns ints for 64-bit unsigned fields and ``vectorize`` does integer
    arithmetic on them (bit tests, sums with floats), which a ``Decimal`` refuses. The whole column
    is cast in Arrow (to uint64, else int64) when every value fits; else each value is converted.
    """
    if not _has_integral_decimal(column.type):
        return column.to_pylist()
    for integer in (pa.uint64(), pa.int64()):
        try:
            return column.cast(_decimals_as(column.type, integer), safe=True).to_pylist()
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            continue
    return [_whole(v) for v in column.to_pylist()]


def _whole(value: Any) -> Any:
    import decimal

    if isinstance(value, decimal.Decimal):
        return int(value) if value == value.to_integral_value() else value
    if isinstance(value, dict):
        return {k: _whole(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_whole(v) for v in value]
    if isinstance(value, tuple):  # a map's (key, value) pairs
        return tuple(_whole(v) for v in value)
    return value
