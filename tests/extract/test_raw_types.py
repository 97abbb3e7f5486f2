"""Raw columns read back as the Python values ``compute`` returned: whole decimals as ints."""

from __future__ import annotations

import decimal

import pyarrow as pa

from extract.raw_types import array_of, python_values

U64 = pa.decimal128(20, 0)
SEGMENT = pa.struct([("count", pa.int64()), ("segments", pa.list_(pa.struct([("type", pa.int64()),
                                                                             ("offset", U64)])))])


def test_whole_decimals_come_back_as_ints_nested_and_at_the_extremes():
    rows = [{"count": 2, "segments": [{"type": 0xFFFFFFFF, "offset": 2**64 - 1}, {"type": 1, "offset": 2**63}]},
            None, {"count": 0, "segments": None}, {"count": 1, "segments": [{"type": 6, "offset": None}]}]
    got = python_values(pa.array(rows, SEGMENT))
    assert got == rows
    offsets = [s["offset"] for r in got if r and r["segments"] for s in r["segments"] if s["offset"] is not None]
    assert offsets and all(type(v) is int for v in offsets)


def test_values_outside_uint64_still_come_back_exactly():
    """A decimal(20, 0) may hold negatives or 2**64 and more: no cast fits, each value is converted."""
    values = [-1, 2**64, 5, None]
    got = python_values(pa.chunked_array([pa.array(values[:2], U64), pa.array(values[2:], U64)]))
    assert got == values and all(type(v) is int for v in got if v is not None)
    assert python_values(pa.array([[-(2**63), 3]], pa.list_(U64))) == [[-(2**63), 3]]


def test_columns_without_whole_decimals_are_read_as_they_are():
    assert python_values(pa.array([1.5, None], pa.float64())) == [1.5, None]
    assert python_values(pa.array([decimal.Decimal("1.25")], pa.decimal128(5, 2))) == [decimal.Decimal("1.25")]
    m = pa.array([[("a", 2**64 - 1)]], pa.map_(pa.string(), U64))
    assert python_values(m) == [[("a", 2**64 - 1)]]


def test_array_of_builds_the_column_pa_array_builds():
    """Whole decimals built through uint64 and cast: the same column as Arrow's own conversion, at
    the extremes, nested, with nulls; values no uint64 holds (and non-ints) take Arrow's conversion."""
    rows = [{"count": 2, "segments": [{"type": 0xFFFFFFFF, "offset": 2**64 - 1}, {"type": 1, "offset": 2**63}]},
            None, {"count": 0, "segments": None}, {"count": 1, "segments": [{"type": 6, "offset": None}]},
            {"count": 1, "segments": [{"type": 6, "offset": 0}]}]
    for values, t in ((rows, SEGMENT), ([-1, 2**64 - 1, None], U64), ([[-(2**63), 3]], pa.list_(U64)),
                      ([decimal.Decimal(7), 8], U64), ([1.5, None], pa.float64()), ([[("a", 2**64 - 1)]],
                      pa.map_(pa.string(), U64))):
        got = array_of(values, t)
        assert got.type == t and got.equals(pa.array(values, type=t)), (values, t)
    assert array_of([2**64 - 1], U64).to_pylist() == [decimal.Decimal(2**64 - 1)]
