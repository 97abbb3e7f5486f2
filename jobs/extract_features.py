"""The Spark extraction job: INPUT files -> one feature row per file -> Parquet at OUTPUT.

Runnable as ``spark-submit jobs/extract_features.py INPUT OUTPUT [options]``, as
``binfeat extract INPUT OUTPUT [options]`` (local Spark by default) and as
``python -m jobs.extract_features``.

Why it is built this way: Spark's ``binaryFile`` source copies every file through the JVM several
times (a 700 MB file needed a 6 GB heap, 2 GiB is a hard limit). Here the driver only lists
(path, size), bin-packs the list into size-balanced partitions and broadcasts the plan; a
``mapInArrow`` over ``range(partitions)`` hands each Python worker its partition number, the worker
reads the bytes itself (local file or S3 via boto3) and calls ``extract.extract_batch``. The job
(:func:`run`) writes each partition's Parquet file from Python and returns only a small status row
per file to the JVM; :func:`features_dataframe` returns the feature rows as a DataFrame instead.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

if __name__ == "__main__" and __package__ in (None, ""):
    # Run as a script (spark-submit jobs/extract_features.py): sys.path[0] is jobs/ itself. Make the
    # packages importable (from --py-files, an install, or this checkout) and re-enter through the
    # package so that the functions Spark ships are pickled by reference, not by value.
    _here = os.path.dirname(os.path.abspath(__file__))
    sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != _here]
    import importlib.util

    if importlib.util.find_spec("jobs") is None:
        sys.path.insert(0, os.path.dirname(_here))
    from jobs.extract_features import main as _main

    sys.exit(_main(sys.argv[1:]))

import pyarrow as pa

from jobs import inputs as inputs_mod
from jobs.inputs import InputError, InputFile
from jobs.output import OutputError
from jobs.planning import DEFAULT_PER_FILE_COST, plan_partitions

BATCH_FILES = 256  # files per extract_batch call: amortises the call, fills the md5 lanes
BATCH_BYTES = 64 * 1024 * 1024  # bytes per call when contents are held in memory (S3)
EXIT_USAGE = 2
EXIT_FAILED = 1

# --------------------------------------------------------------------------------------------------
# Executor side
# --------------------------------------------------------------------------------------------------

_ERROR_TEMPLATE: dict[object, pa.RecordBatch] = {}


def _error_template(options) -> pa.RecordBatch:
    """extract's own error row for an unreadable path (cached per worker process).

    Rows for inputs we never hand to extract (FIFOs, devices, symlinks not followed, listing
    errors) are copies of it with path and message replaced, so they match extract's error rows
    column for column (identity nulls, vector fill, versions).
    """
    import extract

    key = repr(options)
    tmpl = _ERROR_TEMPLATE.get(key)
    if tmpl is None:
        with tempfile.TemporaryDirectory(prefix="binfeat-missing-") as d:
            missing = os.path.join(d, "missing")
            batch = pa.record_batch({"path": pa.array([missing], pa.string())})
            tmpl = extract.extract_batch(batch, options)
        _ERROR_TEMPLATE[key] = tmpl
    return tmpl


_PREPARED: set[tuple[int, str]] = set()  # (pid, repr(options)) warmed; a forked child warms again
_FROZEN_PID = 0  # the process that last ran gc.freeze() (a forked child freezes its own additions)


def prepare_worker(options) -> None:
    """Once per Python worker process (and options): warm the extractor, then freeze the heap.

    Why: Spark reuses Python workers across tasks and jobs, and pyspark's daemon runs a full
    ``gc.collect()`` after every task. With numpy, numba, pyarrow and the feature groups loaded
    that collection walks ~150,000 long-lived objects (~60-80 ms of CPU per task, as much as a
    few files' extraction). Warming first (imports, the compiled byte kernels, the extractor) and
    then ``gc.freeze()`` moves those objects out of the collector's sight, so the per-task
    collection only walks what the tasks allocate (~5 ms). Also run by :mod:`jobs.pyspark_daemon`
    before it forks the workers; a forked worker then freezes only what it added itself.
    """
    global _FROZEN_PID
    pid = os.getpid()
    key = (pid, repr(options))
    if key in _PREPARED:
        return
    import gc

    import pyarrow.parquet  # noqa: F401 - the writer's import, before the freeze

    import extract

    # a small in-memory input of no executable format: runs the byte kernels and row assembly,
    # never the parser worker (that starts with the first executable, as before)
    warm = pa.record_batch({"path": pa.array(["<warm-up>"]), "content": pa.array([bytes(4096)], pa.binary())})
    extract.extract_batch(warm, options)
    _PREPARED.add(key)
    if pid != _FROZEN_PID:
        gc.collect()
        gc.freeze()
        _FROZEN_PID = pid


def _error_rows(paths: list[str], messages: list[str], options) -> pa.Table:
    tmpl = _error_template(options)
    table = pa.Table.from_batches([tmpl] * len(paths)) if paths else tmpl.schema.empty_table()
    schema = table.schema
    for name, values, typ in (("path", paths, pa.string()), ("error", messages, pa.string())):
        i = schema.get_field_index(name)
        table = table.set_column(i, schema.field(i), pa.array(values, typ).cast(schema.field(i).type))
    i = schema.get_field_index("status")
    table = table.set_column(i, schema.field(i), pa.array(["error"] * len(paths)).cast(schema.field(i).type))
    return table


def _local_problem(path: str, follow_symlinks: bool) -> str | None:
    """Why a local path must not be handed to extract (None: let extract open it).

    extract itself opens without blocking and turns FIFOs, devices, directories and missing files
    into error rows; only the symlink policy, and a clearer message for a dangling link, are ours.
    """
    if not os.path.islink(path):
        return None
    if not follow_symlinks:
        return "symbolic link not followed (--no-follow-symlinks)"
    if not os.path.exists(path):
        return "dangling symbolic link"
    return None


@dataclass
class PartitionExtractor:
    """The function Spark runs per partition (pickled once per task; state kept small).

    ``plan`` is a broadcast of ``list[list[tuple(path, size, label, sha256, error)]]``.
    """

    plan: object  # Broadcast
    options: object
    s3_endpoint_url: str | None
    follow_symlinks: bool
    with_label: bool
    out_schema: pa.Schema
    acc_files: object = None
    acc_bytes: object = None
    acc_mismatch: object = None
    batch_files: int = BATCH_FILES
    batch_bytes: int = BATCH_BYTES
    s3_threads: int = 4

    def __call__(self, batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        prepare_worker(self.options)
        plan = self.plan.value
        for b in batches:
            for pid in b.column(0).to_pylist():
                yield from self._partition(plan[pid])

    def _chunks(self, entries: list[tuple]) -> Iterator[list[tuple]]:
        chunk: list[tuple] = []
        nbytes = 0
        for e in entries:
            if chunk and (len(chunk) >= self.batch_files or nbytes + e[1] > self.batch_bytes):
                yield chunk
                chunk, nbytes = [], 0
            chunk.append(e)
            nbytes += e[1]
        if chunk:
            yield chunk

    def _partition(self, entries: list[tuple]) -> Iterator[pa.RecordBatch]:
        from jobs.s3 import prefetch

        s3_uris = [e[0] for e in entries if e[4] is None and inputs_mod.is_s3(e[0])]
        fetched = iter(prefetch(s3_uris, self.s3_endpoint_url, threads=self.s3_threads)) if s3_uris else None
        try:
            for chunk in self._chunks(entries):
                table = self._extract_chunk(chunk, fetched)
                if self.acc_files is not None:
                    self.acc_files.add(len(chunk))
                    self.acc_bytes.add(sum(e[1] for e in chunk))
                yield from table.to_batches(max_chunksize=self.batch_files)
        finally:
            if fetched is not None:
                fetched.close()

    def _extract_chunk(self, chunk: list[tuple], fetched) -> pa.Table:
        import extract

        ex_paths: list[str] = []
        ex_content: list[bytes | None] = []
        ex_rename: dict[int, str] = {}  # row -> s3 uri, for objects extracted from a temp file
        ex_pos: list[int] = []
        err_paths: list[str] = []
        err_msgs: list[str] = []
        err_pos: list[int] = []
        cleanups = []
        for pos, (path, _size, _label, _sha, error) in enumerate(chunk):
            if error is None and inputs_mod.is_s3(path):
                f = next(fetched)
                cleanups.append(f)
                error = f.error
                if error is None:
                    if f.local_path:
                        ex_rename[len(ex_paths)] = path
                        ex_paths.append(f.local_path)
                        ex_content.append(None)
                    else:
                        ex_paths.append(path)
                        ex_content.append(f.content)
                    ex_pos.append(pos)
                    continue
            elif error is None:
                error = _local_problem(path, self.follow_symlinks)
                if error is None:
                    ex_paths.append(path)
                    ex_content.append(None)
                    ex_pos.append(pos)
                    continue
            err_paths.append(path)
            err_msgs.append(error)
            err_pos.append(pos)
        parts: list[pa.Table] = []
        try:
            if ex_paths:
                cols = {"path": pa.array(ex_paths, pa.string())}
                if any(c is not None for c in ex_content):
                    cols["content"] = pa.array(ex_content, pa.binary())
                out = pa.Table.from_batches([extract.extract_batch(pa.record_batch(cols), self.options)])
                if ex_rename:
                    i = out.schema.get_field_index("path")
                    fixed = [ex_rename.get(r, p) for r, p in enumerate(out.column(i).to_pylist())]
                    out = out.set_column(i, out.schema.field(i), pa.array(fixed, out.schema.field(i).type))
                parts.append(out)
        finally:
            for f in cleanups:
                f.cleanup()
        if err_paths:
            parts.append(_error_rows(err_paths, err_msgs, self.options))
        table = pa.concat_tables(parts) if len(parts) > 1 else parts[0]
        if err_pos:  # error rows were appended after extract's: put every row back in input order
            positions = ex_pos + err_pos
            order = sorted(range(len(positions)), key=positions.__getitem__)
            table = table.take(pa.array(order, pa.int64()))
        if self.acc_mismatch is not None:
            want = [e[3] for e in chunk]
            if any(want):
                got = table.column("sha256").to_pylist()
                bad = sum(1 for w, g in zip(want, got, strict=True) if w and g and w.lower() != g)
                if bad:
                    self.acc_mismatch.add(bad)
        if self.with_label:
            table = table.append_column(
                pa.field("label", pa.string()), pa.array([e[2] for e in chunk], pa.string())
            )
        table = table.select(self.out_schema.names)
        # the contract types already (the job's own writer): no per-column cast on every chunk
        return table if table.schema.equals(self.out_schema) else table.cast(self.out_schema)


# --------------------------------------------------------------------------------------------------
# Driver side
# --------------------------------------------------------------------------------------------------


_UNSIGNED = {
    pa.uint8(): pa.int16(),
    pa.uint16(): pa.int32(),
    pa.uint32(): pa.int64(),
    pa.uint64(): pa.decimal128(20, 0),  # 0 .. 2**64-1 exactly; int64 would wrap ELF addresses
}


def spark_safe_type(t: pa.DataType) -> pa.DataType:
    """The Arrow type Spark can hold for ``t``: unsigned integers widen, nested types recurse.

    Spark has no unsigned integers (mapInArrow rejects uint*), so a contract column such as
    ``elf_header.entry: uint64`` is carried as the next wider signed type, uint64 as
    decimal(20, 0); every value is kept exactly.
    """
    if t in _UNSIGNED:
        return _UNSIGNED[t]
    if pa.types.is_struct(t):
        return pa.struct([f.with_type(spark_safe_type(f.type)) for f in t])
    if pa.types.is_large_list(t):
        return pa.large_list(t.value_field.with_type(spark_safe_type(t.value_type)))
    if pa.types.is_list(t):
        return pa.list_(t.value_field.with_type(spark_safe_type(t.value_type)))
    if pa.types.is_map(t):
        return pa.map_(spark_safe_type(t.key_type), spark_safe_type(t.item_type))
    return t


def output_arrow_schema(with_label: bool) -> pa.Schema:
    """extract's contract schema (+ ``label``) with types Spark can carry (see spark_safe_type)."""
    import extract

    schema = extract.output_schema()
    if with_label and "label" not in schema.names:
        schema = schema.append(pa.field("label", pa.string()))
    return pa.schema([f.with_type(spark_safe_type(f.type)) for f in schema])


@dataclass
class _Accumulators:
    files: object
    bytes: object
    mismatch: object
    partitions: int = 0


def _make_plan(
    inputs: list[InputFile], cores: int, partitions: int | None, per_file_cost: int
) -> list[list[tuple]]:
    sizes = [f.size for f in inputs]
    target = None
    if partitions:
        total = sum(sizes) + per_file_cost * len(sizes)
        target = max(1, -(-total // partitions))
    idx_plan = plan_partitions(sizes, cores=cores, per_file_cost=per_file_cost, target_bytes=target)
    return [
        [(inputs[i].path, inputs[i].size, inputs[i].label, inputs[i].sha256, inputs[i].error) for i in part]
        for part in idx_plan
    ]


def features_dataframe(
    spark,
    inputs: list[InputFile],
    *,
    options=None,
    s3_endpoint_url: str | None = None,
    partitions: int | None = None,
    follow_symlinks: bool = True,
    per_file_cost: int = DEFAULT_PER_FILE_COST,
    with_label: bool | None = None,
    _accumulators: _Accumulators | None = None,
):
    """A DataFrame of feature rows, one per input, computed lazily by mapInArrow over the plan.

    ``partitions`` forces the number of partitions (else a few per core, sized by bytes). The
    ``label`` column is added when any input carries a label (or ``with_label`` says so).
    Evaluating the DataFrame twice extracts twice: write it once, or cache it. Column types are
    the contract's, with unsigned integers widened (Spark has none, see spark_safe_type).
    """
    from pyspark.sql.pandas.types import from_arrow_schema

    ids, fn = _extraction(
        spark,
        inputs,
        options=options,
        s3_endpoint_url=s3_endpoint_url,
        partitions=partitions,
        follow_symlinks=follow_symlinks,
        per_file_cost=per_file_cost,
        with_label=with_label,
        accumulators=_accumulators,
        spark_types=True,
    )
    return ids.mapInArrow(fn, from_arrow_schema(fn.out_schema))


def _extraction(
    spark,
    inputs,
    *,
    options,
    s3_endpoint_url,
    partitions,
    follow_symlinks,
    per_file_cost,
    with_label,
    accumulators,
    spark_types: bool,
):
    """(one-row-per-partition ids DataFrame, PartitionExtractor) for a planned input list."""
    if not inputs:
        raise InputError("no input files")
    if with_label is None:
        with_label = any(f.label is not None for f in inputs)
    from jobs.session import default_parallelism

    plan = _make_plan(inputs, default_parallelism(spark), partitions, per_file_cost)
    bplan = spark.sparkContext.broadcast(plan)
    schema = output_arrow_schema(with_label) if spark_types else contract_schema(with_label)
    fn = PartitionExtractor(
        plan=bplan,
        options=options,
        s3_endpoint_url=s3_endpoint_url,
        follow_symlinks=follow_symlinks,
        with_label=with_label,
        out_schema=schema,
        acc_files=accumulators.files if accumulators else None,
        acc_bytes=accumulators.bytes if accumulators else None,
        acc_mismatch=accumulators.mismatch if accumulators else None,
    )
    ids = spark.range(0, len(plan), 1, numPartitions=len(plan))  # exactly one id per partition
    if accumulators is not None:
        accumulators.partitions = len(plan)
    return ids, fn


# What the Python writer returns to the JVM per row: enough for the summary and --dedupe.
_WRITTEN_SCHEMA = pa.schema(
    [
        ("part", pa.int32()),
        ("row", pa.int32()),
        ("path", pa.string()),
        ("sha256", pa.string()),
        ("status", pa.string()),
        ("format", pa.string()),
        ("size", pa.int64()),
    ]
)
ROW_GROUP_ROWS = 2048


@dataclass
class PartitionWriter:
    """Extract a partition and write it straight to ``part-NNNNN-<run id>.parquet`` with pyarrow.

    Why: carrying the feature rows through the JVM (Arrow -> rows -> parquet-mr, one repeated
    value at a time for the 6,000-float vectors) cost about as much CPU as the extraction itself.
    Written here, the file keeps the contract's exact Arrow types; only a small status row per
    file goes back to Spark. The file appears by atomic rename, so a retried or speculative task
    simply replaces it with identical content.
    """

    extractor: PartitionExtractor
    out_dir: str
    tag: str  # unique per run, in every file name: a reader that listed the previous output while
    # it was being replaced gets "file not found", never the new run's file under an old name

    def __call__(self, batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        import pyarrow.parquet as pq

        prepare_worker(self.extractor.options)
        plan = self.extractor.plan.value
        schema = self.extractor.out_schema
        for b in batches:
            for pid in b.column(0).to_pylist():
                final = os.path.join(self.out_dir, part_name(pid, self.tag))
                tmp = os.path.join(self.out_dir, f".part-{pid:05d}.{uuid.uuid4().hex[:8]}.tmp")
                meta: list[pa.RecordBatch] = []
                pending: list[pa.RecordBatch] = []
                n = 0
                try:
                    with pq.ParquetWriter(tmp, schema, **_parquet_options(schema)) as writer:
                        for out in self.extractor._partition(plan[pid]):
                            meta.append(
                                pa.record_batch(
                                    [
                                        pa.array([pid] * out.num_rows, pa.int32()),
                                        pa.array(range(n, n + out.num_rows), pa.int32()),
                                        out.column("path"),
                                        out.column("sha256"),
                                        out.column("status"),
                                        out.column("format"),
                                        out.column("size"),
                                    ],
                                    schema=_WRITTEN_SCHEMA,
                                )
                            )
                            n += out.num_rows
                            pending.append(out)
                            if sum(p.num_rows for p in pending) >= ROW_GROUP_ROWS:
                                writer.write_table(pa.Table.from_batches(pending, schema))
                                pending = []
                        if pending:
                            writer.write_table(pa.Table.from_batches(pending, schema))
                    os.replace(tmp, final)
                finally:
                    if os.path.exists(tmp):
                        os.unlink(tmp)
                yield from meta


def _parquet_options(schema: pa.Schema) -> dict:
    """pyarrow writer options for part files: snappy; no dictionary and no statistics for ``vector``.

    Why: the 6,000-float vectors are most of the bytes; dictionary-encoding them and keeping
    min/max statistics of a list column nobody filters on cost ~40% of the writer's CPU (0.09 of
    0.2 CPU-s on the 351 MB sample corpus) for files ~15% smaller.
    """
    others = [n for n in schema.names if n != "vector"]
    return {"compression": "snappy", "use_dictionary": others, "write_statistics": others}


def contract_schema(with_label: bool) -> pa.Schema:
    """extract's output schema, exact types, plus ``label`` when labels are carried."""
    import extract

    schema = extract.output_schema()
    if with_label and "label" not in schema.names:
        schema = schema.append(pa.field("label", pa.string()))
    return schema


def part_name(part: int, tag: str) -> str:
    return f"part-{part:05d}-{tag}.parquet"


def _dedupe_written(out_dir: Path, written: pa.Table, tag: str) -> pa.Table:
    """Drop, in the written part files, every row whose sha256 an earlier path already has.

    The kept row per sha256 is the one with the smallest (path, status), as in dedupe_rows; rows
    without sha256 all stay. Only part files holding a dropped row are rewritten (atomically).
    Returns the status rows that remain.
    """
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    rows = written.to_pylist()
    best: dict[str, tuple] = {}
    for r in rows:
        if r["sha256"] is not None:
            key = (r["path"], r["status"], r["part"], r["row"])
            if r["sha256"] not in best or key < best[r["sha256"]]:
                best[r["sha256"]] = key
    drop: dict[int, set[int]] = {}
    for r in rows:
        if r["sha256"] is not None and best[r["sha256"]][2:] != (r["part"], r["row"]):
            drop.setdefault(r["part"], set()).add(r["row"])
    for part, dropped in drop.items():
        path = out_dir / part_name(part, tag)
        table = pq.read_table(path)
        keep = pa.array([i not in dropped for i in range(table.num_rows)])
        tmp = out_dir / f".part-{part:05d}.dedupe.tmp"
        pq.write_table(table.filter(keep), tmp, **_parquet_options(table.schema))
        os.replace(tmp, path)
    if not drop:
        return written
    mask = pa.array([not (r["part"] in drop and r["row"] in drop[r["part"]]) for r in rows])
    return written.filter(pc.equal(mask, True))


def dedupe_rows(df):
    """Keep one row per sha256, the one with the smallest path; rows without sha256 all stay."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    w = Window.partitionBy("sha256").orderBy(F.col("path").asc(), F.col("status").asc())
    ranked = df.withColumn("_binfeat_rn", F.row_number().over(w))
    return ranked.where(F.col("sha256").isNull() | (F.col("_binfeat_rn") == 1)).drop("_binfeat_rn")


def _dedupe_inputs(inputs: list[InputFile]) -> list[InputFile]:
    """Drop inputs whose manifest sha256 was already seen (smallest path wins): no need to read them."""
    best: dict[str, InputFile] = {}
    keep: list[InputFile] = []
    for f in inputs:
        if not f.sha256:
            keep.append(f)
        elif f.sha256.lower() not in best or f.path < best[f.sha256.lower()].path:
            best[f.sha256.lower()] = f
    chosen = {id(f) for f in best.values()}
    return [f for f in inputs if not f.sha256 or id(f) in chosen]


def _versions() -> dict[str, str | None]:
    import pyspark

    import extract

    return {
        "spark_version": pyspark.__version__,
        "binfeat_version": getattr(extract, "__version__", None) or getattr(extract, "BINFEAT_VERSION", None),
        "feature_version": str(getattr(extract, "FEATURE_VERSION", "")) or None,
        "python_version": sys.version.split()[0],
    }


def _progress_loop(
    stop: threading.Event,
    acc: _Accumulators,
    total_files: int,
    total_bytes: int,
    t0: float,
    callback: Callable[[dict], None],
    interval: float,
) -> None:
    last = None
    while not stop.wait(interval):
        files, nbytes = int(acc.files.value), int(acc.bytes.value)
        if (files, nbytes) == last:
            continue
        last = (files, nbytes)
        elapsed = max(time.monotonic() - t0, 1e-9)
        callback(
            {
                "files_done": files,
                "files_total": total_files,
                "bytes_done": nbytes,
                "bytes_total": total_bytes,
                "elapsed_s": round(elapsed, 1),
                "mb_per_s": round(nbytes / elapsed / 1e6, 2),
            }
        )


def _spark_schema(schema: pa.Schema):
    from pyspark.sql.pandas.types import from_arrow_schema

    return from_arrow_schema(schema)


def _summarise(table: pa.Table) -> dict:
    """Counts by status and format, and bytes, from the rows that were written."""
    import pyarrow.compute as pc

    def counts(col: str) -> dict[str, int]:
        vc = pc.value_counts(pc.fill_null(table.column(col), "null")).to_pylist()
        return {d["values"]: int(d["counts"]) for d in sorted(vc, key=lambda d: d["values"])}

    size = pc.sum(table.column("size")).as_py() or 0
    return {
        "rows": table.num_rows,
        "counts_by_status": counts("status"),
        "counts_by_format": counts("format"),
        "bytes": int(size),
    }


def run(
    input_spec: str,
    output: str,
    *,
    master: str | None = None,
    spark=None,
    options=None,
    s3_endpoint_url: str | None = None,
    follow_symlinks: bool = True,
    input_type: str = "auto",
    dedupe: bool = False,
    partitions: int | None = None,
    per_file_cost: int = DEFAULT_PER_FILE_COST,
    run_id: str | None = None,
    airflow_run_id: str | None = None,
    conf: dict | None = None,
    progress: Callable[[dict], None] | None = None,
    progress_interval: float = 5.0,
    inputs: list[InputFile] | None = None,
) -> dict:
    """List, plan, extract and publish; returns the run summary (also written next to OUTPUT).

    ``spark`` reuses a session (tests, notebooks); otherwise one is created with
    :func:`jobs.session.spark_session` and stopped at the end. ``inputs`` skips the listing.
    """
    from jobs.output import (
        SUMMARY_IN_DATASET,
        check_output,
        publish,
        summary_path,
        temp_sibling,
        write_json_atomic,
    )

    t0 = time.monotonic()
    started = datetime.now(UTC)
    output = os.path.abspath(output.removeprefix("file://"))
    check_output(output)
    if inputs is None:
        inputs = inputs_mod.list_inputs(
            input_spec,
            follow_symlinks=follow_symlinks,
            s3_endpoint_url=s3_endpoint_url,
            input_type=input_type,
        )
    if not inputs:
        raise InputError(f"no input files found in {input_spec}")
    listed = len(inputs)
    if dedupe:
        inputs = _dedupe_inputs(inputs)
    run_id = run_id or f"{started.strftime('%Y%m%dT%H%M%SZ')}-{uuid.uuid4().hex[:8]}"
    airflow_run_id = airflow_run_id or os.environ.get("AIRFLOW_CTX_DAG_RUN_ID") or None
    listing_s = time.monotonic() - t0

    own_session = spark is None
    if own_session:
        from jobs.session import spark_session

        spark = spark_session(master, app_name=f"binfeat-extract-{run_id}", conf=conf, coordinator_jvm=True)
    tmp = temp_sibling(output, "tmp")
    file_tag = uuid.uuid4().hex[:12]
    stop = threading.Event()
    try:
        sc = spark.sparkContext
        acc = _Accumulators(sc.accumulator(0), sc.accumulator(0), sc.accumulator(0))
        total_bytes = sum(f.size for f in inputs)
        ids, fn = _extraction(
            spark,
            inputs,
            options=options,
            s3_endpoint_url=s3_endpoint_url,
            partitions=partitions,
            follow_symlinks=follow_symlinks,
            per_file_cost=per_file_cost,
            with_label=None,
            accumulators=acc,
            spark_types=False,
        )
        tmp.mkdir()
        status_rows = ids.mapInArrow(PartitionWriter(fn, str(tmp), file_tag), _spark_schema(_WRITTEN_SCHEMA))
        t_job = time.monotonic()
        watcher = None
        if progress is not None:
            watcher = threading.Thread(
                target=_progress_loop,
                name="binfeat-progress",
                daemon=True,
                args=(stop, acc, len(inputs), total_bytes, t_job, progress, progress_interval),
            )
            watcher.start()
        sc.setJobDescription(f"binfeat extract {run_id}")
        written = status_rows.toArrow()
        stop.set()
        if watcher is not None:
            watcher.join()
            progress(
                {
                    "files_done": int(acc.files.value),
                    "files_total": len(inputs),
                    "bytes_done": int(acc.bytes.value),
                    "bytes_total": total_bytes,
                    "elapsed_s": round(time.monotonic() - t_job, 1),
                    "mb_per_s": round(int(acc.bytes.value) / max(time.monotonic() - t_job, 1e-9) / 1e6, 2),
                }
            )
        if dedupe:
            written = _dedupe_written(tmp, written, file_tag)
        job_s = time.monotonic() - t_job
        stats = _summarise(written)
        summary = {
            "run_id": run_id,
            "airflow_run_id": airflow_run_id,
            "input": input_spec,
            "output": output,
            "master": sc.master,
            "started_at": started.isoformat(timespec="seconds"),
            "finished_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "inputs_listed": listed,
            "inputs_extracted": len(inputs),
            "inputs_bytes": total_bytes,
            "duplicates_removed": (listed - stats["rows"]) if dedupe else 0,
            "partitions": acc.partitions,
            **stats,
            "sha256_mismatches": int(acc.mismatch.value),
            "listing_s": round(listing_s, 3),
            "job_s": round(job_s, 3),
            "duration_s": round(time.monotonic() - t0, 3),
            "mb_per_s": round(stats["bytes"] / max(job_s, 1e-9) / 1e6, 3),
            "files_per_s": round(stats["rows"] / max(job_s, 1e-9), 2),
            "dedupe": dedupe,
            "follow_symlinks": follow_symlinks,
            **_versions(),
        }
        write_json_atomic(tmp / SUMMARY_IN_DATASET, summary)
        publish(tmp, output)
        write_json_atomic(summary_path(output), summary)
        return summary
    finally:
        stop.set()
        if tmp.exists():
            import shutil

            shutil.rmtree(tmp, ignore_errors=True)
        if own_session:
            spark.stop()


# --------------------------------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------------------------------


class _Parser(argparse.ArgumentParser):
    """argparse that reports a bad argument as ONE line and exit code 2 (no usage block)."""

    def error(self, message: str):
        raise _UsageError(message)


class _UsageError(Exception):
    pass


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}")
    return value


def _size(text: str) -> int:
    units = {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3}
    t = text.strip().lower().removesuffix("b").removesuffix("i")
    num, unit = (t[:-1], t[-1]) if t and t[-1] in "kmg" else (t, "")
    try:
        value = int(float(num) * units[unit])
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a size like 65536, 64k or 1m, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a size >= 0, got {text!r}")
    return value


def _conf_pair(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    return key.strip(), value


def build_parser(prog: str = "binfeat extract") -> argparse.ArgumentParser:
    p = _Parser(
        prog=prog,
        description="Extract one feature row per executable file of INPUT into a Parquet dataset at OUTPUT, "
        "with Spark (local mode by default). Failures become rows with status 'error'.",
        epilog="S3 credentials come from boto3's standard chain (AWS_* environment variables, a profile, "
        "an instance role), never from the command line. A run summary is written to OUTPUT.summary.json "
        "and printed at the end.",
    )
    p.add_argument(
        "input",
        metavar="INPUT",
        help="a directory (recursive), a file, a glob (quote it), a manifest (.jsonl/.ndjson/.csv/"
        ".parquet with a 'path' column and optional 'sha256', 'label', 'size'), or s3://bucket/prefix",
    )
    p.add_argument(
        "output",
        metavar="OUTPUT",
        help="Parquet dataset directory to create or replace atomically (a previous binfeat output only)",
    )
    p.add_argument(
        "--master",
        default=None,
        help="Spark master, e.g. local[2] or spark://host:7077 (default: local[*], or spark-submit's)",
    )
    p.add_argument(
        "--input-type",
        choices=("auto", "files", "manifest"),
        default="auto",
        help="how to read INPUT: auto (manifests recognised by suffix), files (never a manifest), manifest",
    )
    p.add_argument(
        "--no-follow-symlinks",
        dest="follow_symlinks",
        action="store_false",
        help="do not follow symbolic links (each becomes an error row); by default they are followed and "
        "a file reachable by several names is extracted once",
    )
    p.add_argument(
        "--dedupe",
        action="store_true",
        help="keep one row per sha256 (the smallest path); rows without sha256 are all kept",
    )
    p.add_argument(
        "--s3-endpoint-url",
        default=None,
        metavar="URL",
        help="endpoint of an S3-compatible store (MinIO, moto, ...); default: AWS",
    )
    p.add_argument(
        "--partitions",
        type=_positive_int,
        default=None,
        metavar="N",
        help="number of Spark partitions (default: about 3 per core, sized by bytes)",
    )
    p.add_argument(
        "--per-file-cost",
        type=_size,
        default=DEFAULT_PER_FILE_COST,
        metavar="BYTES",
        help=f"bytes-equivalent charged per file when balancing partitions (default {DEFAULT_PER_FILE_COST})",
    )
    p.add_argument(
        "--parse-timeout",
        type=_positive_float,
        default=None,
        metavar="SECONDS",
        help="give up parsing one file after this long (extract's default otherwise)",
    )
    p.add_argument(
        "--memory-limit-mb",
        type=_positive_int,
        default=None,
        metavar="MB",
        help="address space one structural parse may take in the isolated parser worker (extract's default otherwise)",
    )
    p.add_argument(
        "--max-structural-bytes",
        type=_size,
        default=None,
        metavar="BYTES",
        help="files larger than this get byte-level features only (extract's default otherwise)",
    )
    p.add_argument(
        "--fuzzy-hashes",
        type=_fuzzy_list,
        default=None,
        metavar="NAMES",
        help="comma-separated fuzzy hashes to compute: tlsh, ssdeep (default none: they are the costliest part)",
    )
    p.add_argument(
        "--run-id",
        default=None,
        help="an external run id (e.g. Airflow's) recorded in the summary; default: $AIRFLOW_CTX_DAG_RUN_ID",
    )
    p.add_argument(
        "--conf",
        action="append",
        type=_conf_pair,
        default=[],
        metavar="KEY=VALUE",
        help="extra Spark configuration (repeatable); never put secrets here",
    )
    p.add_argument(
        "--progress-interval",
        type=_positive_float,
        default=5.0,
        metavar="SECONDS",
        help="seconds between progress lines on stderr (default 5)",
    )
    p.add_argument("--quiet", action="store_true", help="no progress lines (the summary is still printed)")
    return p


def _fuzzy_list(text: str) -> tuple[str, ...]:
    names = tuple(n.strip() for n in text.split(",") if n.strip())
    bad = sorted(set(names) - {"tlsh", "ssdeep"})
    if bad:
        raise argparse.ArgumentTypeError(f"unknown fuzzy hash {bad[0]!r}: choose from tlsh, ssdeep")
    return names


def _options_from_args(args: argparse.Namespace):
    """ExtractOptions from the flags that were given (extract's defaults for the others)."""
    wanted = {
        "parse_timeout_s": args.parse_timeout,
        "memory_limit_mb": args.memory_limit_mb,
        "max_structural_bytes": args.max_structural_bytes,
        "fuzzy_hashes": args.fuzzy_hashes,
    }
    wanted = {k: v for k, v in wanted.items() if v is not None}
    if not wanted:
        return None
    import dataclasses

    import extract

    known = {f.name for f in dataclasses.fields(extract.ExtractOptions)}
    unknown = sorted(set(wanted) - known)
    if unknown:
        raise _UsageError(f"this version of extract has no option {unknown[0]}")
    return extract.ExtractOptions(**wanted)


def _fmt_progress(p: dict) -> str:
    pct = 100.0 * p["bytes_done"] / p["bytes_total"] if p["bytes_total"] else 100.0
    return (
        f"progress: {p['files_done']}/{p['files_total']} files, {p['bytes_done'] / 1e6:.1f}/"
        f"{p['bytes_total'] / 1e6:.1f} MB ({pct:.0f}%), {p['mb_per_s']:.1f} MB/s, {p['elapsed_s']:.0f} s"
    )


def main(argv: list[str] | None = None) -> int:
    """CLI entry point; returns the exit code (0 ok, 1 job failed, 2 bad arguments or input)."""
    import json

    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
        options = _options_from_args(args)
        from jobs.output import check_output

        check_output(args.output)
        if args.s3_endpoint_url and not args.s3_endpoint_url.startswith(("http://", "https://")):
            raise _UsageError(
                f"--s3-endpoint-url must start with http:// or https://, got {args.s3_endpoint_url!r}"
            )
        inputs = inputs_mod.list_inputs(
            args.input,
            follow_symlinks=args.follow_symlinks,
            s3_endpoint_url=args.s3_endpoint_url,
            input_type=args.input_type,
        )
        if not inputs:
            raise InputError(f"no input files found in {args.input}")
    except (_UsageError, InputError, OutputError) as exc:
        print(f"binfeat extract: error: {exc}", file=sys.stderr)
        return EXIT_USAGE

    def show(p: dict) -> None:
        print(_fmt_progress(p), file=sys.stderr, flush=True)

    print(
        f"binfeat extract: {len(inputs)} files, {sum(f.size for f in inputs) / 1e6:.1f} MB listed",
        file=sys.stderr,
        flush=True,
    )
    try:
        summary = run(
            args.input,
            args.output,
            master=args.master,
            options=options,
            s3_endpoint_url=args.s3_endpoint_url,
            follow_symlinks=args.follow_symlinks,
            input_type=args.input_type,
            dedupe=args.dedupe,
            partitions=args.partitions,
            per_file_cost=args.per_file_cost,
            run_id=None,
            airflow_run_id=args.run_id,
            conf=dict(args.conf),
            progress=None if args.quiet else show,
            progress_interval=args.progress_interval,
            inputs=inputs,
        )
    except (InputError, OutputError) as exc:
        print(f"binfeat extract: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except Exception as exc:
        first = " ".join(str(exc).split())[:500] or type(exc).__name__
        print(f"binfeat extract: failed: {type(exc).__name__}: {first}", file=sys.stderr)
        return EXIT_FAILED
    if not args.quiet:
        sys.stderr.write(_human_summary(summary))
    print(json.dumps(summary, indent=2, sort_keys=True))
    return 0


def _human_summary(s: dict) -> str:
    """A few lines for people; the JSON on stdout (and next to the output) is the record."""
    def counts(d: dict) -> str:
        return ", ".join(f"{k} {v}" for k, v in sorted(d.items()))

    return (
        f"binfeat extract: {s['rows']} rows from {s['inputs_listed']} files, {s['bytes'] / 1e6:.1f} MB "
        f"in {s['job_s']:.1f} s ({s['mb_per_s']:.1f} MB/s, Spark start excluded)\n"
        f"  by status: {counts(s['counts_by_status'])}\n"
        f"  by format: {counts(s['counts_by_format'])}\n"
        f"  output: {s['output']} (summary: {s['output']}.summary.json)\n"
    )


if __name__ == "__main__":
    # python -m jobs.extract_features: re-enter through the package (see the top of this file).
    from jobs.extract_features import main as _package_main

    sys.exit(_package_main())
