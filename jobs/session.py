"""The SparkSession binfeat jobs run in: local by default, quiet, Arrow batches sized for big rows.

Works both when Python starts the JVM itself (``binfeat extract``, tests) and under
``spark-submit`` (the JVM is already up and its ``--master``/``--conf`` win over our defaults).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

# Feature rows are large (vectors, capped lists): small Arrow batches keep worker memory bounded.
DEFAULTS: dict[str, str] = {
    "spark.sql.execution.arrow.maxRecordsPerBatch": "256",
    "spark.sql.execution.arrow.maxBytesPerBatch": str(64 * 1024 * 1024),
    "spark.python.worker.reuse": "true",  # keeps the extractor and compiled kernels warm
    "spark.sql.execution.pyspark.udf.faulthandler.enabled": "true",
    "spark.ui.showConsoleProgress": "false",  # our own progress line replaces the bar
    "spark.sql.adaptive.enabled": "true",
}

LOG4J2_FILE = Path(__file__).with_name("log4j2.properties")


def under_spark_submit() -> bool:
    """True when spark-submit launched this driver (its JVM, master and conf already exist)."""
    return "PYSPARK_GATEWAY_PORT" in os.environ


def is_local_master(master: str | None) -> bool:
    return master is None or master == "local" or master.startswith("local[") or master.startswith("local-")


def code_root() -> str:
    """The directory holding the ``jobs`` and ``extract`` packages (a checkout or site-packages)."""
    return str(Path(__file__).resolve().parent.parent)


def spark_session(master: str | None = None, app_name: str = "binfeat", conf: dict | None = None):
    """Create (or reuse) the SparkSession.

    Defaults, applied only where nobody set the key already: master ``local[*]``, Arrow batch
    limits, ``spark.pyspark.python`` = this interpreter (when Python starts the JVM itself, so
    executors run the same venv), log level WARN. For local masters the executors' PYTHONPATH gets
    this code's root so workers import binfeat without it being installed, and ``SPARK_LOCAL_IP``
    defaults to 127.0.0.1 (a cluster driver must keep a reachable address, so not otherwise).
    ``conf`` entries always win.
    """
    from pyspark import SparkConf, SparkContext
    from pyspark.sql import SparkSession

    submitted = under_spark_submit()
    if submitted:
        SparkContext._ensure_initialized()  # attach to spark-submit's JVM so SparkConf sees its props
    sconf = SparkConf()
    if master:
        sconf.setMaster(master)
    elif not sconf.contains("spark.master"):
        sconf.setMaster("local[*]")
    effective = sconf.get("spark.master")
    local = is_local_master(effective)
    if local and not submitted:
        os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    if not sconf.contains("spark.app.name"):
        sconf.setAppName(app_name)
    for key, value in DEFAULTS.items():
        sconf.setIfMissing(key, value)
    if not submitted:
        # pyspark takes the workers' interpreter from PYSPARK_PYTHON (spark-submit derives it from
        # spark.pyspark.python); without it workers run "python3", which lacks this venv's packages.
        python = sconf.get("spark.pyspark.python", None) or os.environ.get("PYSPARK_PYTHON") or sys.executable
        os.environ.setdefault("PYSPARK_PYTHON", python)
        sconf.setIfMissing("spark.pyspark.python", python)
        if LOG4J2_FILE.exists():
            opt = f"-Dlog4j2.configurationFile={LOG4J2_FILE.as_uri()}"
            sconf.setIfMissing("spark.driver.extraJavaOptions", opt)
    if local:
        root = code_root()
        current = sconf.get("spark.executorEnv.PYTHONPATH", None)
        if not current or root not in current.split(os.pathsep):
            sconf.set("spark.executorEnv.PYTHONPATH", os.pathsep.join(p for p in (root, current) if p))
    for key, value in (conf or {}).items():
        sconf.set(str(key), str(value))
    spark = SparkSession.builder.config(conf=sconf).getOrCreate()
    spark.sparkContext.setLogLevel("WARN")
    return spark


def default_parallelism(spark) -> int:
    """Cores available to the job (the planner's ``cores``)."""
    try:
        return max(1, int(spark.sparkContext.defaultParallelism))
    except Exception:
        return 1
