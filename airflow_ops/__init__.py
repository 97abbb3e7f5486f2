"""Thin Airflow operators over the Apache Spark provider: submit binfeat's Spark jobs, check snapshots.

No Spark and no feature logic here (a DAG file imports this package; it must stay light): the
operators only build a spark-submit command and its environment, the sensors read files, and the
maintenance functions run inside tasks. The ``jobs`` package is imported only at task run time.

The names below are imported on first use, so that ``python -m airflow_ops.metadata_cleanup`` (run
on the scheduler host) and the maintenance functions do not load Airflow's operator machinery.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

_EXPORTS = {
    "CORPUS_SNAPSHOT": "airflow_ops.assets",
    "CorpusUpdateOperator": "airflow_ops.operators",
    "ExtractOperator": "airflow_ops.operators",
    "IncomingReadySensor": "airflow_ops.sensors",
    "SnapshotPublishedSensor": "airflow_ops.sensors",
    "SparkJobOperator": "airflow_ops.operators",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'airflow_ops' has no attribute {name!r}")
    return getattr(import_module(module), name)
