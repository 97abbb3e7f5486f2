"""Maintenance on the embedded catalog: expiry keeps what tags reference, orphans by age, compaction.

Every test checks the store still reads exactly as before where it must (the rows as of each
date kept) and that no file a remaining snapshot references was deleted.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import time

import pytest

from jobs.corpus.maintenance import maintain, maintain_store, referenced
from jobs.corpus.tags import published_dates
from tests.jobs.corpus_support import as_of_rows, feed, open_store, sha, synthetic_night

DAYS = [f"2026-11-{d:02d}" for d in range(1, 13)]
LATER = dt.datetime.now(dt.UTC) + dt.timedelta(days=60)  # every snapshot is "old" then


def _files(root) -> set[str]:
    return {os.path.join(d, f) for d, _, fs in os.walk(root) for f in fs}


def _all_referenced_exist(tables) -> bool:
    tables.refresh()
    return all(os.path.exists(p) for t in (tables.features, tables.labels) for p in referenced(t))


@pytest.fixture
def five_days(tmp_path):
    tables = open_store(tmp_path / "store")
    for i, day in enumerate(DAYS[:5]):
        synthetic_night(tables, day, [sha(f"s{i}")], feed=feed((sha(f"s{i}"), f"label{i}")))
    return tables


def test_expiry_keeps_the_last_days_and_every_referenced_file(five_days):
    tables = five_days
    kept = {d: as_of_rows(tables, d) for d in DAYS[3:5]}
    report = maintain(tables, keep_days=2, orphan_age_hours=0, do_compact=False, now=LATER)
    assert report.removed_dates == DAYS[:3]  # newest 11-05 minus 2 days: 11-03 and older go
    assert published_dates(tables.features) == DAYS[3:5]
    assert not [k for k in tables.features.metadata.properties if k.startswith("binfeat.corpus.2026-11-0") and
                k[-10:] <= DAYS[2]]  # fmt: skip
    assert report.expired_snapshots["features"] == 3 and report.expired_snapshots["labels"] == 3
    assert _all_referenced_exist(tables)
    assert {d: as_of_rows(tables, d) for d in DAYS[3:5]} == kept
    assert report.deleted_files > 0  # manifest lists and manifests of the expired snapshots


def test_expiry_never_removes_young_snapshots(five_days):
    report = maintain(five_days, keep_days=2, orphan_age_hours=72, do_compact=False)  # now: all snapshots young
    assert report.removed_dates == DAYS[:3] and report.expired_snapshots == {"features": 0, "labels": 0}


def test_orphans_go_by_age_only(five_days):
    tables = five_days
    data = tables.features.location().removeprefix("file://") + "/data/ingest_date=2026-11-01"
    existing = next(p for p in _files(data))
    old, fresh = f"{data}/killed-run-old.parquet", f"{data}/killed-run-fresh.parquet"
    shutil.copyfile(existing, old)
    shutil.copyfile(existing, fresh)
    past = time.time() - 5 * 3600
    os.utime(old, (past, past))
    before = _files(tables.features.location().removeprefix("file://"))
    report = maintain(tables, keep_days=30, orphan_age_hours=2, do_compact=False)
    after = _files(tables.features.location().removeprefix("file://"))
    assert before - after == {old} and report.orphans == 1
    assert fresh in after and _all_referenced_exist(tables)


def test_compaction_merges_past_partitions_without_changing_a_row(tmp_path):
    tables = open_store(tmp_path / "store")
    first = DAYS[0]
    for k in range(5):  # five re-runs of the first date, each with a new sample: five small files there
        synthetic_night(tables, first, [sha(f"c{k}")], feed=feed((sha(f"c{k}"), "benign")))
    synthetic_night(tables, DAYS[10], [sha("late")])  # the newest date: the first is 10 days old
    before = {d: as_of_rows(tables, d) for d in published_dates(tables.features)}
    head_files = sum(1 for _ in tables.features.scan().plan_files())
    report = maintain(tables, keep_days=30, orphan_age_hours=72, compact_after_days=7, compact_min_files=4)
    assert report.compacted["groups"] == 1 and report.compacted["files_in"] >= 5 + 5  # features 5, labels >= 5
    assert report.data_files["features"] == head_files - 5 + 1
    assert report.data_files["labels"] == 1
    assert {d: as_of_rows(tables, d) for d in published_dates(tables.features)} == before
    # once the dates that reference the small files expire, the files themselves go
    report2 = maintain(tables, keep_days=1, orphan_age_hours=0, do_compact=False, now=LATER)
    assert report2.removed_dates == [first] and report2.deleted_files >= 5
    assert _all_referenced_exist(tables)
    assert as_of_rows(tables, DAYS[10]) == before[DAYS[10]]


def test_leftover_branch_of_a_killed_backfill_is_dropped(five_days):
    tables = five_days
    with tables.labels.manage_snapshots() as ms:
        ms.create_branch(tables.labels.metadata.current_snapshot_id, "binfeat-tmp-killed")
    maintain(tables, keep_days=30, orphan_age_hours=0, do_compact=False, now=LATER)
    tables.refresh()
    assert "binfeat-tmp-killed" not in tables.labels.metadata.refs


def test_maintain_store_is_what_airflow_calls(five_days):
    out = maintain_store(store=five_days.cfg.store, keep_days=3, orphan_age_hours=72)
    assert json.loads(json.dumps(out))["removed_dates"] == DAYS[:2]
    with pytest.raises(ValueError, match="keep_days"):
        maintain_store(store=five_days.cfg.store, keep_days=0)
