"""Which engine runs an extraction: the local process pool (:mod:`jobs.local_engine`) or Spark.

Why two: a JVM costs 10-15 s before the first file is read, more than a small ad hoc run's whole
extraction; a pool of Python processes on this machine starts in about a second and runs the same
executor-side code (:mod:`jobs.partition`, :mod:`jobs.part_writer`), so it gives the same rows. Spark
is for everything larger, for clusters, and whenever it is asked for (``--master``, ``--conf``,
``spark-submit``, a session handed to :func:`jobs.run.run`).

Pure decisions, no imports beyond the standard library: the command line calls them before
anything starts.
"""

from __future__ import annotations

import os

ENGINES = ("auto", "local", "spark")
LOCAL_MAX_FILES = 1000  # auto: the local engine up to this many files ...
LOCAL_MAX_BYTES = 1 << 30  # ... and this many bytes (1 GiB); Spark above either


class EngineError(ValueError):
    """Engine options that contradict each other; one line saying what to drop."""


def default_workers() -> int:
    """The local engine's pool size: the cores this process may run on."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def check_engine(
    engine: str,
    *,
    master: str | None = None,
    conf: dict | None = None,
    workers: int | None = None,
    spark_given: bool = False,
    submitted: bool = False,
) -> None:
    """Refuse contradictory choices before anything is listed or started."""
    if engine not in ENGINES:
        raise EngineError(f"unknown engine {engine!r}: choose from {', '.join(ENGINES)}")
    if engine == "local":
        if master:
            raise EngineError("--master runs the job on Spark: drop --engine local, or --master")
        if conf:
            raise EngineError("--conf configures Spark, the local engine takes none: drop --conf, or --engine local")
        if submitted:
            raise EngineError("under spark-submit the job runs on Spark: drop --engine local")
        if spark_given:
            raise EngineError("a Spark session was given: the local engine cannot use it")
    if workers is not None and (engine == "spark" or master or spark_given or submitted):
        raise EngineError(
            "--workers sizes the local engine's pool: with Spark choose the cores with --master local[N]"
        )


def choose_engine(
    engine: str,
    *,
    n_files: int,
    n_bytes: int,
    master: str | None = None,
    conf: dict | None = None,
    spark_given: bool = False,
    submitted: bool = False,
) -> str:
    """``local`` or ``spark`` for a run of ``n_files`` files of ``n_bytes`` bytes in all.

    ``auto`` picks Spark whenever Spark was asked for (a master, Spark configuration, spark-submit,
    a session), else the local engine up to :data:`LOCAL_MAX_FILES` files and :data:`LOCAL_MAX_BYTES`
    bytes, Spark above.
    """
    if engine != "auto":
        return engine
    if master or conf or spark_given or submitted:
        return "spark"
    if n_files <= LOCAL_MAX_FILES and n_bytes <= LOCAL_MAX_BYTES:
        return "local"
    return "spark"
