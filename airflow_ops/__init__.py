"""Thin Airflow operators over the Apache Spark provider: submit binfeat's Spark jobs, check snapshots.

No Spark and no feature logic here (a DAG file imports this package; it must stay light): the
operators only build a spark-submit command and its environment, and the sensor reads a JSON file.
"""

from __future__ import annotations

from airflow_ops.assets import CORPUS_SNAPSHOT
from airflow_ops.operators import BinfeatSparkSubmitOperator, CorpusUpdateOperator, ExtractOperator
from airflow_ops.sensors import SnapshotPublishedSensor
from airflow_ops.spark import EnvSparkSubmitHook

__all__ = [
    "CORPUS_SNAPSHOT",
    "BinfeatSparkSubmitOperator",
    "CorpusUpdateOperator",
    "EnvSparkSubmitHook",
    "ExtractOperator",
    "SnapshotPublishedSensor",
]
