"""The Python side of pyspark and the JVM it starts must be the same release (see README, One pyspark).

Each check runs in its own process: a fresh JVM, nothing shared with other tests' sessions.
"""

from __future__ import annotations

import subprocess
import sys

import pytest


def _run(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)


@pytest.mark.spark
def test_python_and_jvm_spark_versions_agree():
    proc = _run(
        "import pyspark\n"
        "from pyspark.sql import SparkSession\n"
        "s = SparkSession.builder.master('local[1]').appName('version-check').getOrCreate()\n"
        "print(pyspark.__version__, s.sparkContext._jsc.version(), s.version)\n"
        "s.stop()\n"
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    python_side, jvm, session = proc.stdout.split()[-3:]
    assert python_side == jvm == session, (
        f"pyspark's Python files say {python_side} but the JVM runs Spark {jvm}: pyspark-client has "
        "overwritten pyspark (see README, One pyspark)"
    )


@pytest.mark.spark
def test_spark_start_up_prints_no_worrying_warning():
    proc = _run(
        "from jobs.session import spark_session\n"
        "s = spark_session('local[1]', 'quiet-check')\n"
        "s.range(3).count()\n"
        "s.stop()\n"
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = proc.stdout + proc.stderr
    for worrying in ("FutureWarning", "pandas >= 3", "loopback address", "NativeCodeLoader"):
        assert worrying not in out, out[-3000:]
