"""EMBER's general group for every format: size, plus the fields the format's parse provides.

For a format without structure (unknown) the structural fields are 0: the file has none. When the
parse failed they are null in the raw value and NaN in the vector: unknown, not zero.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from extract.parsed import GENERAL_FIELDS, Parsed, general_for
from extract.registry import ALL_FORMATS, REGISTRY, declare

FIELDS = ("size", *GENERAL_FIELDS)
GENERAL_TYPE = pa.struct([(f, pa.int64()) for f in FIELDS])


def general_fields(parsed: Parsed | None, size: int, fmt: str) -> dict:
    """The general raw value: from the parse, or nulls when the parse failed, or zeros for unknown."""
    if fmt == "unknown":
        return {"size": size, **dict.fromkeys(GENERAL_FIELDS, 0)}
    if parsed is None:
        return {"size": size, **dict.fromkeys(GENERAL_FIELDS)}
    fn = general_for(parsed.format)
    values = fn(parsed) if fn else {}
    return {"size": size, **{f: (None if values.get(f) is None else int(values[f])) for f in GENERAL_FIELDS}}


def _fill(raws: list[dict], out: np.ndarray) -> None:
    out[:] = np.array([[np.nan if raw[f] is None else raw[f] for f in FIELDS] for raw in raws], dtype=np.float32)


@declare(
    REGISTRY, name="general", version=1, formats=ALL_FORMATS, stage="structure", raw_type=GENERAL_TYPE,
    dim_names=[f"general.{f}" for f in FIELDS], fill=_fill,
)
def general(parsed: Parsed) -> dict:
    """Size, virtual size, debug, import/export counts, relocations, resources, signature, TLS, symbols."""
    return general_fields(parsed, parsed.size, parsed.format)
