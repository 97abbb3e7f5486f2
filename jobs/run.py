"""The extraction job: list INPUT, plan, extract on the executors, publish OUTPUT and its summary.

Everything that can be refused is refused before Spark starts: OUTPUT (:func:`jobs.output.check_output`,
then the run's own folder next to it, :mod:`jobs.staging`), the master (:func:`jobs.session.check_master`)
and INPUT (listing). The executors write the part files (:mod:`jobs.part_writer`); the driver only
collects their status rows, applies ``--dedupe``, and publishes the complete dataset atomically.
"""

from __future__ import annotations

import os
import shutil
import time
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from jobs.dataframe import Counters, extraction
from jobs.dedupe import dedupe_inputs, dedupe_written
from jobs.inputs import InputError, InputFile, list_inputs
from jobs.output import SUMMARY_IN_DATASET, OutputError, check_output, publish, summary_path, write_json_atomic
from jobs.part_writer import WRITTEN_SCHEMA, PartitionWriter, part_name
from jobs.planning import DEFAULT_PER_FILE_COST
from jobs.progress import ProgressCallback, ProgressReporter
from jobs.spark_types import spark_schema
from jobs.staging import RunStaging, remove_stale
from jobs.summary import versions, written_stats


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
    include: Sequence[str] = (),
    exclude: Sequence[str] = (),
    dedupe: bool = False,
    partitions: int | None = None,
    per_file_cost: int = DEFAULT_PER_FILE_COST,
    run_id: str | None = None,
    airflow_run_id: str | None = None,
    conf: dict | None = None,
    progress: ProgressCallback | None = None,
    progress_interval: float = 5.0,
    inputs: list[InputFile] | None = None,
    listing_s: float | None = None,
) -> dict:
    """List, plan, extract and publish; returns the run summary (also written next to OUTPUT).

    ``spark`` reuses a session (tests, notebooks); otherwise one is created with
    :func:`jobs.session.spark_session` and stopped at the end. ``inputs`` skips the listing
    (``listing_s``: how long the caller's listing took, for the summary).
    """
    t0 = time.monotonic()
    started = datetime.now(UTC)
    output = os.path.abspath(output.removeprefix("file://"))
    check_output(output)
    if spark is None:
        from jobs.session import check_master

        check_master(master)
    listed_here = inputs is None
    if listed_here:
        inputs = list_inputs(
            input_spec,
            follow_symlinks=follow_symlinks,
            s3_endpoint_url=s3_endpoint_url,
            input_type=input_type,
            include=include,
            exclude=exclude,
        )
        listing_s = time.monotonic() - t0
    if not inputs:
        raise InputError(f"no input files found in {input_spec}")
    listed = len(inputs)
    if dedupe:
        inputs = dedupe_inputs(inputs)
    run_id = run_id or f"{started.strftime('%Y%m%dT%H%M%SZ')}-{uuid.uuid4().hex[:8]}"
    stale = remove_stale(output)
    try:
        staging = RunStaging.create(output)
    except OSError as exc:
        raise OutputError(
            f"cannot create the run's folder next to OUTPUT ({exc.strerror or exc}): choose an OUTPUT on a "
            f"writable filesystem: {output}"
        ) from None
    with staging:
        own_session = spark is None
        if own_session:
            from jobs.session import spark_session

            spark = spark_session(master, app_name=f"binfeat-extract-{run_id}", conf=conf, coordinator_jvm=True)
        try:
            counters = Counters.create(spark.sparkContext)
            t_job = time.monotonic()
            written = _extract(
                spark, staging, inputs, counters, options=options, s3_endpoint_url=s3_endpoint_url,
                partitions=partitions, follow_symlinks=follow_symlinks, per_file_cost=per_file_cost,
                dedupe=dedupe, progress=progress, progress_interval=progress_interval, run_id=run_id,
            )
            job_s = time.monotonic() - t_job
            stats = written_stats(written)
            summary = {
                "run_id": run_id,
                "airflow_run_id": airflow_run_id or os.environ.get("AIRFLOW_CTX_DAG_RUN_ID") or None,
                "input": input_spec,
                "output": output,
                "master": spark.sparkContext.master,
                "started_at": started.isoformat(timespec="seconds"),
                "finished_at": datetime.now(UTC).isoformat(timespec="seconds"),
                "inputs_listed": listed,
                "inputs_extracted": len(inputs),
                "inputs_bytes": sum(f.size for f in inputs),
                "duplicates_removed": (listed - stats["rows"]) if dedupe else 0,
                "partitions": counters.partitions,
                **stats,
                "sha256_mismatches": int(counters.mismatch.value),
                "listing_s": None if listing_s is None else round(listing_s, 6),
                "job_s": round(job_s, 3),
                "duration_s": round(time.monotonic() - t0 + (0.0 if listed_here else listing_s or 0.0), 3),
                "mb_per_s": round(stats["bytes"] / max(job_s, 1e-9) / 1e6, 3),
                "files_per_s": round(stats["rows"] / max(job_s, 1e-9), 2),
                "dedupe": dedupe,
                "follow_symlinks": follow_symlinks,
                "stale_run_folders_removed": len(stale),
                **versions(),
            }
            write_json_atomic(staging.dataset / SUMMARY_IN_DATASET, summary, tmp_dir=staging.root)
            publish(staging.dataset, output, previous=staging.root / "previous")
            write_json_atomic(summary_path(output), summary, tmp_dir=staging.root)
            return summary
        finally:
            if own_session:
                spark.stop()


def _extract(spark, staging: RunStaging, inputs, counters: Counters, *, options, s3_endpoint_url, partitions,
             follow_symlinks, per_file_cost, dedupe, progress, progress_interval, run_id):
    """Run the Spark job that writes the part files into ``staging.dataset``; returns the status rows."""
    sc = spark.sparkContext
    tag = uuid.uuid4().hex[:12]
    ids, fn = extraction(
        spark, inputs, options=options, s3_endpoint_url=s3_endpoint_url, partitions=partitions,
        follow_symlinks=follow_symlinks, per_file_cost=per_file_cost, counters=counters, spark_types=False,
    )
    writer = PartitionWriter(fn, str(staging.dataset), str(staging.attempts), tag)
    status_rows = ids.mapInArrow(writer, spark_schema(WRITTEN_SCHEMA))
    reporter = None
    if progress is not None:
        total_bytes = sum(f.size for f in inputs)
        reporter = ProgressReporter(counters, len(inputs), total_bytes, progress, progress_interval).start()
    sc.setJobDescription(f"binfeat extract {run_id}")
    try:
        written = status_rows.toArrow()
    except BaseException:
        if reporter is not None:
            reporter.stop(final=False)
        raise
    if reporter is not None:
        reporter.stop()
    _check_parts(staging.dataset, {part_name(p, tag) for p in range(counters.partitions)})
    if dedupe:
        written = dedupe_written(staging.dataset, staging.attempts, written, lambda p: part_name(p, tag))
    return written


def _check_parts(dataset: Path, expected: set[str]) -> None:
    """The dataset holds exactly one file per partition (a task that reported rows wrote its file)."""
    present = set(os.listdir(dataset))
    missing = sorted(expected - present)
    if missing:
        raise RuntimeError(f"{len(missing)} part file(s) missing after the job, e.g. {missing[0]}")
    for stray in present - expected:
        shutil.rmtree(dataset / stray) if (dataset / stray).is_dir() else (dataset / stray).unlink()
