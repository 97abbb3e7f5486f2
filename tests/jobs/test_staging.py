"""The run's folder next to OUTPUT: a live run's is never removed, a dead run's is, by the next run.

"Live" and "dead" are real processes here: a child that created its folder and waits, then is
killed with SIGKILL (the kernel drops its lock, as for a job killed mid-run).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from jobs.staging import LOCK_NAME, RunStaging, remove_stale
from tests.jobs._support import REPO

HOLDER = (
    "import sys, time\n"
    "from jobs.staging import RunStaging\n"
    "s = RunStaging.create(sys.argv[1])\n"
    "(s.attempts / 'part-00000.partial.tmp').write_bytes(b'x' * 1000)\n"
    "print(s.root, flush=True)\n"
    "time.sleep(600)\n"
)


@pytest.fixture
def holder(tmp_path):
    """A process that owns a run folder next to tmp_path/out; yields (process, folder)."""
    proc = subprocess.Popen([sys.executable, "-c", HOLDER, str(tmp_path / "out")], stdout=subprocess.PIPE,
                            text=True, cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)})
    try:
        folder = proc.stdout.readline().strip()
        assert folder, "the holder did not start"
        yield proc, folder
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=30)
        proc.stdout.close()


def test_a_live_runs_folder_stays_and_a_killed_runs_goes(tmp_path, holder):
    proc, folder = holder
    assert os.path.isdir(folder) and os.path.basename(folder).startswith(".out.binfeat-run-")
    assert remove_stale(tmp_path / "out") == []  # the owner is alive: its folder stays, whatever its age
    assert remove_stale(tmp_path / "out", grace_s=0) == []
    assert os.path.isfile(os.path.join(folder, "attempts", "part-00000.partial.tmp"))
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    removed = remove_stale(tmp_path / "out")
    assert [str(p) for p in removed] == [folder] and not os.path.exists(folder)


def test_own_folder_layout_and_close(tmp_path):
    with RunStaging.create(tmp_path / "out") as s:
        assert sorted(p.name for p in s.root.iterdir()) == ["attempts", "dataset", LOCK_NAME]
        assert (s.root / LOCK_NAME).read_text().startswith(f"pid {os.getpid()} ")
        assert remove_stale(tmp_path / "out", grace_s=0) == []  # our own, locked: stays
    assert list(tmp_path.iterdir()) == []


def test_other_outputs_and_young_unlocked_folders_are_left_alone(tmp_path):
    other = tmp_path / ".outer.binfeat-run-0123"  # another OUTPUT ("outer") sharing the prefix "out"
    other.mkdir()
    young = tmp_path / ".out.binfeat-run-young"  # created, lock not yet taken: a run starting now
    young.mkdir()
    empty_lock = tmp_path / ".out.binfeat-run-opening"
    empty_lock.mkdir()
    (empty_lock / LOCK_NAME).touch()  # opened, not yet locked and written
    assert remove_stale(tmp_path / "out") == []
    old = time.time() - 3600
    for d in (young, empty_lock):
        os.utime(d, (old, old))
    assert sorted(p.name for p in remove_stale(tmp_path / "out")) == [empty_lock.name, young.name]
    assert other.is_dir()


def test_create_fails_cleanly_where_nothing_can_be_written():
    with pytest.raises(OSError):
        RunStaging.create("/proc/binfeat-out")
