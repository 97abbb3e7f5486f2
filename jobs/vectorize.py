"""``binfeat vectorize``: re-vectorise a stored feature dataset with a scheme, without reading a binary.

Each input Parquet file becomes one output file with the same rows in the same order (every column
kept, ``vector`` and its metadata replaced; see :mod:`extract.revectorize`). Locally the files are
converted one after the other; with a Spark master, one task per file. Either way the dataset is
written next to OUTPUT and published atomically, with its summary, as ``binfeat extract`` does.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

import pyarrow as pa

from jobs.output import SUMMARY_IN_DATASET, check_output, publish, summary_path, write_json_atomic
from jobs.part_writer import parquet_options
from jobs.staging import RunStaging, remove_stale

BATCH_ROWS = 1024
PART_ROWS = 65536  # rows per output file when re-vectorising a store (one file per input file otherwise)
STATUS_SCHEMA = pa.schema([("file", pa.int32()), ("rows", pa.int64())])


def out_name(index: int) -> str:
    return f"part-{index:05d}.parquet"


def check_input(features: str, scheme: str) -> tuple[list[str], str]:
    """(the input's Parquet files, the rows' feature versions); MatrixError/SourceError when the rows
    cannot be vectorised with ``scheme`` (said before any work starts)."""
    import pyarrow.parquet as pq

    from extract.matrix import plan_vectors
    from extract.revectorize import feature_versions
    from extract.sources import parquet_files

    files = parquet_files(features)
    schema = pq.read_schema(files[0])
    plan_vectors(schema.remove_metadata(), scheme)
    versions = feature_versions(v for f in files for v in pq.read_table(f, columns=["feature_version"])
                                .column("feature_version").unique().to_pylist())
    return files, versions


def convert(source: str, target: str, scheme: str, feature_version: str) -> int:
    """Re-vectorise one Parquet file into ``target`` (written whole, then renamed); returns its rows."""
    import pyarrow.parquet as pq

    from extract.revectorize import revectorize

    reader = pq.ParquetFile(source)
    schema, batches = revectorize(reader.iter_batches(batch_size=BATCH_ROWS), reader.schema_arrow, scheme,
                                  feature_version)
    return write_file(schema, batches, target)


def write_file(schema: pa.Schema, batches: Iterable[pa.RecordBatch], target: str) -> int:
    """Write ``batches`` to ``target`` (a temporary name, then renamed); returns the rows written."""
    import pyarrow.parquet as pq

    tmp = f"{target}.{uuid.uuid4().hex[:8]}.tmp"
    rows = 0
    try:
        with pq.ParquetWriter(tmp, schema, **parquet_options(schema)) as writer:
            for b in batches:
                writer.write_batch(b)
                rows += b.num_rows
        os.replace(tmp, target)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return rows


def check_store_input(source, date: str, scheme: str) -> str:
    """The feature version of a store's rows as of ``date``; StoreError, MatrixError when they cannot
    be vectorised with ``scheme`` (said before any work starts)."""
    from extract.matrix import plan_vectors

    reader = source.feature_batches(date, None)  # its schema only: no data file is opened
    plan_vectors(reader.schema.remove_metadata(), scheme)
    reader.close()
    return source.feature_version(date)


def run_store(source, date: str, output: str, scheme: str, *, part_rows: int = PART_ROWS) -> dict:
    """Re-vectorise the corpus as of ``date`` (a :class:`jobs.corpus.source.StoreSource`) into the
    dataset OUTPUT, here, streamed: one part file per ``part_rows`` rows, in the store's read order."""
    from extract.revectorize import revectorize

    t0 = time.monotonic()
    started = datetime.now(UTC)
    output = os.path.abspath(output)
    check_output(output)
    version = check_store_input(source, date, scheme)
    remove_stale(output)
    reader = source.feature_batches(date, None)
    schema, batches = revectorize(reader, reader.schema, scheme, version)
    with RunStaging.create(output) as staging:
        rows = files = 0
        for index, part in enumerate(_parts(batches, part_rows)):
            rows += write_file(schema, part, str(staging.dataset / out_name(index)))
            files += 1
        if files == 0:  # an empty corpus still gives a dataset with the schema
            write_file(schema, iter(()), str(staging.dataset / out_name(0)))
            files = 1
        summary = {"input": f"{source.cfg.describe() if source.cfg else 'store'} as of {date}", "output": output,
                   "scheme": scheme, "feature_version": version, "files": files, "rows": rows, "engine": "local",
                   "started_at": started.isoformat(timespec="seconds"), "duration_s": round(time.monotonic() - t0, 3)}
        write_json_atomic(staging.dataset / SUMMARY_IN_DATASET, summary, tmp_dir=staging.root)
        publish(staging.dataset, output, previous=staging.root / "previous")
        write_json_atomic(summary_path(output), summary, tmp_dir=staging.root)
    return summary


def _parts(batches: Iterator[pa.RecordBatch], part_rows: int) -> Iterator[Iterator[pa.RecordBatch]]:
    """Consecutive runs of ``batches`` of about ``part_rows`` rows each (a batch is never split)."""
    pending = next(batches, None)
    while pending is not None:
        def run() -> Iterator[pa.RecordBatch]:
            nonlocal pending
            n = 0
            while pending is not None and (n == 0 or n + pending.num_rows <= part_rows):
                n += pending.num_rows
                yield pending
                pending = next(batches, None)

        yield run()


@dataclass
class _Converter:
    """The function Spark runs per file id (``mapInArrow`` over one id per file)."""

    files: list[str]
    dataset: str
    scheme: str
    feature_version: str

    def __call__(self, batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        for b in batches:
            for i in b.column(0).to_pylist():
                rows = convert(self.files[i], os.path.join(self.dataset, out_name(i)), self.scheme,
                               self.feature_version)
                yield pa.record_batch([pa.array([i], pa.int32()), pa.array([rows], pa.int64())], schema=STATUS_SCHEMA)


def run(features: str, output: str, scheme: str, *, master: str | None = None, spark=None,
        conf: dict | None = None) -> dict:
    """Re-vectorise FEATURES into OUTPUT; returns the summary (also written next to OUTPUT)."""
    t0 = time.monotonic()
    started = datetime.now(UTC)
    output = os.path.abspath(output)
    check_output(output)
    files, versions = check_input(features, scheme)
    remove_stale(output)
    with RunStaging.create(output) as staging:
        if master is None and spark is None:
            rows = sum(convert(f, str(staging.dataset / out_name(i)), scheme, versions) for i, f in enumerate(files))
            used = "local"
        else:
            rows, used = _on_spark(files, str(staging.dataset), scheme, versions, master, spark, conf)
        summary = {"input": features, "output": output, "scheme": scheme, "feature_version": versions,
                   "files": len(files), "rows": rows, "engine": used,
                   "started_at": started.isoformat(timespec="seconds"),
                   "duration_s": round(time.monotonic() - t0, 3)}
        write_json_atomic(staging.dataset / SUMMARY_IN_DATASET, summary, tmp_dir=staging.root)
        publish(staging.dataset, output, previous=staging.root / "previous")
        write_json_atomic(summary_path(output), summary, tmp_dir=staging.root)
    return summary


def _on_spark(files, dataset, scheme, versions, master, spark, conf) -> tuple[int, str]:
    from jobs.spark_types import spark_schema

    own = spark is None
    if own:
        from jobs.session import spark_session

        spark = spark_session(master, app_name="binfeat-vectorize", conf=conf, coordinator_jvm=True)
    try:
        ids = spark.range(0, len(files), 1, numPartitions=len(files))
        status = ids.mapInArrow(_Converter(files, dataset, scheme, versions), spark_schema(STATUS_SCHEMA)).toArrow()
        rows = dict(zip(status.column("file").to_pylist(), status.column("rows").to_pylist(), strict=True))
        if set(rows) != set(range(len(files))):
            raise RuntimeError(f"{len(files) - len(rows)} file(s) were not converted")
        return int(sum(rows.values())), spark.sparkContext.master
    finally:
        if own:
            spark.stop()
