"""A night's publishing commit on ``features``: its new files, D's tag and D's record, atomically.

Optimistic concurrency. The night anti-joined against snapshot B; the commit requires the table's
main branch to still be at the snapshot it last checked (pyiceberg's AssertRefSnapshotId), so
when another run committed in between the catalog refuses it. Then this module refreshes, reads
the keys of the files the other run added (two columns of those files only) and:

* none of ours among them: retries against the new head;
* all of ours among them (the same date run twice at once): adopts the other run's rows, drops
  its own files, and only tags;
* some: fails with a message saying to re-run the date (its files are deleted; nothing is
  committed). Dropping rows from our files would mean reading feature rows on the driver.

So two runs never lose or duplicate a row. pyiceberg's own blind retry is off on binfeat's tables
(``commit.retry.num-retries=0``).
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

import pyarrow as pa
import pyarrow.compute as pc

from jobs.corpus.antijoin import data_files, keys_in_files
from jobs.corpus.catalog import StoreError
from jobs.corpus.read import count_rows, iter_keys
from jobs.corpus.tags import COMPLETE_VERSION, DateRecord, read_record, record_key, tag_name, tag_snapshot_id


class ConcurrentRunError(StoreError):
    """Another run committed some of this night's samples first; nothing of this run was committed."""


@dataclass
class Publication:
    """What publishing D committed (or found already committed)."""

    record: DateRecord
    added_files: int = 0
    added_rows: int = 0
    adopted_rows: int = 0  # ours, committed first by a concurrent run of the same samples
    committed: bool = True  # False: D was already published exactly so (a re-run that changed nothing)
    attempts: int = 0
    seconds: float = 0.0  # the whole step: checks, counts, staging and the commit
    catalog_seconds: float = 0.0  # the catalog commit itself (the last attempt's)
    schema_added: list[str] = field(default_factory=list)


def _labelled(table, snapshot_id: int | None, date: str, version: str, new_keys: set[str], labels: pa.Array) -> int:
    """Rows as of D that have a label as of D (the stored ones read by their sha256 column only)."""
    if len(labels) == 0:
        return 0
    n = sum(pc.sum(pc.is_in(keys, value_set=labels)).as_py() or 0 for keys in iter_keys(table, snapshot_id, date,
                                                                                        version))  # fmt: skip
    if new_keys:
        n += pc.sum(pc.is_in(pa.array(sorted(new_keys), pa.string()), value_set=labels)).as_py() or 0
    return n


def publish_features(
    tables,
    *,
    date: str,
    version: str,
    run_id: str,
    schema: pa.Schema,
    properties: dict[str, str],
    files: list[tuple[str, int, int]],
    new_keys: set[str],
    base_snapshot_id: int | None,
    labels_snapshot_id: int | None,
    label_keys: pa.Array,
    complete: bool,
    max_attempts: int = 8,
    before_commit: Callable[[int], None] | None = None,
) -> Publication:
    """Commit ``files`` (rows of ``new_keys``, anti-joined against ``base_snapshot_id``) and publish D."""
    from pyiceberg.exceptions import CommitFailedException
    from pyiceberg.table.update.snapshot import ManageSnapshots

    from jobs.corpus.schema import evolve_features

    t0 = time.monotonic()
    table = tables.features
    pub = Publication(record=None)  # type: ignore[arg-type]
    validated = base_snapshot_id
    to_add = list(files)
    while True:
        pub.attempts += 1
        table.refresh()
        head = table.metadata.current_snapshot_id
        if head != validated and to_add:
            before = data_files(table, validated)
            added = [p for p in data_files(table, head) if p not in before]
            clash = new_keys & keys_in_files(table, added, version)
            if clash and clash != new_keys:
                delete_files(table, to_add)
                raise ConcurrentRunError(
                    f"another run committed {len(clash)} of this night's {len(new_keys)} new samples of {date} "
                    "first; nothing of this run was committed: re-run the date to add the others"
                )
            if clash:
                delete_files(table, to_add)
                pub.adopted_rows, to_add = len(clash), []
        validated = head
        if head is None and not to_add:
            raise StoreError(f"the corpus would be empty on {date}: no earlier row and no readable new file")
        previous = read_record(table, date)
        rows = count_rows(table, head, date, version) + sum(f[1] for f in to_add)
        if (
            not to_add
            and previous is not None
            and (previous.feature_version, previous.labels_snapshot_id, previous.rows)
            == (version, labels_snapshot_id, rows)
        ):
            pub.record, pub.committed = previous, False  # nothing as of D changed: D stays as published
            break
        tx = table.transaction()
        pub.schema_added = evolve_features(tx, schema)
        if to_add:
            tx.add_files(
                [f[0] for f in to_add],
                snapshot_properties={"binfeat.date": date, "binfeat.run-id": run_id,
                                     "binfeat.feature-version": version},
                check_duplicate_files=False,
            )
        target = tx.table_metadata.current_snapshot_id
        record = DateRecord(
            date=date, feature_version=version, rows=rows,
            labelled_rows=_labelled(table, head, date, version, new_keys if to_add else set(), label_keys),
            features_snapshot_id=target, labels_snapshot_id=labels_snapshot_id, run_id=run_id,
            committed_at=datetime.now(UTC).isoformat(timespec="seconds"),
        )  # fmt: skip
        if tag_snapshot_id(table, date) != target:
            with ManageSnapshots(tx) as ms:
                ms.create_tag(target, tag_name(date))
        changed = {k: v for k, v in properties.items() if table.metadata.properties.get(k) != v}
        if complete and table.metadata.properties.get(COMPLETE_VERSION) != version:
            changed[COMPLETE_VERSION] = version
        tx.set_properties(**changed, **{record_key(date): record.to_json()})
        if before_commit is not None:
            before_commit(pub.attempts)
        t_commit = time.monotonic()
        try:
            tx.commit_transaction()
            pub.catalog_seconds = round(time.monotonic() - t_commit, 4)
        except CommitFailedException as exc:
            if pub.attempts >= max_attempts:
                delete_files(table, to_add)
                raise ConcurrentRunError(
                    f"features of {date}: {max_attempts} commits lost to concurrent runs ({exc}); nothing of "
                    "this run was committed: re-run the date"
                ) from None
            time.sleep(min(2.0, 0.05 * 2**pub.attempts) * (1 + random.random()))
            continue
        pub.record = record
        pub.added_files = len(to_add)
        pub.added_rows = sum(f[1] for f in to_add)
        break
    pub.seconds = round(time.monotonic() - t0, 3)
    return pub


def delete_files(table, files: list[tuple[str, int, int]]) -> None:
    """Remove this run's uncommitted files (best effort: maintenance removes what is left)."""
    for f in files:
        try:
            table.io.delete(f[0])
        except Exception:
            continue
