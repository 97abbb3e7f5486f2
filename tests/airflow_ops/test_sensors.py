"""The two sensors on real folders, a real Iceberg store (embedded, or a catalog by name) and a moto S3
server on 127.0.0.1."""

from __future__ import annotations

import json
import os
import socket

import pytest

pytestmark = pytest.mark.airflow


def test_published_sensor_says_which_date_and_whether_it_is_the_latest(tmp_path):
    """Against a real embedded Iceberg store: nothing until the date's tag exists, then the store's
    own description of it; a later date makes an earlier one's re-announcement not the latest."""
    from airflow_ops import CorpusPublishedSensor
    from jobs.corpus.tags import describe_date
    from tests.jobs.corpus_support import feed, open_store, sha, synthetic_night

    store = str(tmp_path / "store")
    sensor = CorpusPublishedSensor(task_id="check", store=store, date="2026-11-20", min_rows=2)
    assert sensor.poke({}) is False  # no store yet
    assert not (tmp_path / "store").exists()  # and the sensor did not create one
    tables = open_store(store)
    assert sensor.poke({}) is False  # the tables, but no tag yet
    synthetic_night(tables, "2026-11-20", [sha("a"), sha("b"), sha("c")], feed=feed((sha("a"), "benign")),
                    run_id="night-1")  # fmt: skip
    got = sensor.poke({})
    assert got.is_done
    where = {"store": store, "catalog": None, "warehouse": None, "namespace": "binfeat", "s3_endpoint_url": None}
    record = describe_date("2026-11-20", store=store)
    assert got.xcom_value == {**record, "latest": True, "location": where}
    assert (record["date"], record["tag"], record["table"], record["rows"], record["labelled_rows"],
            record["run_id"]) == ("2026-11-20", "corpus-2026-11-20", "binfeat.features", 3, 1, "night-1")  # fmt: skip
    tables.refresh()
    assert record["features_snapshot_id"] == tables.features.metadata.refs["corpus-2026-11-20"].snapshot_id
    assert record["labels_snapshot_id"] == tables.labels.metadata.refs["corpus-2026-11-20"].snapshot_id
    # A later date is published; re-announcing 2026-11-20 (a re-run) says it is not the latest.
    synthetic_night(tables, "2026-11-21", [sha("d")], run_id="night-2")
    again = sensor.poke({})
    assert again.xcom_value["date"] == "2026-11-20" and again.xcom_value["latest"] is False
    assert again.xcom_value["rows"] == 3  # as of its own date: not the later rows
    sensor.min_rows = 4
    with pytest.raises(RuntimeError, match="fewer than min_rows"):
        sensor.poke({})


def test_published_sensor_in_another_namespace_and_a_bad_catalog(tmp_path, monkeypatch):
    from airflow_ops import CorpusPublishedSensor
    from jobs.corpus.catalog import StoreError
    from tests.jobs.corpus_support import open_store, sha, synthetic_night

    store = str(tmp_path / "store")
    synthetic_night(open_store(store, namespace="corpus_v2"), "2026-11-20", [sha("a")])
    default = CorpusPublishedSensor(task_id="check", store=store, date="2026-11-20")
    assert default.poke({}) is False  # nothing in namespace binfeat
    other = CorpusPublishedSensor(task_id="check", store=store, namespace="corpus_v2", date="2026-11-20")
    assert other.poke({}).xcom_value["table"] == "corpus_v2.features"
    # A catalog by name that the worker's pyiceberg configuration does not hold: one clear error.
    monkeypatch.delenv("PYICEBERG_CATALOG__NOWHERE__URI", raising=False)
    missing = CorpusPublishedSensor(task_id="check", catalog="nowhere", date="2026-11-20")
    with pytest.raises(StoreError, match="no pyiceberg catalog named 'nowhere'"):
        missing.poke({})


def test_published_sensor_on_a_catalog_by_name_from_the_environment(tmp_path, monkeypatch):
    """``--catalog NAME`` configured the way pyiceberg configures it (PYICEBERG_CATALOG__NAME__*)."""
    from airflow_ops import CorpusPublishedSensor
    from jobs.corpus.catalog import StoreConfig, open_tables
    from jobs.corpus.schema import features_schema
    from tests.jobs.corpus_support import contract, sha, synthetic_night

    monkeypatch.setenv("PYICEBERG_CATALOG__LAB__TYPE", "sql")
    monkeypatch.setenv("PYICEBERG_CATALOG__LAB__URI", f"sqlite:///{tmp_path}/lab.db")
    monkeypatch.setenv("PYICEBERG_CATALOG__LAB__WAREHOUSE", f"file://{tmp_path}/warehouse")
    tables = open_tables(StoreConfig(catalog="lab"), features_schema=features_schema(contract()))
    synthetic_night(tables, "2026-11-20", [sha("a"), sha("b")])
    got = CorpusPublishedSensor(task_id="check", catalog="lab", date="2026-11-20").poke({}).xcom_value
    assert (got["rows"], got["latest"], got["location"]["catalog"], got["location"]["store"]) == (2, True, "lab", None)


@pytest.mark.parametrize("date", [None, "", "None", "2026-11-2", "20261120"])
def test_a_run_without_a_usable_date_is_one_clear_error(tmp_path, date):
    from airflow_ops import CorpusPublishedSensor, IncomingReadySensor

    for sensor in (
        IncomingReadySensor(task_id="wait", location=str(tmp_path), date=date),
        CorpusPublishedSensor(task_id="check", store=str(tmp_path), date=date),
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


@pytest.mark.network
def test_published_sensor_and_maintenance_on_an_s3_warehouse_with_the_connections_keys(tmp_path, monkeypatch):
    """The embedded catalog with its files in a bucket of a moto server: the sensor and the maintenance
    task reach the warehouse with the keys of the Airflow connection they are given (the worker has
    none), and leave the task's environment as it was."""
    import boto3
    from moto.server import ThreadedMotoServer

    from airflow_ops import CorpusPublishedSensor
    from airflow_ops.maintenance import maintain_corpus_store
    from jobs.corpus import maintenance, tags
    from jobs.corpus.catalog import StoreConfig, open_tables
    from jobs.corpus.schema import features_schema
    from tests.jobs.corpus_support import contract, sha, synthetic_night

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        endpoint = f"http://127.0.0.1:{port}"
        worker = {"AWS_EC2_METADATA_DISABLED": "true", "AWS_CONFIG_FILE": str(tmp_path / "none"),
                  "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "none"), "AWS_DEFAULT_REGION": "us-east-1",
                  "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing-secret"}  # fmt: skip
        for key, value in worker.items():
            monkeypatch.setenv(key, value)
        boto3.client("s3", endpoint_url=endpoint).create_bucket(Bucket="binfeat-wh")
        where = {"store": str(tmp_path / "store"), "warehouse": "s3://binfeat-wh/corpus", "s3_endpoint_url": endpoint}
        tables = open_tables(StoreConfig(**where), features_schema=features_schema(contract()))
        synthetic_night(tables, "2026-11-20", [sha("a"), sha("b")], run_id="night-1")
        assert tables.features.location() == "s3://binfeat-wh/corpus/binfeat/features"
        # The worker's environment holds no keys now; the connection does.
        for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_DEFAULT_REGION"):
            monkeypatch.delenv(key)
        keys = {"conn_type": "aws", "login": "testing", "password": "testing-secret",
                "extra": {"region_name": "us-east-1"}}  # fmt: skip
        monkeypatch.setenv("AIRFLOW_CONN_WAREHOUSE_KEYS", json.dumps(keys))
        # Objects that pyarrow uploads are readable without keys on moto, so S3 cannot refuse a
        # missing key here: record which keys the store's own functions ran with instead.
        seen: list[tuple[str, str | None]] = []
        for module, name in ((tags, "describe_date"), (maintenance, "maintain_store")):
            monkeypatch.setattr(module, name, _recording(getattr(module, name), name, seen))
        sensor = CorpusPublishedSensor(task_id="check", date="2026-11-20", aws_conn_id="warehouse_keys", **where)
        got = sensor.poke({}).xcom_value
        assert (got["rows"], got["run_id"], got["latest"]) == (2, "night-1", True)
        assert got["location"] == {**where, "catalog": None, "namespace": "binfeat"}
        report = maintain_corpus_store(**where, aws_conn_id="warehouse_keys", keep_days=14, orphan_age_hours=0.0)
        assert report["data_files"] == {"features": 1, "labels": 0} and report["orphans"] == 0
        assert seen == [("describe_date", "testing-secret"), ("maintain_store", "testing-secret")]
        assert "AWS_ACCESS_KEY_ID" not in os.environ and "AWS_SECRET_ACCESS_KEY" not in os.environ
    finally:
        server.stop()


def _recording(function, name: str, seen: list):
    def call(*args, **kwargs):
        seen.append((name, os.environ.get("AWS_SECRET_ACCESS_KEY")))
        return function(*args, **kwargs)

    return call
