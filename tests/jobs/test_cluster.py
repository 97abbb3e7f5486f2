"""A real standalone cluster: a master and two workers on 127.0.0.1, the job shipped with --py-files.

Honesty about "binfeat not installed on the cluster": the driver and the executors run a throwaway
venv whose only link to the project venv is a ``.pth`` line naming its site-packages, so every
third-party dependency (pyarrow, numpy, lief, numba, boto3) is importable but ``.pth`` hooks of
that site-packages (an editable install of binfeat) are not run; the submit happens from a temp
dir with PYTHONPATH scrubbed, and the primary script is the copy inside the built archive. The
test first proves that this interpreter cannot import ``jobs`` or ``extract`` on its own.
"""

from __future__ import annotations

import json
import subprocess
import time
import urllib.request
import zipfile
from pathlib import Path

import pytest

from jobs.extract_features import features_dataframe
from jobs.inputs import list_inputs
from jobs.output import summary_path
from jobs.package import build_pyfiles_zip
from tests.jobs._support import bare_python, child_env, free_port, read_output, rows_by_path, sample_corpus

pytestmark = [pytest.mark.spark, pytest.mark.network]

SPARK_BIN = Path(__import__("pyspark").__file__).parent / "bin"


def _wait(predicate, timeout: float, what: str) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return
        time.sleep(0.5)
    raise TimeoutError(f"timed out waiting for {what}")


def _alive_workers(ui_port: int) -> int:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{ui_port}/json/", timeout=2) as r:
            data = json.load(r)
    except OSError:
        return 0
    return sum(1 for w in data.get("workers", []) if w.get("state") == "ALIVE")


def _corpus_inputs(crafted) -> list[str]:
    sample = sample_corpus(12)
    if sample:
        return [str(p) for p in sample]
    return [f.path for f in list_inputs(str(crafted["root"]))]


def test_standalone_cluster_matches_local_mode(spark, crafted, tmp_path):
    paths = _corpus_inputs(crafted)
    manifest = tmp_path / "inputs.jsonl"
    manifest.write_text("".join(json.dumps({"path": p}) + "\n" for p in paths))

    bare = bare_python(tmp_path)
    probe = subprocess.run(
        [str(bare), "-c", "import pyarrow, numpy, lief, boto3, pyspark; import jobs"],
        cwd=tmp_path,
        env=child_env(),
        capture_output=True,
        text=True,
    )
    assert "No module named 'jobs'" in probe.stderr, probe.stderr  # deps yes, binfeat no

    archive = build_pyfiles_zip(tmp_path / "dist" / "binfeat.zip")
    primary = tmp_path / "extract_features.py"
    with zipfile.ZipFile(archive) as zf:
        primary.write_bytes(zf.read("jobs/extract_features.py"))
        assert {"extract/__init__.py", "jobs/extract_features.py", "jobs/inputs.py"} <= set(zf.namelist())

    port, ui = free_port(), free_port()
    env = child_env(SPARK_HOME=str(SPARK_BIN.parent), PYSPARK_PYTHON=str(bare))
    logs = tmp_path / "logs"
    logs.mkdir()
    procs: list[subprocess.Popen] = []

    def start(name: str, *args: str) -> None:
        out = open(logs / f"{name}.log", "wb")
        proc = subprocess.Popen(
            [str(SPARK_BIN / "spark-class"), *args],
            env=env,
            cwd=tmp_path,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
        proc.stdout_file = out  # closed when the cluster is stopped
        procs.append(proc)

    try:
        start(
            "master",
            "org.apache.spark.deploy.master.Master",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--webui-port",
            str(ui),
        )
        _wait(lambda: _alive_workers(ui) == 0 and _ui_up(ui), 120, "the master")
        for n in (1, 2):
            start(
                f"worker{n}",
                "org.apache.spark.deploy.worker.Worker",
                f"spark://127.0.0.1:{port}",
                "--host",
                "127.0.0.1",
                "--cores",
                "1",
                "--memory",
                "1g",
                "--webui-port",
                str(free_port()),
                "--work-dir",
                str(tmp_path / f"work{n}"),
            )
        _wait(lambda: _alive_workers(ui) == 2, 120, "two workers")

        out = tmp_path / "cluster-out"
        cmd = [
            str(SPARK_BIN / "spark-submit"),
            "--master",
            f"spark://127.0.0.1:{port}",
            "--py-files",
            str(archive),
            "--conf",
            f"spark.pyspark.python={bare}",
            "--conf",
            f"spark.pyspark.driver.python={bare}",
            "--conf",
            "spark.executor.memory=768m",
            "--conf",
            "spark.ui.enabled=false",
            str(primary),
            str(manifest),
            str(out),
            "--partitions",
            "4",
            "--quiet",
        ]
        job = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
        assert job.returncode == 0, job.stderr[-4000:]
        # spark-submit merges the driver's stderr into its stdout: the summary is the trailing JSON.
        summary = json.loads(summary_path(out).read_text())
        assert job.stdout.rstrip().endswith(json.dumps(summary, indent=2, sort_keys=True))
        assert summary["master"] == f"spark://127.0.0.1:{port}"
        assert summary["rows"] == len(paths)
        # both workers ran tasks
        used = [d for n in (1, 2) for d in (tmp_path / f"work{n}").glob("app-*/*") if d.is_dir()]
        assert len(used) == 2, used
    finally:
        for p in reversed(procs):
            p.terminate()
        for p in procs:
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(timeout=30)
            p.stdout_file.close()

    cluster_rows = rows_by_path(read_output(out))
    local = features_dataframe(spark, list_inputs(str(manifest))).toArrow()
    local_rows = rows_by_path(local)
    assert len(cluster_rows) == len(paths)
    assert sorted(cluster_rows) == sorted(local_rows)
    for p, row in local_rows.items():
        assert cluster_rows[p] == row, p


def _ui_up(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/", timeout=2):
            return True
    except OSError:
        return False
