"""Log rotation and store maintenance on real folders; the metadata clean-up command for the scheduler host.

The clean-up itself against a real metadata database runs in tests/dags/test_real_services.py.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from datetime import UTC, datetime

import pytest

from airflow_ops.maintenance import delete_old_files, maintain_corpus_store
from airflow_ops.metadata_cleanup import clean_command, main, systemd_units
from tests.airflow_ops.airflow_home import REPO

DAY = 86400


def _age(path, days: float) -> None:
    past = time.time() - days * DAY
    os.utime(path, (past, past), follow_symlinks=False)


def test_delete_old_files(tmp_path):
    logs = tmp_path / "logs"
    run = logs / "dag_id=x" / "run_id=y" / "task_id=z"
    run.mkdir(parents=True)
    old, new = run / "attempt=1.log", run / "attempt=2.log"
    old.write_text("old")
    new.write_text("new")
    _age(old, 40)
    stale = logs / "dag_id=gone" / "run_id=r"
    stale.mkdir(parents=True)
    (stale / "attempt=1.log").write_text("old")
    _age(stale / "attempt=1.log", 31)
    keep_target = tmp_path / "elsewhere.txt"  # an old link's target outside the folder stays
    keep_target.write_text("not a log")
    _age(keep_target, 100)
    link = logs / "link.log"
    link.symlink_to(keep_target)
    _age(link, 40)
    got = delete_old_files(str(logs), 30)
    assert got == {"folder": str(logs), "removed_files": 3, "kept_files": 1}
    assert new.exists() and not old.exists() and not link.is_symlink() and keep_target.exists()
    assert not (logs / "dag_id=gone").exists()  # emptied folders go
    assert logs.is_dir()  # the root stays even when empty
    assert delete_old_files(str(logs), 30) == {"folder": str(logs), "removed_files": 0, "kept_files": 1}
    with pytest.raises(ValueError, match="at least 1"):
        delete_old_files(str(logs), 0)


def test_maintain_corpus_store_on_the_iceberg_store(tmp_path):
    """The maintenance task's function on a real embedded store: the oldest date expires (keep_days=2),
    a killed night's orphan goes, what is kept reads the same; no store or no tables: left alone."""
    from jobs.corpus.tags import describe_date, published_dates
    from tests.jobs.corpus_support import as_of_rows, feed, open_store, sha, synthetic_night

    none = str(tmp_path / "none")
    assert maintain_corpus_store(store=none) == {"store": none, "skipped": "no store yet"}
    assert not os.path.exists(none)  # not created
    empty = tmp_path / "empty"
    from jobs.corpus.catalog import StoreConfig, open_catalog

    open_catalog(StoreConfig(store=str(empty)))  # a catalog without the corpus tables
    assert maintain_corpus_store(store=str(empty))["skipped"] == "no corpus tables yet"

    store = tmp_path / "store"
    tables = open_store(store)
    days = ["2026-11-20", "2026-11-21", "2026-11-22"]
    for i, day in enumerate(days):
        synthetic_night(tables, day, [sha(f"s{i}")], feed=feed((sha(f"s{i}"), f"label{i}")))
    kept = {d: as_of_rows(tables, d) for d in days[1:]}
    data = tables.features.location().removeprefix("file://") + "/data/ingest_date=2026-11-22"
    orphan = os.path.join(data, "killed-night.parquet")  # a killed night's file, two hours old
    with open(orphan, "wb") as fh:
        fh.write(b"PAR1 not referenced")
    _age(orphan, 2 / 24)
    report = maintain_corpus_store(store=str(store), keep_days=2, orphan_age_hours=1.0, compact=False)
    assert report["removed_dates"] == days[:1]  # the newest date minus 2 days, and older
    tables.refresh()
    assert published_dates(tables.features) == days[1:] and describe_date(days[0], store=str(store)) is None
    assert report["orphans"] == 1 and not os.path.exists(orphan)
    assert {d: as_of_rows(tables, d) for d in days[1:]} == kept


def test_clean_command_is_exact():
    now = datetime(2026, 12, 6, 3, 30, tzinfo=UTC)
    assert clean_command(90, now=now, airflow="/venv/bin/airflow") == [
        "/venv/bin/airflow", "db", "clean", "--clean-before-timestamp", "2026-09-07T03:30:00+00:00",
        "--skip-archive", "--yes", "--error-on-cleanup-failure",
    ]  # fmt: skip
    assert clean_command(0, now=now, airflow="airflow", dry_run=True)[-1] == "--dry-run"
    with pytest.raises(ValueError, match=">= 0"):
        clean_command(-1)


def _module(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "airflow_ops.metadata_cleanup", *args],
        env={**os.environ, "PYTHONPATH": str(REPO), **(env or {})}, capture_output=True, text=True, timeout=120,
    )  # fmt: skip


def test_cleanup_refuses_to_run_inside_a_task():
    got = _module(env={"AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": "airflow-db-not-allowed:///"})
    assert got.returncode == 2
    assert got.stderr.strip().splitlines() == [
        "error: this environment has no metadata database (an Airflow task?): run this on the scheduler host, "
        "from cron or a systemd timer"
    ]


def test_cleanup_bad_arguments_exit_2():
    assert main(["--retention-days", "-3"]) == 2
    got = _module("--retention-days", "soon")
    assert got.returncode == 2 and "invalid int value" in got.stderr


def test_systemd_units_run_this_command(capsys):
    text = systemd_units(30, airflow_home="/srv/airflow", python="/srv/venv/bin/python")
    assert "Environment=AIRFLOW_HOME=/srv/airflow\n" in text
    assert "ExecStart=/srv/venv/bin/python -m airflow_ops.metadata_cleanup --retention-days 30\n" in text
    assert "[Timer]\nOnCalendar=*-*-* 03:30:00 UTC\nPersistent=true\n" in text
    assert main(["systemd-units", "--retention-days", "45"]) == 0
    assert f"ExecStart={sys.executable} -m airflow_ops.metadata_cleanup --retention-days 45" in capsys.readouterr().out
