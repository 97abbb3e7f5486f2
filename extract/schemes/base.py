"""A vector scheme: a declared, versioned layout that turns a window of stored raw rows into a matrix.

A scheme is an ordered list of blocks. Each block owns a contiguous slice of the vector, says which
raw columns it reads, and fills its slice for a whole window of rows at once into a preallocated
float32 matrix (the extractor vectorises each window of files so; ``binfeat vectorize`` and
``extract.training_matrix`` each batch of stored rows). A block works from the raw values alone: a
stored corpus is re-vectorised without reading a binary again.

Names: every dimension's name is ``<block>__<dim>`` over ``[A-Za-z0-9_]`` (what LightGBM and other
tools accept); a block's name holds no ``__``, so a name splits back into (block, dim) at its first
``__``, and :meth:`Scheme.describe` gives the dimension's meaning.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from extract.registry import SEPARATOR, ml_safe

SCHEMA_KEYS = ("scheme", "scheme_version", "feature_version", "groups", "dim_names")
METADATA_PREFIX = "binfeat."


@dataclass
class RowBatch:
    """A window of rows as a scheme reads them: identity columns and raw values by column name.

    ``raw[name][i]`` is row i's stored raw value (None when null); byte-level counts may be numpy
    arrays or lists.
    """

    n: int
    format: Sequence[str | None]
    status: Sequence[str | None]
    error: Sequence[str | None]
    raw: Mapping[str, Sequence[Any]]

    @classmethod
    def from_rows(cls, rows: Sequence[Mapping[str, Any]], columns: Iterable[str]) -> RowBatch:
        return cls(
            n=len(rows),
            format=[r.get("format") for r in rows],
            status=[r.get("status") for r in rows],
            error=[r.get("error") for r in rows],
            raw={c: [r.get(c) for r in rows] for c in columns},
        )

    @classmethod
    def from_arrow(cls, batch, columns: Iterable[str]) -> RowBatch:
        """From an Arrow record batch or table (stored features); a missing column reads as nulls."""
        n = batch.num_rows
        names = batch.schema.names

        def col(name: str) -> list:
            return batch.column(name).to_pylist() if name in names else [None] * n

        return cls(n=n, format=col("format"), status=col("status"), error=col("error"),
                   raw={c: _column_values(batch, c) if c in names else [None] * n for c in columns})


def _column_values(batch, name: str) -> list:
    """A raw column's values as ``compute`` returned them (:func:`extract.raw_types.python_values`:
    64-bit unsigned fields as int); list<int> columns (the byte histograms) as numpy rows, without a
    Python int per count."""
    import pyarrow as pa

    from extract.raw_types import python_values

    column = batch.column(name)
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks()
    t = column.type
    if (pa.types.is_list(t) or pa.types.is_large_list(t)) and pa.types.is_integer(t.value_type):
        offsets = column.offsets.to_numpy()
        values = column.values.to_numpy(zero_copy_only=False)
        valid = column.is_valid().to_numpy(zero_copy_only=False)
        return [values[offsets[i]:offsets[i + 1]] if valid[i] else None for i in range(len(column))]
    return python_values(column)


Fill = Callable[[RowBatch, Any, np.ndarray, list[list[str]]], None]


@dataclass(frozen=True)
class Block:
    """A contiguous part of a scheme's vector.

    ``fill(rows, context, out, errors)`` writes ``out`` (rows x dims, a view into the window's
    matrix) for every row, and appends one-line messages to ``errors[i]`` for rows it could not
    vectorise (their slice is NaN). ``labels`` say what each dimension means.
    """

    name: str
    labels: tuple[str, ...]
    reads: tuple[str, ...]
    fill: Fill
    doc: str = ""
    names: tuple[str, ...] = field(default=(), init=False)

    def __post_init__(self) -> None:
        if SEPARATOR in self.name or not self.name or self.name.endswith("_"):
            raise ValueError(f"block name {self.name!r} must be non-empty, without '__' or a trailing '_'")
        safe = tuple(ml_safe(label, self.name) for label in self.labels)
        if len(set(safe)) != len(safe) or not all(safe):
            raise ValueError(f"block {self.name!r}: dimension labels must stay unique as ML-safe names")
        object.__setattr__(self, "names", safe)

    @property
    def dims(self) -> int:
        return len(self.labels)


@dataclass(frozen=True)
class Scheme:
    """A versioned vector layout: blocks in order, plus the raw groups its rows carry."""

    name: str
    version: int
    blocks: tuple[Block, ...]
    groups: tuple[str, ...]  # the raw groups the rows carry (the selection, for binfeat)
    prepare: Callable[[RowBatch], Any] | None = None  # per-window context shared by the blocks
    doc: str = ""

    @property
    def dims(self) -> int:
        return sum(b.dims for b in self.blocks)

    @property
    def names(self) -> list[str]:
        """Every dimension's ML-safe name, in vector order: ``<block>__<dim>``."""
        return [f"{b.name}{SEPARATOR}{n}" for b in self.blocks for n in b.names]

    @property
    def reads(self) -> tuple[str, ...]:
        seen: dict[str, None] = {}
        for b in self.blocks:
            seen.update(dict.fromkeys(b.reads))
        return tuple(seen)

    def layout(self) -> list[dict]:
        """One entry per block: offset, length, name, meaning and the dimensions' names and labels."""
        out, offset = [], 0
        for b in self.blocks:
            out.append({"offset": offset, "length": b.dims, "block": b.name, "meaning": b.doc,
                        "names": list(b.names), "labels": list(b.labels)})
            offset += b.dims
        return out

    def describe(self, name: str) -> tuple[str, str]:
        """(block, the dimension's label) for one of :attr:`names`; KeyError for any other name."""
        block, sep, dim = name.partition(SEPARATOR)
        for b in self.blocks:
            if sep and b.name == block and dim in b.names:
                return block, b.labels[b.names.index(dim)]
        raise KeyError(f"{name!r} is not a dimension of scheme {self.name!r}")

    def fill(self, rows: RowBatch, out: np.ndarray) -> tuple[np.ndarray, list[list[str]]]:
        """Vectorise a window of rows into ``out`` (rows x dims float32, preallocated).

        Returns (valid, errors): ``valid[i]`` is False for a row with status ``error`` (no vector:
        its row of ``out`` is NaN), ``errors[i]`` the messages of the blocks that failed on row i.
        """
        if out.shape != (rows.n, self.dims) or out.dtype != np.float32:
            raise ValueError(f"out must be float32 of shape {(rows.n, self.dims)}, got {out.dtype} {out.shape}")
        errors: list[list[str]] = [[] for _ in range(rows.n)]
        context = self.prepare(rows) if self.prepare is not None else None
        start = 0
        for b in self.blocks:
            b.fill(rows, context, out[:, start:start + b.dims], errors)
            start += b.dims
        valid = np.array([s != "error" for s in rows.status], dtype=bool)
        out[~valid] = np.nan
        return valid, errors

    def vectorize(self, rows: RowBatch) -> tuple[np.ndarray, np.ndarray, list[list[str]]]:
        """:meth:`fill` into a new matrix: (matrix, valid, errors)."""
        out = np.empty((rows.n, self.dims), dtype=np.float32)
        valid, errors = self.fill(rows, out)
        return out, valid, errors

    def metadata(self, feature_version: str) -> dict[str, str]:
        """What a Parquet file's schema metadata says about its ``vector`` column (keys ``binfeat.*``)."""
        values = {"scheme": self.name, "scheme_version": str(self.version), "feature_version": feature_version,
                  "groups": json.dumps(list(self.groups)), "dim_names": json.dumps(self.names)}
        return {METADATA_PREFIX + k: values[k] for k in SCHEMA_KEYS}


def read_metadata(metadata: Mapping[bytes | str, bytes | str] | None) -> dict[str, Any]:
    """The ``binfeat.*`` entries of a schema's metadata, decoded (``groups``/``dim_names`` as lists)."""
    out: dict[str, Any] = {}
    for key, value in (metadata or {}).items():
        k = key.decode() if isinstance(key, bytes) else key
        if k.startswith(METADATA_PREFIX):
            v = value.decode() if isinstance(value, bytes) else value
            name = k[len(METADATA_PREFIX):]
            out[name] = json.loads(v) if name in ("groups", "dim_names") else v
    return out
