"""run_json: a fresh interpreter's JSON figures, its progress lines passed on, its failures in one line."""

from __future__ import annotations

import time

import psutil
import pytest

from benchmarks.child_process import run_json

CHILD = "tests.benchmarks.run_json_child"


def test_result_and_progress_lines() -> None:
    seen: list[str] = []
    result = run_json(CHILD, ["ok", "a", "b"], timeout=120, what="child", progress=seen.append,
                      progress_prefix="[t]")
    assert result == {"mode": "ok", "args": ["a", "b"]}
    assert seen == ["step one", "step two"]  # stdout and stderr both read; other lines are not progress


def test_failure_names_the_exit_code_and_the_last_lines() -> None:
    with pytest.raises(RuntimeError) as info:
        run_json(CHILD, ["fail"], timeout=120, what="the failing child")
    assert str(info.value) == "the failing child exited with 3: failing line 0 | failing line 1 | failing line 2"


def test_an_allowed_exit_code_without_a_result_is_still_a_failure() -> None:
    with pytest.raises(RuntimeError, match=r"^silent child exited with 0: $"):
        run_json(CHILD, ["silent"], timeout=120, what="silent child", ok_exit_codes=(0, 1))


def test_timeout_kills_the_child_and_what_it_started(tmp_path) -> None:
    pid_file = tmp_path / "grandchild.pid"
    with pytest.raises(RuntimeError, match="took longer than 15 s and was stopped"):
        run_json(CHILD, ["hang", str(pid_file)], timeout=15, what="hanging child")
    pid = int(pid_file.read_text())
    deadline = time.monotonic() + 30  # the kill is sent; wait for the kernel to reap the orphan
    while psutil.pid_exists(pid) and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
        assert time.monotonic() < deadline, f"grandchild {pid} outlived its group"
        time.sleep(0.1)
