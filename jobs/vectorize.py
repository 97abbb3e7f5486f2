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
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

import pyarrow as pa

from jobs.output import SUMMARY_IN_DATASET, check_output, publish, summary_path, write_json_atomic
from jobs.part_writer import parquet_options
from jobs.staging import RunStaging, remove_stale

BATCH_ROWS = 1024
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
