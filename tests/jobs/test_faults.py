"""Faults inside real Spark jobs (``binfeat extract`` in its own process, local mode).

- an unexpected exception for one file, and for a whole chunk, inside real executors (injected by
  tests/jobs/fault_plugin.py, which each Python worker imports): error rows, never a failed job;
- a real pyspark worker killed with SIGKILL mid-task under the default master: the task is retried,
  the output is complete, and the killed attempt's partial file is not in it;
- a whole job killed with SIGKILL: the next run on the same OUTPUT removes the folder it left.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from jobs.inputs import list_inputs
from jobs.planning import plan_inputs
from tests.jobs._support import REPO, child_env, read_output

pytestmark = pytest.mark.spark

PLUGIN = {"BINFEAT_TEST_WORKER_PLUGIN": "tests.jobs.fault_plugin"}


def _inputs(folder: Path, names: list[str], sources: list[Path]) -> None:
    """Real executables (this machine's) under the given names."""
    folder.mkdir()
    for i, name in enumerate(names):
        shutil.copyfile(sources[i % len(sources)], folder / name)


def _command(*args: str) -> list[str]:
    return [sys.executable, "-m", "binfeat", "extract", *args, "--quiet"]


def _env(**extra: str) -> dict[str, str]:
    return {**child_env(**extra), "PYTHONPATH": str(REPO)}


def _run(*args: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(_command(*args), cwd=REPO, env=_env(**env), capture_output=True, text=True, timeout=900)


def _wait_for(path: Path, proc: subprocess.Popen, timeout: float = 600) -> str:
    end = time.monotonic() + timeout
    while not path.exists():
        if proc.poll() is not None:
            raise AssertionError(f"the job ended (code {proc.returncode}) before pausing: {proc.stderr.read()[-3000:]}")
        if time.monotonic() > end:
            raise TimeoutError(f"no {path.name} after {timeout} s")
        time.sleep(0.2)
    return path.read_text()


def _stop_group(proc: subprocess.Popen) -> None:
    """SIGKILL the job's process group (driver, JVM); its pyspark daemon (a group of its own) then shuts
    down with its workers as it would after any killed job. Wait until every process of the job is gone."""
    try:
        family = psutil.Process(proc.pid).children(recursive=True)
    except psutil.Error:
        family = []
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=60)
    _, alive = psutil.wait_procs(family, timeout=60)
    for p in alive:  # ours, by id: never left behind, and the test says so
        p.kill()
    assert not alive, f"processes of the killed job outlived it: {alive}"


def _published(out: Path) -> list[str]:
    return sorted(p.name for p in out.iterdir())


def test_exceptions_for_a_file_and_for_a_chunk_become_error_rows(tmp_path):
    src = tmp_path / "in"
    src.mkdir()
    ls = Path("/bin/ls").read_bytes()
    for i in range(10):
        (src / f"sample-{i:02d}.bin").write_bytes(ls + bytes([i]))  # real ELF, distinct contents
    # the marked files largest, yet below a partition's share: the planner starts them in different partitions
    (src / "chunk-fault.bin").write_bytes(ls + bytes(len(ls)))
    (src / "file-fault.bin").write_bytes(ls + bytes(len(ls) // 2))
    listed = list_inputs(str(src))
    plan = plan_inputs(listed, cores=2, partitions=3)
    chunk_part = next(p for p in plan if any(e[0].endswith("chunk-fault.bin") for e in p))
    chunk_paths = {e[0] for e in chunk_part}
    file_fault = str(src / "file-fault.bin")
    assert file_fault not in chunk_paths and 1 < len(chunk_paths) < len(listed)

    out = tmp_path / "out"
    proc = _run(str(src), str(out), "--master", "local[2]", "--partitions", "3", **PLUGIN)
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = json.loads(proc.stdout)
    rows = {r["path"]: r for r in read_output(out).to_pylist()}
    assert len(rows) == summary["rows"] == len(listed) == 12
    for path, row in rows.items():
        if path in chunk_paths:
            assert (row["status"], row["error"]) == ("error", "internal: InjectedFault: the whole chunk broke"), path
        elif path == file_fault:
            assert (row["status"], row["error"]) == ("error", "internal: InjectedFault: one file's preparation broke")
        else:
            assert row["status"] != "error" and row["sha256"], path
        assert row["vector"] is None or len(row["vector"]) > 6000
    assert summary["counts_by_status"]["error"] == len(chunk_paths) + 1
    assert summary["listing_s"] > 0  # measured where the listing happens (the command line's)


def test_a_killed_pyspark_worker_costs_nothing_under_the_default_master(tmp_path, system_binaries):
    src = tmp_path / "in"
    names = [f"sample-{i:02d}.bin" for i in range(11)] + ["pause-here.bin"]
    _inputs(src, names, system_binaries)
    pause = tmp_path / "pause"
    pause.mkdir()
    (pause / "armed").touch()
    out = tmp_path / "out"
    job = subprocess.Popen(_command(str(src), str(out), "--partitions", "4", "--engine", "spark"), cwd=REPO,
                           start_new_session=True,
                           env=_env(**PLUGIN, BINFEAT_TEST_PAUSE_DIR=str(pause)), stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True)
    try:
        pid = int(_wait_for(pause / "pid", job))
        worker = psutil.Process(pid)
        # a real pyspark worker: forked by binfeat's pyspark daemon under the job's JVM
        assert "jobs.pyspark_daemon" in " ".join(worker.cmdline())
        assert "java" in worker.parent().parent().name() and job.pid in [p.pid for p in worker.parents()]
        (run_folder,) = tmp_path.glob(".out.binfeat-run-*")
        assert list((run_folder / "attempts").glob("part-*.tmp"))  # the attempt's partial file, being written
        parsers = worker.children(recursive=True)  # its parser worker, orphaned by the kill
        os.kill(pid, signal.SIGKILL)
        stdout, stderr = job.communicate(timeout=900)
        _, alive = psutil.wait_procs(parsers, timeout=60)
        assert not alive, f"the killed worker's children outlived it: {alive}"
    finally:
        if job.poll() is None:
            _stop_group(job)
    assert job.returncode == 0, stderr[-3000:]
    summary = json.loads(stdout)
    assert summary["master"] == "local[*,4]"
    table = read_output(out)
    paths = table.column("path").to_pylist()
    assert len(paths) == len(set(paths)) == summary["rows"] == 12
    assert sorted(paths) == sorted(f.path for f in list_inputs(str(src)))
    assert "error" not in summary["counts_by_status"]
    assert [p.name for p in out.iterdir() if not p.name.startswith("part-")] == ["_binfeat_summary.json"]
    assert len([p for p in out.iterdir() if p.name.endswith(".parquet")]) == summary["partitions"] == 4
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in", "out", "out.summary.json", "pause"]
    assert sorted(p.name for p in pause.iterdir()) == ["armed.claimed", "pid"]  # one attempt paused, once


def test_a_killed_jobs_folder_is_removed_by_the_next_run(tmp_path, system_binaries):
    src = tmp_path / "in"
    _inputs(src, [f"sample-{i:02d}.bin" for i in range(5)] + ["pause-here.bin"], system_binaries)
    pause = tmp_path / "pause"
    pause.mkdir()
    (pause / "armed").touch()
    out = tmp_path / "out"
    job = subprocess.Popen(_command(str(src), str(out), "--master", "local[2]"), cwd=REPO, start_new_session=True,
                           env=_env(**PLUGIN, BINFEAT_TEST_PAUSE_DIR=str(pause)), stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True)
    try:
        _wait_for(pause / "pid", job)
    finally:
        _stop_group(job)
        job.stdout.close()
        job.stderr.close()
    (left,) = tmp_path.glob(".out.binfeat-run-*")
    assert not out.exists() and (left / "dataset").is_dir()

    proc = _run(str(src), str(out), "--master", "local[2]")
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = json.loads(proc.stdout)
    assert summary["stale_run_folders_removed"] == 1 and summary["rows"] == 6
    assert not left.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in", "out", "out.summary.json", "pause"]
    assert "_binfeat_summary.json" in _published(out)
