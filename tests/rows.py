"""Row comparison for tests: NaN (a failed group's vector slots) equals NaN, bit for bit; a whole
decimal (a 64-bit unsigned raw field, ``decimal128(20, 0)``) is the int it holds."""

from __future__ import annotations

import decimal
import struct
from typing import Any

import pyarrow as pa


def canonical(value: Any) -> Any:
    """A value with every float replaced by its exact bytes, so NaN == NaN and -0.0 != 0.0."""
    if isinstance(value, float):
        return struct.pack("<d", value)
    if isinstance(value, decimal.Decimal) and value == value.to_integral_value():
        return int(value)
    if isinstance(value, dict):
        return {k: canonical(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [canonical(v) for v in value]
    return value


def canonical_rows(data: pa.RecordBatch | pa.Table | list[dict], drop: tuple[str, ...] = ()) -> list[dict]:
    rows = data if isinstance(data, list) else data.to_pylist()
    return [{k: canonical(v) for k, v in r.items() if k not in drop} for r in rows]
