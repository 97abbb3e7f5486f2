"""The two sensors on real folders and a moto S3 server on 127.0.0.1."""

from __future__ import annotations

import json
import socket

import pytest

pytestmark = pytest.mark.airflow


def _publish(store, date: str, rows: int) -> None:
    (store / "snapshots").mkdir(parents=True, exist_ok=True)
    manifest = {"format": "binfeat-corpus-snapshot/1", "date": date, "rows": {"total": rows},
                "feature_version": "1.x", "labels": {"coverage": 0.5}, "run_id": f"r-{date}",
                "publish_id": f"p-{date}"}  # fmt: skip
    (store / "snapshots" / f"{date}.json").write_text(json.dumps(manifest))


def test_snapshot_sensor_event_says_which_date_and_whether_it_is_the_latest(tmp_path):
    from airflow_ops import SnapshotPublishedSensor

    sensor = SnapshotPublishedSensor(task_id="check", store=str(tmp_path), date="2026-11-20", min_rows=2)
    assert sensor.poke({}) is False  # not published yet
    _publish(tmp_path, "2026-11-20", 3)
    got = sensor.poke({})
    assert got.is_done
    assert got.xcom_value == {
        "date": "2026-11-20", "manifest": str(tmp_path / "snapshots" / "2026-11-20.json"), "rows": 3,
        "feature_version": "1.x", "label_coverage": 0.5, "run_id": "r-2026-11-20", "publish_id": "p-2026-11-20",
        "latest": True,
    }  # fmt: skip
    # A newer date is published; re-announcing 2026-11-20 (a re-run) says it is not the latest.
    _publish(tmp_path, "2026-11-21", 4)
    again = sensor.poke({})
    assert again.xcom_value["date"] == "2026-11-20" and again.xcom_value["latest"] is False
    sensor.min_rows = 4
    with pytest.raises(RuntimeError, match="fewer than min_rows"):
        sensor.poke({})


def test_snapshot_sensor_refuses_a_foreign_manifest(tmp_path):
    from airflow_ops import SnapshotPublishedSensor

    (tmp_path / "snapshots").mkdir()
    (tmp_path / "snapshots" / "2026-11-20.json").write_text(json.dumps({"format": "other", "date": "2026-11-20"}))
    sensor = SnapshotPublishedSensor(task_id="check", store=str(tmp_path), date="2026-11-20")
    with pytest.raises(RuntimeError, match="not a binfeat snapshot manifest"):
        sensor.poke({})


@pytest.mark.parametrize("date", [None, "", "None", "2026-11-2", "20261120"])
def test_a_run_without_a_usable_date_is_one_clear_error(tmp_path, date):
    from airflow_ops import IncomingReadySensor, SnapshotPublishedSensor

    for sensor in (
        IncomingReadySensor(task_id="wait", location=str(tmp_path), date=date),
        SnapshotPublishedSensor(task_id="check", store=str(tmp_path), date=date),
    ):
        with pytest.raises(ValueError, match="'date' param"):
            sensor.poke({})


def test_incoming_sensor_on_a_folder_and_a_manifest(tmp_path):
    from airflow_ops import IncomingReadySensor

    day = tmp_path / "2026-11-20"
    wait = IncomingReadySensor(task_id="wait", location=str(day), date="2026-11-20")
    assert wait.poke({}) is False
    day.mkdir()
    assert wait.poke({}) is True
    manifest = tmp_path / "2026-11-21.jsonl"
    wait = IncomingReadySensor(task_id="wait", location=str(manifest), date="2026-11-21")
    assert wait.poke({}) is False
    manifest.write_text("{}\n")
    assert wait.poke({}) is True
    # allow_missing: done at once; only a real True counts (no parsing of rendered strings).
    assert IncomingReadySensor(task_id="w", location=str(tmp_path / "x"), date="2026-11-22",
                               allow_missing=True).poke({}) is True  # fmt: skip
    assert IncomingReadySensor(task_id="w", location=str(tmp_path / "x"), date="2026-11-22",
                               allow_missing="True").poke({}) is False  # fmt: skip


@pytest.mark.network
def test_incoming_sensor_on_s3(monkeypatch):
    import boto3
    from moto.server import ThreadedMotoServer

    from airflow_ops import IncomingReadySensor

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port)
    server.start()
    try:
        endpoint = f"http://127.0.0.1:{port}"
        keys = {"conn_type": "aws", "login": "testing", "password": "testing-secret",
                "extra": {"region_name": "us-east-1"}}  # fmt: skip
        monkeypatch.setenv("AIRFLOW_CONN_S3_KEYS", json.dumps(keys))
        s3 = boto3.client("s3", endpoint_url=endpoint, aws_access_key_id="testing",
                          aws_secret_access_key="testing-secret", region_name="us-east-1")  # fmt: skip
        s3.create_bucket(Bucket="binfeat-in")
        s3.put_object(Bucket="binfeat-in", Key="incoming/2026-11-20-other/x.bin", Body=b"x")  # another day
        wait = IncomingReadySensor(task_id="wait", location="s3://binfeat-in/incoming/2026-11-20/",
                                   date="2026-11-20", s3_endpoint_url=endpoint, aws_conn_id="s3_keys")  # fmt: skip
        assert wait.poke({}) is False
        s3.put_object(Bucket="binfeat-in", Key="incoming/2026-11-20/a.bin", Body=b"MZ")
        assert wait.poke({}) is True
    finally:
        server.stop()
