"""``binfeat corpus update`` for real: Spark local mode, the embedded catalog, real executables.

The split (tests/dags/corpus_split.py) is the whole small sample corpus when ``$BINFEAT_CORPUS``
names it, else 12 crafted files; every expected figure comes from the split. In order, in one
module fixture: day 1 (its files listed by a manifest), day 2 (labels, late labels, known copies,
an in-day duplicate), day 2 again (commits nothing), day 3 with a bumped feature version (a
test-only contract plugin adding a column). Then: the rows equal extract's own for the same
files, a failed run and a SIGKILLed run commit nothing (maintenance removes the killed run's
files), and two runs at once lose no row.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pyarrow as pa
import pytest

from jobs.corpus.catalog import StoreConfig, open_tables
from jobs.corpus.read import plan_as_of, read_as_of
from jobs.corpus.schema import differing_columns, iceberg_exact_type
from jobs.corpus.tags import describe_date, published_dates
from tests.jobs._support import REPO, _norm, child_env

pytestmark = [pytest.mark.spark, pytest.mark.timeout(3600)]
DAY3, DAY4, DAY5 = "2026-11-22", "2026-11-23", "2026-11-24"
# The contract columns whose type the store cannot hold as declared today (uint8/16/32/64 inside):
# stored as iceberg_exact_type says. Empty once extract declares Iceberg-exact types.
DIFFERS_TODAY = [
    "pe_header", "pe_dotnet", "elf_header", "elf_segments", "elf_sections", "elf_security", "macho_header",
    "macho_load_commands", "macho_sections", "macho_dylibs", "macho_security", "macho_platform", "macho_fat",
]  # fmt: skip


def _args(*argv: str):
    from jobs.corpus.cli import build_parser

    return build_parser().parse_args(list(argv))


@pytest.fixture(scope="module")
def nights(tmp_path_factory, _spark_holder):
    from jobs.corpus.night import run_night
    from jobs.session import spark_session
    from tests.dags.corpus_split import DAY1, DAY2, build_split

    root = tmp_path_factory.mktemp("corpus-update")
    split = build_split(root / "data")
    store = root / "store"
    spark = spark_session("local[2]", app_name="binfeat-corpus-tests",
                          conf={"spark.ui.enabled": "false", "spark.sql.shuffle.partitions": "4"})  # fmt: skip
    _spark_holder["session"] = spark
    common = ["--store", str(store), "--max-error-share", "0.1"]
    out = {"split": split, "store": store, "DAY1": DAY1, "DAY2": DAY2}
    manifest = root / "day1.jsonl"  # day 1 through a manifest (paths only: hashed on the executors)
    manifest.write_text("".join(json.dumps({"path": str(p)}) + "\n" for p in sorted((split.incoming / DAY1).iterdir())))
    out["day1"] = run_night(_args("--date", DAY1, "--incoming", str(manifest), "--labels",
                                  str(split.labels / DAY1), "--run-id", "t1", *common), spark=spark)  # fmt: skip
    out["files_after_day1"] = _data_files(store)
    day2 = ["--date", DAY2, "--incoming", str(split.incoming / DAY2), "--labels", str(split.labels / DAY2), *common]
    out["day2"] = run_night(_args(*day2, "--run-id", "t2"), spark=spark)
    out["files_after_day2"] = _data_files(store)
    out["day2_again"] = run_night(_args(*day2, "--run-id", "t2-again"), spark=spark)
    out["files_after_day2_again"] = _data_files(store)
    empty = root / "empty-day3"
    empty.mkdir()
    os.environ["BINFEAT_CONTRACT_PLUGIN"] = "tests.jobs.corpus_plugin:bumped"
    try:
        out["day3"] = run_night(_args("--date", DAY3, "--incoming", str(empty), "--run-id", "t3", *common),
                                spark=spark)  # fmt: skip
    finally:
        del os.environ["BINFEAT_CONTRACT_PLUGIN"]
    out["tables"] = open_tables(StoreConfig(store=str(store)))
    return out


def _data_files(store: Path) -> dict[str, int]:
    """The features table's data files (path -> size)."""
    return {str(p): p.stat().st_size for p in store.rglob("*.parquet") if "/features/data/" in str(p)}


def test_day1_and_day2_figures(nights):
    split, d1, d2 = nights["split"], nights["DAY1"], nights["DAY2"]
    for day, summary in ((d1, nights["day1"]), (d2, nights["day2"])):
        exp = split.expected[day]
        assert summary["files"] == exp["files"]
        assert summary["bytes"] == exp["bytes"]
        assert summary["labels"]["labelled_rows"] == exp["labelled"]
        assert summary["commit"]["committed"] and summary["commit"]["added_rows"] == exp["extracted"]
    tables = nights["tables"]
    assert published_dates(tables.features)[:2] == [d1, d2]
    info = describe_date(d2, store=str(nights["store"]))
    assert info["rows"] == split.n_day1 + split.n_day2_new and info["labelled_rows"] == split.expected[d2]["labelled"]


def test_as_of_each_day(nights):
    split, tables = nights["split"], nights["tables"]
    for day in (nights["DAY1"], nights["DAY2"]):
        t = read_as_of(day, tables=tables, columns=["sha256", "ingest_date", "label"])
        exp = split.expected[day]
        assert t.num_rows == exp["rows"]
        got_parts = Counter(str(d) for d in t.column("ingest_date").to_pylist())
        assert sorted(got_parts.items()) == sorted(exp["partitions"])
        labels = {r["sha256"]: r["label"] for r in t.to_pylist() if r["label"] is not None}
        assert labels == exp["labels"]


def test_a_rerun_commits_nothing_and_writes_nothing(nights):
    again = nights["day2_again"]
    assert again["commit"]["committed"] is False and again["files"]["extracted"] == 0
    assert again["commit"]["features_snapshot_id"] == nights["day2"]["commit"]["features_snapshot_id"]
    assert again["labels"]["upserted"] == 0
    assert nights["files_after_day2_again"] == nights["files_after_day2"]
    added = set(nights["files_after_day2"]) - set(nights["files_after_day1"])
    assert all(f in nights["files_after_day2"] for f in nights["files_after_day1"])  # day 2 rewrote nothing
    assert len(added) == nights["day2"]["commit"]["added_files"]


def test_feature_version_bump_evolves_the_schema_and_reextracts_once(nights):
    from tests.jobs.corpus_plugin import PROBE, SUFFIX

    split, tables, day3 = nights["split"], nights["tables"], nights["day3"]
    n = split.n_day1 + split.n_day2_new
    assert day3["files"]["reextracted"] == n and day3["files"]["new"] == 0 and day3["files"]["rows"] == n
    assert day3["commit"]["schema_added"] == ["plugin_probe"]
    assert tables.features.schema().find_field("plugin_probe")
    # old files untouched: every file of day 1 and day 2 is still there with its size
    after = _data_files(nights["store"])
    assert all(after.get(f) == size for f, size in nights["files_after_day2"].items())
    t3 = read_as_of(DAY3, tables=tables, columns=["sha256", "feature_version", "size", "plugin_probe", "ingest_date"])
    assert set(t3.column("feature_version").to_pylist()) == {nights["day1"]["feature_version"] + SUFFIX}
    assert t3.num_rows == n and len(set(t3.column("sha256").to_pylist())) == n
    for r in t3.to_pylist():
        assert r["plugin_probe"]["size_mod_7"] == r["size"] % 7
    days = Counter(str(d) for d in t3.column("ingest_date").to_pylist())
    assert days == {nights["DAY1"]: split.n_day1, nights["DAY2"]: split.n_day2_new}  # original ingest dates kept
    t2 = read_as_of(nights["DAY2"], tables=tables)  # as of day 2: its own version and schema
    assert "plugin_probe" not in t2.column_names
    assert set(t2.column("feature_version").to_pylist()) == {nights["day1"]["feature_version"]}
    assert PROBE.type == iceberg_exact_type(PROBE.type)


def test_rows_equal_extracts_own_and_types_are_the_contracts(nights):
    """The store's rows of day 1 equal extract_batch's rows of the same files, column for column.

    Types: the contract's, except DIFFERS_TODAY, stored as iceberg_exact_type maps them (values
    equal: every mapped type widens).
    """
    import extract

    contract = extract.output_schema()
    assert differing_columns(contract) == DIFFERS_TODAY
    stored = read_as_of(nights["DAY1"], tables=nights["tables"], columns=contract.names)
    for f in contract:
        want = f.type if f.name not in DIFFERS_TODAY else iceberg_exact_type(f.type)
        assert stored.schema.field(f.name).type == want, f.name
    paths = sorted(stored.column("path").to_pylist())
    ours = extract.extract_batch(pa.record_batch({"path": pa.array(paths)}))
    want_rows = {r["path"]: {k: _norm(v) for k, v in r.items()} for r in pa.Table.from_batches([ours]).to_pylist()}
    got_rows = {r["path"]: {k: _norm(v) for k, v in r.items()} for r in stored.to_pylist()}
    assert got_rows.keys() == want_rows.keys()
    for path, row in want_rows.items():
        for col in contract.names:
            assert got_rows[path][col] == row[col], (path, col)


def test_a_failed_run_commits_nothing(nights, tmp_path, capsys):
    from jobs.corpus.cli import update_main

    tables, store = nights["tables"], nights["store"]
    tables.refresh()
    snaps = (len(tables.features.metadata.snapshots), len(tables.labels.metadata.snapshots))
    files = _data_files(store)
    rc = update_main(["--date", DAY4, "--incoming", str(nights["split"].incoming / nights["DAY2"]), "--store",
                      str(store), "--labels", str(tmp_path / "missing-feed")])  # fmt: skip
    assert rc == 1 and "labels feed not found" in capsys.readouterr().err
    tables.refresh()
    assert (len(tables.features.metadata.snapshots), len(tables.labels.metadata.snapshots)) == snaps
    assert _data_files(store) == files and DAY4 not in published_dates(tables.features)


def _mutants(src: Path, dst: Path, salt: bytes) -> int:
    """Copies of the split's files with a salt appended: new samples (new sha256) of the same kind."""
    dst.mkdir(parents=True)
    n = 0
    for day in sorted(src.iterdir()):
        for f in sorted(day.iterdir()):
            (dst / f"{day.name}-{f.name}").write_bytes(f.read_bytes() + salt)
            n += 1
    return n


def test_a_killed_run_commits_nothing_and_maintenance_removes_its_files(nights, tmp_path):
    from jobs.corpus.maintenance import maintain

    tables, store = nights["tables"], nights["store"]
    incoming = tmp_path / "killed-day"
    _mutants(nights["split"].incoming, incoming, b"killed")
    tables.refresh()
    before = (tables.features.metadata.current_snapshot_id, tables.features.metadata.properties.copy(),
              dict(tables.features.metadata.refs), dict(tables.labels.metadata.refs))  # fmt: skip
    files = _data_files(store)
    proc = subprocess.Popen(
        [sys.executable, "-m", "jobs.corpus_update", "--date", DAY5, "--incoming", str(incoming), "--store", str(store),
         "--master", "local[2]", "--partitions", "12", "--run-id", "killed"],
        cwd=REPO, env=child_env(PYTHONPATH=str(REPO)), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        start_new_session=True,
    )  # fmt: skip
    deadline = time.monotonic() + 600
    try:
        while time.monotonic() < deadline and not (set(_data_files(store)) - set(files)) and proc.poll() is None:
            time.sleep(0.2)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    orphans = set(_data_files(store)) - set(files)
    assert orphans, "the run wrote no file before it was killed (or finished first)"
    tables.refresh()
    assert (tables.features.metadata.current_snapshot_id, tables.features.metadata.properties,
            dict(tables.features.metadata.refs), dict(tables.labels.metadata.refs)) == before  # fmt: skip
    rows_before = read_as_of(nights["DAY2"], tables=tables, columns=["sha256"]).num_rows
    report = maintain(tables, keep_days=30, orphan_age_hours=0, do_compact=False)
    assert report.orphans >= len(orphans) and set(_data_files(store)) == set(files)
    assert read_as_of(nights["DAY2"], tables=tables, columns=["sha256"]).num_rows == rows_before


def test_two_runs_at_once_lose_and_duplicate_nothing(tmp_path):
    """Two spark-submit-like processes ingest overlapping days into one fresh store at the same time."""
    from tests.dags.corpus_split import DAY1, DAY2, build_split

    split = build_split(tmp_path / "data")
    store = tmp_path / "store"
    runs = {DAY1: split.incoming / DAY1, DAY2: split.incoming / DAY2}
    procs = {
        day: subprocess.Popen(
            [sys.executable, "-m", "jobs.corpus_update", "--date", day, "--incoming", str(inc), "--store", str(store),
             "--master", "local[1]", "--run-id", f"race-{day}"],
            cwd=REPO, env=child_env(PYTHONPATH=str(REPO)), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        )
        for day, inc in runs.items()
    }
    results = {day: (p.wait(timeout=1500), p.stderr.read()) for day, p in procs.items()}
    for day, (rc, err) in results.items():
        assert rc == 0 or (rc == 1 and "re-run the date" in err), (day, err[-2000:])
    # Recovery as an operator does it: re-run the day that failed, then day 2, whose tag was set
    # before day 1's rows existed if day 2 committed first.
    for day in sorted({d for d, (rc, _) in results.items() if rc != 0} | {DAY2}):
        assert subprocess.run([sys.executable, "-m", "jobs.corpus_update", "--date", day, "--incoming",
                               str(runs[day]), "--store", str(store), "--master", "local[2]"],
                              cwd=REPO, env=child_env(PYTHONPATH=str(REPO)), capture_output=True).returncode == 0
    tables = open_tables(StoreConfig(store=str(store)))
    keys = tables.features.scan(selected_fields=("sha256", "feature_version")).to_arrow()
    pairs = Counter(zip(keys.column("sha256").to_pylist(), keys.column("feature_version").to_pylist(), strict=True))
    assert max(pairs.values()) == 1  # no duplicate (sha256, feature_version)
    assert {s for s, _ in pairs} == set(split.day1) | set(split.day2_new)  # no lost sample
    assert published_dates(tables.features) == [DAY1, DAY2]
    plan = plan_as_of(DAY2, tables=tables)
    assert plan.as_of.rows == len(split.day1) + len(split.day2_new)
