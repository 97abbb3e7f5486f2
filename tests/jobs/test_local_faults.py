"""Faults in the local engine, for real (``binfeat extract --engine local`` in its own process):

- an exception for one file, and for a whole chunk (tests/jobs/fault_plugin.py in each pool process):
  the error rows the Spark job gives;
- a pool process killed with SIGKILL mid-task: its task runs again in a fresh process, no row lost;
- a task that kills its process every time: after two deaths, one error row per file of the task;
- a pool process that cannot start: the run fails with one line, OUTPUT untouched;
- the driver killed with SIGKILL mid-run: the pool dies with it, the previous OUTPUT is untouched,
  and the next run removes the folder the killed one left.
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
from jobs.local_engine import BYTES_PER_CPU_S, FILE_CPU_S, START_CPU_S, plan_local, pool_size
from tests.jobs._support import REPO, child_env, read_output, rows_by_path

PLUGIN = {"BINFEAT_TEST_WORKER_PLUGIN": "tests.jobs.fault_plugin"}


def _command(*args: str) -> list[str]:
    return [sys.executable, "-m", "binfeat", "extract", *args, "--engine", "local", "--quiet"]


def _env(**extra: str) -> dict[str, str]:
    return {**child_env(**extra), "PYTHONPATH": str(REPO)}


def _run(*args: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(_command(*args), cwd=REPO, env=_env(**env), capture_output=True, text=True, timeout=600)


def _inputs(folder: Path, names: list[str], sources: list[Path]) -> None:
    """Real executables under the given names, each with distinct contents."""
    folder.mkdir()
    for i, name in enumerate(names):
        shutil.copyfile(sources[i % len(sources)], folder / name)
        with open(folder / name, "ab") as f:
            f.write(i.to_bytes(2, "little"))


def _cmdline(p: psutil.Process) -> str:
    try:
        return " ".join(p.cmdline())
    except psutil.Error:
        return ""


def _wait_for(path: Path, proc: subprocess.Popen, timeout: float = 300) -> str:
    end = time.monotonic() + timeout
    while not path.exists():
        if proc.poll() is not None:
            raise AssertionError(f"the run ended (code {proc.returncode}) before pausing: {proc.stderr.read()[-3000:]}")
        if time.monotonic() > end:
            raise TimeoutError(f"no {path.name} after {timeout} s")
        time.sleep(0.05)
    return path.read_text()


def _task_of(src: Path, marker: str, workers: int, partitions: int) -> set[str]:
    """The paths that share a task with the file whose name holds ``marker`` (the engine's own plan)."""
    tasks = plan_local(list_inputs(str(src)), workers, partitions)
    (task,) = [t for t in tasks if any(marker in e[0] for e in t)]
    assert 1 < len(task) < sum(len(t) for t in tasks)
    return {e[0] for e in task}


def test_exceptions_for_a_file_and_for_a_chunk_become_error_rows(tmp_path, system_binaries):
    src = tmp_path / "in"
    _inputs(src, [f"sample-{i:02d}.bin" for i in range(10)] + ["chunk-fault.bin", "file-fault.bin"], system_binaries)
    chunk = _task_of(src, "chunk-fault", 2, 3)
    file_fault = str(src / "file-fault.bin")  # in the faulty chunk or not, as the plan decides
    proc = _run(str(src), str(tmp_path / "out"), "--workers", "2", "--partitions", "3", **PLUGIN)
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = json.loads(proc.stdout)
    rows = rows_by_path(read_output(tmp_path / "out"))
    assert len(rows) == summary["rows"] == 12 and summary["worker_deaths"] == 0
    for path, row in rows.items():
        if path in chunk:  # the chunk's error covers every file of it
            assert (row["status"], row["error"]) == ("error", "internal: InjectedFault: the whole chunk broke"), path
        elif path == file_fault:
            assert (row["status"], row["error"]) == ("error", "internal: InjectedFault: one file's preparation broke")
        else:
            assert row["status"] == "ok" and row["sha256"], path
    assert summary["counts_by_status"]["error"] == len(chunk) + (file_fault not in chunk)


def test_a_pool_process_killed_mid_task_costs_no_row(tmp_path, system_binaries):
    src = tmp_path / "in"
    _inputs(src, [f"sample-{i:02d}.bin" for i in range(11)] + ["pause-here.bin"], system_binaries)
    with open(src / "pause-here.bin", "r+b") as f:
        f.truncate(200)  # the smallest: not in the first task, so the process has started its parser worker
    tasks = plan_local(list_inputs(str(src)), 1, 12)  # one process runs them in this order
    assert not any("pause-here" in e[0] for e in tasks[0])
    pause = tmp_path / "pause"
    pause.mkdir()
    (pause / "armed").touch()
    out = tmp_path / "out"
    job = subprocess.Popen(_command(str(src), str(out), "--workers", "1", "--partitions", "12"), cwd=REPO,
                           start_new_session=True,
                           env=_env(**PLUGIN, BINFEAT_TEST_PAUSE_DIR=str(pause)), stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True)  # fmt: skip
    try:
        pid = int(_wait_for(pause / "pid", job))
        worker = psutil.Process(pid)
        assert "-m jobs.local_worker" in _cmdline(worker) and worker.ppid() == job.pid  # a pool process, no JVM
        (run_folder,) = tmp_path.glob(".out.binfeat-run-*")
        assert list((run_folder / "attempts").glob("part-*.tmp"))  # its part file, being written
        parsers = worker.children(recursive=True)
        assert parsers and all("extract.worker" in _cmdline(p) for p in parsers)
        os.kill(pid, signal.SIGKILL)
        stdout, stderr = job.communicate(timeout=600)
        _, alive = psutil.wait_procs(parsers, timeout=60)
        assert not alive, f"the killed process's parser worker outlived it: {alive}"
    finally:
        if job.poll() is None:
            job.kill()
            job.communicate()
    assert job.returncode == 0, stderr[-3000:]
    summary = json.loads(stdout)
    assert (summary["engine"], summary["worker_deaths"], summary["rows"]) == ("local", 1, 12)
    table = read_output(out)
    assert sorted(table.column("path").to_pylist()) == sorted(f.path for f in list_inputs(str(src)))
    assert set(table.column("status").to_pylist()) == {"ok"}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in", "out", "out.summary.json", "pause"]
    assert sorted(p.name for p in pause.iterdir()) == ["armed.claimed", "pid"]  # it paused once
    assert [p.name for p in out.iterdir() if not p.name.startswith("part-")] == ["_binfeat_summary.json"]
    assert len(list(out.glob("part-*.parquet"))) == summary["partitions"]


def test_a_task_that_kills_its_process_twice_gets_error_rows(tmp_path, system_binaries):
    src = tmp_path / "in"
    _inputs(src, [f"sample-{i:02d}.bin" for i in range(11)] + ["kill-here.bin"], system_binaries)
    doomed = _task_of(src, "kill-here", 2, 4)
    proc = _run(str(src), str(tmp_path / "out"), "--workers", "2", "--partitions", "4", **PLUGIN)
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = json.loads(proc.stdout)
    rows = rows_by_path(read_output(tmp_path / "out"))
    assert len(rows) == summary["rows"] == 12 and summary["worker_deaths"] == 2
    message = "internal: WorkerDied: the pool process extracting this file's chunk died twice (killed by SIGKILL)"
    for path, row in rows.items():
        if path in doomed:
            assert (row["status"], row["error"], row["sha256"], row["vector"]) == ("error", message, None, None), path
        else:
            assert row["status"] == "ok" and row["sha256"], path
    assert summary["counts_by_status"] == {"error": len(doomed), "ok": 12 - len(doomed)}


def test_a_pool_that_cannot_start_fails_the_run_in_one_line(tmp_path, system_binaries):
    src = tmp_path / "in"
    _inputs(src, ["a.bin", "b.bin"], system_binaries)
    out = tmp_path / "out"
    out.mkdir()
    (out / "_binfeat_summary.json").write_text("{}")  # a previous output, to be kept
    proc = _run(str(src), str(out), BINFEAT_TEST_WORKER_PLUGIN="tests.jobs.no_such_plugin")
    assert proc.returncode == 1
    lines = [ln for ln in proc.stderr.splitlines() if ln.startswith("binfeat extract")]
    assert lines[-1] == ("binfeat extract: failed: LocalEngineError: the local engine's worker processes cannot start "
                         "(exit code 1; see stderr)")  # fmt: skip
    assert "No module named 'tests.jobs.no_such_plugin'" in proc.stderr  # the worker's own error, above
    assert sorted(p.name for p in out.iterdir()) == ["_binfeat_summary.json"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in", "out"]


def test_a_killed_local_run_keeps_the_previous_output_and_its_folder_is_removed_next(tmp_path, system_binaries):
    src = tmp_path / "in"
    _inputs(src, [f"sample-{i:02d}.bin" for i in range(5)] + ["pause-here.bin"], system_binaries)
    out = tmp_path / "out"
    first = _run(str(src), str(out))
    assert first.returncode == 0, first.stderr[-3000:]
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    before_summary = (tmp_path / "out.summary.json").read_bytes()

    pause = tmp_path / "pause"
    pause.mkdir()
    (pause / "armed").touch()
    job = subprocess.Popen(_command(str(src), str(out)), cwd=REPO, start_new_session=True,
                           env=_env(**PLUGIN, BINFEAT_TEST_PAUSE_DIR=str(pause)), stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL)  # fmt: skip
    try:
        _wait_for(pause / "pid", job)
        family = psutil.Process(job.pid).children(recursive=True)
        assert any("-m jobs.local_worker" in _cmdline(p) for p in family)
        os.kill(job.pid, signal.SIGKILL)  # the driver only: its pool must go with it
        job.wait(timeout=60)
        _, alive = psutil.wait_procs(family, timeout=60)
        for p in alive:  # ours, by id: never left behind, and the test says so
            p.kill()
        assert not alive, f"processes of the killed run outlived it: {[_cmdline(p) for p in alive]}"
    finally:
        if job.poll() is None:
            job.kill()
            job.wait()
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before  # untouched
    assert (tmp_path / "out.summary.json").read_bytes() == before_summary
    (left,) = tmp_path.glob(".out.binfeat-run-*")
    assert (left / "dataset").is_dir()

    again = _run(str(src), str(out))
    assert again.returncode == 0, again.stderr[-3000:]
    summary = json.loads(again.stdout)
    assert summary["stale_run_folders_removed"] == 1 and summary["rows"] == 6 and summary["engine"] == "local"
    assert not left.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in", "out", "out.summary.json", "pause"]
    assert rows_by_path(read_output(out)).keys() == {f.path for f in list_inputs(str(src))}


@pytest.mark.parametrize("workers", [None, 1, 3])
def test_the_pool_size_is_what_was_asked_for(tmp_path, system_binaries, workers):
    src = tmp_path / "in"
    _inputs(src, [f"s{i}.bin" for i in range(6)], system_binaries)
    asked = () if workers is None else ("--workers", str(workers))
    proc = _run(str(src), str(tmp_path / "out"), *asked)
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = json.loads(proc.stdout)
    expected = workers or 1  # six files: one process pays for itself, a second would not
    assert summary["workers"] == expected and summary["rows"] == 6
    assert summary["partitions"] == len(plan_local(list_inputs(str(src)), expected))


def test_the_default_pool_grows_with_the_work():
    start = int(START_CPU_S / FILE_CPU_S)  # files whose extraction costs one process's start
    assert pool_size(1, 70_000, 2) == 1
    assert pool_size(100, 8_800_000, 2) == 1
    assert pool_size(1000, 101_000_000, 2) == 1
    assert pool_size(2 * start - 1, 0, 8) == 1 and pool_size(2 * start, 0, 8) == 2
    assert pool_size(1000, 1 << 30, 2) == 2  # 1 GiB: capped by the cores
    assert pool_size(1000, 1 << 30, 8) == int((1000 * FILE_CPU_S + (1 << 30) / BYTES_PER_CPU_S) // START_CPU_S)
    assert pool_size(10**6, 0, 8) == 8 and pool_size(0, 0, 4) == 1
