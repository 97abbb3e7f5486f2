"""S3 for real: moto in server mode on 127.0.0.1, boto3 listing/fetching, the whole job on s3://.

Credentials are fake values passed only through the environment (boto3's standard chain); the
job's output, logs, summary and Parquet must never contain them.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from jobs.extract_features import features_dataframe
from jobs.inputs import InputFile, list_inputs, list_s3
from jobs.output import summary_path
from jobs.s3 import S3UriError, fetch, is_s3, prefetch, s3_client, split_s3
from tests.jobs._support import REPO, child_env, read_output, rows_by_path, sample_corpus
from tests.net.moto_s3 import moto_server

pytestmark = pytest.mark.network

KEY_ID = "AKIABINFEATTEST0001"
SECRET = "binfeat/test+Secret0123456789abcdefXYZ"
CREDS = {"AWS_ACCESS_KEY_ID": KEY_ID, "AWS_SECRET_ACCESS_KEY": SECRET, "AWS_DEFAULT_REGION": "us-east-1"}


@pytest.fixture(scope="module")
def moto_endpoint(tmp_path_factory):
    with moto_server(tmp_path_factory.mktemp("moto") / "moto.log") as url:
        yield url


@pytest.fixture
def creds(monkeypatch):
    for k, v in CREDS.items():
        monkeypatch.setenv(k, v)
    monkeypatch.delenv("AWS_PROFILE", raising=False)


def test_s3_uris_belong_to_jobs_s3_and_it_imports_nothing_of_inputs():
    assert is_s3("s3://b/k") and not is_s3("/data/s3://x")
    assert split_s3("s3://bucket/a/b.bin") == ("bucket", "a/b.bin")
    assert split_s3("s3://bucket") == ("bucket", "")
    with pytest.raises(S3UriError, match="bad S3 URI 's3:///x'"):
        split_s3("s3:///x")
    probe = "import sys, jobs.s3; print(sorted(m for m in sys.modules if m.startswith(('jobs', 'boto'))))"
    out = subprocess.run([sys.executable, "-c", probe], cwd=REPO, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "['jobs', 'jobs.s3']"  # no jobs.inputs, and boto3 only when used


def _bucket(endpoint: str, name: str):
    client = s3_client(endpoint)
    client.create_bucket(Bucket=name)
    return client


def test_list_and_fetch_small_large_empty_vanished(moto_endpoint, creds, tmp_path):
    client = _bucket(moto_endpoint, "unit-bucket")
    big = os.urandom(300_000)
    client.put_object(Bucket="unit-bucket", Key="p/big.bin", Body=big)
    client.put_object(Bucket="unit-bucket", Key="p/small.bin", Body=b"small")
    client.put_object(Bucket="unit-bucket", Key="p/empty.bin", Body=b"")
    client.put_object(Bucket="unit-bucket", Key="p/folder/", Body=b"")  # a "folder" marker: skipped
    client.put_object(Bucket="unit-bucket", Key="other/x.bin", Body=b"x")

    listed = list_s3("s3://unit-bucket/p/", endpoint_url=moto_endpoint, page_size=2)  # 2 pages
    assert listed == [
        InputFile("s3://unit-bucket/p/big.bin", 300_000),
        InputFile("s3://unit-bucket/p/empty.bin", 0),
        InputFile("s3://unit-bucket/p/small.bin", 5),
    ]
    assert list_inputs("s3://unit-bucket/p/", s3_endpoint_url=moto_endpoint) == listed

    small = fetch("s3://unit-bucket/p/small.bin", client)
    assert small.content == b"small" and small.local_path is None and small.error is None
    empty = fetch("s3://unit-bucket/p/empty.bin", client)
    assert empty.content == b"" and empty.error is None
    large = fetch("s3://unit-bucket/p/big.bin", client, small_bytes=64 * 1024, tmp_dir=str(tmp_path))
    assert large.content is None and Path(large.local_path).read_bytes() == big
    large.cleanup()
    assert list(tmp_path.iterdir()) == []
    gone = fetch("s3://unit-bucket/p/gone.bin", client)
    assert gone.error == "object vanished: not found on S3"

    uris = [f.path for f in listed] + ["s3://unit-bucket/p/gone.bin"]
    got = list(prefetch(uris, moto_endpoint, threads=2, max_in_flight=2))
    assert [g.uri for g in got] == uris  # input order, whatever finished first
    assert [g.error is None for g in got] == [True, True, True, False]
    for g in got:
        g.cleanup()


def _files_for_s3(crafted) -> list[Path]:
    sample = sample_corpus(8)
    regular = [crafted[k] for k in ("ls", "elf_lib", "fake_pe", "random", "empty", "text")]
    return (sample or []) + regular


@pytest.mark.spark
def test_job_on_s3_equals_local_rows_and_leaks_no_secret(spark, moto_endpoint, creds, crafted, tmp_path):
    client = _bucket(moto_endpoint, "corpus-bucket")
    files = _files_for_s3(crafted)
    local_dir = tmp_path / "local"
    local_dir.mkdir()
    keys = {}
    for i, src in enumerate(files):
        name = f"{i:03d}-{src.name}"
        shutil.copyfile(src, local_dir / name)
        client.upload_file(str(src), "corpus-bucket", f"binaries/{name}")
        keys[f"s3://corpus-bucket/binaries/{name}"] = str(local_dir / name)

    out = tmp_path / "s3-features"
    env = child_env(
        **CREDS, PYTHONPATH=str(REPO), BINFEAT_S3_SMALL_OBJECT_BYTES="65536", BINFEAT_S3_RANGE_BYTES="40000"
    )  # /bin/ls goes the ranged, temp-file way
    cmd = [
        sys.executable,
        "-m",
        "jobs.extract_features",
        "s3://corpus-bucket/binaries/",
        str(out),
        "--s3-endpoint-url",
        moto_endpoint,
        "--master",
        "local[2]",
        "--progress-interval",
        "1",
        "--conf",
        "spark.ui.enabled=false",
    ]
    assert SECRET not in " ".join(cmd) and KEY_ID not in " ".join(cmd)
    job = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert job.returncode == 0, job.stderr[-4000:]
    summary = json.loads(job.stdout)
    assert summary["rows"] == len(files) and summary["input"] == "s3://corpus-bucket/binaries/"
    assert "progress:" in job.stderr

    s3_table = read_output(out)
    s3_rows = rows_by_path(s3_table, drop=("path",))
    local_rows = rows_by_path(
        features_dataframe(spark, list_inputs(str(local_dir))).toArrow(), drop=("path",)
    )
    assert sorted(s3_rows) == sorted(keys)
    for uri, local_path in keys.items():
        assert s3_rows[uri] == local_rows[local_path], uri
    assert {r["status"] for r in s3_rows.values()} <= {"ok", "partial"}

    texts = [
        job.stdout,
        job.stderr,
        summary_path(out).read_text(),
        json.dumps(s3_table.drop_columns(["vector"]).to_pylist(), default=str),
    ]
    for text in texts:
        assert SECRET not in text and KEY_ID not in text
    leftovers = [p for p in Path("/tmp").glob("binfeat-s3-*")]
    assert leftovers == []
