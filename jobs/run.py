"""The extraction job: list INPUT, plan, extract with an engine, publish OUTPUT and its summary.

Everything that can be refused is refused before an engine starts: OUTPUT (:func:`jobs.output.check_output`,
then the run's own folder next to it, :mod:`jobs.staging`), the engine options (:func:`jobs.engine.check_engine`),
the master (:func:`jobs.session.check_master`) and INPUT (listing). The engine, Spark's executors or the
local engine's pool (:mod:`jobs.local_engine`, :func:`jobs.engine.choose_engine` picks), writes the part
files with the same code (:mod:`jobs.part_writer`); the driver only collects their status rows,
applies ``--dedupe``, and publishes the complete dataset atomically.
"""

from __future__ import annotations

import os
import shutil
import time
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from jobs.dataframe import Counters
from jobs.dedupe import dedupe_inputs, dedupe_written
from jobs.engine import check_engine, choose_engine, default_workers
from jobs.inputs import InputError, InputFile, list_inputs
from jobs.output import SUMMARY_IN_DATASET, OutputError, check_output, publish, summary_path, write_json_atomic
from jobs.part_writer import WRITTEN_SCHEMA, PartitionWriter, part_name
from jobs.planning import DEFAULT_PER_FILE_COST
from jobs.progress import ProgressCallback, ProgressReporter
from jobs.spark_types import contract_schema
from jobs.staging import RunStaging, remove_stale
from jobs.summary import versions, written_stats


def run(
    input_spec: str,
    output: str,
    *,
    engine: str = "auto",
    workers: int | None = None,
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

    ``engine``: ``local`` (a pool of ``workers`` processes, default up to one per core, as many as
    the work pays for: :func:`jobs.local_engine.pool_size`), ``spark``, or
    ``auto`` (:func:`jobs.engine.choose_engine`: Spark when a session, a master or ``conf`` is given
    or under spark-submit, else local up to 1,000 files and 1 GiB). ``spark`` reuses a session
    (tests, notebooks); otherwise one is created with :func:`jobs.session.spark_session` and stopped
    at the end. ``inputs`` skips the listing (``listing_s``: how long the caller's listing took, for
    the summary).
    """
    from jobs.session import check_master, under_spark_submit

    t0 = time.monotonic()
    started = datetime.now(UTC)
    output = os.path.abspath(output.removeprefix("file://"))
    check_output(output)
    submitted = under_spark_submit()
    check_engine(engine, master=master, conf=conf, workers=workers, spark_given=spark is not None, submitted=submitted)
    if spark is None:
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
    chosen = choose_engine(
        engine, n_files=listed, n_bytes=sum(f.size for f in inputs), master=master, conf=conf,
        spark_given=spark is not None, submitted=submitted,
    )  # fmt: skip
    if dedupe:
        inputs = dedupe_inputs(inputs)
    if chosen == "spark" and workers and not master and spark is None:
        master = f"local[{workers}]"  # auto chose Spark (above the thresholds): the same number of processes
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
        tag = uuid.uuid4().hex[:12]
        extract_kw = dict(
            options=options, s3_endpoint_url=s3_endpoint_url, partitions=partitions, follow_symlinks=follow_symlinks,
            per_file_cost=per_file_cost, progress=progress, progress_interval=progress_interval,
        )  # fmt: skip
        own_session = chosen == "spark" and spark is None
        if own_session:
            from jobs.session import spark_session

            spark = spark_session(master, app_name=f"binfeat-extract-{run_id}", conf=conf, coordinator_jvm=True)
        try:
            t_job = time.monotonic()
            if chosen == "local":
                written, counters, pool = _extract_local(staging, inputs, tag, workers=workers, **extract_kw)
                engine_facts = {"master": None, "workers": pool.workers, "worker_deaths": pool.deaths}
            else:
                written, counters = _extract_spark(spark, staging, inputs, tag, run_id=run_id, **extract_kw)
                engine_facts = {"master": spark.sparkContext.master, "workers": None, "worker_deaths": None}
            _check_parts(staging.dataset, {part_name(p, tag) for p in range(counters.partitions)})
            if dedupe:
                schema = contract_schema(any(f.label is not None for f in inputs))
                written = dedupe_written(
                    staging.dataset, staging.attempts, written, lambda p: part_name(p, tag), schema
                )
            job_s = time.monotonic() - t_job
            stats = written_stats(written)
            summary = {
                "run_id": run_id,
                "airflow_run_id": airflow_run_id or os.environ.get("AIRFLOW_CTX_DAG_RUN_ID") or None,
                "input": input_spec,
                "output": output,
                "engine": chosen,
                **engine_facts,
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
                **versions(spark=chosen == "spark"),
            }
            write_json_atomic(staging.dataset / SUMMARY_IN_DATASET, summary, tmp_dir=staging.root)
            publish(staging.dataset, output, previous=staging.root / "previous")
            write_json_atomic(summary_path(output), summary, tmp_dir=staging.root)
            return summary
        finally:
            if own_session:
                spark.stop()


def _reporter(counters, inputs, progress, progress_interval) -> ProgressReporter | None:
    if progress is None:
        return None
    total_bytes = sum(f.size for f in inputs)
    return ProgressReporter(counters, len(inputs), total_bytes, progress, progress_interval).start()


def _with_progress(reporter: ProgressReporter | None, work):
    """``work()``'s result; the progress reporter stopped either way (its final line only on success)."""
    try:
        result = work()
    except BaseException:
        if reporter is not None:
            reporter.stop(final=False)
        raise
    if reporter is not None:
        reporter.stop()
    return result


def _extract_local(staging: RunStaging, inputs, tag: str, *, workers, options, s3_endpoint_url, partitions,
                   follow_symlinks, per_file_cost, progress, progress_interval):
    """The local engine's pool writes the part files into ``staging.dataset``; (status rows, counters, stats)."""
    from jobs.local_engine import Count, LocalPool, plan_local, pool_size
    from jobs.local_worker import WorkerConfig

    workers = workers or pool_size(len(inputs), sum(f.size for f in inputs), default_workers())
    tasks = plan_local(inputs, workers, partitions, per_file_cost)
    counters = Counters(Count(), Count(), Count(), partitions=len(tasks))
    config = WorkerConfig(
        s3_endpoint_url=s3_endpoint_url, follow_symlinks=follow_symlinks,
        with_label=any(f.label is not None for f in inputs), dataset_dir=str(staging.dataset),
        attempts_dir=str(staging.attempts), tag=tag,
    )  # fmt: skip
    pool = LocalPool(tasks, options, config, workers, counters)
    written = _with_progress(_reporter(counters, inputs, progress, progress_interval), pool.run)
    return written, counters, pool.stats


def _extract_spark(spark, staging: RunStaging, inputs, tag: str, *, options, s3_endpoint_url, partitions,
                   follow_symlinks, per_file_cost, progress, progress_interval, run_id):
    """Run the Spark job that writes the part files into ``staging.dataset``; (status rows, counters)."""
    from jobs.dataframe import extraction
    from jobs.spark_types import spark_schema

    sc = spark.sparkContext
    counters = Counters.create(sc)
    ids, fn = extraction(
        spark, inputs, options=options, s3_endpoint_url=s3_endpoint_url, partitions=partitions,
        follow_symlinks=follow_symlinks, per_file_cost=per_file_cost, counters=counters, spark_types=False,
    )
    writer = PartitionWriter(fn, str(staging.dataset), str(staging.attempts), tag)
    status_rows = ids.mapInArrow(writer, spark_schema(WRITTEN_SCHEMA))
    reporter = _reporter(counters, inputs, progress, progress_interval)
    sc.setJobDescription(f"binfeat extract {run_id}")
    return _with_progress(reporter, status_rows.toArrow), counters


def _check_parts(dataset: Path, expected: set[str]) -> None:
    """The dataset holds exactly one file per partition (a task that reported rows wrote its file)."""
    present = set(os.listdir(dataset))
    missing = sorted(expected - present)
    if missing:
        raise RuntimeError(f"{len(missing)} part file(s) missing after the job, e.g. {missing[0]}")
    for stray in present - expected:
        shutil.rmtree(dataset / stray) if (dataset / stray).is_dir() else (dataset / stray).unlink()
