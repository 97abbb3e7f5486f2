"""The local engine against the Spark job: the same rows (every column, vector bytes), part files,
summary and error rows; auto's choice at its thresholds; a command line that never imports pyspark.

Both engines run for real: Spark in the shared local session (or as ``binfeat extract`` processes
for S3, whose credentials only a fresh process's executors see), the local engine with its pool of
``jobs.local_worker`` processes.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import extract
from extract.paths import path_text
from jobs.engine import LOCAL_MAX_BYTES, LOCAL_MAX_FILES, choose_engine
from jobs.extract_cli import main
from jobs.extract_features import run
from jobs.output import SUMMARY_IN_DATASET, summary_path
from jobs.s3 import s3_client
from jobs.spark_types import contract_schema
from tests.jobs._support import ELF_LIB, REPO, child_env, craft_tree, read_output, rows_by_path
from tests.net.moto_s3 import moto_server

CREDS = {"AWS_ACCESS_KEY_ID": "AKIABINFEATLOCAL01", "AWS_SECRET_ACCESS_KEY": "local/engine+Secret0123456789",
         "AWS_DEFAULT_REGION": "us-east-1"}  # fmt: skip


def _vector_bytes(table: pa.Table) -> dict[str, bytes | None]:
    """path -> the row's vector as its float32 bytes (NaN payloads included), None without one."""
    out = {}
    vectors = table.column("vector")
    for i, path in enumerate(table.column("path").to_pylist()):
        v = vectors[i]
        values = None if not v.is_valid else v.values.to_numpy(zero_copy_only=False)
        out[path] = None if values is None else np.asarray(values, np.float32).tobytes()
    return out


def assert_same_rows(local: pa.Table, spark: pa.Table) -> None:
    """Row for row by path: every column equal, the vectors byte for byte."""
    assert local.num_rows == spark.num_rows
    assert local.schema.equals(spark.schema, check_metadata=True)
    a, b = rows_by_path(local, drop=("vector",)), rows_by_path(spark, drop=("vector",))
    assert sorted(a) == sorted(b) and len(a) == local.num_rows
    for path in a:
        assert a[path] == b[path], path
    assert _vector_bytes(local) == _vector_bytes(spark)


def assert_same_part_files(local_dir: Path, spark_dir: Path, with_label: bool) -> None:
    """Both datasets' part files carry the contract's Arrow schema and the same Parquet schema and metadata."""
    parts = sorted(local_dir.glob("part-*.parquet")) + sorted(spark_dir.glob("part-*.parquet"))
    first = pq.ParquetFile(parts[0])
    for part in parts:
        f = pq.ParquetFile(part)
        assert f.schema_arrow.equals(contract_schema(with_label), check_metadata=False), part
        assert f.schema_arrow.equals(first.schema_arrow, check_metadata=True), part
        assert f.schema.equals(first.schema), part  # Parquet physical and logical types
        assert f.metadata.metadata == first.metadata.metadata, part
    assert sorted(p.name for p in local_dir.iterdir() if not p.name.startswith("part-")) == [SUMMARY_IN_DATASET]


@pytest.mark.spark
@pytest.mark.corpus
def test_local_equals_spark_on_the_small_corpus(spark, small_corpus, tmp_path):
    progress: list[dict] = []
    local = run(str(small_corpus), str(tmp_path / "local"), engine="local", workers=2,
                exclude=["manifest.jsonl"], progress=progress.append, progress_interval=0.2)  # fmt: skip
    on_spark = run(str(small_corpus), str(tmp_path / "spark"), spark=spark, exclude=["manifest.jsonl"])
    table = read_output(tmp_path / "local")
    n = sum(1 for line in (small_corpus / "manifest.jsonl").read_text().splitlines() if line.strip())
    assert table.num_rows == n
    assert_same_rows(table, read_output(tmp_path / "spark"))
    assert_same_part_files(tmp_path / "local", tmp_path / "spark", with_label=False)

    # the summary: Spark's keys, the engine recorded, counts from the rows written
    assert set(local) == set(on_spark)
    assert (local["engine"], local["master"], local["spark_version"], local["workers"]) == ("local", None, None, 2)
    assert (on_spark["engine"], on_spark["workers"], on_spark["worker_deaths"]) == ("spark", None, None)
    assert on_spark["master"].startswith("local[") and on_spark["spark_version"]
    same = ("rows", "inputs_listed", "inputs_extracted", "inputs_bytes", "bytes", "counts_by_status",
            "counts_by_format", "feature_version", "binfeat_version", "sha256_mismatches",
            "duplicates_removed")  # fmt: skip
    assert {k: local[k] for k in same} == {k: on_spark[k] for k in same}
    statuses = table.column("status").to_pylist()
    assert local["counts_by_status"] == {s: statuses.count(s) for s in set(statuses)}
    assert local["rows"] == n and local["worker_deaths"] == 0
    assert local["partitions"] == len(list((tmp_path / "local").glob("part-*.parquet")))
    assert json.loads(summary_path(tmp_path / "local").read_text()) == local
    assert json.loads((tmp_path / "local" / SUMMARY_IN_DATASET).read_text()) == local
    assert progress[-1]["files_done"] == n and progress[-1]["bytes_done"] == local["inputs_bytes"]
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # run folders removed


@pytest.fixture(scope="module")
def odd_inputs(tmp_path_factory) -> Path:
    """The crafted tree (empty, random, text, ELF, fake PE, FIFO, symlink, dangling link, loop) plus
    real executables under names that are not UTF-8 or hold a backslash."""
    root = tmp_path_factory.mktemp("odd")
    craft_tree(root)
    for i, name in enumerate([b"bad\xff.bin", b"caf\xe9.dll", b"back\\slash.so"]):
        raw = os.path.join(os.fsencode(root), name)
        shutil.copyfile(os.path.realpath(ELF_LIB) if i else "/bin/ls", raw)
        with open(raw, "ab") as f:
            f.write(bytes([i]))
    return root


@pytest.mark.spark
def test_local_equals_spark_on_crafted_error_cases(spark, odd_inputs, tmp_path):
    local = run(str(odd_inputs), str(tmp_path / "local"), engine="local")
    on_spark = run(str(odd_inputs), str(tmp_path / "spark"), spark=spark, partitions=3)
    rows = rows_by_path(read_output(tmp_path / "local"))
    assert_same_rows(read_output(tmp_path / "local"), read_output(tmp_path / "spark"))
    root = str(odd_inputs)
    assert rows[f"{root}/pipe"]["error"] == "read: not a regular file (FIFO)"
    assert rows[f"{root}/dangling"]["error"] == "dangling symbolic link"
    assert rows[f"{root}/bad\\xff.bin"]["status"] == "ok" and rows[f"{root}/back\\\\slash.so"]["format"] == "elf"
    assert local["rows"] == on_spark["rows"] == 12

    # options reach the pool: symlinks not followed, a fuzzy hash computed
    options = extract.ExtractOptions(fuzzy_hashes=("tlsh",))
    kw = {"follow_symlinks": False, "options": options}
    run(str(odd_inputs), str(tmp_path / "nf-local"), engine="local", workers=1, **kw)
    run(str(odd_inputs), str(tmp_path / "nf-spark"), spark=spark, **kw)
    table = read_output(tmp_path / "nf-local")
    assert_same_rows(table, read_output(tmp_path / "nf-spark"))
    rows = rows_by_path(table)
    assert rows[f"{root}/sub/link-to-ls"]["error"] == "symbolic link not followed (--no-follow-symlinks)"
    assert rows[f"{root}/ls"]["hashes"]["tlsh"], rows[f"{root}/ls"]["hashes"]

    # a manifest: labels, a missing file, a directory, a malformed text form, the FIFO, a duplicate
    m = tmp_path / "m.jsonl"
    cafe = path_text(os.path.join(os.fsencode(root), b"caf\xe9.dll"))
    texts = [f"{root}/ls", f"{root}/sub/ls-copy", f"{root}/nope", f"{root}/sub", f"{root}/back\\slash.so",
             f"{root}/pipe", f"{root}/dangling", cafe]  # fmt: skip
    m.write_text("".join(json.dumps({"path": t, "label": f"L{i}"}) + "\n" for i, t in enumerate(texts)))
    local = run(str(m), str(tmp_path / "m-local"), engine="local", dedupe=True)
    on_spark = run(str(m), str(tmp_path / "m-spark"), spark=spark, dedupe=True)
    table = read_output(tmp_path / "m-local")
    assert_same_rows(table, read_output(tmp_path / "m-spark"))
    assert_same_part_files(tmp_path / "m-local", tmp_path / "m-spark", with_label=True)
    rows = rows_by_path(table)
    assert local["rows"] == on_spark["rows"] == 7 and local["duplicates_removed"] == 1  # ls and its copy
    assert rows[f"{root}/nope"]["error"] == "read: file not found (deleted or moved after listing?)"
    assert rows[f"{root}/sub"]["status"] == "error" and rows[f"{root}/back\\slash.so"]["error"].startswith(
        "path: malformed path text")
    assert [rows[t]["label"] for t in texts if t in rows] == [f"L{i}" for i, t in enumerate(texts) if t in rows]


def _cli(*args: str, env: dict[str, str], cwd: Path) -> dict:
    proc = subprocess.run([sys.executable, "-m", "binfeat", "extract", *args, "--quiet"], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=900)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    for text in (proc.stdout, proc.stderr):
        assert CREDS["AWS_SECRET_ACCESS_KEY"] not in text and CREDS["AWS_ACCESS_KEY_ID"] not in text
    return json.loads(proc.stdout)


@pytest.mark.spark
@pytest.mark.network
def test_local_equals_spark_on_s3(crafted, tmp_path, monkeypatch):
    for k, v in CREDS.items():
        monkeypatch.setenv(k, v)
    with moto_server(tmp_path / "moto.log") as endpoint:
        client = s3_client(endpoint)
        client.create_bucket(Bucket="local-engine")
        names = {"ls": crafted["ls"], "lib.so": crafted["elf_lib"], "fake.exe": crafted["fake_pe"],
                 "empty": crafted["empty"], "back\\slash.bin": crafted["random"]}  # fmt: skip
        for name, src in names.items():
            client.upload_file(str(src), "local-engine", f"bin/{name}")
        m = tmp_path / "s3.jsonl"  # every object, one that is not there, labels
        uris = [f"s3://local-engine/bin/{n.replace(chr(92), chr(92) * 2)}" for n in names]
        uris.append("s3://local-engine/bin/never-uploaded")
        m.write_text("".join(json.dumps({"path": u, "label": str(i)}) + "\n" for i, u in enumerate(uris)))
        env = child_env(**CREDS, PYTHONPATH=str(REPO), BINFEAT_S3_SMALL_OBJECT_BYTES="65536",
                        BINFEAT_S3_RANGE_BYTES="40000")  # fmt: skip  # /bin/ls goes the ranged, temp-file way
        common = (str(m), "--s3-endpoint-url", endpoint)
        local = _cli(*common, str(tmp_path / "local"), "--engine", "local", env=env, cwd=tmp_path)
        on_spark = _cli(*common, str(tmp_path / "spark"), "--master", "local[2]", "--conf", "spark.ui.enabled=false",
                        env=env, cwd=tmp_path)  # fmt: skip
    assert (local["engine"], on_spark["engine"]) == ("local", "spark")
    table = read_output(tmp_path / "local")
    assert_same_rows(table, read_output(tmp_path / "spark"))
    rows = rows_by_path(table)
    assert sorted(rows) == sorted(uris) and local["rows"] == 6
    assert rows[uris[-1]]["status"] == "error" and rows[uris[-1]]["error"] == "object vanished: not found on S3"
    assert {rows[u]["status"] for u in uris[:-1]} <= {"ok", "partial"} and rows[uris[0]]["format"] == "elf"
    assert [rows[u]["label"] for u in uris] == [str(i) for i in range(len(uris))]
    assert list(Path("/tmp").glob("binfeat-s3-*")) == []  # spooled objects removed


def test_auto_picks_by_count_and_bytes():
    at = {"n_files": LOCAL_MAX_FILES, "n_bytes": LOCAL_MAX_BYTES}
    assert choose_engine("auto", **at) == "local"
    assert choose_engine("auto", n_files=LOCAL_MAX_FILES + 1, n_bytes=1) == "spark"
    assert choose_engine("auto", n_files=1, n_bytes=LOCAL_MAX_BYTES + 1) == "spark"
    assert choose_engine("auto", n_files=1, n_bytes=1) == "local"
    for asked in ({"master": "local[2]"}, {"conf": {"spark.ui.enabled": "false"}}, {"spark_given": True},
                  {"submitted": True}):  # fmt: skip
        assert choose_engine("auto", n_files=1, n_bytes=1, **asked) == "spark", asked
    assert choose_engine("local", n_files=10**6, n_bytes=10**12) == "local"
    assert choose_engine("spark", n_files=1, n_bytes=1) == "spark"


class _Started(Exception):
    pass


@pytest.fixture
def engines_refuse(monkeypatch):
    """Starting either engine raises _Started naming it (the choice is observed, nothing runs)."""
    import jobs.local_engine
    import jobs.session

    masters: list = []

    def spark(master=None, *a, **k):
        masters.append(master)
        raise _Started("spark")

    def local(self):
        raise _Started("local")

    monkeypatch.setattr(jobs.session, "spark_session", spark)
    monkeypatch.setattr(jobs.local_engine.LocalPool, "run", local)
    return masters


def test_the_command_line_picks_at_the_thresholds(tmp_path, engines_refuse, capsys):
    many = tmp_path / "many"
    many.mkdir()
    for i in range(LOCAL_MAX_FILES + 1):
        (many / f"f{i:04d}").write_bytes(b"x")
    big = tmp_path / "big"
    big.mkdir()
    with open(big / "sparse", "wb") as f:  # sparse: its listed size is what counts
        f.truncate(LOCAL_MAX_BYTES - 1)
    (big / "one").write_bytes(b"1")  # big/ holds exactly LOCAL_MAX_BYTES

    def chosen(*argv: str) -> tuple[str, str]:
        out = tmp_path / "out"
        assert main([*argv, str(out), "--quiet"]) == 1, argv
        err = capsys.readouterr().err.splitlines()
        assert not out.exists() and [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []
        engine = err[0].rsplit("(", 1)[1].removesuffix(" engine)")
        assert err[1] == f"binfeat extract: failed: _Started: {engine}", err  # the engine that started
        return err[0].split(": ", 1)[1].split(" listed")[0], engine

    assert chosen(str(many), "--exclude", "f1000") == (f"{LOCAL_MAX_FILES} files, 0.0 MB", "local")
    assert chosen(str(many)) == (f"{LOCAL_MAX_FILES + 1} files, 0.0 MB", "spark")
    assert chosen(str(big)) == (f"2 files, {LOCAL_MAX_BYTES / 1e6:.1f} MB", "local")
    assert chosen(str(big / "one"), "--master", "local[1]") == ("1 files, 0.0 MB", "spark")
    assert chosen(str(big / "one"), "--conf", "spark.ui.enabled=false") == ("1 files, 0.0 MB", "spark")
    assert chosen(str(big / "one"), "--engine", "spark") == ("1 files, 0.0 MB", "spark")
    assert chosen(str(many), "--engine", "local") == (f"{LOCAL_MAX_FILES + 1} files, 0.0 MB", "local")
    with open(big / "one", "ab") as f:
        f.write(b"2")  # one byte over
    assert chosen(str(big)) == (f"2 files, {(LOCAL_MAX_BYTES + 1) / 1e6:.1f} MB", "spark")
    assert engines_refuse[-1] is None  # Spark's default master
    assert chosen(str(big), "--workers", "3") == (f"2 files, {(LOCAL_MAX_BYTES + 1) / 1e6:.1f} MB", "spark")
    assert engines_refuse[-1] == "local[3]"  # as many Spark threads as local processes asked for


def test_auto_runs_a_thousand_files_locally(tmp_path, capsys):
    src = tmp_path / "in"
    src.mkdir()
    for i in range(LOCAL_MAX_FILES):
        (src / f"f{i:04d}").write_bytes(i.to_bytes(2, "little") * (i % 7 + 1))
    assert main([str(src), str(tmp_path / "out"), "--quiet"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert (summary["engine"], summary["rows"], summary["inputs_listed"]) == ("local", LOCAL_MAX_FILES, LOCAL_MAX_FILES)
    assert summary["counts_by_format"] == {"unknown": LOCAL_MAX_FILES} and "error" not in summary["counts_by_status"]
    assert read_output(tmp_path / "out").num_rows == LOCAL_MAX_FILES


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--engine", "local", "--master", "local[2]"],
         "--master runs the job on Spark: drop --engine local, or --master"),
        (["--engine", "local", "--conf", "a=b"],
         "--conf configures Spark, the local engine takes none: drop --conf, or --engine local"),
        (["--engine", "spark", "--workers", "2"],
         "--workers sizes the local engine's pool: with Spark choose the cores with --master local[N]"),
        (["--master", "local[2]", "--workers", "2"],
         "--workers sizes the local engine's pool: with Spark choose the cores with --master local[N]"),
        (["--workers", "0"], "argument --workers: expected a positive integer, got '0'"),
        (["--engine", "jvm"], "argument --engine: invalid choice: 'jvm' (choose from 'auto', 'local', 'spark')"),
    ],
)
def test_contradictory_engine_options_are_one_line_exit_2(argv, message, tmp_path, engines_refuse, capsys):
    (tmp_path / "a.bin").write_bytes(b"a")
    assert main([str(tmp_path / "a.bin"), str(tmp_path / "out"), *argv]) == 2
    out, err = capsys.readouterr()
    assert (err, out) == (f"binfeat extract: error: {message}\n", "")


def test_a_local_run_from_the_command_line_imports_no_pyspark(tmp_path):
    src = tmp_path / "in"
    src.mkdir()
    shutil.copyfile("/bin/ls", src / "ls")
    (src / "notes.txt").write_text("hello\n")
    proc = subprocess.run([sys.executable, "-X", "importtime", "-m", "binfeat", "extract", str(src),
                           str(tmp_path / "out"), "--quiet"], cwd=REPO, env={**child_env(), "PYTHONPATH": str(REPO)},
                          capture_output=True, text=True, timeout=600)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    imported = [line.rsplit("|", 1)[1].strip() for line in proc.stderr.splitlines() if line.startswith("import time:")]
    assert "jobs.local_engine" in imported and "jobs.run" in imported  # the driver's own imports are listed
    top = {name.split(".")[0] for name in imported}
    assert not top & {"pyspark", "py4j", "pandas"}, sorted(top & {"pyspark", "py4j", "pandas"})
    assert json.loads(proc.stdout)["engine"] == "local"


def test_help_imports_neither_engine():
    code = ("import sys; from jobs.extract_cli import main; rc = main(['--help']); "
            "sys.stderr.write(repr(sorted(m for m in sys.modules if m.split('.')[0] in ('pyspark', 'pandas') "
            "or m in ('jobs.local_engine', 'jobs.run', 'extract.extractor')))); sys.exit(rc)")  # fmt: skip
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=120,
                          env={**child_env(), "PYTHONPATH": str(REPO)})  # fmt: skip
    assert proc.returncode == 0 and "--engine" in proc.stdout and "--workers" in proc.stdout
    assert proc.stderr == "[]"


def test_vectors_are_compared_bytewise():
    """The comparison itself can fail: a NaN with another payload, or -0.0, is a different vector."""
    base = pa.table({"path": ["a"], "vector": pa.array([[1.0, float("nan")]], pa.list_(pa.float32()))})
    other = pa.table({"path": ["a"], "vector": pa.array([[1.0, float("nan")]], pa.list_(pa.float32()))})
    assert _vector_bytes(base) == _vector_bytes(other)
    zero = pa.table({"path": ["a"], "vector": pa.array([[-0.0, float("nan")]], pa.list_(pa.float32()))})
    plus = pa.table({"path": ["a"], "vector": pa.array([[0.0, float("nan")]], pa.list_(pa.float32()))})
    assert _vector_bytes(zero) != _vector_bytes(plus)
    assert extract.FEATURE_VERSION  # the rows compared carry it
