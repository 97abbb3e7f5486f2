"""``binfeat corpus update`` on the local engine: the same store as a Spark night, without a JVM.

One module fixture runs the few-files split (tests/dags/corpus_split.py: six real executables on
day 1 plus two crafted odd files, three new ones on day 2 with known copies, an in-day duplicate and
late labels) twice, into two stores: once on Spark (the shared local session) and once with the
default engine choice, which must pick the local engine for so small a day. Then: the stores hold
the same rows (every column but run_id, the vectors byte for byte), the same labels and tags; a
re-run on the local engine commits nothing and starts no pool process; a local night imports no
pyspark; contradictory engine options are one line and exit 2.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from jobs.corpus.catalog import StoreConfig, open_tables
from jobs.corpus.read import read_as_of
from jobs.corpus.tags import published_dates, read_record, tag_name
from tests.jobs._support import REPO, child_env, rows_by_path
from tests.jobs.test_local_engine import _vector_bytes

pytestmark = [pytest.mark.spark, pytest.mark.timeout(1200)]
ODD = ("zz-truncated.exe", "zz-noise.bin")  # crafted files added to day 1: an executable cut short, noise


def _args(*argv: str):
    from jobs.corpus.cli import build_parser

    return build_parser().parse_args(list(argv))


def _data_files(store) -> set[str]:
    return {str(p) for p in store.rglob("*.parquet") if "/features/data/" in str(p)}


@pytest.fixture(scope="module")
def nights(tmp_path_factory, _spark_holder):
    from jobs.corpus.night import run_night
    from jobs.session import spark_session
    from tests.dags.corpus_split import DAY1, DAY2, build_split

    root = tmp_path_factory.mktemp("corpus-local")
    split = build_split(root / "data", few=True)
    day1 = split.incoming / DAY1
    (day1 / ODD[0]).write_bytes(sorted(day1.iterdir())[0].read_bytes()[:300])
    (day1 / ODD[1]).write_bytes(bytes((i * 73 + 11) % 251 for i in range(5000)))
    spark = _spark_holder.get("session")
    if spark is None or spark.sparkContext._jsc is None:
        spark = spark_session("local[2]", app_name="binfeat-corpus-local-tests",
                              conf={"spark.ui.enabled": "false", "spark.sql.shuffle.partitions": "4"})  # fmt: skip
        _spark_holder["session"] = spark
    out = {"split": split, "root": root, "DAY1": DAY1, "DAY2": DAY2, "summaries": {}}
    for engine in ("spark", "local"):
        store = root / f"store-{engine}"
        out[engine] = store
        for day in (DAY1, DAY2):
            argv = ["--date", day, "--incoming", str(split.incoming / day), "--labels", str(split.labels / day),
                    "--store", str(store), "--max-error-share", "1", "--run-id", f"{engine}-{day}"]  # fmt: skip
            session = spark if engine == "spark" else None  # the local store: the default engine choice
            out["summaries"][engine, day] = run_night(_args(*argv), spark=session)
    return out


def _tables(store):
    return open_tables(StoreConfig(store=str(store)))


def test_the_default_engine_is_local_for_a_small_day(nights):
    s = nights["summaries"]
    d1, d2 = nights["DAY1"], nights["DAY2"]
    assert [s["local", d]["engine"] for d in (d1, d2)] == ["local", "local"]
    assert [s["spark", d]["engine"] for d in (d1, d2)] == ["spark", "spark"]
    n1 = nights["split"].n_day1 + len(ODD)
    assert s["local", d1]["workers"] >= 1 and "spark_start" not in s["local", d1]["phases_s"]
    for engine in ("local", "spark"):  # the same figures from either engine
        assert s[engine, d1]["files"] == s["spark", d1]["files"] and s[engine, d1]["files"]["new"] == n1
        assert s[engine, d2]["files"] == s["spark", d2]["files"]
        assert s[engine, d2]["files"]["new"] == nights["split"].n_day2_new
        assert (s[engine, d2]["files"]["known"], s[engine, d2]["files"]["duplicates_in_day"]) == (2, 1)
        for d in (d1, d2):
            assert s[engine, d]["status"] == s["spark", d]["status"]
            assert s[engine, d]["errors_by_kind"] == s["spark", d]["errors_by_kind"]
            assert s[engine, d]["commit"]["committed"] is True
    assert sum(s["local", d1]["status"].values()) == n1 and set(s["local", d1]["status"]) - {"ok"}  # odd files


def test_local_and_spark_store_the_same_rows(nights):
    local, spark = _tables(nights["local"]), _tables(nights["spark"])
    for day in (nights["DAY1"], nights["DAY2"]):
        a, b = read_as_of(day, tables=local), read_as_of(day, tables=spark)
        assert a.num_rows == b.num_rows > 0
        assert a.schema.equals(b.schema, check_metadata=True)
        ra, rb = rows_by_path(a, drop=("vector", "run_id")), rows_by_path(b, drop=("vector", "run_id"))
        assert sorted(ra) == sorted(rb) and len(ra) == a.num_rows  # one row per sample, the same paths
        for path in ra:
            assert ra[path] == rb[path], path  # every column (labels and ingest_date included)
        assert _vector_bytes(a) == _vector_bytes(b)
        assert {r.split("-", 1)[0] for r in a.column("run_id").to_pylist()} == {"local"}
    keyed = read_as_of(nights["DAY2"], tables=local, columns=["sha256", "ingest_date"]).to_pylist()
    dates = {r["sha256"]: r["ingest_date"].isoformat() for r in keyed}
    split = nights["split"]
    assert {dates[s] for s in split.day1} == {nights["DAY1"]} and {dates[s] for s in split.day2_new} == {nights["DAY2"]}


def test_local_and_spark_store_the_same_labels_and_tags(nights):
    local, spark = _tables(nights["local"]), _tables(nights["spark"])
    cols = ["sha256", "label", "family", "source", "first_seen"]

    def labels(t) -> list[dict]:
        return sorted(t.labels.scan(selected_fields=tuple(cols)).to_arrow().to_pylist(), key=lambda r: r["sha256"])

    assert labels(local) == labels(spark) and len(labels(local)) > 0
    assert published_dates(local.features) == published_dates(spark.features) == [nights["DAY1"], nights["DAY2"]]
    for day in (nights["DAY1"], nights["DAY2"]):
        assert tag_name(day) in local.features.metadata.refs and tag_name(day) in local.labels.metadata.refs
        a, b = read_record(local.features, day), read_record(spark.features, day)
        assert (a.feature_version, a.rows, a.labelled_rows) == (b.feature_version, b.rows, b.labelled_rows)
        assert local.features.snapshot_by_name(tag_name(day)).snapshot_id == a.features_snapshot_id
    # one commit per night on features: the files, the tag and the record together
    assert len(local.features.metadata.snapshots) == len(spark.features.metadata.snapshots) == 2


def test_a_local_rerun_commits_nothing_and_starts_no_pool(nights, monkeypatch):
    import jobs.local_engine
    from jobs.corpus.night import run_night

    def no_process(*a, **k):
        raise AssertionError("a pool process was started for a night with nothing new")

    monkeypatch.setattr(jobs.local_engine, "_Proc", no_process)
    store, day = nights["local"], nights["DAY2"]
    tables = _tables(store)
    before = (tables.features.metadata.current_snapshot_id, tables.labels.metadata.current_snapshot_id,
              dict(tables.features.metadata.refs), _data_files(store))  # fmt: skip
    split = nights["split"]
    s = run_night(_args("--date", day, "--incoming", str(split.incoming / day), "--labels", str(split.labels / day),
                        "--store", str(store), "--engine", "local", "--run-id", "again"))  # fmt: skip
    assert (s["engine"], s["workers"], s["files"]["new"], s["files"]["extracted"]) == ("local", 0, 0, 0)
    assert s["commit"]["committed"] is False and s["commit"]["added_rows"] == 0
    tables.refresh()
    assert (tables.features.metadata.current_snapshot_id, tables.labels.metadata.current_snapshot_id,
            dict(tables.features.metadata.refs), _data_files(store)) == before  # fmt: skip


def test_a_local_night_imports_no_pyspark(nights, tmp_path):
    day = nights["DAY1"]
    code = (
        "import sys, json; from jobs.corpus.cli import update_main; rc = update_main(sys.argv[1:]); "
        "print(json.dumps(sorted({m.split('.')[0] for m in sys.modules} & {'pyspark', 'py4j'}))); sys.exit(rc)"
    )
    out = tmp_path / "summary.json"
    proc = subprocess.run(
        [sys.executable, "-c", code, "--date", day, "--incoming", str(nights["split"].incoming / day),
         "--store", str(tmp_path / "store"), "--max-error-share", "1", "--summary-out", str(out)],
        cwd=REPO, env=child_env(PYTHONPATH=str(REPO)), capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert json.loads(proc.stdout.strip().splitlines()[-1]) == []
    summary = json.loads(out.read_text())
    assert summary["engine"] == "local" and summary["files"]["rows"] == nights["split"].n_day1 + len(ODD)


@pytest.fixture
def engines_refuse(monkeypatch):
    """Starting Spark or a pool process raises (an argument check must come first)."""
    import jobs.local_engine
    import jobs.session

    def refuse(*a, **k):
        raise AssertionError("an engine was started")

    monkeypatch.setattr(jobs.session, "spark_session", refuse)
    monkeypatch.setattr(jobs.local_engine, "_Proc", refuse)


@pytest.mark.parametrize(
    ("argv", "env", "message"),
    [
        (["--engine", "local", "--master", "local[2]"], {},
         "--master runs the job on Spark: drop --engine local, or --master"),
        (["--engine", "spark", "--workers", "2"], {},
         "--workers sizes the local engine's pool: with Spark choose the cores with --master local[N]"),
        (["--master", "local[2]", "--workers", "2"], {},
         "--workers sizes the local engine's pool: with Spark choose the cores with --master local[N]"),
        (["--engine", "local"], {"PYSPARK_GATEWAY_PORT": "1"},
         "under spark-submit the job runs on Spark: drop --engine local"),
        (["--engine", "jvm"], {}, "argument --engine: invalid choice: 'jvm' (choose from 'auto', 'local', 'spark')"),
        (["--workers", "0"], {}, "argument --workers: expected a positive integer, got '0'"),
    ],
)  # fmt: skip
def test_contradictory_engine_options_are_one_line_exit_2(argv, env, message, tmp_path, engines_refuse, monkeypatch,
                                                          capsys):  # fmt: skip
    from jobs.corpus.cli import update_main

    for k, v in env.items():
        monkeypatch.setenv(k, v)
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "a.bin").write_bytes(b"a")
    rc = update_main(["--date", "2026-12-01", "--incoming", str(tmp_path / "in"), "--store", str(tmp_path / "s"),
                      *argv])  # fmt: skip
    out, err = capsys.readouterr()
    assert (rc, err, out) == (2, f"binfeat corpus update: error: {message}\n", "")
    assert not (tmp_path / "s").exists()  # refused before the store was opened


def test_auto_takes_spark_above_the_thresholds_and_with_a_master(tmp_path, engines_refuse, monkeypatch):
    """The night asks jobs.engine for the choice (observed where Spark would start)."""
    import jobs.engine
    import jobs.session
    from jobs.corpus.night import run_night

    masters: list = []

    def spark(master=None, *a, **k):
        masters.append(master)
        raise RuntimeError("spark would start")

    monkeypatch.setattr(jobs.session, "spark_session", spark)
    (tmp_path / "in").mkdir()
    for i in range(3):
        (tmp_path / "in" / f"{i}.bin").write_bytes(bytes([i]) * 100)
    base = ["--date", "2026-12-01", "--incoming", str(tmp_path / "in"), "--store", str(tmp_path / "s")]
    monkeypatch.setattr(jobs.engine, "LOCAL_MAX_FILES", 2)  # 3 files: above the count
    with pytest.raises(RuntimeError, match="spark would start"):
        run_night(_args(*base, "--workers", "3"))
    monkeypatch.setattr(jobs.engine, "LOCAL_MAX_FILES", 1000)
    monkeypatch.setattr(jobs.engine, "LOCAL_MAX_BYTES", 299)  # 300 bytes: above the size
    with pytest.raises(RuntimeError, match="spark would start"):
        run_night(_args(*base))
    monkeypatch.setattr(jobs.engine, "LOCAL_MAX_BYTES", 1 << 30)
    with pytest.raises(RuntimeError, match="spark would start"):
        run_night(_args(*base, "--master", "local[1]"))
    assert masters == ["local[3]", None, "local[1]"]
