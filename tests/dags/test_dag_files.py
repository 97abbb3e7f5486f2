"""The DAG folder parses cleanly and fast, never imports pyspark, and the DAGs are shaped as promised."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import timedelta

import pytest

from tests.airflow_ops.airflow_home import REPO

pytestmark = pytest.mark.airflow

DAGS = REPO / "dags"


@pytest.fixture(scope="module")
def dagbag():
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(DAGS))


def test_dag_folder_imports_without_errors(dagbag):
    assert dagbag.import_errors == {}
    assert sorted(dagbag.dag_ids) == ["binfeat_corpus_update", "binfeat_maintenance"]


@pytest.mark.parametrize("name", ["corpus_update.py", "maintenance.py"])
def test_dag_file_imports_fast_and_without_pyspark(name, tmp_path):
    """In a fresh interpreter: the cost of the DAG file itself, on top of `import airflow.sdk`."""
    code = f"""
import importlib.util, json, sys, time
t0 = time.perf_counter()
import airflow.sdk  # the baseline every DAG file pays
t1 = time.perf_counter()
spec = importlib.util.spec_from_file_location("dagfile", {str(DAGS / name)!r})
mod = importlib.util.module_from_spec(spec)
spec.loader.exec_module(mod)
t2 = time.perf_counter()
print(json.dumps({{"airflow_s": t1 - t0, "dag_file_s": t2 - t1,
                  "pyspark": sorted(m for m in sys.modules if m == "pyspark" or m.startswith("pyspark.")),
                  "jobs": sorted(m for m in sys.modules if m == "jobs" or m.startswith("jobs."))}}))
"""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}
    env.update(
        {"AIRFLOW_HOME": str(tmp_path), "AIRFLOW__CORE__LOAD_EXAMPLES": "False", "PYTHONPATH": str(REPO)}
    )
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    got = json.loads(proc.stdout.strip().splitlines()[-1])
    print(name, got)
    assert got["pyspark"] == []
    assert got["jobs"] == []  # not even the (Spark-free) jobs package: tasks import it at run time
    assert got["dag_file_s"] < 5.0, got


def test_corpus_update_dag_shape(dagbag):
    from airflow.providers.standard.operators.trigger_dagrun import TriggerDagRunOperator

    from airflow_ops import CORPUS_SNAPSHOT, CorpusUpdateOperator, SnapshotPublishedSensor

    dag = dagbag.dags["binfeat_corpus_update"]
    assert dag.catchup is False
    assert dag.max_active_runs == 1
    assert type(dag.timetable).__name__ == "CronDataIntervalTimetable"
    assert dag.timetable.summary == "0 0 * * *"  # daily, processing the day just ended
    assert dag.deadline is not None  # DeadlineAlert for a late run
    assert not any(isinstance(t, TriggerDagRunOperator) for t in dag.tasks)  # one master DAG
    update = dag.get_task("update_corpus")
    check = dag.get_task("snapshot_published")
    assert isinstance(update, CorpusUpdateOperator) and isinstance(check, SnapshotPublishedSensor)
    assert check.upstream_task_ids == {"update_corpus"}
    assert update._conn_id == "spark_default"  # the connection chooses the master
    assert update.retries >= 1 or os.environ.get("BINFEAT_CORPUS_RETRIES") == "0"
    assert update.retry_exponential_backoff and update.max_retry_delay == timedelta(hours=1)
    assert update.depends_on_past is True
    assert CORPUS_SNAPSHOT in check.outlets
    assert update.airflow_run_id == "{{ run_id }}"
    assert set(dag.params.keys()) >= {"date", "incoming", "labels", "max_error_share", "keep_snapshots"}
    assert dag.params["max_error_share"] == 0.1 and dag.params["keep_snapshots"] == 14


def test_maintenance_dag_shape(dagbag):
    dag = dagbag.dags["binfeat_maintenance"]
    assert dag.catchup is False
    assert {t.task_id for t in dag.tasks} == {
        "delete_old_task_logs",
        "airflow_db_clean",
        "apply_snapshot_retention",
    }
    clean = dag.get_task("airflow_db_clean")
    assert clean.bash_command.startswith("airflow db clean --clean-before-timestamp")
    assert "--yes" in clean.bash_command
    assert dag.params["log_retention_days"] == 30 and dag.params["db_retention_days"] == 90


def test_maintenance_tasks_for_real(tmp_path):
    """The log clean-up and retention callables on real folders (db clean needs a scheduler DB: not here)."""
    import time

    sys.path.insert(0, str(DAGS))
    try:
        import maintenance
    finally:
        sys.path.remove(str(DAGS))
    logs = tmp_path / "logs" / "dag_id=x" / "run_id=y"
    logs.mkdir(parents=True)
    old, new = logs / "old.log", logs / "new.log"
    old.write_text("old")
    new.write_text("new")
    past = time.time() - 40 * 86400
    os.utime(old, (past, past))
    fn = maintenance.dag.get_task("delete_old_task_logs").python_callable
    got = fn(days=30, base_log_folder=str(tmp_path / "logs"))
    assert got["removed_files"] == 1 and got["kept_files"] == 1
    assert new.exists() and not old.exists()

    from jobs.corpus_store import CorpusStore

    store = CorpusStore(tmp_path / "store")
    for day in ("2026-11-18", "2026-11-19", "2026-11-20"):
        staged = store.new_staging(f"p-{day}")
        (staged / "corpus").mkdir()
        (staged / "labels").mkdir()
        store.publish(
            day, staged, {"format": "binfeat-corpus-snapshot/1", "date": day, "publish_id": f"p-{day}"}
        )
        old_data = store.data_dir / day / f"p-{day}"
        os.utime(old_data, (past, past))
    retain = maintenance.dag.get_task("apply_snapshot_retention").python_callable
    removed = retain(store=str(store.root), keep="2")
    assert removed["snapshots"] == ["2026-11-18"]
    assert store.snapshot_dates() == ["2026-11-19", "2026-11-20"]
    assert not (store.data_dir / "2026-11-18").exists()
