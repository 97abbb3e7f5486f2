"""The nightly DAG for real: ``dag.test()`` with local Spark on the Iceberg store over a two-day split.

The split (tests/dags/corpus_split.py, ``few=True``) is a handful of real executables: 6 small PE,
ELF and Mach-O files of the sample corpus on day 1, 3 new ones on day 2 (plus two known copies and
an in-day duplicate), with late and changed labels; every expected figure comes from the split.
The extraction itself is tested on the whole corpus in tests/jobs/test_corpus_update.py: here it
is what the DAG does with the store, date by date. Two nights only: a re-run of a date (the ``date``
param, the asset event's ``latest`` false) and the maintenance DAG run on the real services
(tests/dags/test_real_services.py), and a re-run committing nothing is the job's own test
(tests/jobs/test_corpus_update.py).

Each ``dag.test()`` runs in its own subprocess (tests/dags/run_dag_test.py) with AIRFLOW_HOME in a
temporary folder, so Airflow's settings and ORM never touch the pytest process; this process reads
the store after each run as a consumer would (``describe_date``, ``read_as_of``). The task
environment carries AWS credentials (worker environment and an Airflow connection); none of them
may appear in any output or task log.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import pytest

from tests.dags.corpus_split import DAY1, DAY2, build_split

pytestmark = [pytest.mark.airflow, pytest.mark.spark, pytest.mark.timeout(1800)]

REPO = Path(__file__).resolve().parents[2]
PYTHON = sys.executable
DAG_ID = "binfeat_corpus_update"
TASKS = {"wait_for_incoming": "success", "update_corpus": "success", "corpus_published": "success"}
# Params at their documented defaults (max_error_share 0.1) but one extraction partition: a handful
# of files needs one Python worker, not the planned few (each costs a worker start on 2 cores).
RUN_CONF: dict = {"partitions": 1}
DEFAULT_MAX_ERROR_SHARE = 0.1
COLUMNS = ["sha256", "md5", "status", "feature_version", "ingest_date", "run_id", "label", "family",
           "label_updated_at"]  # fmt: skip


def airflow_env(home: Path, extra: dict[str, str]) -> dict[str, str]:
    """A clean environment for an Airflow subprocess: no AIRFLOW_* from the caller, venv first on PATH."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "AWS_"))}
    bin_dir = str(Path(PYTHON).parent)
    env.update(
        {
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__DAGS_FOLDER": str(REPO / "dags"),
            "AIRFLOW_CONN_SPARK_DEFAULT": json.dumps({"conn_type": "spark", "host": "local[2]"}),
            "PATH": bin_dir + os.pathsep + env.get("PATH", ""),
            "PYTHONPATH": str(REPO),
            "SPARK_LOCAL_IP": "127.0.0.1",
            "BINFEAT_CORPUS_RETRIES": "0",
            "BINFEAT_CORPUS_DEADLINE_HOURS": "0",
        }
    )
    env.update(extra)
    return env


def as_of(store: Path, date: str) -> dict[str, dict] | None:
    """sha256 -> the row as of ``date`` (features joined with labels), or None when not published."""
    from jobs.corpus.catalog import StoreConfig
    from jobs.corpus.read import read_as_of
    from jobs.corpus.tags import describe_date

    if describe_date(date, store=str(store)) is None:
        return None
    table = read_as_of(date, cfg=StoreConfig(store=str(store)), columns=COLUMNS)
    return {r["sha256"]: {**r, "ingest_date": str(r["ingest_date"])} for r in table.to_pylist()}


def data_files(store: Path) -> dict[str, int]:
    """The features table's data files (path -> size)."""
    return {str(p): p.stat().st_size for p in store.rglob("*.parquet") if "/features/data/" in str(p)}


def store_state(store: Path) -> dict:
    """What a consumer sees of each date now: its description and its rows; and the data files."""
    from jobs.corpus.tags import describe_date

    return {
        "describe": {d: describe_date(d, store=str(store)) for d in (DAY1, DAY2)},
        "as_of": {d: as_of(store, d) for d in (DAY1, DAY2)},
        "files": data_files(store),
    }


@pytest.fixture(scope="module")
def runs():
    # Not tmp_path_factory: a concurrent pytest session of the same user deletes older numbered
    # basetemp folders, which can pull the store away in the middle of these minutes-long runs.
    root = Path(tempfile.mkdtemp(prefix="binfeat-dag-test-"))
    try:
        yield _run_all(root)
    finally:
        shutil.rmtree(root, ignore_errors=True)


def _dag_test(env: dict, dag_id: str, logical: str, conf: dict) -> dict:
    proc = subprocess.run(
        [PYTHON, str(REPO / "tests" / "dags" / "run_dag_test.py"), "--dag-id", dag_id, "--date", logical,
         "--conf", json.dumps(conf)],
        env=env, capture_output=True, text=True, timeout=1200,
    )  # fmt: skip
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("DAG_TEST_RESULT ")]
    return {
        "returncode": proc.returncode,
        "output": proc.stdout + proc.stderr,
        "result": json.loads(lines[-1].split(" ", 1)[1]) if lines else None,
    }


def _run_all(root: Path) -> dict:
    split = build_split(root / "data", few=True)
    store = root / "store"
    secret = "canary" + uuid.uuid4().hex + "SECRET"
    conn_secret = "connSecret" + uuid.uuid4().hex
    key_id = "AKIA" + uuid.uuid4().hex[:16].upper()
    env = airflow_env(
        root / "home",
        {
            "AIRFLOW_VAR_BINFEAT_STORE": str(store),
            "AIRFLOW_VAR_BINFEAT_INCOMING_ROOT": str(split.incoming),
            "AIRFLOW_VAR_BINFEAT_LABELS_ROOT": str(split.labels),
            "AIRFLOW_VAR_BINFEAT_AWS_CONN_ID": "binfeat_aws",
            "AIRFLOW_CONN_BINFEAT_AWS": json.dumps(
                {"conn_type": "aws", "login": key_id, "password": conn_secret, "extra": {}}
            ),
            # A credential in the task's own environment, as on a worker with static keys.
            "AWS_ACCESS_KEY_ID": key_id,
            "AWS_SECRET_ACCESS_KEY": secret,
        },
    )
    statsd = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)  # a real StatsD listener
    statsd.bind(("127.0.0.1", 0))
    statsd.settimeout(0.5)
    env["AIRFLOW_VAR_BINFEAT_STATSD_HOST"] = "127.0.0.1"
    env["AIRFLOW_VAR_BINFEAT_STATSD_PORT"] = str(statsd.getsockname()[1])
    (root / "home").mkdir()
    t0 = time.monotonic()
    subprocess.run([PYTHON, "-m", "airflow", "db", "migrate"], env=env, check=True, capture_output=True, timeout=600)
    out: dict = {"split": split, "store": store, "secrets": [secret, conn_secret], "key_id": key_id,
                 "timings": {"migrate": round(time.monotonic() - t0, 1)}}  # fmt: skip
    for key, logical in (("day1", DAY1), ("day2", DAY2)):
        t = time.monotonic()
        out[key] = _dag_test(env, DAG_ID, logical, RUN_CONF)
        out["timings"][key] = round(time.monotonic() - t, 1)
        out[key]["metrics"] = _drain(statsd)
        out[key]["store"] = store_state(store)
    statsd.close()
    out["task_logs"] = [p.read_text(errors="replace") for p in (root / "home" / "logs").rglob("*") if p.is_file()]
    print("timings (s):", out["timings"])
    return out


def _drain(sock: socket.socket) -> dict[str, str]:
    """StatsD lines received so far: name -> value|type."""
    got: dict[str, str] = {}
    while True:
        try:
            data, _ = sock.recvfrom(65536)
        except TimeoutError:
            return got
        for line in data.decode().splitlines():
            name, _, value = line.partition(":")
            got[name] = value


def _check_run(run: dict, tasks: dict[str, str] = TASKS) -> None:
    assert run["returncode"] == 0, run["output"][-5000:]
    assert run["result"] is not None, run["output"][-5000:]
    assert run["result"]["state"] == "success", (run["result"], run["output"][-5000:])
    assert run["result"]["tasks"] == tasks


def _check_date(state: dict, date: str, exp: dict) -> None:
    """The date's description and rows against what the split says it must hold."""
    info, rows = state["describe"][date], state["as_of"][date]
    assert (info["date"], info["tag"], info["table"]) == (date, f"corpus-{date}", "binfeat.features")
    assert info["rows"] == exp["rows"] == len(rows)
    assert info["labelled_rows"] == exp["labelled"]
    assert sorted((d, sum(1 for r in rows.values() if r["ingest_date"] == d)) for d in
                  {r["ingest_date"] for r in rows.values()}) == exp["partitions"]  # fmt: skip
    assert {sha: r["label"] for sha, r in rows.items() if r["label"]} == exp["labels"]
    assert {r["feature_version"] for r in rows.values()} == {info["feature_version"]}
    assert sum(1 for r in rows.values() if r["status"] == "error") <= DEFAULT_MAX_ERROR_SHARE * len(rows)


def _event(run: dict) -> dict:
    (event,) = run["result"]["asset_events"]
    assert event["uri"] == "iceberg://binfeat/binfeat.features"
    return event["extra"]


def test_day1_is_published_and_tagged(runs):
    run, split = runs["day1"], runs["split"]
    _check_run(run)
    state = run["store"]
    assert state["describe"][DAY2] is None  # nothing of day 2 yet
    _check_date(state, DAY1, split.expected[DAY1])
    rows = state["as_of"][DAY1]
    assert set(rows) == set(split.day1) and {r["ingest_date"] for r in rows.values()} == {DAY1}
    assert {sha for sha, r in rows.items() if r["label"]} == set(split.day1[:4])
    # The Airflow run id went into the job: its rows, its record and its log lines.
    run_id = run["result"]["run_id"]
    assert {r["run_id"] for r in rows.values()} == {run_id} and state["describe"][DAY1]["run_id"] == run_id
    assert f"binfeat.corpus_update run_id={run_id}" in run["output"]
    # The Asset event training DAGs schedule on: the date, the table's snapshots, where the store is.
    extra = _event(run)
    assert extra == {**state["describe"][DAY1], "latest": True,
                     "location": {"store": str(runs["store"]), "catalog": None, "warehouse": None,
                                  "namespace": "binfeat", "s3_endpoint_url": None}}  # fmt: skip


def test_day2_appends_only_the_new_files(runs):
    run, split = runs["day2"], runs["split"]
    _check_run(run)
    state, before = run["store"], runs["day1"]["store"]
    _check_date(state, DAY2, split.expected[DAY2])
    rows = state["as_of"][DAY2]
    assert set(rows) == set(split.day1) | set(split.day2_new)
    assert {sha for sha, r in rows.items() if r["ingest_date"] == DAY2} == set(split.day2_new)
    # Day 1's rows are the same rows (not rewritten, not copied); its files are untouched.
    for sha in split.day1:
        assert {k: rows[sha][k] for k in ("md5", "run_id", "ingest_date")} == {
            k: before["as_of"][DAY1][sha][k] for k in ("md5", "run_id", "ingest_date")}  # fmt: skip
    assert all(state["files"].get(path) == size for path, size in before["files"].items())
    assert len(state["files"]) > len(before["files"])
    # The corpus as of day 1 reads the same after day 2 (the late labels are not part of it).
    assert state["as_of"][DAY1] == before["as_of"][DAY1]
    assert state["describe"][DAY1] == before["describe"][DAY1]
    extra = _event(run)
    assert (extra["date"], extra["rows"], extra["latest"]) == (DAY2, split.n_day1 + split.n_day2_new, True)
    assert extra["features_snapshot_id"] == state["describe"][DAY2]["features_snapshot_id"]
    # A consumer reads the date the event announces, as docs/airflow.md shows.
    from jobs.corpus.catalog import StoreConfig
    from jobs.corpus.read import read_as_of

    got = read_as_of(extra["date"], cfg=StoreConfig(**extra["location"]), columns=["sha256", "label"])
    assert {r["sha256"]: r["label"] for r in got.to_pylist()} == {s: r["label"] for s, r in rows.items()}


def test_day2_labels_late_and_changed(runs):
    rows, split = runs["day2"]["store"]["as_of"][DAY2], runs["split"]
    exp = split.expected[DAY2]
    assert exp["labelled"] == 8 and exp["known_labels"] == 9 and exp["invalid_labels"] == 1
    # Late labels for day-1 samples arrived on day 2 and are part of the corpus as of day 2...
    assert (rows[split.day1[4]]["label"], rows[split.day1[4]]["family"]) == ("malicious", "late-1")
    assert str(rows[split.day1[4]]["label_updated_at"]) == DAY2
    assert rows[split.day1[5]]["label"] == "benign" and str(rows[split.day1[5]]["label_updated_at"]) == DAY2
    # ...not of day 1, whose labels stay as they were published.
    day1 = runs["day2"]["store"]["as_of"][DAY1]
    assert day1[split.day1[4]]["label"] is None and day1[split.day1[0]]["label"] == "benign"
    assert (rows[split.day1[0]]["label"], rows[split.day1[0]]["family"]) == ("malicious", "relabelled")
    assert rows[split.day1[1]]["label"] == "benign" and str(rows[split.day1[1]]["label_updated_at"]) == DAY1
    # The feed's upper-case sha256 matched the new file.
    assert (rows[split.day2_new[0]]["label"], rows[split.day2_new[0]]["family"]) == ("malicious", "emotet")


def _expected_metrics(exp: dict) -> dict[str, str]:
    # Every file figure but "unreadable", which is sent as errors.unreadable and only when non-zero.
    got = {f"binfeat.corpus.files.{k}": f"{v}|g" for k, v in exp["files"].items() if k != "unreadable"}
    got.update({f"binfeat.corpus.bytes.{k}": f"{v}|g" for k, v in exp["bytes"].items()})
    got["binfeat.corpus.labels.labelled_rows"] = f"{exp['labelled']}|g"
    got["binfeat.corpus.runs"] = "1|c"
    return got


def test_statsd_metrics_of_each_run(runs):
    split = runs["split"]
    for key, date in (("day1", DAY1), ("day2", DAY2)):
        exp = split.expected[date]
        metrics = runs[key]["metrics"]
        expected = _expected_metrics(exp)
        assert {k: metrics.get(k) for k in expected} == expected, key
        status = {k.rsplit(".", 1)[1]: int(v.split("|")[0]) for k, v in metrics.items()
                  if k.startswith("binfeat.corpus.status.")}  # fmt: skip
        assert sum(status.values()) == exp["files"]["extracted"], key  # one row per extracted file
        assert metrics["binfeat.corpus.duration"].endswith("|ms")
        assert "binfeat.corpus.errors.unreadable" not in metrics


def test_no_credential_in_any_log(runs):
    texts = [runs[k]["output"] for k in ("day1", "day2")] + runs["task_logs"]
    assert any("Spark-Submit cmd" in t for t in texts)  # the logs we scan do hold the submit command
    assert any("binfeat.corpus_update run_id=" in t for t in texts)  # ...and the job's own output
    for secret in [*runs["secrets"], runs["key_id"]]:
        for text in texts:
            assert secret not in text
