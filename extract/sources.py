"""Where stored feature rows come from: a Parquet file or dataset, Arrow data, or a feature store.

:func:`open_source` turns any of them into a :class:`Source`: record batches in the source's own
order, read lazily (only the columns asked for), and the number of rows when it can be known without
reading them. A feature store takes part through a small protocol, so extract never imports the
store's code:

.. code-block:: python

    class FeatureStore(Protocol):
        def feature_batches(self, as_of=None, columns=None) -> pyarrow.RecordBatchReader:
            '''Feature rows (the extract contract's columns and ``label``) as they stood on ``as_of``
            (a date, "YYYY-MM-DD", or None for the latest), labels joined as known on that date;
            only ``columns`` when given (None: every column).'''

        def count_rows(self, as_of=None) -> int:  # optional: lets a matrix be allocated up front
            ...

        def count_not_error(self, as_of=None) -> int:  # optional: the same when error rows are dropped
            ...

Any object with a ``feature_batches`` method is such a store (the corpus store in ``jobs.corpus``
implements it: ``jobs.corpus.source.StoreSource``).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import pyarrow as pa

BATCH_ROWS = 4096  # rows per batch read: a batch's raw values as Python objects stay small

@runtime_checkable
class FeatureStore(Protocol):
    def feature_batches(self, as_of: Any = None, columns: Sequence[str] | None = None) -> pa.RecordBatchReader: ...


class SourceError(ValueError):
    """The source cannot give feature rows (no such path, no Parquet there, ``as_of`` without a store)."""


@dataclass
class Source:
    """Feature rows, read batch by batch.

    ``schema``: every column the source has (with its metadata); ``batches(columns)``: the rows in
    order, those columns only (missing ones are left out); ``rows``: how many rows, or None when
    that is known only after reading them.
    """

    schema: pa.Schema
    batches: Callable[[Sequence[str]], Iterator[pa.RecordBatch]]
    rows: int | None
    count_where_not_error: Callable[[], int | None]


def parquet_files(path: str | os.PathLike) -> list[str]:
    """The Parquet files of a file or a dataset folder, sorted by path (a job's part files in part
    order), skipping names that start with ``_`` or ``.`` (summaries, staging)."""
    p = Path(path)
    if p.is_file():
        return [str(p)]
    if not p.is_dir():
        raise SourceError(f"no such file or folder: {p}")
    files = sorted(str(f) for f in p.rglob("*.parquet")
                   if not any(part.startswith(("_", ".")) for part in f.relative_to(p).parts))
    if not files:
        raise SourceError(f"no Parquet files in {p}")
    return files


def _columns(schema: pa.Schema, wanted: Sequence[str]) -> list[str]:
    return [c for c in wanted if c in schema.names]


def open_source(source: Any, as_of: Any = None) -> Source:
    """A :class:`Source` for a path (Parquet file or dataset folder), a ``pyarrow`` Table, RecordBatch,
    RecordBatchReader or Dataset, or a :class:`FeatureStore` (``as_of`` is for a store only)."""
    import pyarrow.dataset as ds

    if isinstance(source, FeatureStore) and not isinstance(source, (pa.Table, pa.RecordBatch)):
        return _store_source(source, as_of)
    if as_of is not None:
        raise SourceError("as_of needs a feature store (an object with feature_batches(as_of, columns)); "
                          f"got {type(source).__name__}")
    if isinstance(source, (str, os.PathLike)):
        return _files_source(parquet_files(source))
    if isinstance(source, pa.RecordBatch):
        source = pa.Table.from_batches([source])
    if isinstance(source, pa.Table):
        table = source
        return Source(table.schema, lambda cols: iter(table.select(_columns(table.schema, cols)).to_batches(
            max_chunksize=BATCH_ROWS)), table.num_rows, lambda: _not_error(table.column("status"))
            if "status" in table.schema.names else table.num_rows)
    if isinstance(source, ds.Dataset):
        dataset = source
        schema = _dataset_schema(dataset)

        def count() -> int:
            if "status" not in schema.names:
                return dataset.count_rows()
            return dataset.count_rows(filter=ds.field("status") != "error") + dataset.count_rows(
                filter=ds.field("status").is_null())

        def batches(cols: Sequence[str]) -> Iterator[pa.RecordBatch]:
            return iter(dataset.to_batches(columns=_columns(schema, cols), batch_size=BATCH_ROWS,
                                           batch_readahead=1, fragment_readahead=1))

        return Source(schema, batches, dataset.count_rows(), count)
    if isinstance(source, pa.RecordBatchReader):
        reader, used = source, [False]

        def once(cols: Sequence[str]) -> Iterator[pa.RecordBatch]:
            if used[0]:
                raise SourceError("a RecordBatchReader can be read only once")
            used[0] = True
            keep = _columns(reader.schema, cols)
            return (b.select(keep) for b in reader)

        return Source(reader.schema, once, None, lambda: None)
    raise SourceError(f"cannot read feature rows from a {type(source).__name__}: give a Parquet path, an Arrow "
                      "table, dataset or RecordBatchReader, or a store with feature_batches(as_of, columns)")


def _files_source(files: list[str]) -> Source:
    """Parquet files read one after the other, a few thousand rows at a time: the memory a read needs
    stays one batch's (a dataset scan reads ahead whole files in parallel)."""
    import pyarrow.dataset as ds
    import pyarrow.parquet as pq

    schema = _dataset_schema(ds.dataset(files, format="parquet"))

    def batches(cols: Sequence[str]) -> Iterator[pa.RecordBatch]:
        for f in files:
            pf = pq.ParquetFile(f)
            yield from pf.iter_batches(batch_size=BATCH_ROWS, columns=_columns(pf.schema_arrow, cols),
                                       use_threads=False)

    def count() -> int:
        if "status" not in schema.names:
            return rows
        return sum(_not_error(pq.read_table(f, columns=["status"]).column("status")) for f in files)

    rows = sum(pq.ParquetFile(f).metadata.num_rows for f in files)
    return Source(schema, batches, rows, count)


def _dataset_schema(dataset) -> pa.Schema:
    """The dataset's schema with the metadata of its first file (pyarrow unifies without it)."""
    import pyarrow.parquet as pq

    files = getattr(dataset, "files", None)
    if files:
        return dataset.schema.with_metadata(pq.read_schema(files[0]).metadata or {})
    return dataset.schema


def _not_error(status: pa.ChunkedArray | pa.Array) -> int:
    import pyarrow.compute as pc

    return len(status) - int(pc.sum(pc.equal(status, "error")).as_py() or 0)


def _store_source(store: FeatureStore, as_of: Any) -> Source:
    probe = store.feature_batches(as_of, None)  # lazy: only its schema is read here
    schema = probe.schema
    if hasattr(probe, "close"):
        probe.close()
    counter = getattr(store, "count_rows", None)
    rows = counter(as_of) if callable(counter) else None
    not_error = getattr(store, "count_not_error", None)
    return Source(schema, lambda cols: iter(store.feature_batches(as_of, _columns(schema, cols))), rows,
                  (lambda: not_error(as_of)) if callable(not_error) else lambda: None)
