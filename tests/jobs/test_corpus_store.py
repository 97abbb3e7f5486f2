"""The corpus store's semantics on the embedded catalog (no Spark): as of D, labels, re-runs, bumps.

Nights here are ``synthetic_night``: the store's own anti-join, labels upsert and publishing
commit over synthetic rows (tests/jobs/corpus_support.py). Expected values are written out from
the rules in docs/corpus_store.md, not computed by the store's code.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

from jobs.corpus.catalog import StoreConfig, StoreError, check_config
from jobs.corpus.read import plan_as_of, read_as_of
from jobs.corpus.tags import describe_date, published_dates, tag_dates
from tests.jobs._support import REPO
from tests.jobs.corpus_support import as_of_rows, feed, open_store, sha, synthetic_night

D1, D2, D3, D4 = "2026-11-20", "2026-11-21", "2026-11-22", "2026-11-23"
A, B, C, DD, E, F, G = (sha(x) for x in "abcdefg")


def _labels(rows: dict) -> dict:
    return {s: r["label"] for s, r in rows.items() if r["label"] is not None}


def _snapshots(tables) -> tuple[int, int]:
    tables.refresh()
    return len(tables.features.metadata.snapshots), len(tables.labels.metadata.snapshots)


@pytest.fixture
def two_days(tmp_path):
    """D1: a, b, c with a labelled; D2: c again, d and e new, a relabelled, b labelled late, d labelled."""
    tables = open_store(tmp_path / "store")
    n1 = synthetic_night(tables, D1, [A, B, C], feed=feed((A, "benign", "f1", "s1", "2026-11-19T00:00:00Z")))
    n2 = synthetic_night(tables, D2, [C, DD, E], feed=feed(
        (A, "malicious", "f2", "s2", "2026-11-21T00:00:00Z"),
        (B, "benign", None, "s2", "2026-11-18T00:00:00Z"),  # late: first seen before D1, known on D2
        (DD, "malicious", "f3", "s2"),
    ))  # fmt: skip
    return tables, n1, n2


def test_config_errors_are_one_line():
    for cfg, words in (
        (StoreConfig(), "exactly one of --store"),
        (StoreConfig(store="/x", catalog="prod"), "exactly one of --store"),
        (StoreConfig(store="s3://b/x"), "must be a local folder"),
        (StoreConfig(store="/x", namespace="bad-name"), "--namespace"),
        (StoreConfig(store="/x", warehouse="relative/dir"), "--warehouse"),
        (StoreConfig(store="/x", s3_endpoint_url="127.0.0.1:9000"), "http://"),
    ):
        with pytest.raises(StoreError, match=words) as err:
            check_config(cfg)
        assert "\n" not in str(err.value)


def test_update_rejects_bad_arguments_before_spark(tmp_path, capsys):
    from jobs.corpus.cli import update_main

    (tmp_path / "in").mkdir()
    cases = [
        (["--date", "2026-13-01", "--incoming", str(tmp_path / "in"), "--store", str(tmp_path)], "bad date"),
        (["--date", D1, "--incoming", str(tmp_path / "in")], "one of the arguments --store --catalog is required"),
        (["--date", D1, "--incoming", str(tmp_path / "nope"), "--store", str(tmp_path)], "input not found"),
        (["--date", D1, "--incoming", str(tmp_path / "in"), "--store", str(tmp_path), "--max-error-share", "2"],
         "within [0, 1]"),
    ]  # fmt: skip
    for argv, words in cases:
        assert update_main(argv) == 2
        err = capsys.readouterr().err
        assert words in err and len(err.strip().splitlines()) == 1, err


def test_two_days_as_of(two_days):
    tables, n1, n2 = two_days
    assert (len(n1.split.new), len(n1.split.known)) == (3, 0)
    assert (len(n2.split.new), n2.split.known) == (2, [C])
    assert published_dates(tables.features) == [D1, D2]
    day1 = as_of_rows(tables, D1)
    day2 = as_of_rows(tables, D2)
    assert set(day1) == {A, B, C} and set(day2) == {A, B, C, DD, E}
    assert _labels(day1) == {A: "benign"}
    assert _labels(day2) == {A: "malicious", B: "benign", DD: "malicious"}
    assert {s: str(r["ingest_date"]) for s, r in day2.items()} == {A: D1, B: D1, C: D1, DD: D2, E: D2}
    info = describe_date(D2, store=str(tables.cfg.store))
    assert info["rows"] == 5 and info["labelled_rows"] == 3 and info["feature_version"] == "v1"
    assert info["features_snapshot_id"] == tables.features.metadata.refs[f"corpus-{D2}"].snapshot_id
    assert info["labels_snapshot_id"] == tables.labels.metadata.refs[f"corpus-{D2}"].snapshot_id
    assert describe_date("2026-11-30", store=str(tables.cfg.store)) is None
    plan = plan_as_of(D1, tables=tables)
    assert len(plan.features_files) == 1 and plan.as_of.rows == 3


def test_rerun_of_the_same_date_commits_nothing(two_days):
    tables, _, n2 = two_days
    before = _snapshots(tables)
    again = synthetic_night(tables, D2, [C, DD, E], feed=feed(
        (A, "malicious", "f2", "s2", "2026-11-21T00:00:00Z"),
        (B, "benign", None, "s2", "2026-11-18T00:00:00Z"),
        (DD, "malicious", "f3", "s2"),
    ))  # fmt: skip
    assert again.publication.committed is False and again.labels.upserted == 0
    assert again.publication.record == n2.publication.record
    assert _snapshots(tables) == before
    # an older date re-run after a later one, same inputs: nothing moves either
    synthetic_night(tables, D1, [A, B, C], feed=feed((A, "benign", "f1", "s1", "2026-11-19T00:00:00Z")))
    assert _snapshots(tables) == before


def test_rerun_of_an_older_date_with_new_inputs_is_exact(two_days):
    """D1 re-run after D2 with a new sample f and a corrected label for c.

    As of D1: f and c's label appear, a keeps its D1 label (D2's relabel is later). As of D2:
    unchanged until D2 is re-run, which then picks up f (ingest date D1) and c's label.
    """
    tables, _, _ = two_days
    day2_before = as_of_rows(tables, D2)
    rerun = synthetic_night(tables, D1, [A, B, C, F], feed=feed((C, "grayware", "f4", "s3")))
    assert rerun.labels.mode == "backfill" and [c.sha256 for c in rerun.split.new] == [F]
    day1 = as_of_rows(tables, D1)
    assert set(day1) == {A, B, C, F}
    assert _labels(day1) == {A: "benign", C: "grayware"}
    assert as_of_rows(tables, D2) == day2_before  # D2's tag did not move
    synthetic_night(tables, D2, [C, DD, E])  # re-run D2 (no new feed rows): picks up the correction
    day2 = as_of_rows(tables, D2)
    assert set(day2) == {A, B, C, DD, E, F} and str(day2[F]["ingest_date"]) == D1
    assert _labels(day2) == {A: "malicious", B: "benign", C: "grayware", DD: "malicious"}


def test_labels_rank_newest_wins_and_ties_change_nothing(tmp_path):
    tables = open_store(tmp_path / "store")
    synthetic_night(tables, D1, [A, B], feed=feed((A, "benign", "x", "s", "2026-11-01"), (A, "malicious", "x", "s",
                                                                                            "2026-11-02")))  # fmt: skip
    assert _labels(as_of_rows(tables, D1)) == {A: "malicious"}  # within a feed: the later first_seen
    n2 = synthetic_night(tables, D2, [], feed=feed((A, "malicious", "x", "s", "2026-11-02")))  # same rank but newer day
    assert n2.labels.upserted == 1  # updated_at is part of the rank: D2's copy wins (same label)
    n3 = synthetic_night(tables, D2, [], feed=feed((A, "malicious", "x", "s", "2026-11-02")))
    assert n3.labels.upserted == 0  # equal rank: nothing changes
    # a stale feed replayed for an old date cannot override main's newer label
    synthetic_night(tables, D1, [], feed=feed((A, "benign", "x", "s", "2026-11-03")))
    assert _labels(as_of_rows(tables, D2)) == {A: "malicious"}
    assert _labels(as_of_rows(tables, D1)) == {A: "benign"}  # as of D1 it was (first_seen 11-03 > 11-02)


def test_feature_version_bump_reextracts_each_sample_once(two_days):
    tables, _, _ = two_days
    v1_files = set(plan_as_of(D2, tables=tables).features_files)
    bump = synthetic_night(tables, D3, [G], version="v2")
    stale = {c.sha256: c.ingest_date for c in bump.split.stale}
    assert stale == {A: D1, B: D1, C: D1, DD: D2, E: D2} and [c.sha256 for c in bump.split.new] == [G]
    assert tables.features.metadata.properties["binfeat.feature-version.complete"] == "v2"
    day3 = as_of_rows(tables, D3)
    assert set(day3) == {A, B, C, DD, E, G} and {r["feature_version"] for r in day3.values()} == {"v2"}
    assert {s: str(r["ingest_date"]) for s, r in day3.items()} == {A: D1, B: D1, C: D1, DD: D2, E: D2, G: D3}
    day2 = as_of_rows(tables, D2)
    assert {r["feature_version"] for r in day2.values()} == {"v1"} and len(day2) == 5
    head = {t.file.file_path for t in tables.features.scan().plan_files()}
    assert v1_files <= head  # the v1 files are still there, unrewritten
    nxt = synthetic_night(tables, D4, [A], version="v2")
    assert nxt.split.stale == [] and nxt.split.known == [A]  # no second re-extraction
    assert as_of_rows(tables, D4).keys() == day3.keys()


def test_describe_date_needs_no_spark(two_days, tmp_path):
    tables, _, _ = two_days
    code = (
        "import sys, json; from jobs.corpus.tags import describe_date; "
        f"print(json.dumps(describe_date({D1!r}, store={str(tables.cfg.store)!r}))); "
        "print('pyspark' in sys.modules)"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO)
    out = proc.stdout.splitlines()
    assert '"rows": 3' in out[0] and out[1] == "False"


def test_read_cli_writes_the_as_of_table(two_days, tmp_path, capsys):
    import pyarrow.parquet as pq

    from jobs.corpus.cli import read_main

    tables, _, _ = two_days
    out = tmp_path / "d2.parquet"
    assert read_main(["--as-of", D2, "--store", str(tables.cfg.store), "--columns", "sha256,label,ingest_date",
                      str(out)]) == 0  # fmt: skip
    got = pq.read_table(out)
    assert got.column_names == ["sha256", "label", "ingest_date"] and got.num_rows == 5
    assert read_as_of(D2, tables=tables, columns=["sha256", "label", "ingest_date"]).sort_by("sha256").equals(
        got.sort_by("sha256"))
    assert read_main(["--as-of", "2026-01-01", "--store", str(tables.cfg.store), str(out)]) == 1
    assert "not published" in capsys.readouterr().err


def test_tags_and_records_survive_only_together(two_days):
    """A date whose tag is gone is not readable as of itself, even with its record left behind."""
    from pyiceberg.table.update.snapshot import ManageSnapshots

    tables, _, _ = two_days
    tx = tables.features.transaction()
    with ManageSnapshots(tx) as ms:
        ms.remove_tag(f"corpus-{D1}")
    tx.commit_transaction()
    tables.refresh()
    assert tag_dates(tables.features) == [D2] and published_dates(tables.features) == [D2]
    with pytest.raises(StoreError, match="not published"):
        read_as_of(D1, tables=tables)


def test_airflow_entry_points_need_no_spark(two_days):
    """The operator's parser, the sensor's describe_date and the maintenance function import no pyspark."""
    tables, _, _ = two_days
    code = (
        "import sys; from jobs.corpus_update import build_parser; "
        "from jobs.corpus.tags import describe_date; from jobs.corpus.maintenance import maintain_store; "
        f"a = build_parser().parse_args(['--date', {D1!r}, '--incoming', 'x', '--store', 's']); "
        f"r = maintain_store(store={str(tables.cfg.store)!r}, keep_days=30); "
        "print(a.store, r['removed_dates'], 'pyspark' in sys.modules)"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO)
    assert proc.stdout.split() == ["s", "[]", "False"]
