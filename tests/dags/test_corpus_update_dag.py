"""The nightly DAG for real: ``dag.test()`` with local Spark over a two-day split, then day 2 again
the supported way (a run with the ``date`` param), then the maintenance DAG.

The split (tests/dags/corpus_split.py) is the whole small sample corpus when ``$BINFEAT_CORPUS``
names it (``make test``), else 12 crafted files; every expected figure comes from the split.

Each ``dag.test()`` runs in its own subprocess (tests/dags/run_dag_test.py) with AIRFLOW_HOME in a
temporary folder, so Airflow's settings and ORM never touch the pytest process. The task
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

pytestmark = [pytest.mark.airflow, pytest.mark.spark, pytest.mark.timeout(3600)]

REPO = Path(__file__).resolve().parents[2]
PYTHON = sys.executable
DAG_ID = "binfeat_corpus_update"
# Params of each run: all at their documented defaults, max_error_share (0.1) included. The sample
# corpus's malformed, truncated, empty and random files do not give status "error" rows: extract
# parses what it can and reports them "ok" or "partial" (at the time of writing 330 ok and 9 partial
# of 339), so the default threshold holds; test_day2_snapshot_extracts_only_new_files checks it.
RUN_CONF: dict = {}
DEFAULT_MAX_ERROR_SHARE = 0.1
RERUN_LOGICAL_DATE = "2026-11-30"


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


def read_corpus(store: Path, manifest: dict) -> dict[str, dict]:
    """sha256 -> the snapshot row's identity, label and partition, read with pyarrow as a reader would."""
    import pyarrow.dataset as ds

    table = ds.dataset(store / manifest["corpus_path"], format="parquet", partitioning="hive").to_table(
        columns=["sha256", "md5", "status", "feature_version", "label", "family", "label_date", "ingest_date"]
    )
    return {r["sha256"]: {**r, "ingest_date": str(r["ingest_date"])} for r in table.to_pylist()}


@pytest.fixture(scope="module")
def runs():
    # Not tmp_path_factory: a concurrent pytest session of the same user deletes older numbered
    # basetemp folders, which can pull the store away in the middle of these minutes-long runs.
    root = Path(tempfile.mkdtemp(prefix="binfeat-dag-test-"))
    try:
        yield _run_all(root)
    finally:
        shutil.rmtree(root, ignore_errors=True)


def _run_all(root: Path) -> dict:
    split = build_split(root / "data")
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
    # Day 2 again: the supported re-run, a run of another logical date with the `date` param.
    runs = (("day1", DAY1, DAY1, RUN_CONF), ("day2", DAY2, DAY2, RUN_CONF),
            ("day2_again", DAY2, RERUN_LOGICAL_DATE, {**RUN_CONF, "date": DAY2}))  # fmt: skip
    for key, date, logical, conf in runs:
        t = time.monotonic()
        proc = subprocess.run(
            [PYTHON, str(REPO / "tests" / "dags" / "run_dag_test.py"), "--dag-id", DAG_ID, "--date", logical,
             "--conf", json.dumps(conf)],
            env=env, capture_output=True, text=True, timeout=2400,
        )  # fmt: skip
        out["timings"][key] = round(time.monotonic() - t, 1)
        lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("DAG_TEST_RESULT ")]
        result = json.loads(lines[-1].split(" ", 1)[1]) if lines else None
        manifest_path = store / "snapshots" / f"{date}.json"
        manifest = json.loads(manifest_path.read_text()) if manifest_path.exists() else None
        out[key] = {
            "metrics": _drain(statsd),
            "returncode": proc.returncode,
            "output": proc.stdout + proc.stderr,
            "result": result,
            "manifest": manifest,
            "rows": read_corpus(store, manifest) if manifest else None,
        }
    out["after_rerun"] = {
        "day1_manifest": json.loads((store / "snapshots" / f"{DAY1}.json").read_text()),
        "day2_data": sorted(p.name for p in (store / "data" / DAY2).iterdir()),
        "staging": sorted(p.name for p in (store / "_staging").iterdir()),
    }
    # The maintenance DAG in the same Airflow: log rotation and store retention (keep 1).
    t = time.monotonic()
    conf = {"log_retention_days": 1, "keep_snapshots": 1}
    proc = subprocess.run(
        [PYTHON, str(REPO / "tests" / "dags" / "run_dag_test.py"), "--dag-id", "binfeat_maintenance",
         "--date", "2026-11-22", "--conf", json.dumps(conf)],
        env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    out["timings"]["maintenance"] = round(time.monotonic() - t, 1)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("DAG_TEST_RESULT ")]
    out["maintenance"] = {
        "output": proc.stdout + proc.stderr,
        "result": json.loads(lines[-1].split(" ", 1)[1]) if lines else None,
    }
    statsd.close()
    logs = []
    for path in (root / "home" / "logs").rglob("*"):
        if path.is_file():
            logs.append(path.read_text(errors="replace"))
    out["task_logs"] = logs
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


def _check_run(run: dict) -> None:
    assert run["returncode"] == 0, run["output"][-5000:]
    assert run["result"] is not None, run["output"][-5000:]
    assert run["result"]["state"] == "success", (run["result"], run["output"][-5000:])
    assert run["result"]["tasks"] == {
        "wait_for_incoming": "success",
        "update_corpus": "success",
        "snapshot_published": "success",
    }


def _check_snapshot(run: dict, exp: dict) -> None:
    """The manifest's figures and the snapshot's rows against what the split says they must be."""
    m = run["manifest"]
    assert m["rows"]["total"] == exp["rows"] == len(run["rows"])
    assert m["rows"]["carried"] == exp["carried"] and m["rows"]["extracted"] == exp["extracted"]
    assert sum(m["rows"]["by_status"].values()) == exp["rows"]
    assert [(p["ingest_date"], p["rows"]) for p in m["partitions"]] == exp["partitions"]
    assert [p["path"] for p in m["partitions"]] == [f"ingest_date={d}" for d, _ in exp["partitions"]]
    assert m["labels"]["labelled_rows"] == exp["labelled"]
    assert m["labels"]["known_labels"] == exp["known_labels"]  # may include samples not (yet) in the corpus
    assert m["summary"]["labels"]["invalid"] == exp["invalid_labels"]
    assert m["summary"]["files"] == exp["files"]
    assert m["summary"]["bytes"] == exp["bytes"]
    assert sum(m["summary"]["status"].values()) == exp["extracted"]  # one row per extracted file
    assert m["summary"]["error_share"] <= DEFAULT_MAX_ERROR_SHARE
    assert {sha: r["label"] for sha, r in run["rows"].items() if r["label"]} == exp["labels"]
    assert all(r["feature_version"] == m["feature_version"] for r in run["rows"].values())


def test_day1_snapshot(runs):
    run = runs["day1"]
    _check_run(run)
    m = run["manifest"]
    split = runs["split"]
    exp = split.expected[DAY1]
    assert m["date"] == DAY1 and m["base_snapshot"] is None
    _check_snapshot(run, exp)
    assert exp["rows"] == split.n_day1 and exp["labelled"] == 4
    assert set(run["rows"]) == set(split.day1)
    assert {r["ingest_date"] for r in run["rows"].values()} == {DAY1}
    assert {sha for sha, r in run["rows"].items() if r["label"]} == set(split.day1[:4])
    # The Airflow run id went into the job: its summary and its log lines.
    s = m["summary"]
    assert s["run_id"] == run["result"]["run_id"] == m["run_id"]
    assert f"binfeat.corpus_update run_id={run['result']['run_id']}" in run["output"]
    # The Asset event that training DAGs schedule on, with the snapshot's date in its extra.
    events = run["result"]["asset_events"]
    assert [e["uri"] for e in events] == ["binfeat://corpus/snapshot"]
    assert events[0]["extra"]["date"] == DAY1 and events[0]["extra"]["rows"] == exp["rows"]
    assert events[0]["extra"]["latest"] is True and events[0]["extra"]["publish_id"] == m["publish_id"]


def test_day2_snapshot_extracts_only_new_files(runs):
    run = runs["day2"]
    _check_run(run)
    m = run["manifest"]
    split = runs["split"]
    exp = split.expected[DAY2]
    assert m["date"] == DAY2 and m["base_snapshot"] == DAY1
    _check_snapshot(run, exp)
    n1, n2 = split.n_day1, split.n_day2_new
    assert exp["rows"] == n1 + n2 and exp["carried"] == n1 and exp["extracted"] == n2
    # n2 + 3 files arrived: n2 new, 2 copies of day-1 files (known), 1 in-day duplicate; only the
    # n2 new ones were extracted.
    assert exp["files"]["discovered"] == n2 + 3 and exp["files"]["extracted"] == n2
    assert set(run["rows"]) == set(split.day1) | set(split.day2_new)
    assert {sha for sha, r in run["rows"].items() if r["ingest_date"] == DAY2} == set(split.day2_new)
    # Day-1 rows are carried unchanged (same identity), day-1 copies did not create new rows.
    for sha in split.day1:
        assert run["rows"][sha]["md5"] == runs["day1"]["rows"][sha]["md5"]
        assert run["rows"][sha]["ingest_date"] == DAY1
    events = run["result"]["asset_events"]
    assert [(e["extra"]["date"], e["extra"]["rows"], e["extra"]["latest"]) for e in events] == [
        (DAY2, exp["rows"], True)
    ]


def test_day2_labels_late_and_changed(runs):
    rows = runs["day2"]["rows"]
    split = runs["split"]
    exp = split.expected[DAY2]
    assert exp["labelled"] == 8 and exp["known_labels"] == 9 and exp["invalid_labels"] == 1
    assert {sha: r["label"] for sha, r in rows.items() if r["label"]} == exp["labels"]
    # Late labels for day-1 samples arrived on day 2 and show up in day 2's snapshot...
    assert rows[split.day1[4]]["label"] == "malicious" and rows[split.day1[4]]["family"] == "late-1"
    assert rows[split.day1[4]]["label_date"] == DAY2
    assert rows[split.day1[5]]["label"] == "benign" and rows[split.day1[5]]["label_date"] == DAY2
    # ...while day 1's snapshot, published before, is unchanged.
    assert runs["day1"]["rows"][split.day1[4]]["label"] is None
    assert runs["day1"]["rows"][split.day1[0]]["label"] == "benign"
    assert rows[split.day1[0]]["label"] == "malicious" and rows[split.day1[0]]["family"] == "relabelled"
    assert rows[split.day1[1]]["label"] == "benign" and rows[split.day1[1]]["label_date"] == DAY1
    # The feed's upper-case sha256 matched the new file.
    assert rows[split.day2_new[0]]["label"] == "malicious" and rows[split.day2_new[0]]["family"] == "emotet"


def test_rerunning_day2_changes_nothing(runs):
    from jobs.corpus_store import manifest_identity

    again = runs["day2_again"]
    _check_run(again)
    first, second = runs["day2"]["manifest"], again["manifest"]
    assert second["publish_id"] != first["publish_id"]  # it really published again...
    assert manifest_identity(second) == manifest_identity(first)  # ...the same snapshot
    assert again["result"]["run_id"] == second["run_id"] != first["run_id"]  # by the re-run's own run
    events = again["result"]["asset_events"]  # announced with the snapshot's date, not the run's
    assert [(e["extra"]["date"], e["extra"]["publish_id"]) for e in events] == [(DAY2, second["publish_id"])]
    assert second["content_digest"] == first["content_digest"]
    assert again["rows"] == runs["day2"]["rows"]
    # The same new files extracted again (the base is still day 1), nothing else.
    assert second["summary"]["files"] == runs["split"].expected[DAY2]["files"]
    # The previous publish of the same date is gone; day 1 is untouched.
    after = runs["after_rerun"]
    assert after["day2_data"] == [second["publish_id"]]
    assert after["day1_manifest"] == runs["day1"]["manifest"]
    assert after["staging"] == []


def _expected_metrics(exp: dict) -> dict[str, str]:
    # Every file figure but "unreadable", which is sent as errors.unreadable and only when non-zero.
    got = {f"binfeat.corpus.files.{k}": f"{v}|g" for k, v in exp["files"].items() if k != "unreadable"}
    got.update({f"binfeat.corpus.bytes.{k}": f"{v}|g" for k, v in exp["bytes"].items()})
    got["binfeat.corpus.labels.labelled_rows"] = f"{exp['labelled']}|g"
    got["binfeat.corpus.runs"] = "1|c"
    return got


def test_statsd_metrics_of_each_run(runs):
    split = runs["split"]
    for key, date in (("day1", DAY1), ("day2", DAY2), ("day2_again", DAY2)):
        metrics = runs[key]["metrics"]
        expected = _expected_metrics(split.expected[date])
        assert {k: metrics.get(k) for k in expected} == expected, key
        # Rows by status: one per extracted file, the same figures as the summary's.
        status = {k.rsplit(".", 1)[1]: v for k, v in metrics.items() if k.startswith("binfeat.corpus.status.")}
        assert status == {k: f"{v}|g" for k, v in runs[key]["manifest"]["summary"]["status"].items()}, key
        assert sum(int(v.split("|")[0]) for v in status.values()) == split.expected[date]["extracted"]
        assert metrics["binfeat.corpus.duration"].endswith("|ms")
        assert "binfeat.corpus.errors.unreadable" not in metrics
    assert runs["day1"]["metrics"]["binfeat.corpus.files.new"] == f"{split.n_day1}|g"
    assert runs["day2"]["metrics"]["binfeat.corpus.files.extracted"] == f"{split.n_day2_new}|g"


def test_maintenance_dag_runs(runs):
    result = runs["maintenance"]["result"]
    assert result is not None, runs["maintenance"]["output"][-5000:]
    assert result["state"] == "success", (result, runs["maintenance"]["output"][-5000:])
    assert set(result["tasks"].values()) == {"success"}
    assert set(result["tasks"]) == {"delete_old_task_logs", "maintain_corpus_store"}
    store = runs["store"]
    assert sorted(p.name for p in (store / "snapshots").iterdir()) == [f"{DAY2}.json"]  # kept 1
    assert sorted(p.name for p in (store / "data").iterdir()) == [DAY2]


def test_no_credential_in_any_log(runs):
    texts = [runs[k]["output"] for k in ("day1", "day2", "day2_again", "maintenance")] + runs["task_logs"]
    assert any("Spark-Submit cmd" in t for t in texts)  # the logs we scan do hold the submit command
    assert any("binfeat.corpus_update run_id=" in t for t in texts)  # ...and the job's own output
    for secret in [*runs["secrets"], runs["key_id"]]:
        for text in texts:
            assert secret not in text
