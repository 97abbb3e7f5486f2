"""Thin Airflow operators over the Apache Spark provider: submit binfeat's Spark jobs, check the corpus.

No Spark and no feature logic here (a DAG file imports this package; it must stay light): the
operators only build a spark-submit command and its environment, the sensors look at the input and
at the corpus store's metadata, and the maintenance functions run inside tasks. The ``jobs``
package is imported only at task run time.

The names below are imported on first use, so that ``python -m airflow_ops.metadata_cleanup`` (run
on the scheduler host) and the maintenance functions do not load Airflow's operator machinery.
"""

from __future__ import annotations

from typing import Any

_OPERATORS = ("CorpusUpdateOperator", "ExtractOperator", "SparkJobOperator")
_SENSORS = ("CorpusPublishedSensor", "IncomingReadySensor")
__all__ = sorted(("CORPUS_FEATURES", *_OPERATORS, *_SENSORS))


def __getattr__(name: str) -> Any:
    # static imports (not import_module by name): the import graph stays visible to tools and tests
    if name in _OPERATORS:
        from airflow_ops import operators as module
    elif name in _SENSORS:
        from airflow_ops import sensors as module
    elif name == "CORPUS_FEATURES":
        from airflow_ops import assets as module
    else:
        raise AttributeError(f"module 'airflow_ops' has no attribute {name!r}")
    return getattr(module, name)
