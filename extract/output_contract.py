"""The output contract: a row's columns and their Arrow types, and rows made into a record batch.

Identity columns first, one column per (selected) group with the group's declared raw type, then
the vector, a ``fixed_size_list<float32>`` of the scheme's length. The schema's metadata names the
scheme, its version, the feature version, the groups and every dimension (``binfeat.*`` keys).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa

from extract.groups import REGISTRY
from extract.options import ExtractOptions
from extract.raw_types import array_of
from extract.schemes import Scheme
from extract.schemes import get as get_scheme
from extract.version import feature_version

IDENTITY = [
    ("sha256", pa.string()), ("md5", pa.string()), ("size", pa.int64()), ("path", pa.string()),
    ("format", pa.string()), ("status", pa.string()), ("error", pa.string()),
    ("feature_version", pa.string()), ("binfeat_version", pa.string()), ("parser", pa.string()),
    ("groups", pa.string()),  # the feature groups the run computed, comma-separated, in layout order
]


def output_schema(options: ExtractOptions | None = None) -> pa.Schema:
    """The contract's schema for these options (their scheme and group selection)."""
    scheme = scheme_of(options)
    fields = [pa.field(n, t) for n, t in IDENTITY]
    fields += [pa.field(name, REGISTRY[name].raw_type) for name in scheme.groups]
    fields.append(pa.field("vector", pa.list_(pa.float32(), scheme.dims)))
    return pa.schema(fields, metadata=scheme.metadata(feature_version()))


def scheme_of(options: ExtractOptions | None = None) -> Scheme:
    o = options or ExtractOptions()
    return get_scheme(o.scheme, o.groups)


def vector_length(options: ExtractOptions | None = None) -> int:
    return scheme_of(options).dims


def record_batch(rows: list[dict], schema: pa.Schema) -> pa.RecordBatch:
    """Rows (dicts with every column of ``schema``; ``vector`` a float32 array or None) as one batch."""
    vectors = [r["vector"] for r in rows]
    names = [n for n in schema.names if n != "vector"]
    arrays = [array_of([r[n] for r in rows], schema.field(n).type) for n in names]
    arrays.append(vector_array(vectors, schema.field("vector").type.list_size))
    return pa.RecordBatch.from_arrays(arrays, schema=schema)


def vector_array(vectors: list[np.ndarray | None], length: int) -> pa.Array:
    """The vectors as one fixed_size_list<float32>[length] column (null for error rows), copied once."""
    values = np.zeros((len(vectors), length), dtype=np.float32)
    for i, v in enumerate(vectors):
        if v is not None:
            values[i] = v
    mask = pa.array([v is None for v in vectors], pa.bool_())
    return pa.FixedSizeListArray.from_arrays(pa.array(values.reshape(-1), pa.float32()), length, mask=mask)


def arrays_kept(value: Any) -> Any:
    """numpy scalars made Python numbers; numpy arrays kept (pyarrow converts them without a list)."""
    if isinstance(value, dict):
        return {k: arrays_kept(v) for k, v in value.items()}
    if isinstance(value, np.generic):
        return value.item()
    return value


def plain(value: Any) -> Any:
    """A raw value as plain Python (numpy arrays as lists, numpy scalars as numbers), nested."""
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return value
