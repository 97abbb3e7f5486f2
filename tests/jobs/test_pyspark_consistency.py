"""The Python side of pyspark and the JVM it starts must be the same release (see README, One pyspark)."""

from __future__ import annotations

import subprocess
import sys

import pytest


@pytest.mark.spark
def test_python_and_jvm_spark_versions_agree():
    import pyspark
    from pyspark.sql import SparkSession

    spark = SparkSession.builder.master("local[1]").appName("version-check").getOrCreate()
    try:
        jvm_version = spark.sparkContext._jsc.version()
        assert pyspark.__version__ == jvm_version == spark.version, (
            f"pyspark Python files say {pyspark.__version__} but the JVM runs Spark {jvm_version}: "
            "pyspark-client has overwritten pyspark (see README, One pyspark)"
        )
    finally:
        spark.stop()


@pytest.mark.spark
def test_spark_start_up_prints_no_worrying_warning(tmp_path):
    code = (
        "from jobs.session import spark_session\n"
        "s = spark_session('local[1]', 'quiet-check')\n"
        "s.range(3).count()\n"
        "s.stop()\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = proc.stdout + proc.stderr
    for worrying in ("FutureWarning", "pandas >= 3", "loopback address", "NativeCodeLoader"):
        assert worrying not in out, out[-3000:]
