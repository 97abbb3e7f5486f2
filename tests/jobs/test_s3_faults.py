"""S3 bodies cut off mid-stream (issue 12, point 2): moto on 127.0.0.1 behind our faulty proxy.

botocore retries a GET until its headers arrive; a connection reset while the body streams is
jobs.s3's to retry. Every test checks the bytes against hashlib over what was uploaded and checks
the proxy's record that the faults really happened (a proxy that cut nothing would pass
everything else). Credentials reach the clients and the job through the environment only.
"""

from __future__ import annotations

import hashlib
import json
import math
import random
import subprocess
from collections import Counter
from pathlib import Path

import pytest

from jobs.s3 import BACKOFF_BASE_S, BACKOFF_CAP_S, CHANGED, ObjectReader, S3ReadError, fetch, prefetch, s3_client
from tests.jobs._support import VENV_BIN, child_env, read_output, sample_corpus
from tests.net.faulty_proxy import Exchange, Fault, FaultyProxy
from tests.net.moto_s3 import moto_server

pytestmark = pytest.mark.network

CREDS = {
    "AWS_ACCESS_KEY_ID": "AKIABINFEATFAULTS01",
    "AWS_SECRET_ACCESS_KEY": "binfeat/faults+Secret0123456789abcdef",
    "AWS_DEFAULT_REGION": "us-east-1",
}
SMALL = 1024 * 1024  # read whole up to this (BINFEAT_S3_SMALL_OBJECT_BYTES)
RANGE = 768 * 1024  # then in ranges of this (BINFEAT_S3_RANGE_BYTES)
SIZES = {"empty.bin": 0, "one.bin": 1, "five.bin": 5, "small.bin": 3000, "mid.bin": 700_000,
         "big.bin": 1_500_000, "bigger.bin": 3_000_007}  # fmt: skip


@pytest.fixture(scope="module")
def moto_run(tmp_path_factory):
    log = tmp_path_factory.mktemp("moto") / "moto.log"
    with moto_server(log) as url:
        yield url, log


@pytest.fixture
def moto(moto_run) -> str:
    return moto_run[0]


@pytest.fixture
def creds(monkeypatch):
    for k, v in CREDS.items():
        monkeypatch.setenv(k, v)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    monkeypatch.delenv("AWS_MAX_ATTEMPTS", raising=False)
    monkeypatch.setenv("BINFEAT_S3_SMALL_OBJECT_BYTES", str(SMALL))
    monkeypatch.setenv("BINFEAT_S3_RANGE_BYTES", str(RANGE))


def _upload(endpoint: str, bucket: str, objects: dict[str, bytes], prefix: str = "") -> None:
    client = s3_client(endpoint)
    client.create_bucket(Bucket=bucket)
    for name, data in objects.items():
        client.put_object(Bucket=bucket, Key=prefix + name, Body=data)


def _objects(sizes: dict[str, int], seed: int) -> dict[str, bytes]:
    rng = random.Random(seed)
    return {name: rng.randbytes(n) for name, n in sizes.items()}


def _bytes_of(got) -> bytes:
    assert got.error is None, (got.uri, got.error)
    return got.content if got.content is not None else Path(got.local_path).read_bytes()


def _fault_free_gets(size: int, small: int = SMALL, rng: int = RANGE) -> int:
    """GETs of one object without faults: a 416 and a plain GET when empty, else 1 + its ranges."""
    return 2 if size == 0 else 1 + math.ceil(max(0, size - small) / rng)


def _start(ex: Exchange) -> int:
    return int(ex.range.split("=")[1].split("-")[0]) if ex.range else 0


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.mark.parametrize("how", ["reset", "close"])
def test_prefetch_resumes_every_cut_body_whole_and_ranged(moto, creds, tmp_path, how):
    bucket = f"cut-{how}"
    objects = _objects(SIZES, seed=12)
    _upload(moto, bucket, objects)
    uris = [f"s3://{bucket}/{name}" for name in objects]
    with FaultyProxy(moto, [Fault("cut", how=how)]) as proxy:  # each key's first GET: half its body
        got = list(prefetch(uris, proxy.url, threads=2, tmp_dir=str(tmp_path)))
    assert [g.uri for g in got] == uris
    for g, (name, data) in zip(got, objects.items(), strict=True):
        assert _sha(_bytes_of(g)) == _sha(data), name
        assert (g.local_path is not None) == (len(data) > SMALL), name  # above the threshold: streamed
        assert g.retries == (1 if data else 0), name
        g.cleanup()
    assert list(tmp_path.iterdir()) == []

    for name, data in objects.items():
        gets = proxy.gets(f"/{bucket}/{name}")
        if not data:  # nothing to cut: the 416 of the ranged first GET, then a plain GET
            assert [(e.status, e.fault) for e in gets] == [(416, None), (200, None)]
            continue
        assert [e.fault for e in gets] == ["cut"] + [None] * (len(gets) - 1), name
        assert len(gets) == _fault_free_gets(len(data)) + 1, name  # exactly one retry: the cut one
        etag = gets[0].headers["etag"]
        assert [e.if_match for e in gets] == [None] + [etag] * (len(gets) - 1), name
        cut, resumed = gets[0], gets[1]
        assert cut.body_len == min(len(data), SMALL) and cut.body_bytes == cut.body_len // 2, name
        if how == "close":  # every byte sent before the FIN was kept: the retry starts right after
            assert _start(resumed) == cut.body_bytes, name
        else:  # bytes in flight when the RST arrived are lost with the connection, never skipped
            assert 0 <= _start(resumed) <= cut.body_bytes, name
        # the completed GETs tile the object from the resume point on, no byte asked for twice
        pos = _start(resumed)
        for e in gets[1:]:
            assert e.status == 206 and _start(e) == pos, name
            pos += e.body_bytes
        assert pos == len(data), name
    assert proxy.counts()["cut"] == sum(1 for d in objects.values() if d)


def test_an_object_replaced_between_the_cut_and_the_retry_is_an_error_saying_so(moto, creds, tmp_path):
    bucket = "changed-objects"
    objects = _objects({"whole.bin": 3000, "ranged.bin": 1_500_000, "steady.bin": 200_000}, seed=13)
    _upload(moto, bucket, objects)
    direct = s3_client(moto)

    def replace(key: str) -> None:  # runs in the proxy while the client waits for the rest
        direct.put_object(Bucket=bucket, Key=key.split("/", 2)[2], Body=b"a new version")

    faults = [
        Fault("cut", keys=lambda k: k.endswith("/whole.bin"), then=replace),  # first GET, read whole
        Fault("cut", gets={2}, keys=lambda k: k.endswith("/ranged.bin"), how="close", then=replace),  # 2nd range
        Fault("cut", keys=lambda k: k.endswith("/steady.bin")),
    ]
    with FaultyProxy(moto, faults) as proxy:
        client = s3_client(proxy.url)
        got = {name: fetch(f"s3://{bucket}/{name}", client, tmp_dir=str(tmp_path)) for name in objects}
    assert got["whole.bin"].error == CHANGED == "object changed on S3 while it was being read"
    assert got["ranged.bin"].error == CHANGED
    assert got["ranged.bin"].local_path is None and list(tmp_path.iterdir()) == []  # partial file removed
    assert _sha(_bytes_of(got["steady.bin"])) == _sha(objects["steady.bin"])

    whole = proxy.gets(f"/{bucket}/whole.bin")
    assert [(e.fault, e.status) for e in whole] == [("cut", 206), (None, 412)]
    assert whole[1].if_match == whole[0].headers["etag"]
    ranged = proxy.gets(f"/{bucket}/ranged.bin")
    assert [(e.fault, e.status, _start(e)) for e in ranged] == [
        (None, 206, 0),
        ("cut", 206, SMALL),
        (None, 412, SMALL + ranged[1].body_bytes),  # resumed where the cut stopped, refused: new ETag
    ]


def test_a_fault_beyond_the_attempt_budget_is_an_error_not_a_hang(moto, creds):
    import boto3
    from botocore.config import Config

    bucket = "doomed-objects"
    objects = _objects({"doomed.bin": 5000, "fine.bin": 5000}, seed=14)
    _upload(moto, bucket, objects)
    faults = [Fault("cut", gets=None, keys=lambda k: k.endswith("/doomed.bin")), Fault("cut")]
    with FaultyProxy(moto, faults) as proxy:
        config = Config(retries={"mode": "standard", "total_max_attempts": 4})
        client = boto3.session.Session().client("s3", endpoint_url=proxy.url, config=config)
        doomed = fetch(f"s3://{bucket}/doomed.bin", client)
        fine = fetch(f"s3://{bucket}/fine.bin", client)
        delays: list[float] = []  # the back-off, seen through the reader's sleep
        with pytest.raises(S3ReadError, match=r"^S3 read failed after 4 attempts: "):
            ObjectReader(client, bucket, "doomed.bin", sleep=delays.append).read(0, None, lambda chunk: None)
    assert doomed.error.startswith("S3 read failed after 4 attempts: ")
    assert "Connection reset by peer" in doomed.error and doomed.retries == 3
    assert [e.fault for e in proxy.gets(f"/{bucket}/doomed.bin")] == ["cut"] * 8  # the budget twice, no more
    assert _sha(_bytes_of(fine)) == _sha(objects["fine.bin"]) and fine.retries == 1
    # full jitter under a doubling ceiling: retry n waits uniform(0, min(cap, base * 2**(n-1)))
    assert len(delays) == 3
    assert all(0 <= d <= min(BACKOFF_CAP_S, BACKOFF_BASE_S * 2**n) for n, d in enumerate(delays))


def test_a_503_and_a_stalled_body_are_ridden_out(moto, creds):
    import boto3
    from botocore.config import Config

    bucket = "slow-objects"
    objects = _objects({"throttled.bin": 40_000, "stalled.bin": 40_000}, seed=15)
    _upload(moto, bucket, objects)
    faults = [
        Fault("status", status=503, keys=lambda k: k.endswith("/throttled.bin")),
        Fault("stall", stall_s=300, keys=lambda k: k.endswith("/stalled.bin")),
    ]
    with FaultyProxy(moto, faults) as proxy:
        config = Config(retries={"mode": "standard", "total_max_attempts": 5}, read_timeout=1)
        client = boto3.session.Session().client("s3", endpoint_url=proxy.url, config=config)
        throttled = fetch(f"s3://{bucket}/throttled.bin", client)
        stalled = fetch(f"s3://{bucket}/stalled.bin", client)
    assert _sha(_bytes_of(throttled)) == _sha(objects["throttled.bin"])
    assert _sha(_bytes_of(stalled)) == _sha(objects["stalled.bin"]) and stalled.retries >= 1
    throttled_gets = proxy.gets(f"/{bucket}/throttled.bin")
    assert (throttled_gets[0].status, throttled_gets[0].fault) == (503, "status")  # botocore's to retry
    assert throttled_gets[-1].status == 206
    assert proxy.gets(f"/{bucket}/stalled.bin")[0].fault == "stall"


def test_labels_feed_and_corpus_hashing_read_through_cut_bodies(moto, creds):
    from jobs.corpus.feed import read_labels
    from jobs.corpus.hashing import sha256_of

    bucket = "labels-and-hashes"
    rng = random.Random(16)
    rows = [{"sha256": rng.randbytes(32).hex(), "label": f"family-{i % 3}"} for i in range(2000)]
    feed = "".join(json.dumps(r) + "\n" for r in rows).encode()
    binary = rng.randbytes(2_500_000)
    _upload(moto, bucket, {"labels/day/feed.jsonl": feed, "incoming/day/x.bin": binary})
    with FaultyProxy(moto, [Fault("cut", how="close")]) as proxy:
        table = read_labels(f"s3://{bucket}/labels/day/", s3_endpoint_url=proxy.url)
        digest, why = sha256_of(f"s3://{bucket}/incoming/day/x.bin", proxy.url)
    assert table.select(["sha256", "label"]).to_pylist() == rows
    assert (digest, why) == (_sha(binary), None)
    assert [e.fault for e in proxy.gets(f"/{bucket}/labels/day/feed.jsonl")] == ["cut", None]
    assert proxy.gets(f"/{bucket}/incoming/day/x.bin")[0].fault == "cut"


@pytest.mark.spark
@pytest.mark.timeout(900)
def test_binfeat_extract_on_s3_survives_cut_bodies(moto, moto_run, creds, crafted, tmp_path):
    """The real job (``binfeat extract``, local Spark) through the proxy: every first body cut.

    Small objects are read whole, those above 64 KiB in 48 KiB ranges; every other key's cut is a
    FIN instead of an RST (its retry must start at the first byte not received); one object is
    replaced between its cut and the retry, one is cut on every GET (beyond AWS_MAX_ATTEMPTS=3).
    """
    bucket, prefix = "job-faults", "bin/"
    rng = random.Random(17)
    files = (sample_corpus(8) or []) + [crafted[k] for k in ("ls", "elf_lib", "fake_pe", "random", "empty", "text")]
    objects = {f"{i:03d}-{p.name}": p.read_bytes() for i, p in enumerate(files)}
    objects |= {"big-random.bin": rng.randbytes(1_300_000), "changing.bin": rng.randbytes(300_000),
                "doomed.bin": rng.randbytes(9000)}  # fmt: skip
    _upload(moto, bucket, objects, prefix)
    direct = s3_client(moto)
    small, rng_bytes = 64 * 1024, 48 * 1024
    good = {n: d for n, d in objects.items() if n not in ("changing.bin", "doomed.bin")}
    closed = {f"/{bucket}/{prefix}{n}" for n in sorted(good)[::2]}

    def replace(key: str) -> None:
        direct.put_object(Bucket=bucket, Key=key.split("/", 2)[2], Body=b"a new version")

    faults = [
        Fault("cut", gets=None, keys=lambda k: k.endswith("/doomed.bin")),
        Fault("cut", keys=lambda k: k.endswith("/changing.bin"), then=replace),
        Fault("cut", how="close", keys=closed.__contains__),  # first GET: half the body, then FIN
        Fault("cut"),  # every other key: its first GET, half the body, then RST
    ]
    out = tmp_path / "features"
    env = child_env(**CREDS, BINFEAT_S3_SMALL_OBJECT_BYTES=str(small), BINFEAT_S3_RANGE_BYTES=str(rng_bytes),
                    AWS_MAX_ATTEMPTS="3")  # fmt: skip
    with FaultyProxy(moto, faults) as proxy:
        cmd = [str(VENV_BIN / "binfeat"), "extract", f"s3://{bucket}/{prefix}", str(out),
               "--s3-endpoint-url", proxy.url, "--master", "local[2]", "--conf", "spark.ui.enabled=false"]  # fmt: skip
        job = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=800)
    assert job.returncode == 0, job.stderr[-4000:]
    for text in (" ".join(cmd), job.stdout, job.stderr, moto_run[1].read_text(), repr(proxy.exchanges)):
        assert CREDS["AWS_SECRET_ACCESS_KEY"] not in text and CREDS["AWS_ACCESS_KEY_ID"] not in text

    rows = {r["path"].removeprefix(f"s3://{bucket}/{prefix}"): r for r in read_output(out).to_pylist()}
    assert sorted(rows) == sorted(objects)  # one row per object
    assert rows["changing.bin"]["status"] == "error" and rows["changing.bin"]["error"] == CHANGED
    assert rows["doomed.bin"]["status"] == "error"
    assert rows["doomed.bin"]["error"].startswith("S3 read failed after 3 attempts: ")
    # The rows of the good objects are those of their bytes read locally (binfeat file, no Spark, no S3).
    local = tmp_path / "local"
    local.mkdir()
    for name, data in good.items():
        (local / name).write_bytes(data)
    cli = subprocess.run([str(VENV_BIN / "binfeat"), "file", *sorted(str(local / n) for n in good)],
                         env=env, capture_output=True, text=True, timeout=600, check=True)  # fmt: skip
    columns = ("sha256", "size", "format", "status", "error")
    expected = {Path(r["path"]).name: {c: r[c] for c in columns} for r in map(json.loads, cli.stdout.splitlines())}
    for name, data in good.items():
        assert {c: rows[name][c] for c in columns} == expected[name], name
        assert rows[name]["status"] != "error" and rows[name]["sha256"] == _sha(data), name

    cuts = retries = resumed_after_0 = 0
    for name, data in good.items():
        gets = proxy.gets(f"/{bucket}/{prefix}{name}")
        expected = _fault_free_gets(len(data), small, rng_bytes) + (1 if data else 0)
        assert len(gets) == expected, name
        if data:
            assert gets[0].fault == "cut" and all(e.fault is None for e in gets[1:]), name
            assert all(e.if_match == gets[0].headers["etag"] for e in gets[1:]), name
            if gets[0].key in closed:
                assert _start(gets[1]) == gets[0].body_bytes, name
                resumed_after_0 += gets[0].body_bytes > 0
        cuts += sum(e.fault == "cut" for e in gets)
        retries += 1 if data else 0
    assert [e.fault for e in proxy.gets(f"/{bucket}/{prefix}doomed.bin")] == ["cut"] * 3
    assert [(e.fault, e.status) for e in proxy.gets(f"/{bucket}/{prefix}changing.bin")] == [("cut", 206), (None, 412)]
    ranged = sum(1 for d in good.values() if len(d) > small)
    not_error = sum(r["status"] != "error" for r in rows.values())
    sha_equal = sum(rows[n]["sha256"] == _sha(d) for n, d in good.items())
    print(f"\nS3 fault job: {len(objects)} objects ({ranged} ranged), {proxy.counts()['cut']} cuts, "
          f"{retries} retried GETs of good objects ({resumed_after_0} resumed past byte 0), "
          f"{not_error} rows not in error {Counter(r['status'] for r in rows.values())}, "
          f"{sha_equal} sha256 equal to hashlib")  # fmt: skip
