"""Warm Python workers: the preloading daemon, the frozen heap, the coordinator JVM's options.

Why these matter: the job's CPU over a plain loop came from per-task full garbage collections,
per-worker imports and kernel loads, and C2 compiling Spark code job after job (docs/spark_job.md).
"""

from __future__ import annotations

import json
import struct
import subprocess
import sys
import zipfile

import psutil
import pytest

from jobs.extract_features import run
from jobs.session import DAEMON_MODULE
from tests.jobs._support import REPO, bare_python, child_env, read_output

pytestmark = pytest.mark.spark


def _run(code: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=300, cwd=REPO, env=child_env()
    )


def _cmdline(p: psutil.Process) -> str:
    try:
        return " ".join(p.cmdline())
    except psutil.Error:  # exited (or a zombie) while we looked
        return ""


def _daemons() -> list[psutil.Process]:
    """The JVM's Python daemons (the workers it forks carry the same command line)."""
    found = []
    for jvm in psutil.Process().children():
        if "java" in _cmdline(jvm).split(" ", 1)[0]:
            found += [p for p in jvm.children() if f"-m {DAEMON_MODULE}" in _cmdline(p)]
    return found


def test_local_session_forks_workers_from_a_daemon_that_preloaded_binfeat(spark, crafted, tmp_path):
    assert spark.sparkContext.getConf().get("spark.python.daemon.module") == DAEMON_MODULE
    run(str(crafted["root"]), str(tmp_path / "features"), spark=spark)
    assert read_output(tmp_path / "features").num_rows == 9
    daemons = _daemons()  # one per worker environment (tests that set executor env vars add one)
    assert daemons, "no jobs.pyspark_daemon under the JVM"
    for daemon in daemons:
        # the daemon mapped pyarrow's and numba's native libraries itself: binfeat was loaded before any fork
        with open(f"/proc/{daemon.pid}/maps", encoding="ascii", errors="replace") as f:
            maps = f.read()
        assert "libarrow" in maps and "llvmlite" in maps
        # the daemon never started a parser worker (no parse in the preload): only its workers do
        assert not [c for c in daemon.children() if "extract.worker" in _cmdline(c)]
    assert any(d.children() for d in daemons), "no Python worker forked from a daemon"

    def probe(_):
        import gc

        yield (gc.get_freeze_count() > 0, "extract.extractor" in sys.modules)

    assert set(spark.sparkContext.parallelize(range(2), 2).mapPartitions(probe).collect()) == {(True, True)}


def test_preload_warms_freezes_and_keeps_stdout_clean():
    proc = _run(
        "import gc, json, os, sys\n"
        "from jobs.pyspark_daemon import preload\n"
        "preload()\n"
        "children = open(f'/proc/self/task/{os.getpid()}/children').read().split()\n"
        "sys.stderr.write(json.dumps({'frozen': gc.get_freeze_count(), 'children': children,\n"
        "    'loaded': 'extract.extractor' in sys.modules}))\n"
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout == ""  # the daemon's stdout carries its port number to the JVM
    state = json.loads(proc.stderr.strip().splitlines()[-1])
    assert state["loaded"] and state["frozen"] > 10_000 and state["children"] == []


def test_coordinator_jvm_gets_c1_only_and_keeps_given_java_options():
    proc = _run(
        "from jobs.session import spark_session\n"
        "s = spark_session('local[1]', 'c1-check', conf={'spark.driver.extraJavaOptions': '-Dbinfeat.check=1'},\n"
        "                  coordinator_jvm=True)\n"
        "args = list(s.sparkContext._jvm.java.lang.management.ManagementFactory.getRuntimeMXBean()\n"
        "            .getInputArguments())\n"
        "print(' '.join(args))\n"
        "print(s.sparkContext.getConf().get('spark.executor.extraJavaOptions'))\n"
        "s.stop()\n"
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    jvm_args, executor_opts = proc.stdout.strip().splitlines()[-2:]
    assert "-XX:TieredStopAtLevel=1" in jvm_args.split() and "-Dbinfeat.check=1" in jvm_args.split()
    assert "-XX:TieredStopAtLevel=1" in executor_opts.split()  # Spark adds its own module flags


def test_daemon_without_binfeat_extract_still_serves_workers(tmp_path):
    """The preload failing (here: an archive without ``extract``) leaves the stock daemon behaviour."""
    archive = tmp_path / "jobs-only.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for path in sorted((REPO / "jobs").glob("*.py")):
            zf.write(path, f"jobs/{path.name}")
    proc = subprocess.run(
        [str(bare_python(tmp_path)), "-m", DAEMON_MODULE],
        stdin=subprocess.DEVNULL,  # EOF on stdin: the daemon's signal to shut down after start-up
        capture_output=True,
        timeout=120,
        cwd=tmp_path,
        env=child_env(PYTHONPATH=str(archive)),
    )
    # (pyspark's manager exits with 1 however it is stopped: its ``finally`` calls shutdown(1))
    assert len(proc.stdout) == 4, proc.stderr[-2000:]
    (port,) = struct.unpack(">i", proc.stdout)  # exactly the port number, as pyspark's daemon writes it
    assert 0 < port < 65536
    assert b"binfeat preload failed, workers load it themselves: ModuleNotFoundError" in proc.stderr
