"""The labels upsert: one row per sha256, the newest label winning, and the labels as of D.

A label's rank is (updated_at, first_seen, source, label, family), a missing value lowest; the
row of higher rank wins and an equal one changes nothing, so applying the same feed twice is a
no-op and a late feed never overrides a newer label. ``updated_at`` is the date of the feed.

Two states are written:

* ``main``: every label known, newest winning (what the next night builds on);
* the snapshot tagged ``corpus-D``: the labels known on D. When D is the newest date, that is main
  itself. When a later date is already tagged (a re-run or a back-fill of D), main holds labels
  from after D, so D's state is built from the labels as of D's previous tag (or of the nearest
  earlier tagged date) plus D's feed, and written (on a short-lived branch) as a snapshot that
  only the tag references. Either way the labels as of D are exactly those known on D.
"""

from __future__ import annotations

import datetime as dt
import random
import time
import uuid
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.compute as pc

from jobs.corpus.catalog import StoreError
from jobs.corpus.schema import conform, labels_schema
from jobs.corpus.tags import tag_dates, tag_name, tag_snapshot_id

RANK = ("updated_at", "first_seen", "source", "label", "family")
TMP_BRANCH_PREFIX = "binfeat-tmp-"  # short-lived branches of a back-fill (maintenance removes leftovers)


@dataclass
class LabelsResult:
    feed_rows: int = 0
    invalid: int = 0
    upserted: int = 0  # rows of main replaced or added
    mode: str = "latest"  # or "backfill": a later date was already tagged
    snapshot_id: int | None = None  # the labels snapshot tagged corpus-D (None: no label at all)
    attempts: int = 0
    seconds: float = 0.0


def _rank(row: dict) -> tuple:
    return tuple((row[k] is not None, row[k]) for k in RANK)


def feed_state(feed: pa.Table, date: str) -> pa.Table:
    """A validated feed as labels rows of date D, one per sha256 (the highest rank)."""
    day = dt.date.fromisoformat(date)
    best: dict[str, dict] = {}
    for r in feed.to_pylist():
        row = {"sha256": r["sha256"], "label": r["label"], "family": r.get("family"), "source": r.get("source"),
               "first_seen": r.get("first_seen"), "updated_at": day}  # fmt: skip
        if r["sha256"] not in best or _rank(row) > _rank(best[r["sha256"]]):
            best[r["sha256"]] = row
    return pa.Table.from_pylist([best[s] for s in sorted(best)], schema=labels_schema())


def overlay(state: pa.Table, updates: pa.Table) -> tuple[pa.Table, pa.Table]:
    """(state with ``updates`` applied by rank, the update rows that won) for one-row-per-sha256 tables."""
    if updates.num_rows == 0:
        return state, updates
    mine = state.filter(pc.is_in(state.column("sha256"), value_set=updates.column("sha256")))
    existing = {r["sha256"]: r for r in mine.to_pylist()}
    wins = [r for r in updates.to_pylist() if r["sha256"] not in existing or _rank(r) > _rank(existing[r["sha256"]])]
    won = pa.Table.from_pylist(wins, schema=labels_schema())
    kept = state.filter(pc.invert(pc.is_in(state.column("sha256"), won.column("sha256"))))
    merged = pa.concat_tables([kept, won]).sort_by("sha256")
    return merged, won


def _read(table, snapshot_id: int | None, keys: pa.Array | None = None) -> pa.Table:
    """Labels of a snapshot (only the rows of ``keys`` when given), as the store's Arrow types."""
    if snapshot_id is None:
        return labels_schema().empty_table()
    parts = []
    for batch in table.scan(snapshot_id=snapshot_id).to_arrow_batch_reader():
        if keys is not None:
            batch = batch.filter(pc.is_in(batch.column("sha256"), value_set=keys))
        if batch.num_rows:
            parts.append(conform(batch, labels_schema()))
    return pa.concat_tables(parts) if parts else labels_schema().empty_table()


def _base_of(table, date: str) -> int | None:
    """The snapshot D's labels build on when a later date is tagged: D's own tag, else the nearest earlier one."""
    own = tag_snapshot_id(table, date)
    if own is not None:
        return own
    earlier = [d for d in tag_dates(table) if d < date]
    return tag_snapshot_id(table, earlier[-1]) if earlier else None


def apply_labels(
    tables,
    date: str,
    feed: pa.Table,
    *,
    run_id: str,
    max_attempts: int = 8,
) -> LabelsResult:
    """Upsert D's (validated) feed into main and tag the labels as of D; retried on a lost race."""
    from pyiceberg.exceptions import CommitFailedException
    from pyiceberg.expressions import In
    from pyiceberg.table.update.snapshot import ManageSnapshots

    t0 = time.monotonic()
    result = LabelsResult(feed_rows=feed.num_rows)
    updates = feed_state(feed, date)
    table = tables.labels
    props = {"binfeat.date": date, "binfeat.run-id": run_id}
    while True:
        result.attempts += 1
        table.refresh()
        head = table.metadata.current_snapshot_id
        existing = _read(table, head, updates.column("sha256"))
        _, won = overlay(existing, updates)
        later = [d for d in tag_dates(table) if d > date]
        tx = table.transaction()
        staged = False
        if won.num_rows:
            replaced = set(existing.column("sha256").to_pylist()) & set(won.column("sha256").to_pylist())
            if replaced:
                tx.overwrite(won, overwrite_filter=In("sha256", sorted(replaced)), snapshot_properties=props)
            else:
                tx.append(won, snapshot_properties=props)
            staged = True
        target = tx.table_metadata.current_snapshot_id
        if not later and target is not None and target != tag_snapshot_id(table, date):
            with ManageSnapshots(tx) as ms:
                ms.create_tag(target, tag_name(date))
            staged = True
        try:
            if staged:
                tx.commit_transaction()
            break
        except CommitFailedException as exc:
            _backoff(result.attempts, max_attempts, f"labels of {date}", exc)
    result.upserted = won.num_rows
    result.mode = "backfill" if later else "latest"
    result.snapshot_id = _tag_as_of(table, date, updates, props, max_attempts) if later else target
    result.seconds = round(time.monotonic() - t0, 3)
    return result


def _backoff(attempt: int, max_attempts: int, what: str, exc: BaseException) -> None:
    if attempt >= max_attempts:
        raise StoreError(f"{what}: {max_attempts} commits lost to concurrent runs ({exc}); re-run the date") from None
    time.sleep(min(2.0, 0.05 * 2**attempt) * (1 + random.random()))


def _tag_as_of(table, date: str, updates: pa.Table, props: dict[str, str], max_attempts: int) -> int | None:
    """Back-fill: build the labels as of D (D's previous state, else the nearest earlier one, plus D's feed).

    Written on a short-lived branch, tagged, then the branch is dropped (three commits: a run
    killed in between leaves the old tag in place and a ``binfeat-tmp-*`` branch that maintenance
    removes).
    """
    from pyiceberg.exceptions import CommitFailedException
    from pyiceberg.expressions import AlwaysTrue
    from pyiceberg.table.update.snapshot import ManageSnapshots

    for attempt in range(1, max_attempts + 1):
        table.refresh()
        base_id = _base_of(table, date)
        state, won = overlay(_read(table, base_id), updates)
        current = tag_snapshot_id(table, date)
        if won.num_rows == 0 and current is not None:
            return current
        if state.num_rows == 0:
            return None
        branch = f"{TMP_BRANCH_PREFIX}{uuid.uuid4().hex[:12]}"
        try:
            with table.manage_snapshots() as ms:
                ms.create_branch(base_id or table.metadata.current_snapshot_id, branch)
            tx = table.transaction()
            tx.overwrite(state, overwrite_filter=AlwaysTrue(), branch=branch,
                         snapshot_properties={**props, "binfeat.as-of": date})  # fmt: skip
            target = tx.table_metadata.refs[branch].snapshot_id
            with ManageSnapshots(tx) as ms:
                ms.create_tag(target, tag_name(date))
            tx.commit_transaction()
            return target
        except CommitFailedException as exc:
            _backoff(attempt, max_attempts, f"labels as of {date}", exc)
        finally:
            table.refresh()
            if branch in table.metadata.refs:
                with table.manage_snapshots() as ms:
                    ms.remove_branch(branch)
    raise StoreError(f"labels as of {date}: no attempt succeeded")


def keys_as_of(tables, snapshot_id: int | None) -> pa.Array:
    """sha256 of every label of a labels snapshot (one column read)."""
    if snapshot_id is None:
        return pa.array([], pa.string())
    got = tables.labels.scan(snapshot_id=snapshot_id, selected_fields=("sha256",)).to_arrow()
    return got.column("sha256").combine_chunks().cast(pa.string())
