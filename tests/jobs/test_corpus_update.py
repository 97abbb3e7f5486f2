"""binfeat corpus update: the store (publish, retention), the labels feed, and the Spark job itself."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from jobs.corpus_labels import LabelsError, read_labels, split_valid
from jobs.corpus_store import CorpusStore, StoreError, manifest_identity

SHA_A = "a" * 64
SHA_B = "b" * 64


def _stage(store: CorpusStore, publish_id: str) -> Path:
    staged = store.new_staging(publish_id)
    (staged / "corpus").mkdir()
    (staged / "labels").mkdir()
    (staged / "corpus" / "marker").write_text(publish_id)
    return staged


def _manifest(date: str, publish_id: str, rows: int = 1) -> dict:
    return {
        "format": "binfeat-corpus-snapshot/1",
        "date": date,
        "publish_id": publish_id,
        "rows": {"total": rows},
    }


# --- the store ---------------------------------------------------------------------------------------


def test_publish_is_invisible_until_the_manifest_and_replaces_atomically(tmp_path):
    store = CorpusStore(tmp_path)
    staged = _stage(store, "p1")
    assert store.snapshot_dates() == [] and store.read_manifest("2026-11-20") is None  # staged: invisible
    store.publish("2026-11-20", staged, _manifest("2026-11-20", "p1"))
    m1 = store.read_manifest("2026-11-20")
    assert (store.resolve(m1, "corpus_path") / "marker").read_text() == "p1"
    assert not staged.exists()
    # Publishing the same date again swaps the manifest and removes the old data.
    store.publish("2026-11-20", _stage(store, "p2"), _manifest("2026-11-20", "p2"))
    m2 = store.read_manifest("2026-11-20")
    assert (store.resolve(m2, "corpus_path") / "marker").read_text() == "p2"
    assert [p.name for p in (store.data_dir / "2026-11-20").iterdir()] == ["p2"]
    assert manifest_identity(m1) == manifest_identity(m2)  # only volatile keys differ
    assert [p.name for p in store.snapshots_dir.iterdir()] == ["2026-11-20.json"]  # no temp file left


def test_latest_before_and_retention(tmp_path):
    store = CorpusStore(tmp_path)
    for day in ("2026-11-18", "2026-11-19", "2026-11-20", "2026-11-21"):
        store.publish(day, _stage(store, f"p-{day}"), _manifest(day, f"p-{day}"))
    assert store.latest_before("2026-11-20")["date"] == "2026-11-19"
    assert store.latest_before("2026-11-18") is None
    past = time.time() - 3 * 86400
    for d in store.data_dir.iterdir():
        for pub in d.iterdir():
            os.utime(pub, (past, past))
    stale = store.staging_dir / "killed-run"
    stale.mkdir()
    os.utime(stale, (past, past))
    fresh = store.new_staging("running-now")
    removed = store.apply_retention(2)
    assert removed["snapshots"] == ["2026-11-18", "2026-11-19"]
    assert removed["staging"] == ["killed-run"]
    assert store.snapshot_dates() == ["2026-11-20", "2026-11-21"]
    assert sorted(p.name for p in store.data_dir.iterdir()) == ["2026-11-20", "2026-11-21"]
    assert fresh.exists()  # a run in progress keeps its work area
    with pytest.raises(StoreError):
        store.apply_retention(0)


def test_store_refuses_bad_input(tmp_path):
    with pytest.raises(StoreError, match="only a local"):
        CorpusStore("s3://bucket/store")
    with pytest.raises(StoreError, match="bad date"):
        CorpusStore(tmp_path).manifest_path("../../etc")
    store = CorpusStore(tmp_path)
    staged = store.new_staging("p")
    with pytest.raises(StoreError, match="no corpus"):
        store.publish("2026-11-20", staged, _manifest("2026-11-20", "p"))
    assert store.snapshot_dates() == []


# --- the labels feed ------------------------------------------------------------------------------------


def test_labels_jsonl_csv_parquet_and_folder(tmp_path):
    feed = tmp_path / "feed"
    feed.mkdir()
    (feed / "a.jsonl").write_text(
        json.dumps({"sha256": SHA_A.upper(), "label": "malicious", "family": "x", "first_seen": 5}) + "\n"
    )
    (feed / "b.csv").write_text("sha256,label,source\n" + SHA_B + ",benign,feed\nnot-hex,benign,feed\n")
    pq.write_table(pa.table({"sha256": [SHA_A], "label": [""], "source": ["p"]}), feed / "c.parquet")
    (feed / "ignored.txt").write_text("not a feed")
    table = read_labels(str(feed))
    assert table.column_names == ["sha256", "label", "family", "source", "first_seen"]
    assert table.num_rows == 4
    valid, invalid = split_valid(table)
    assert invalid == 2  # a bad sha256 and an empty label
    rows = sorted(valid.to_pylist(), key=lambda r: r["sha256"])
    assert rows == [
        {"sha256": SHA_A, "label": "malicious", "family": "x", "source": None, "first_seen": "5"},
        {"sha256": SHA_B, "label": "benign", "family": None, "source": "feed", "first_seen": None},
    ]


def test_labels_missing_or_malformed(tmp_path):
    with pytest.raises(LabelsError, match="not found"):
        read_labels(str(tmp_path / "nope"))
    assert read_labels(str(tmp_path / "nope"), allow_missing=True).num_rows == 0
    bad = tmp_path / "bad.csv"
    bad.write_text("hash,label\nx,y\n")
    with pytest.raises(LabelsError, match="missing column"):
        read_labels(str(bad))


# --- the Spark job ------------------------------------------------------------------------------------------


def _run(*args: str) -> int:
    from jobs.corpus_update import main

    return main(list(args))


@pytest.mark.spark
@pytest.mark.timeout(1800)
def test_feature_version_bump_reextracts_and_a_failed_run_publishes_nothing(tmp_path, monkeypatch):
    """Day 1, then day 1's rows marked with an older feature_version, then day 2 (in-process Spark).

    Day 2 must re-extract every stale day-1 row (keeping its ingest date) plus its new files. A
    day-2 re-run that fails (its labels feed is missing) leaves the published snapshot and the store
    as they were. The split is the whole sample corpus with $BINFEAT_CORPUS, else 12 crafted files.
    """
    from tests.dags.corpus_split import DAY1, DAY2, build_split

    monkeypatch.setenv("SPARK_LOCAL_IP", "127.0.0.1")
    split = build_split(tmp_path / "data")
    n1, n2 = split.n_day1, split.n_day2_new
    store = CorpusStore(tmp_path / "store")
    common = ["--store", str(store.root), "--master", "local[2]", "--max-error-share", "1"]
    assert _run("--date", DAY1, "--incoming", str(split.incoming / DAY1), "--run-id", "t1", *common) == 0
    m1 = store.read_manifest(DAY1)
    assert m1["rows"]["total"] == n1 and m1["labels"]["labelled_rows"] == 0  # no --labels
    assert m1["summary"]["files"]["new"] == n1

    # Pretend day 1 was extracted by an older binfeat.
    for f in store.resolve(m1, "corpus_path").rglob("*.parquet"):
        t = pq.read_table(f, schema=pq.read_schema(f))
        i = t.schema.get_field_index("feature_version")
        pq.write_table(t.set_column(i, t.schema.field(i), pa.array(["0.old"] * t.num_rows, pa.string())), f)
        f.with_name(f".{f.name}.crc").unlink(missing_ok=True)  # Hadoop's checksum of the old bytes

    assert _run("--date", DAY2, "--incoming", str(split.incoming / DAY2), "--labels",
                str(split.labels / DAY2), "--run-id", "t2", *common) == 0  # fmt: skip
    m2 = store.read_manifest(DAY2)
    files = m2["summary"]["files"]
    assert files["reextracted"] == n1 and files["new"] == n2 and files["extracted"] == n1 + n2
    assert files["known"] == 0  # the day-1 copies are stale, so they are part of the re-extraction
    assert files["duplicates_in_day"] == 1
    assert m2["rows"] == {"total": n1 + n2, "by_status": m2["rows"]["by_status"], "carried": 0,
                          "extracted": n1 + n2}  # fmt: skip
    assert [(p["ingest_date"], p["rows"]) for p in m2["partitions"]] == [(DAY1, n1), (DAY2, n2)]
    # Day 2's feed only (day 1 ran without one): 3 day-1 samples and 2 new ones, not the unknown one.
    day2_labelled = {split.day1[0], split.day1[4], split.day1[5], split.day2_new[0], split.day2_new[1]}
    assert m2["labels"]["labelled_rows"] == len(day2_labelled) == 5

    import pyarrow.dataset as ds

    rows = ds.dataset(store.resolve(m2, "corpus_path"), format="parquet", partitioning="hive").to_table()
    assert set(rows.column("feature_version").to_pylist()) == {m2["feature_version"]}
    assert set(rows.column("sha256").to_pylist()) == set(split.day1) | set(split.day2_new)
    assert rows.num_rows == n1 + n2
    by_sha = {r["sha256"]: r for r in rows.select(["sha256", "ingest_date", "label"]).to_pylist()}
    assert {s for s, r in by_sha.items() if str(r["ingest_date"]) == DAY1} == set(split.day1)  # kept
    assert {s for s, r in by_sha.items() if r["label"]} == day2_labelled

    # A failing re-run of day 2: nothing published, nothing left behind.
    before = sorted(p.relative_to(store.root) for p in store.root.rglob("*"))
    rc = _run("--date", DAY2, "--incoming", str(split.incoming / DAY2), "--labels",
              str(tmp_path / "missing-feed"), "--run-id", "t3", *common)  # fmt: skip
    assert rc == 1
    assert store.read_manifest(DAY2) == m2
    assert sorted(p.relative_to(store.root) for p in store.root.rglob("*")) == before


@pytest.mark.spark
@pytest.mark.network
@pytest.mark.timeout(900)
def test_incoming_and_labels_on_s3(tmp_path):
    """Day 1 from an S3 prefix (moto on 127.0.0.1), hashed on the executors; labels feed on S3 too.

    Runs the job as spark-submit would run the file (a fresh interpreter and JVM), with the
    credentials only in its environment.
    """
    import socket
    import subprocess
    import sys

    import boto3
    from moto.server import ThreadedMotoServer

    from tests.dags.corpus_split import DAY1, build_split

    split = build_split(tmp_path / "data")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port)
    server.start()
    try:
        endpoint = f"http://127.0.0.1:{port}"
        creds = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing-secret",
                 "AWS_DEFAULT_REGION": "us-east-1"}  # fmt: skip
        s3 = boto3.client("s3", endpoint_url=endpoint, aws_access_key_id="testing",
                          aws_secret_access_key="testing-secret", region_name="us-east-1")  # fmt: skip
        s3.create_bucket(Bucket="binfeat-in")
        for f in sorted((split.incoming / DAY1).iterdir()):
            s3.upload_file(str(f), "binfeat-in", f"incoming/{DAY1}/{f.name}")
        s3.upload_file(str(split.labels / DAY1 / "labels.jsonl"), "binfeat-in", f"labels/{DAY1}/labels.jsonl")
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "PYSPARK_"))}
        env.update(creds, SPARK_LOCAL_IP="127.0.0.1", PYTHONPATH=str(Path(__file__).resolve().parents[2]))
        store = tmp_path / "store"
        proc = subprocess.run(
            [sys.executable, "-m", "jobs.corpus_update", "--date", DAY1, "--store", str(store),
             "--incoming", f"s3://binfeat-in/incoming/{DAY1}/", "--labels", f"s3://binfeat-in/labels/{DAY1}/",
             "--s3-endpoint-url", endpoint, "--master", "local[2]", "--run-id", "s3-test"],
            env=env, capture_output=True, text=True, timeout=800,
        )  # fmt: skip
    finally:
        server.stop()
    assert proc.returncode == 0, proc.stderr[-5000:]
    assert "testing-secret" not in proc.stdout + proc.stderr
    m = CorpusStore(store).read_manifest(DAY1)
    exp = split.expected[DAY1]
    assert m["rows"]["total"] == exp["rows"] == split.n_day1
    assert m["labels"]["labelled_rows"] == exp["labelled"] == 4
    assert m["summary"]["files"] == exp["files"]  # all new, none unreadable
    assert m["summary"]["bytes"] == exp["bytes"]
    import pyarrow.dataset as ds

    table = ds.dataset(store / m["corpus_path"], format="parquet", partitioning="hive").to_table()
    assert set(table.column("sha256").to_pylist()) == set(split.day1)
    assert all(p.startswith(f"s3://binfeat-in/incoming/{DAY1}/") for p in table.column("path").to_pylist())
