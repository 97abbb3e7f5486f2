"""The store on S3: a named pyiceberg catalog whose warehouse is a bucket of a moto server.

The catalog is configured the way pyiceberg configures one (PYICEBERG_CATALOG__PROD__* variables:
a SQL catalog on SQLite, warehouse ``s3://binfeat-wh/corpus``, the endpoint); the day's files and
labels feed are S3 prefixes too. The job runs as spark-submit runs it (its own interpreter and
JVM), and once more on the local engine (hashing and the pool's writes on S3), with the AWS keys
only in its environment, and none of them may show in its output.
"""

from __future__ import annotations

import subprocess
import sys
import urllib.request

import boto3
import pytest

from tests.jobs._support import REPO, child_env, free_port

pytestmark = [pytest.mark.spark, pytest.mark.network, pytest.mark.timeout(1800)]
SECRET = "testing-secret-do-not-log"


@pytest.fixture
def moto(monkeypatch):
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    # moto keeps its buckets in this process, whichever server serves them: start from none (another
    # module's test may have left a file under the same bucket and day) and leave none behind
    _reset_moto(endpoint)
    creds = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": SECRET, "AWS_DEFAULT_REGION": "us-east-1"}
    for k, v in creds.items():
        monkeypatch.setenv(k, v)
    try:
        yield endpoint, creds
    finally:
        _reset_moto(endpoint)
        server.stop()


def _reset_moto(endpoint: str) -> None:
    urllib.request.urlopen(urllib.request.Request(f"{endpoint}/moto-api/reset", method="POST"), timeout=30).close()


@pytest.mark.parametrize("engine", [["--master", "local[2]"], ["--engine", "local"]], ids=["spark", "local"])
def test_named_catalog_with_an_s3_warehouse(engine, moto, tmp_path, monkeypatch):
    from jobs.corpus.catalog import StoreConfig, open_tables
    from jobs.corpus.maintenance import maintain_store
    from jobs.corpus.read import plan_as_of, read_as_of
    from jobs.corpus.tags import describe_date
    from tests.dags.corpus_split import DAY1, build_split

    endpoint, creds = moto
    split = build_split(tmp_path / "data")
    s3 = boto3.client("s3", endpoint_url=endpoint)
    s3.create_bucket(Bucket="binfeat-in")
    s3.create_bucket(Bucket="binfeat-wh")
    for f in sorted((split.incoming / DAY1).iterdir()):
        s3.upload_file(str(f), "binfeat-in", f"incoming/{DAY1}/{f.name}")
    s3.upload_file(str(split.labels / DAY1 / "labels.jsonl"), "binfeat-in", f"labels/{DAY1}/labels.jsonl")
    catalog = {
        "PYICEBERG_CATALOG__PROD__TYPE": "sql",
        "PYICEBERG_CATALOG__PROD__URI": f"sqlite:///{tmp_path / 'catalog.db'}",
        "PYICEBERG_CATALOG__PROD__WAREHOUSE": "s3://binfeat-wh/corpus",
        "PYICEBERG_CATALOG__PROD__S3__ENDPOINT": endpoint,
    }
    for k, v in catalog.items():
        monkeypatch.setenv(k, v)
    import pyiceberg.catalog
    from pyiceberg.utils.config import Config

    # pyiceberg reads its environment once, at import: this test's catalog, not an earlier case's
    monkeypatch.setattr(pyiceberg.catalog, "_ENV_CONFIG", Config())
    proc = subprocess.run(
        [sys.executable, "-m", "jobs.corpus_update", "--date", DAY1, "--catalog", "prod",
         "--incoming", f"s3://binfeat-in/incoming/{DAY1}/", "--labels", f"s3://binfeat-in/labels/{DAY1}/",
         "--s3-endpoint-url", endpoint, *engine, "--run-id", "s3-test"],
        cwd=REPO, env=child_env(PYTHONPATH=str(REPO), **creds, **catalog), capture_output=True, text=True, timeout=1500,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-5000:]
    assert SECRET not in proc.stdout + proc.stderr
    assert f"{'local' if '--engine' in engine else 'spark'} engine" in proc.stderr  # the night's log line
    exp = split.expected[DAY1]
    info = describe_date(DAY1, catalog="prod")
    assert info["rows"] == exp["rows"] and info["labelled_rows"] == exp["labelled"]
    listed = s3.list_objects_v2(Bucket="binfeat-wh", Prefix="corpus/binfeat/features/data/")
    keys = [o["Key"] for o in listed["Contents"]]
    assert keys and all(k.startswith(f"corpus/binfeat/features/data/ingest_date={DAY1}/") for k in keys)
    plan = plan_as_of(DAY1, cfg=StoreConfig(catalog="prod"))
    assert all(f.startswith("s3://binfeat-wh/corpus/binfeat/features/data/") for f in plan.features_files)
    table = read_as_of(DAY1, cfg=StoreConfig(catalog="prod"), columns=["sha256", "path", "label"])
    assert set(table.column("sha256").to_pylist()) == set(split.day1)
    assert all(p.startswith(f"s3://binfeat-in/incoming/{DAY1}/") for p in table.column("path").to_pylist())
    assert {r["sha256"]: r["label"] for r in table.to_pylist() if r["label"]} == exp["labels"]
    # maintenance lists and deletes on S3 too: a stray object goes, the table still reads
    s3.put_object(Bucket="binfeat-wh", Key=f"corpus/binfeat/features/data/ingest_date={DAY1}/stray.parquet", Body=b"x")
    report = maintain_store(catalog="prod", keep_days=30, orphan_age_hours=0)
    assert report["orphans"] == 1
    assert read_as_of(DAY1, cfg=StoreConfig(catalog="prod"), columns=["sha256"]).num_rows == exp["rows"]
    assert open_tables(StoreConfig(catalog="prod")).features.location() == "s3://binfeat-wh/corpus/binfeat/features"
