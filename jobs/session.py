"""The SparkSession binfeat jobs run in: local by default, quiet, Arrow batches sized for big rows.

Works both when Python starts the JVM itself (``binfeat extract``, tests) and under
``spark-submit`` (the JVM is already up and its ``--master``/``--conf`` win over our defaults).
"""

from __future__ import annotations

import os
import re
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

# For a JVM that only coordinates (schedules Python tasks, carries small status rows): C1 only.
# Why: with the default tiered compilation, C2 kept compiling lukewarm Spark code (closure
# cleaner, serializers, scheduler) job after job, 0.2-1 CPU-s per job on a ~3 CPU-s job, ten
# jobs into a session; C1 compiles the same code for a small fraction of that, and the JVM's
# share of the extraction job is too small for C2's faster code to pay back.
COORDINATOR_JVM_OPTIONS = "-XX:TieredStopAtLevel=1"
DAEMON_MODULE = "jobs.pyspark_daemon"

# Attempts per task in local mode. Spark gives a plain local[N] task ONE attempt (spark.task.maxFailures
# does not apply there), so one Python worker dying would fail the whole job; local[N,F] retries.
LOCAL_TASK_ATTEMPTS = 4  # Spark's own default for spark.task.maxFailures on a cluster
DEFAULT_MASTER = f"local[*,{LOCAL_TASK_ATTEMPTS}]"
_LOCAL = re.compile(r"local(?:\[(?P<threads>[^,\]]*?)(?:\s*,\s*(?P<attempts>[^\]]*))?\])?")
_LOCAL_CLUSTER = re.compile(r"local-cluster\[\s*[1-9]\d*\s*,\s*[1-9]\d*\s*,\s*[1-9]\d*\s*\]")
_STANDALONE = re.compile(r"spark://[^\s:/,]+:\d{1,5}(?:,[^\s:/,]+:\d{1,5})*/?")


class MasterError(ValueError):
    """The Spark master URL cannot work; one line saying what to give instead."""


def check_master(master: str | None, environ: dict | None = None) -> None:
    """Refuse, before Spark starts, a master that Spark would refuse with a Java stack trace."""
    if master is None:
        return
    env = os.environ if environ is None else environ
    m = _LOCAL.fullmatch(master)
    if m:
        threads, attempts = m.group("threads"), m.group("attempts")
        if (threads is not None and not (threads == "*" or _positive(threads))) or (
            attempts is not None and not _positive(attempts)
        ):
            raise MasterError(
                f"bad local master {master!r}: use local, local[N], local[*] or local[N,F] "
                "(N threads or *, F attempts per task; both positive integers)"
            )
        return
    if master.startswith("local-cluster"):
        if not _LOCAL_CLUSTER.fullmatch(master):
            raise MasterError(f"bad master {master!r}: use local-cluster[WORKERS,CORES,MEMORY_MB]")
        return
    if master.startswith("spark://"):
        if not _STANDALONE.fullmatch(master):
            raise MasterError(f"bad standalone master {master!r}: use spark://HOST:PORT (e.g. spark://10.0.0.5:7077)")
        return
    if master == "yarn":
        if not (env.get("HADOOP_CONF_DIR") or env.get("YARN_CONF_DIR")):
            raise MasterError(
                "--master yarn needs the cluster's Hadoop configuration: set HADOOP_CONF_DIR (or YARN_CONF_DIR) "
                "to the folder holding yarn-site.xml"
            )
        return
    if master.startswith("k8s://") and len(master) > len("k8s://"):
        return
    raise MasterError(
        f"unknown Spark master {master!r}: use local[N], spark://HOST:PORT, yarn or k8s://https://HOST:PORT"
    )


def _positive(text: str) -> bool:
    return text.isdigit() and int(text) > 0


def with_task_retries(master: str | None) -> str:
    """A local master with a retry count (local[2] -> local[2,4]); other masters unchanged.

    Why: a Python worker that dies (killed, out of memory) fails its task; with one attempt per
    task that is the whole job, where a retry in a fresh worker would have finished it.
    """
    if master is None:
        return DEFAULT_MASTER
    m = _LOCAL.fullmatch(master)
    if not m or m.group("attempts") is not None:
        return master
    threads = m.group("threads") or "1"
    return f"local[{threads},{LOCAL_TASK_ATTEMPTS}]"


def under_spark_submit() -> bool:
    """True when spark-submit launched this driver (its JVM, master and conf already exist)."""
    return "PYSPARK_GATEWAY_PORT" in os.environ


def is_local_master(master: str | None) -> bool:
    return master is None or master == "local" or master.startswith("local[") or master.startswith("local-")


def code_root() -> str:
    """The directory holding the ``jobs`` and ``extract`` packages (a checkout or site-packages)."""
    return str(Path(__file__).resolve().parent.parent)


def spark_session(
    master: str | None = None,
    app_name: str = "binfeat",
    conf: dict | None = None,
    *,
    coordinator_jvm: bool = False,
):
    """Create (or reuse) the SparkSession.

    Defaults, applied only where nobody set the key already: master ``local[*,4]``, Arrow batch
    limits, ``spark.pyspark.python`` = this interpreter (when Python starts the JVM itself, so
    executors run the same venv), log level WARN. For local masters the executors' PYTHONPATH gets
    this code's root so workers import binfeat without it being installed, their pyspark daemon is
    :mod:`jobs.pyspark_daemon` (binfeat loaded once, workers forked warm), and ``SPARK_LOCAL_IP``
    defaults to 127.0.0.1 (a cluster driver must keep a reachable address, so not otherwise).
    ``coordinator_jvm``: the session only runs binfeat's extraction (the JVMs schedule Python
    tasks and carry small rows), so when Python starts the JVM itself the driver and executor
    JVMs get :data:`COORDINATOR_JVM_OPTIONS` in front of any given Java options (which win).
    ``conf`` entries always win. An existing session (``getOrCreate``) keeps its JVM options.
    When Python starts the JVM itself, a local master without a retry count gets one
    (:func:`with_task_retries`): ``local[2]`` runs as ``local[2,4]``.
    """
    from pyspark import SparkConf, SparkContext
    from pyspark.sql import SparkSession

    submitted = under_spark_submit()
    if submitted:
        SparkContext._ensure_initialized()  # attach to spark-submit's JVM so SparkConf sees its props
    sconf = SparkConf()
    if master:
        sconf.setMaster(master if submitted else with_task_retries(master))
    elif not sconf.contains("spark.master"):
        sconf.setMaster(DEFAULT_MASTER)
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
        # the daemon imports binfeat once and forks warm workers (jobs/pyspark_daemon.py); only
        # here, where the PYTHONPATH above guarantees it can be imported: a daemon module that
        # cannot be imported fails every Python task, with no fallback on Spark's side
        sconf.setIfMissing("spark.python.daemon.module", DAEMON_MODULE)
    for key, value in (conf or {}).items():
        sconf.set(str(key), str(value))
    if coordinator_jvm and not submitted:
        for key in ("spark.driver.extraJavaOptions", "spark.executor.extraJavaOptions"):
            given = sconf.get(key, None) or ""
            if "TieredStopAtLevel" not in given:
                sconf.set(key, f"{COORDINATOR_JVM_OPTIONS} {given}".strip())
    spark = SparkSession.builder.config(conf=sconf).getOrCreate()
    spark.sparkContext.setLogLevel("WARN")
    return spark


def default_parallelism(spark) -> int:
    """Cores available to the job (the planner's ``cores``)."""
    try:
        return max(1, int(spark.sparkContext.defaultParallelism))
    except Exception:
        return 1
