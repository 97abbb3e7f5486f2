"""The corpus store's one adapter to the extraction job, its inputs and S3 (and the executor writer).

Everything the store takes from ``jobs.extract_features``, ``jobs.inputs``, ``jobs.planning`` and
``jobs.s3`` is imported here and nowhere else in ``jobs.corpus``, so a reorganisation of those
modules changes a few import lines of this file only.

:class:`WarehouseWriter` runs on the executors: it extracts one planned partition with the
extraction job's :class:`PartitionExtractor`, keeps the rows whose sha256 is the one the night
anti-joined, casts them to the table's Iceberg-exact types, adds ``ingest_date`` and ``run_id``, and
writes Parquet files with pyarrow straight into the table's data folder (local or S3, through the
table's own FileIO). Only a small status row per input and per file goes back to Spark: feature
rows never pass through the JVM or the driver. A file becomes part of the table only when the
driver commits it; files of failed or killed attempts are orphans that maintenance removes.
"""

from __future__ import annotations

import os
import re
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from importlib import import_module
from typing import Any

import pyarrow as pa

from jobs.corpus.schema import ROW_GROUP_ROWS
from jobs.input_file import InputError, InputFile
from jobs.inputs import check_spec, list_inputs
from jobs.partition import PartitionExtractor
from jobs.planning import DEFAULT_PER_FILE_COST, plan_partitions
from jobs.s3 import fetch, is_s3, s3_client, split_s3

__all__ = [
    "CONTRACT_PLUGIN_ENV", "Contract", "InputError", "InputFile", "WarehouseWriter", "check_spec", "fetch",
    "io_properties", "is_s3", "list_inputs", "load_contract", "night_files", "plan_night", "s3_client", "split_s3",
    "write_night_files",
]  # fmt: skip

# A contract plugin: "module:callable" taking extract's Contract and returning the one the store
# writes (an added column, a suffixed feature version). For tests and experiments; unset in
# production. Read by the driver only; executors get the plugin's functions by reference.
CONTRACT_PLUGIN_ENV = "BINFEAT_CONTRACT_PLUGIN"
_KIND = re.compile(r"^\s*([A-Za-z0-9_.-]{1,40})")
# FileIO settings the executors need to write into the warehouse; catalog settings (tokens of a
# REST catalog, database URIs) stay on the driver.
_IO_PREFIXES = ("s3.", "client.", "gcs.", "adls.", "hdfs.", "oss.", "py-io-impl")


@dataclass(frozen=True)
class Contract:
    """What the store writes: the feature version, the contract schema and the vector layout.

    ``transform`` (executor side, a module-level function) turns extract's batch into the
    contract's columns; None for extract's own contract.
    """

    feature_version: str
    schema: pa.Schema
    layout: list[dict[str, Any]]
    transform: Callable[[pa.Table], pa.Table] | None = None


def load_contract() -> Contract:
    """extract's contract, or the one ``$BINFEAT_CONTRACT_PLUGIN`` makes of it."""
    import extract

    base = Contract(str(extract.FEATURE_VERSION), extract.output_schema(), extract.vector_layout())
    spec = os.environ.get(CONTRACT_PLUGIN_ENV, "").strip()
    if not spec:
        return base
    module, _, attr = spec.partition(":")
    try:
        plugin = getattr(import_module(module), attr or "plugin")
    except (ImportError, AttributeError) as exc:
        raise ValueError(f"${CONTRACT_PLUGIN_ENV}={spec!r}: cannot load it ({exc})") from None
    contract = plugin(base)
    if not isinstance(contract, Contract):
        raise ValueError(f"${CONTRACT_PLUGIN_ENV}={spec!r} returned {type(contract).__name__}, not a Contract")
    return contract


def io_properties(table) -> dict[str, str]:
    """The table FileIO's settings the executors need (storage only, never the catalog's)."""
    return {k: v for k, v in table.io.properties.items() if k.startswith(_IO_PREFIXES)}


# What an executor returns per input row ("row") and per written file ("file").
RESULT_SCHEMA = pa.schema(
    [
        ("kind", pa.string()),
        ("part", pa.int32()),
        ("sha256", pa.string()),  # the sha256 the night expects
        ("status", pa.string()),
        ("error_kind", pa.string()),
        ("good", pa.bool_()),  # extracted sha256 == expected: the row is in a written file
        ("file", pa.string()),
        ("file_rows", pa.int64()),
        ("file_bytes", pa.int64()),
    ]
)


@dataclass
class _OpenFile:
    location: str
    stream: Any
    writer: Any
    pending: list[pa.Table]
    rows: int = 0

    def add(self, table: pa.Table) -> None:
        self.pending.append(table)
        self.rows += table.num_rows
        if sum(t.num_rows for t in self.pending) >= ROW_GROUP_ROWS:
            self.flush()

    def flush(self) -> None:
        if self.pending:
            self.writer.write_table(pa.concat_tables(self.pending))
            self.pending = []


@dataclass
class WarehouseWriter:
    """The function Spark runs per partition id (``mapInArrow`` over ``range(partitions)``)."""

    extractor: PartitionExtractor
    expected: Any  # Broadcast of list[list[tuple[sha256, ingest_date ISO]]], aligned with the plan
    schema: pa.Schema  # the features table's Arrow schema (jobs.corpus.schema.features_schema)
    data_location: str  # "<table location>/data"
    io_props: dict[str, str]
    run_id: str
    file_prefix: str  # "<date>-<night id>": every file of a night starts with it
    transform: Callable[[pa.Table], pa.Table] | None = None

    def __call__(self, batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        from pyiceberg.io import load_file_io

        io = load_file_io(self.io_props, self.data_location)
        for b in batches:
            for pid in b.column(0).to_pylist():
                yield self._partition(io, int(pid))

    def _partition(self, io, pid: int) -> pa.RecordBatch:
        import datetime as dt

        import pyarrow.compute as pc

        expected = self.expected.value[pid]
        contract_cols = [f for f in self.schema if f.name not in ("ingest_date", "run_id")]
        contract_schema = pa.schema(contract_cols)
        files: dict[str, _OpenFile] = {}
        rows: dict[str, list] = {k: [] for k in ("sha256", "status", "error_kind", "good")}
        pos = 0
        one = pa.record_batch([pa.array([pid], pa.int64())], names=["id"])
        try:
            for out in self.extractor(iter([one])):
                exp = expected[pos : pos + out.num_rows]
                pos += out.num_rows
                table = pa.Table.from_batches([out])
                if self.transform is not None:
                    table = self.transform(table)
                want = pa.array([e[0] for e in exp], pa.string())
                good = pc.fill_null(pc.equal(table.column("sha256"), want), False)
                rows["sha256"] += want.to_pylist()
                rows["status"] += table.column("status").to_pylist()
                rows["error_kind"] += [_error_kind(s, e) for s, e in zip(table.column("status").to_pylist(),
                                                                          table.column("error").to_pylist(),
                                                                          strict=True)]  # fmt: skip
                rows["good"] += good.to_pylist()
                dates = [e[1] for e in exp]
                stored = _conform(table, contract_schema)
                stored = stored.append_column("ingest_date", pa.array([dt.date.fromisoformat(d) for d in dates],
                                                                      pa.date32()))  # fmt: skip
                stored = stored.append_column("run_id", pa.array([self.run_id] * stored.num_rows, pa.string()))
                for day in sorted(set(dates)):
                    mask = pc.and_(good, pc.equal(pa.array(dates), day))
                    part = stored.filter(mask)
                    if part.num_rows:
                        f = files.get(day) or self._open(io, pid, day)
                        files[day] = f
                        f.add(part)
            written = [self._close(io, f) for f in files.values()]
        except BaseException:
            for f in files.values():  # never leave a half-written file behind knowingly
                _discard(io, f)
            raise
        n = len(rows["sha256"])
        nf = len(written)
        return pa.record_batch(
            [
                pa.array(["row"] * n + ["file"] * nf),
                pa.array([pid] * (n + nf), pa.int32()),
                pa.array(rows["sha256"] + [None] * nf, pa.string()),
                pa.array(rows["status"] + [None] * nf, pa.string()),
                pa.array(rows["error_kind"] + [None] * nf, pa.string()),
                pa.array(rows["good"] + [None] * nf, pa.bool_()),
                pa.array([None] * n + [w[0] for w in written], pa.string()),
                pa.array([None] * n + [w[1] for w in written], pa.int64()),
                pa.array([None] * n + [w[2] for w in written], pa.int64()),
            ],
            schema=RESULT_SCHEMA,
        )

    def _open(self, io, pid: int, day: str) -> _OpenFile:
        import pyarrow.parquet as pq

        from jobs.corpus.schema import parquet_options

        name = f"{self.file_prefix}-{pid:05d}-{uuid.uuid4().hex[:8]}.parquet"
        location = f"{self.data_location}/ingest_date={day}/{name}"
        stream = io.new_output(location).create(overwrite=False)
        writer = pq.ParquetWriter(stream, self.schema, **parquet_options(self.schema))
        return _OpenFile(location, stream, writer, [])

    @staticmethod
    def _close(io, f: _OpenFile) -> tuple[str, int, int]:
        f.flush()
        f.writer.close()
        f.stream.close()
        return f.location, f.rows, len(io.new_input(f.location))


def _discard(io, f: _OpenFile) -> None:
    try:
        f.writer.close()
        f.stream.close()
        io.delete(f.location)
    except Exception:
        pass  # an orphan then: maintenance removes it


def _conform(table: pa.Table, schema: pa.Schema) -> pa.Table:
    from jobs.corpus.schema import conform

    return conform(table, schema)


def _error_kind(status: str | None, error: str | None) -> str:
    if status == "ok":
        return ""
    m = _KIND.match(error or "")
    return m.group(1) if m else "other"


@dataclass(frozen=True)
class NightFiles:
    """What the executors wrote: the files (location, rows, bytes) and one status row per input."""

    files: list[tuple[str, int, int]]
    rows: pa.Table  # RESULT_SCHEMA rows of kind "row"


def plan_night(
    todo: list[tuple[str, int, str, str]], *, cores: int, partitions: int | None = None
) -> tuple[list[list[tuple]], list[list[tuple[str, str]]]]:
    """Either engine's partitions of ``todo`` (path, size, expected sha256, ingest date): the
    extractor's plan entries and, aligned with them, the (sha256, ingest date) each row must have."""
    sizes = [t[1] for t in todo]
    target = None
    if partitions:
        total = sum(sizes) + DEFAULT_PER_FILE_COST * len(sizes)
        target = max(1, -(-total // partitions))
    idx_plan = plan_partitions(sizes, cores=cores, target_bytes=target)
    plan = [[(todo[i][0], todo[i][1], None, todo[i][2], None) for i in part] for part in idx_plan]
    expected = [[(todo[i][2], todo[i][3]) for i in part] for part in idx_plan]
    return plan, expected


def night_files(result: pa.Table) -> NightFiles:
    """The files and status rows of either engine's RESULT_SCHEMA rows."""
    import pyarrow.compute as pc

    file_rows = result.filter(pc.equal(result.column("kind"), "file"))
    files = sorted(
        zip(
            file_rows.column("file").to_pylist(),
            file_rows.column("file_rows").to_pylist(),
            file_rows.column("file_bytes").to_pylist(),
            strict=True,
        )
    )
    return NightFiles(files, result.filter(pc.equal(result.column("kind"), "row")))


def write_night_files(
    spark,
    todo: list[tuple[str, int, str, str]],
    *,
    contract: Contract,
    schema: pa.Schema,
    data_location: str,
    io_props: dict[str, str],
    run_id: str,
    file_prefix: str,
    s3_endpoint_url: str | None = None,
    partitions: int | None = None,
) -> NightFiles:
    """Extract ``todo`` (path, size, expected sha256, ingest date) on the executors into Parquet files."""
    if not todo:
        return NightFiles([], RESULT_SCHEMA.empty_table())
    from jobs.session import default_parallelism

    plan, expected = plan_night(todo, cores=default_parallelism(spark), partitions=partitions)
    import extract

    fn = WarehouseWriter(
        extractor=PartitionExtractor(
            plan=spark.sparkContext.broadcast(plan),
            options=None,
            s3_endpoint_url=s3_endpoint_url,
            follow_symlinks=True,
            with_label=False,
            out_schema=extract.output_schema(),
        ),
        expected=spark.sparkContext.broadcast(expected),
        schema=schema,
        data_location=data_location,
        io_props=io_props,
        run_id=run_id,
        file_prefix=file_prefix,
        transform=contract.transform,
    )
    from pyspark.sql.pandas.types import from_arrow_schema

    ids = spark.range(0, len(plan), 1, numPartitions=len(plan))
    return night_files(ids.mapInArrow(fn, from_arrow_schema(RESULT_SCHEMA)).toArrow())
