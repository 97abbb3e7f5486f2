"""A night's extraction on the local engine's pool: Spark's executor code in processes, no JVM.

Why: a night of a few dozen files spends most of its time starting a JVM (10-15 s) and Spark's
Python workers; the local engine (:mod:`jobs.local_engine`) starts in about a second. Each pool
process runs the very function a Spark task runs for the night, :class:`WarehouseWriter` around the
extraction job's :class:`PartitionExtractor`, on the same partitions (:func:`plan_night`), so it
writes the same rows as Parquet files into the same warehouse folder through the table's FileIO;
the driver then commits them exactly as after Spark (:mod:`jobs.corpus.commit`).

A task here is one planned partition, its entries ``(path, size, None, sha256, None, ingest date)``:
the extractor's plan entry and the date its row gets. A pool process that dies under a task twice
fails the night (Spark fails the job after its task attempts too): nothing is committed, and the
files already written are orphans that maintenance removes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from types import SimpleNamespace

import pyarrow as pa

from jobs.corpus.extraction import (
    RESULT_SCHEMA,
    NightFiles,
    PartitionExtractor,
    WarehouseWriter,
    night_files,
    plan_night,
)
from jobs.local_engine import Count, LocalEngineError, LocalPool


class _Holder:
    """Where the writer looks for its partition's plan and expected keys (a broadcast's shape)."""

    def __init__(self) -> None:
        self.value: dict[int, list] = {}


@dataclass(frozen=True)
class NightWorkerConfig:
    """What every task of a night shares; sent to each pool process after the extract options."""

    schema: pa.Schema
    data_location: str
    io_props: dict[str, str]
    run_id: str
    file_prefix: str
    s3_endpoint_url: str | None
    transform: Callable[[pa.Table], pa.Table] | None

    def runner(self, options) -> Callable[[int, list], dict]:
        """One task: write the partition's files, reply with its RESULT_SCHEMA rows."""
        import extract
        from jobs.local_worker import table_bytes

        plan, expected = _Holder(), _Holder()
        writer = WarehouseWriter(
            extractor=PartitionExtractor(
                plan=plan, options=options, s3_endpoint_url=self.s3_endpoint_url, follow_symlinks=True,
                with_label=False, out_schema=extract.output_schema(),
            ),
            expected=expected, schema=self.schema, data_location=self.data_location, io_props=self.io_props,
            run_id=self.run_id, file_prefix=self.file_prefix, transform=self.transform,
        )  # fmt: skip

        def run(pid: int, entries: list) -> dict:
            plan.value = {pid: [tuple(e[:5]) for e in entries]}
            expected.value = {pid: [(e[3], e[5]) for e in entries]}
            ids = pa.record_batch([pa.array([pid], pa.int64())], names=["id"])
            result = pa.Table.from_batches(list(writer(iter([ids]))), RESULT_SCHEMA)
            return {"status": table_bytes(result), "mismatch": 0}

        return run


class _NightPool(LocalPool):
    """The pool with the night's replies (RESULT_SCHEMA rows) and no error rows of its own."""

    def _result(self, status: list[pa.Table]) -> pa.Table:
        if not status:
            return RESULT_SCHEMA.empty_table()
        return pa.concat_tables(status, promote_options="none").sort_by([("part", "ascending")])

    def _give_up(self, task: int, message: str) -> None:
        raise LocalEngineError(
            f"the night's extraction of partition {task} ({len(self.tasks[task])} files) failed: {message}; "
            "nothing was committed"
        )


def write_night_files_local(
    todo: list[tuple[str, int, str, str]],
    *,
    workers: int,
    schema: pa.Schema,
    data_location: str,
    io_props: dict[str, str],
    run_id: str,
    file_prefix: str,
    transform: Callable[[pa.Table], pa.Table] | None = None,
    s3_endpoint_url: str | None = None,
    partitions: int | None = None,
) -> NightFiles:
    """:func:`jobs.corpus.extraction.write_night_files` on ``workers`` pool processes (none for no file)."""
    if not todo:
        return NightFiles([], RESULT_SCHEMA.empty_table())
    plan, expected = plan_night(todo, cores=workers, partitions=partitions)
    tasks = [[(*entry, exp[1]) for entry, exp in zip(part, exps, strict=True)] for part, exps in zip(plan, expected,
                                                                                                   strict=True)]  # fmt: skip
    config = NightWorkerConfig(schema=schema, data_location=data_location, io_props=io_props, run_id=run_id,
                               file_prefix=file_prefix, s3_endpoint_url=s3_endpoint_url, transform=transform)  # fmt: skip
    counters = SimpleNamespace(files=Count(), bytes=Count(), mismatch=Count())
    pool = _NightPool(tasks, None, config, workers, counters)
    return night_files(pool.run())
