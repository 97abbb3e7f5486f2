"""The extraction as Spark sees it: a broadcast plan, one id per partition, ``mapInArrow``.

:func:`features_dataframe` is the DataFrame API for other Spark code (the rows go through the JVM,
with Spark-safe types); the job itself (:mod:`jobs.run`) maps the same ids through
:class:`jobs.part_writer.PartitionWriter` instead, which writes the rows from Python.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from jobs.inputs import InputError, InputFile
from jobs.partition import PartitionExtractor
from jobs.planning import DEFAULT_PER_FILE_COST, plan_inputs
from jobs.spark_types import contract_schema, output_arrow_schema, spark_schema


@dataclass
class Counters:
    """Spark accumulators the executors add to (progress and the summary read them)."""

    files: object
    bytes: object
    mismatch: object
    partitions: int = 0

    @classmethod
    def create(cls, sc) -> Counters:
        return cls(sc.accumulator(0), sc.accumulator(0), sc.accumulator(0))


def extraction(
    spark,
    inputs: Sequence[InputFile],
    *,
    options=None,
    s3_endpoint_url: str | None = None,
    partitions: int | None = None,
    follow_symlinks: bool = True,
    per_file_cost: int = DEFAULT_PER_FILE_COST,
    with_label: bool | None = None,
    counters: Counters | None = None,
    spark_types: bool = True,
):
    """(a DataFrame with one id per planned partition, the PartitionExtractor for those ids).

    ``spark_types`` gives the extractor the Spark-safe schema (for a DataFrame) instead of the
    contract's exact types (for the job's own writer).
    """
    if not inputs:
        raise InputError("no input files")
    if with_label is None:
        with_label = any(f.label is not None for f in inputs)
    from jobs.session import default_parallelism

    plan = plan_inputs(inputs, default_parallelism(spark), partitions, per_file_cost)
    schema = output_arrow_schema(with_label, options) if spark_types else contract_schema(with_label, options)
    fn = PartitionExtractor(
        plan=spark.sparkContext.broadcast(plan),
        options=options,
        s3_endpoint_url=s3_endpoint_url,
        follow_symlinks=follow_symlinks,
        with_label=with_label,
        out_schema=schema,
        acc_files=counters.files if counters else None,
        acc_bytes=counters.bytes if counters else None,
        acc_mismatch=counters.mismatch if counters else None,
    )
    ids = spark.range(0, len(plan), 1, numPartitions=len(plan))  # exactly one id per partition
    if counters is not None:
        counters.partitions = len(plan)
    return ids, fn


def features_dataframe(
    spark,
    inputs: Sequence[InputFile],
    *,
    options=None,
    s3_endpoint_url: str | None = None,
    partitions: int | None = None,
    follow_symlinks: bool = True,
    per_file_cost: int = DEFAULT_PER_FILE_COST,
    with_label: bool | None = None,
):
    """A DataFrame of feature rows, one per input, computed lazily by mapInArrow over the plan.

    ``partitions`` forces the number of partitions (else a few per core, sized by bytes). The
    ``label`` column is added when any input carries a label (or ``with_label`` says so).
    Evaluating the DataFrame twice extracts twice: write it once, or cache it. Column types are
    the contract's, ``vector`` as a plain list (Spark has no fixed-size list, see jobs.spark_types).
    """
    ids, fn = extraction(
        spark,
        inputs,
        options=options,
        s3_endpoint_url=s3_endpoint_url,
        partitions=partitions,
        follow_symlinks=follow_symlinks,
        per_file_cost=per_file_cost,
        with_label=with_label,
    )
    return ids.mapInArrow(fn, spark_schema(fn.out_schema))
