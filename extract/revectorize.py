"""Re-vectorise stored feature rows with a scheme, from their raw columns alone (no binary is read).

Every column is kept as it is except ``vector``, which becomes the scheme's (a
``fixed_size_list<float32>``), ``status`` and ``error`` (a block that cannot vectorise a row says so
there, as extraction does), and the schema metadata (``binfeat.*``: the new scheme, its version, the
rows' feature version, the groups, the dimension names).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import numpy as np
import pyarrow as pa

from extract.matrix import Plan, plan_vectors
from extract.schemes import RowBatch, read_metadata


def output_schema(schema: pa.Schema, plan: Plan, feature_version: str) -> pa.Schema:
    """``schema`` with the scheme's vector column (replaced, or appended) and metadata."""
    vector = pa.field("vector", pa.list_(pa.float32(), plan.scheme.dims))
    fields = [vector if f.name == "vector" else f for f in schema]
    if "vector" not in schema.names:
        fields.append(vector)
    meta = dict(schema.metadata or {})
    meta.update({k.encode(): v.encode() for k, v in plan.scheme.metadata(feature_version).items()})
    return pa.schema(fields, metadata=meta)


def revectorize_batch(batch: pa.RecordBatch, plan: Plan, schema: pa.Schema) -> pa.RecordBatch:
    """One batch with the plan's vectors (``schema`` from :func:`output_schema`)."""
    scheme = plan.scheme
    matrix, valid, errors = scheme.vectorize(RowBatch.from_arrow(batch, scheme.reads))
    columns = {name: batch.column(name) for name in batch.schema.names}
    if any(errors) and "error" in columns:
        status, error = columns["status"].to_pylist(), columns["error"].to_pylist()
        for i, messages in enumerate(errors):
            if messages:
                error[i] = "; ".join([error[i], *messages] if error[i] else messages)
                status[i] = "partial" if status[i] == "ok" else status[i]
        columns["status"], columns["error"] = pa.array(status, pa.string()), pa.array(error, pa.string())
    matrix[~valid] = 0.0  # null entries still hold values in a fixed-size list
    columns["vector"] = pa.FixedSizeListArray.from_arrays(
        pa.array(matrix.reshape(-1), pa.float32()), scheme.dims, mask=pa.array(~valid))
    return pa.RecordBatch.from_arrays([columns[f.name] for f in schema], schema=schema)


def revectorize(batches: Iterable[pa.RecordBatch], input_schema: pa.Schema, scheme: str,
                feature_version: str | None = None) -> tuple[pa.Schema, Iterator[pa.RecordBatch]]:
    """(the output schema, the re-vectorised batches) for rows of ``input_schema``."""
    plan = plan_vectors(input_schema.remove_metadata(), scheme)  # never the stored vector: computed again
    version = feature_version or read_metadata(input_schema.metadata).get("feature_version", "")
    schema = output_schema(input_schema, plan, version)
    return schema, (revectorize_batch(b, plan, schema) for b in batches)


def feature_versions(values: Iterable[str | None]) -> str:
    """The rows' feature versions as one text (comma-separated when they differ)."""
    return ",".join(sorted({v for v in values if v}))


def vector_matrix(batch: pa.RecordBatch, dims: int) -> np.ndarray:
    """A batch's ``vector`` column as a (rows, dims) float32 matrix (NaN for null vectors)."""
    column = batch.column("vector")
    out = np.full((batch.num_rows, dims), np.nan, dtype=np.float32)
    valid = column.is_valid().to_numpy(zero_copy_only=False)
    out[valid] = column.flatten().to_numpy(zero_copy_only=False).reshape(-1, dims)
    return out
