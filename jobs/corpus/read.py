"""Reading the corpus as of a date: features joined with labels, as Arrow, a file, or a file plan.

As of D (see :mod:`jobs.corpus.tags`): the ``features`` rows of the snapshot tagged ``corpus-D``
with ``ingest_date <= D`` and D's feature version, left-joined by sha256 with the ``labels``
snapshot tagged ``corpus-D``. Every data file holds one feature version and one ingest date (the
partition), so pyiceberg's plan for those two filters *is* the set of rows: the files are read
whole (the columns asked for), here with pyarrow and elsewhere by DuckDB, polars or Spark
(:func:`plan_as_of`), and the row count is checked against D's record.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.compute as pc

from jobs.corpus.catalog import StoreConfig, StoreError, Tables, open_tables
from jobs.corpus.schema import conform, features_schema, labels_schema
from jobs.corpus.tags import check_date, published_dates, read_record, tag_snapshot_id

# Label columns in a joined row (labels' source/updated_at renamed: a feature row has neither).
JOINED_LABELS = {
    "label": "label", "family": "family", "label_source": "source", "first_seen": "first_seen",
    "label_updated_at": "updated_at",
}  # fmt: skip


@dataclass(frozen=True)
class AsOf:
    """What reading as of D needs: both snapshots, the feature version and the row count."""

    date: str
    feature_version: str
    features_snapshot_id: int
    labels_snapshot_id: int | None
    rows: int


@dataclass(frozen=True)
class AsOfPlan:
    """The data files as of D, for engines that read Parquet (DuckDB, polars, Spark)."""

    as_of: AsOf
    features_files: list[str]
    labels_files: list[str]

    @property
    def features_where(self) -> str:
        """The SQL guard to apply to the features files (a no-op on a healthy store)."""
        return f"ingest_date <= DATE '{self.as_of.date}' AND feature_version = '{self.as_of.feature_version}'"


def features_filter(date: str, version: str):
    from pyiceberg.expressions import And, EqualTo, LessThanOrEqual

    return And(LessThanOrEqual("ingest_date", check_date(date)), EqualTo("feature_version", version))


def _single_version_files(table, snapshot_id: int, date: str, version: str) -> list:
    """The plan's file scan tasks; each must hold ``version`` only (binfeat never mixes versions in a file)."""
    from jobs.corpus.antijoin import version_bounds

    tasks = list(table.scan(snapshot_id=snapshot_id, row_filter=features_filter(date, version)).plan_files())
    mixed = [t.file.file_path for t in tasks if version_bounds(table, t) != (version, version)]
    if mixed:
        raise StoreError(f"data file(s) hold several feature versions, the store is damaged: {mixed[0]}")
    return tasks


def count_rows(table, snapshot_id: int | None, date: str, version: str) -> int:
    """Rows as of D in a snapshot, from the manifests alone (no data file opened)."""
    if snapshot_id is None:
        return 0
    return sum(t.file.record_count for t in _single_version_files(table, snapshot_id, date, version))


def iter_keys(table, snapshot_id: int | None, date: str, version: str) -> Iterator[pa.ChunkedArray]:
    """sha256 of the rows as of D in a snapshot, ~262,144 at a time (one column read)."""
    from jobs.corpus.antijoin import chunked, read_columns

    if snapshot_id is None:
        return
    paths = [t.file.file_path for t in _single_version_files(table, snapshot_id, date, version)]
    for chunk in chunked(read_columns(table, paths, ("sha256",))):
        yield chunk.column("sha256")


def as_of(tables: Tables, date: str) -> AsOf:
    """D's snapshots and feature version; StoreError when D is not (or no longer) published."""
    check_date(date)
    record = read_record(tables.features, date)
    if record is None:
        dates = published_dates(tables.features)
        hint = f"published dates: {dates[0]} .. {dates[-1]} ({len(dates)})" if dates else "nothing is published yet"
        raise StoreError(f"the corpus as of {date} is not published or was expired ({hint})")
    labels_sid = tag_snapshot_id(tables.labels, date)
    if labels_sid != record.labels_snapshot_id:
        raise StoreError(f"the labels tag of {date} does not match its record: the store is damaged")
    return AsOf(date, record.feature_version, record.features_snapshot_id, labels_sid, record.rows)


def labels_as_of(tables: Tables, at: AsOf) -> pa.Table:
    """Every label known on D (one row per sha256)."""
    if at.labels_snapshot_id is None:
        return labels_schema().empty_table()
    return conform(tables.labels.scan(snapshot_id=at.labels_snapshot_id).to_arrow(), labels_schema())


def snapshot_schema(table, snapshot_id: int) -> pa.Schema:
    """The Arrow schema a snapshot was written with (columns added later are not part of it)."""
    snap = table.metadata.snapshot_by_id(snapshot_id)
    schema = table.metadata.schema_by_id(snap.schema_id) if snap is not None and snap.schema_id is not None else None
    return (schema or table.schema()).as_arrow()


def _columns(stored: pa.Schema, columns: list[str] | None) -> tuple[list[str], list[str]]:
    """(feature columns to read, label columns to join) for the requested output columns."""
    if not columns:
        return stored.names, list(JOINED_LABELS)
    unknown = [c for c in columns if c not in stored.names and c not in JOINED_LABELS]
    if unknown:
        raise StoreError(f"unknown column(s) {', '.join(unknown)}; the corpus as of that date has: "
                         f"{', '.join(stored.names)}")  # fmt: skip
    return [c for c in columns if c in stored.names], [c for c in columns if c in JOINED_LABELS]


def iter_as_of(
    date: str, *, cfg: StoreConfig | None = None, tables: Tables | None = None, columns: list[str] | None = None
) -> Iterator[pa.Table]:
    """The corpus as of D, a table per batch: the requested columns, labels joined by sha256."""
    tables = tables or open_tables(_need(cfg))
    at = as_of(tables, date)
    stored = snapshot_schema(tables.features, at.features_snapshot_id)
    feats, label_cols = _columns(stored, columns)
    read_cols = feats if "sha256" in feats or not label_cols else ["sha256", *feats]
    types = features_schema_of(tables)
    out_schema = pa.schema([types.field(c) if c in types.names else stored.field(c) for c in read_cols])
    labels = labels_as_of(tables, at) if label_cols else None
    seen = 0
    for path in sorted(t.file.file_path for t in _single_version_files(tables.features, at.features_snapshot_id,
                                                                         date, at.feature_version)):  # fmt: skip
        for batch in _read_file(tables.features, path, read_cols):
            table = conform(batch, out_schema)
            seen += table.num_rows
            if labels is not None:
                idx = pc.index_in(table.column("sha256"), value_set=labels.column("sha256"))
                for out_name in label_cols:
                    table = table.append_column(out_name, labels.column(JOINED_LABELS[out_name]).take(idx))
            yield table.select(columns) if columns else table
    if seen != at.rows:
        raise StoreError(f"read {seen} rows as of {date}, its record says {at.rows}: the store is damaged")


def _read_file(table, path: str, columns: list[str]) -> Iterator[pa.RecordBatch]:
    """A data file's batches, the given columns only (those the file lacks are added as null later).

    Why pyarrow and not pyiceberg's reader: pyiceberg 0.12 reads a null list as an empty list,
    and a raw feature that is null (the group failed) must stay null. Every file binfeat writes
    names its columns as the table does (no column is ever renamed), so names are the mapping.
    """
    import pyarrow.parquet as pq

    from jobs.corpus.schema import ROW_GROUP_ROWS

    with table.io.new_input(path).open() as stream:
        pf = pq.ParquetFile(stream)
        present = [c for c in columns if c in pf.schema_arrow.names]
        yield from pf.iter_batches(batch_size=ROW_GROUP_ROWS, columns=present)


def features_schema_of(tables: Tables) -> pa.Schema:
    """The Arrow types binfeat wrote (the table's schema, with the store's own types where it knows them)."""
    from jobs.corpus.extraction import load_contract

    try:
        return features_schema(load_contract().schema)
    except Exception:  # no extract here (a reader without binfeat's feature core): the table's own types
        return tables.features.schema().as_arrow()


def read_as_of(
    date: str, *, cfg: StoreConfig | None = None, tables: Tables | None = None, columns: list[str] | None = None
) -> pa.Table:
    """The corpus as of D as one Arrow table (``.to_pandas()``, ``polars.from_arrow`` from it).

    The whole corpus with its vectors is large: pass ``columns``, or stream with :func:`iter_as_of`.
    """
    parts = list(iter_as_of(date, cfg=cfg, tables=tables, columns=columns))
    if not parts:
        raise StoreError(f"nothing to read as of {date}")
    return pa.concat_tables(parts)


def plan_as_of(date: str, *, cfg: StoreConfig | None = None, tables: Tables | None = None) -> AsOfPlan:
    """The Parquet files as of D (URIs as the catalog stores them: file:// or s3://)."""
    tables = tables or open_tables(_need(cfg))
    at = as_of(tables, date)
    feats = sorted(t.file.file_path for t in _single_version_files(tables.features, at.features_snapshot_id, date,
                                                                    at.feature_version))  # fmt: skip
    labels = []
    if at.labels_snapshot_id is not None:
        labels = sorted(t.file.file_path for t in tables.labels.scan(snapshot_id=at.labels_snapshot_id).plan_files())
    return AsOfPlan(at, feats, labels)


def write_as_of(date: str, out: str, *, cfg: StoreConfig, columns: list[str] | None = None) -> dict:
    """Write the corpus as of D to one Parquet file ``out`` (streamed; atomic rename)."""
    import os

    import pyarrow.parquet as pq

    from jobs.corpus.schema import parquet_options

    tmp = f"{out}.tmp-{os.getpid()}"
    rows = 0
    writer = None
    try:
        for table in iter_as_of(date, cfg=cfg, columns=columns):
            if writer is None:
                writer = pq.ParquetWriter(tmp, table.schema, **parquet_options(table.schema))
            writer.write_table(table)
            rows += table.num_rows
        if writer is None:
            raise StoreError(f"nothing to read as of {date}")
        writer.close()
        writer = None
        os.replace(tmp, out)
    finally:
        if writer is not None:
            writer.close()
        if os.path.exists(tmp):
            os.unlink(tmp)
    return {"date": date, "rows": rows, "out": out}


def _need(cfg: StoreConfig | None) -> StoreConfig:
    if cfg is None:
        raise StoreError("give the store (cfg) or its opened tables")
    return cfg
