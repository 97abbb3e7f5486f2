"""The DAGs on a real Airflow deployment: api-server, dag-processor and scheduler on 127.0.0.1.

What ``dag.test()`` cannot show runs here, on one set of services shared by the module (LocalExecutor,
SQLite, parallelism 3, no log server): task isolation from the metadata database (the Spark
operator, the sensor reading the Iceberg store's metadata, the store's maintenance), reschedule-mode
waiting, unpausing with catchup off, clearing an earlier date while a later run waits, re-running a
date, the asset events' order, and the metadata clean-up command run on the scheduler host against
the real database. The corpus update runs real Spark (local[2]) on the embedded Iceberg store with
2-3 small real executables per date (PE, ELF and Mach-O of the sample corpus, or real ELF programs
and seeded bytes without it): the extraction is tested elsewhere, the deployment here.

The tests run in file order and build on each other (one deployment, one store).
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import tempfile
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.dags.airflow_services import PYTHON, REPO, AirflowServices
from tests.dags.corpus_split import corpus_root, crafted_files, small_executables

pytestmark = [pytest.mark.airflow, pytest.mark.spark, pytest.mark.network, pytest.mark.timeout(2400)]

CORPUS_DAG = "binfeat_corpus_update"
MAINTENANCE_DAG = "binfeat_maintenance"
D1, D2 = "2026-11-20", "2026-11-21"
N1, N2 = 3, 2  # files of day 1, new files of day 2
# How long a day's input is waited for before the day is skipped (test setting): the unpaused day is
# looked at twice (0 s, 15 s) and skipped at the third look. A look that finds the input succeeds
# whatever the time (the sensor looks before it checks the timeout).
INCOMING_TIMEOUT_S = 20
# Between two looks of a reschedule-mode sensor. Keep it well above a task process's wind-down (up to
# ~6 s seen on a loaded 2-core machine): with 3 s, the executor's late "finished" event of one look
# arrived while the next look was running, and the scheduler marked the sensor failed (Airflow 3.3.2).
INCOMING_POKE_S = 15
ALL_TASKS = ("wait_for_incoming", "update_corpus", "corpus_published")
MAINTENANCE_TASKS = ("delete_old_task_logs", "maintain_corpus_store")
# A few files need one extraction partition (one Python worker to warm up): a typed Param, natively.
CONF = {"partitions": 1}


@dataclass
class Deployment:
    services: AirflowServices
    root: Path
    store: Path
    incoming: Path
    files: dict[str, list[Path]]
    secrets: list[str]
    run_ids: dict[str, str] = field(default_factory=dict)
    published: dict[str, dict] = field(default_factory=dict)  # date -> its description once published
    figures: list[dict] = field(default_factory=list)
    stopped: bool = False

    def record(self, dag_id: str, run_id: str, label: str) -> dict:
        """The run's and its tasks' states and durations (for the figures printed at the end)."""
        run = self.services.run(dag_id, run_id)
        tis = self.services.task_instances(dag_id, run_id)
        self.figures.append({
            "run": label, "dag": dag_id, "state": run["state"], "run_s": _seconds(run),
            "tasks": {t: (ti["state"], round(ti["duration"] or 0.0, 1), ti["try_number"]) for t, ti in tis.items()},
        })  # fmt: skip
        return tis


def _seconds(obj: dict) -> float | None:
    if not obj.get("start_date") or not obj.get("end_date"):
        return None
    start = datetime.fromisoformat(obj["start_date"])
    return round((datetime.fromisoformat(obj["end_date"]) - start).total_seconds(), 1)


def _pick_files(staging: Path) -> list[Path]:
    """N1 + N2 small real executables: PE, ELF and Mach-O of the sample corpus when built, else crafted."""
    root = corpus_root()
    picked = small_executables(root, N1 + N2) if root else []
    return picked if len(picked) == N1 + N2 else crafted_files(N1 + N2, staging)


@pytest.fixture(scope="module")
def deployment():
    # Not tmp_path_factory: a concurrent pytest session may delete older numbered basetemp folders.
    root = Path(tempfile.mkdtemp(prefix="binfeat-services-"))
    files = _pick_files(root / "_crafted")
    incoming, store = root / "incoming", root / "store"
    (incoming / D1).mkdir(parents=True)
    for f in files[:N1]:
        shutil.copyfile(f, incoming / D1 / f.name)
    worker_secret, conn_secret = "workerSecret" + uuid.uuid4().hex, "connSecret" + uuid.uuid4().hex
    key_id = "AKIA" + uuid.uuid4().hex[:16].upper()
    extra_env = {
        "AIRFLOW_CONN_SPARK_DEFAULT": json.dumps({"conn_type": "spark", "host": "local[2]"}),
        "AIRFLOW_VAR_BINFEAT_STORE": str(store),
        "AIRFLOW_VAR_BINFEAT_INCOMING_ROOT": str(incoming),
        "AIRFLOW_VAR_BINFEAT_LABELS_ROOT": str(root / "labels"),
        "AIRFLOW_VAR_BINFEAT_AWS_CONN_ID": "binfeat_aws",
        "AIRFLOW_CONN_BINFEAT_AWS": json.dumps({"conn_type": "aws", "login": key_id, "password": conn_secret}),
        # Under LocalExecutor a task's environment is the scheduler's: a worker credential lives here.
        "AWS_ACCESS_KEY_ID": key_id,
        "AWS_SECRET_ACCESS_KEY": worker_secret,
        # Parse-time settings of the DAG processor.
        "BINFEAT_CORPUS_RETRIES": "0",
        "BINFEAT_INCOMING_TIMEOUT_S": str(INCOMING_TIMEOUT_S),
        "BINFEAT_INCOMING_POKE_S": str(INCOMING_POKE_S),
    }
    services = AirflowServices(root, extra_env)
    dep = Deployment(services, root, store, incoming, {D1: files[:N1], D2: files[N1:]},
                     [worker_secret, conn_secret, key_id])  # fmt: skip
    try:
        services.start()
        yield dep
    finally:
        killed = services.stop()
        left = services.own_processes()
        print("\nreal-services figures:", json.dumps({"timings": services.timings, "runs": dep.figures}, indent=1))
        print("processes killed at teardown:", killed, "left:", left)
        if not os.environ.get("BINFEAT_KEEP_TEST_DIRS"):  # set it to look at the logs after a failure
            shutil.rmtree(root, ignore_errors=True)
        assert left == [], f"processes left running: {left}"


def _describe(dep: Deployment, date: str) -> dict | None:
    """The store's own description of a published date (None when not published), as the sensor sees it."""
    from jobs.corpus.tags import describe_date

    return describe_date(date, store=str(dep.store))


def _rows(dep: Deployment, date: str) -> dict[str, dict]:
    """sha256 -> the row as of ``date``."""
    from jobs.corpus.catalog import StoreConfig
    from jobs.corpus.read import read_as_of

    table = read_as_of(date, cfg=StoreConfig(store=str(dep.store)),
                       columns=["sha256", "status", "feature_version", "ingest_date", "run_id"])  # fmt: skip
    return {r["sha256"]: {**r, "ingest_date": str(r["ingest_date"])} for r in table.to_pylist()}


def _sha(path: Path) -> str:
    import hashlib

    with open(path, "rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


def _trigger(dep: Deployment, dag_id: str, logical: str | None, conf: dict | None = None) -> str:
    status, reply = dep.services.trigger(dag_id, f"{logical}T00:00:00Z" if logical else None, conf)
    assert status in (200, 201), (status, reply)
    return reply["dag_run_id"]


def _submit_line(dep: Deployment, run_id: str) -> str:
    """The hook's logged spark-submit command of a run's update task."""
    for name, text in dep.services.task_logs().items():
        if f"run_id={run_id}" in name and "task_id=update_corpus" in name:
            for line in text.splitlines():
                if "Spark-Submit cmd" in line:
                    return json.loads(line)["event"]
    raise AssertionError(f"no submit command logged for {run_id}")


def test_nothing_binds_all_interfaces(deployment):
    sockets = deployment.services.listening_sockets()
    assert sockets, "the api-server should be listening"
    assert {(addr, port) for _pid, addr, port in sockets} == {("127.0.0.1", deployment.services.port)}


def test_unpausing_starts_the_latest_day_which_is_skipped_without_input(deployment):
    """Catchup off: unpausing creates the latest complete day's run at once. Its files never come:
    the first task waits in reschedule mode, then skips the day; the run ends, nothing fails.

    The maintenance DAG is unpaused at the same moment: its scheduled run (the defaults) finds no
    store yet and leaves it alone, while the corpus DAG waits."""
    svc = deployment.services
    svc.unpause(CORPUS_DAG)
    svc.unpause(MAINTENANCE_DAG)
    svc.wait_until(lambda: svc.runs(CORPUS_DAG) and svc.runs(MAINTENANCE_DAG), 300, "the scheduled runs")
    (run,) = svc.runs(CORPUS_DAG)
    assert run["run_type"] == "scheduled"
    yesterday = (datetime.now(UTC) - timedelta(days=1)).date().isoformat()
    assert run["logical_date"].startswith(yesterday) or run["logical_date"].startswith(
        (datetime.now(UTC) - timedelta(days=2)).date().isoformat()  # started right after midnight UTC
    )
    deployment.run_ids["unpaused"] = run["dag_run_id"]
    (maintenance,) = svc.runs(MAINTENANCE_DAG)
    done_m = svc.wait_run(MAINTENANCE_DAG, maintenance["dag_run_id"], timeout=600)
    tis_m = deployment.record(MAINTENANCE_DAG, maintenance["dag_run_id"], "maintenance, unpaused, no store yet")
    done = svc.wait_run(CORPUS_DAG, run["dag_run_id"], timeout=600)
    tis = deployment.record(CORPUS_DAG, run["dag_run_id"], "unpaused latest day, no input")
    assert (done["state"], done_m["state"]) == ("success", "success"), svc.diagnosis()
    assert {t: ti["state"] for t, ti in tis.items()} == dict.fromkeys(ALL_TASKS, "skipped")
    assert {t: ti["state"] for t, ti in tis_m.items()} == dict.fromkeys(MAINTENANCE_TASKS, "success")
    assert tis["wait_for_incoming"]["duration"] is not None
    assert not deployment.store.exists()  # nothing published, no store created


def test_a_nightly_date_end_to_end(deployment):
    svc = deployment.services
    run_id = _trigger(deployment, CORPUS_DAG, D1, CONF)
    deployment.run_ids[D1] = run_id
    done = svc.wait_run(CORPUS_DAG, run_id)
    tis = deployment.record(CORPUS_DAG, run_id, f"{D1}")
    assert done["state"] == "success", svc.diagnosis()
    assert {t: ti["state"] for t, ti in tis.items()} == dict.fromkeys(ALL_TASKS, "success")
    info = _describe(deployment, D1)  # the tag corpus-D1 and its record exist
    assert (info["tag"], info["rows"], info["run_id"]) == (f"corpus-{D1}", N1, run_id)
    rows = _rows(deployment, D1)
    assert set(rows) == {_sha(f) for f in deployment.files[D1]}
    assert {r["ingest_date"] for r in rows.values()} == {D1} and {r["run_id"] for r in rows.values()} == {run_id}
    assert all(r["feature_version"] == info["feature_version"] for r in rows.values())
    assert "--partitions 1 " in _submit_line(deployment, run_id)
    deployment.published[D1] = info


def test_clearing_an_earlier_date_while_a_later_run_waits_does_not_deadlock(deployment):
    """D2 waits for its input; D1 is cleared meanwhile (max_active_runs=1). Nights are not chained,
    so D2 goes on when its input lands, then D1 runs again; both succeed, and D1's re-run adds nothing."""
    svc = deployment.services
    run2 = _trigger(deployment, CORPUS_DAG, D2, CONF)
    deployment.run_ids[D2] = run2
    svc.wait_until(lambda: svc.task_state(CORPUS_DAG, run2, "wait_for_incoming") == "up_for_reschedule", 300,
                   "D2 waiting for its input")  # fmt: skip
    cleared = svc.clear(CORPUS_DAG, deployment.run_ids[D1])
    assert {ti["task_id"] for ti in cleared} == set(ALL_TASKS)
    # The day's folder is delivered complete: written aside, then renamed into place.
    staging = deployment.incoming / f".{D2}.partial"
    staging.mkdir()
    for f in deployment.files[D2]:
        shutil.copyfile(f, staging / f.name)
    shutil.copyfile(deployment.files[D1][0], staging / "again.bin")  # a known file: not extracted again
    os.rename(staging, deployment.incoming / D2)
    done2 = svc.wait_run(CORPUS_DAG, run2)
    tis2 = deployment.record(CORPUS_DAG, run2, f"{D2} (input arrived while waiting)")
    done1 = svc.wait_run(CORPUS_DAG, deployment.run_ids[D1])
    tis1 = deployment.record(CORPUS_DAG, deployment.run_ids[D1], f"{D1} cleared")
    assert (done2["state"], done1["state"]) == ("success", "success"), svc.diagnosis()
    assert {t: ti["state"] for t, ti in tis2.items()} == dict.fromkeys(ALL_TASKS, "success")
    assert {t: (ti["state"], ti["try_number"]) for t, ti in tis1.items()} == dict.fromkeys(ALL_TASKS, ("success", 2))
    # One run at a time: D1's second update started after D2's run had finished.
    assert tis1["update_corpus"]["start_date"] >= done2["end_date"]
    info2 = _describe(deployment, D2)
    assert (info2["rows"], info2["run_id"]) == (N1 + N2, run2)
    rows = _rows(deployment, D2)
    assert set(rows) == {_sha(f) for f in deployment.files[D1] + deployment.files[D2]}
    assert {s for s, r in rows.items() if r["ingest_date"] == D2} == {_sha(f) for f in deployment.files[D2]}
    assert _describe(deployment, D1) == deployment.published[D1]  # the re-run of D1 committed nothing
    deployment.published[D2] = info2


def test_a_date_is_rerun_with_the_date_param_and_the_events_say_which_date(deployment):
    svc = deployment.services
    status, reply = svc.trigger(CORPUS_DAG, f"{D1}T00:00:00Z")  # the same logical date again
    assert status == 409, (status, reply)  # refused (a run of that logical date exists), no IntegrityError
    run_id = _trigger(deployment, CORPUS_DAG, None, {**CONF, "date": D1})  # the supported way
    done = svc.wait_run(CORPUS_DAG, run_id)
    tis = deployment.record(CORPUS_DAG, run_id, f"{D1} re-run with the date param")
    assert done["state"] == "success" and done["logical_date"] is None, svc.diagnosis()
    assert {t: ti["state"] for t, ti in tis.items()} == dict.fromkeys(ALL_TASKS, "success")
    assert _describe(deployment, D1) == deployment.published[D1]  # append-only: the re-run added nothing
    # The events, in the order they were emitted: an older date is announced after a newer one;
    # the extra says which date each one is, whether it is the latest, and which snapshot it is.
    events = svc.asset_events(CORPUS_DAG)
    assert [(e["extra"]["date"], e["extra"]["latest"], e["source_run_id"]) for e in events] == [
        (D1, True, deployment.run_ids[D1]),
        (D2, True, deployment.run_ids[D2]),
        (D1, False, deployment.run_ids[D1]),  # D1 cleared and run again
        (D1, False, run_id),  # D1 re-run with the date param
    ]
    for e in events:
        published = deployment.published[e["extra"]["date"]]
        assert {k: e["extra"][k] for k in published} == published
        assert e["extra"]["location"]["store"] == str(deployment.store)


def test_maintenance_dag_on_the_iceberg_store(deployment):
    """A manual run keeping one day: D1's tag expires, D2 reads the same, every task succeeds under
    task isolation (the store's maintenance touches the catalog and the warehouse only)."""
    svc = deployment.services
    rows2 = _rows(deployment, D2)
    manual = _trigger(deployment, MAINTENANCE_DAG, None, {"keep_days": 1, "orphan_age_hours": 0})
    done = svc.wait_run(MAINTENANCE_DAG, manual, timeout=600)
    tis = deployment.record(MAINTENANCE_DAG, manual, "maintenance, keep_days=1")
    assert done["state"] == "success", svc.diagnosis()
    assert {t: ti["state"] for t, ti in tis.items()} == dict.fromkeys(MAINTENANCE_TASKS, "success")
    assert _describe(deployment, D1) is None
    assert _describe(deployment, D2) == deployment.published[D2] and _rows(deployment, D2) == rows2


def test_no_credential_in_any_log(deployment):
    svc = deployment.services
    texts = {**svc.task_logs(), **{n: svc.service_log(n) for n in ("api-server", "dag-processor", "scheduler")}}
    assert any("Spark-Submit cmd" in t for t in texts.values())  # the logs scanned hold the submit command
    assert any("binfeat.corpus_update run_id=" in t for t in texts.values())  # ...and the job's own output
    for secret in deployment.secrets:
        assert [name for name, text in texts.items() if secret in text] == []


def _count(db: Path, table: str) -> int:
    with sqlite3.connect(db) as con:
        return con.execute(f"select count(*) from {table}").fetchone()[0]


def test_metadata_cleanup_runs_on_the_scheduler_host(deployment):
    """The clean-up the maintenance DAG no longer does: the shipped command, with the scheduler's
    environment, against the real database (services stopped first: SQLite allows one writer)."""
    svc = deployment.services
    svc.stop()
    db = svc.home / "airflow.db"
    before = {t: _count(db, t) for t in ("dag_run", "task_instance")}
    proc = subprocess.run([PYTHON, "-m", "airflow_ops.metadata_cleanup", "--retention-days", "0"],
                          env={**svc.env, "PYTHONPATH": str(REPO)}, capture_output=True, text=True,
                          timeout=600)  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    after = {t: _count(db, t) for t in ("dag_run", "task_instance")}
    print("metadata rows before/after clean-up:", before, after)
    # Everything older than now goes, except the latest scheduled run of each DAG (Airflow keeps it;
    # task instances are judged on their own dates).
    assert before == {"dag_run": 6, "task_instance": 4 * len(ALL_TASKS) + 2 * 2}  # 4 + 2 runs
    assert after == {"dag_run": 2, "task_instance": 0}
    with sqlite3.connect(db) as con:
        kept = sorted(r[0] for r in con.execute("select run_type from dag_run"))
    assert kept == ["scheduled", "scheduled"]
