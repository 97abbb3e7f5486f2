"""What "the corpus as of D" is: a tag ``corpus-D`` on both tables and a record of the night.

A night's last commit (on ``features``: its new data files, the tag and the record, atomically)
publishes date D. The record is a table property ``binfeat.corpus.D`` holding the feature version
D was published with, the row count as of D, both tables' snapshot ids and the run id, so that a
sensor can describe D from the table's metadata alone, without reading a data file.

As of D means (docs/corpus_store.md):

* features: the rows of the snapshot tagged ``corpus-D`` with ``ingest_date <= D`` and
  ``feature_version`` = the record's. The date filter makes a re-run of D after later dates exact:
  the tag then moves to a snapshot that also holds later dates' rows, which the filter leaves out.
* labels: the snapshot tagged ``corpus-D`` on ``labels``, which holds exactly the labels known on D
  (see :mod:`jobs.corpus.labels` for how a re-run of an older date builds it).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from datetime import date as _date

TAG_PREFIX = "corpus-"
RECORD_PREFIX = "binfeat.corpus."
# Every sample in the table has a row of this feature version: nights skip the stale-row search.
COMPLETE_VERSION = "binfeat.feature-version.complete"


class DateError(ValueError):
    """Not a YYYY-MM-DD date."""


def check_date(date: str) -> str:
    """Validate an ISO date (it becomes a tag name and a partition value)."""
    try:
        if len(date) != 10 or _date.fromisoformat(date).isoformat() != date:
            raise ValueError
    except (TypeError, ValueError):
        raise DateError(f"bad date {date!r}: expected YYYY-MM-DD") from None
    return date


def tag_name(date: str) -> str:
    return TAG_PREFIX + check_date(date)


def record_key(date: str) -> str:
    return RECORD_PREFIX + check_date(date)


def tag_dates(table) -> list[str]:
    """Dates with a ``corpus-D`` tag on ``table``, oldest first."""
    from pyiceberg.table.refs import SnapshotRefType

    out = []
    for name, ref in table.metadata.refs.items():
        if name.startswith(TAG_PREFIX) and ref.snapshot_ref_type == SnapshotRefType.TAG:
            try:
                out.append(check_date(name[len(TAG_PREFIX) :]))
            except DateError:
                continue
    return sorted(out)


def tag_snapshot_id(table, date: str) -> int | None:
    ref = table.metadata.refs.get(tag_name(date))
    return ref.snapshot_id if ref is not None else None


@dataclass(frozen=True)
class DateRecord:
    """What a night published for date D (a table property of ``features``)."""

    date: str
    feature_version: str
    rows: int
    labelled_rows: int
    features_snapshot_id: int
    labels_snapshot_id: int | None
    run_id: str
    committed_at: str

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str) -> DateRecord:
        return cls(**json.loads(text))


def read_record(features_table, date: str) -> DateRecord | None:
    """D's record when D is published (its tag present and matching), else None."""
    text = features_table.metadata.properties.get(record_key(date))
    if not text:
        return None
    record = DateRecord.from_json(text)
    if tag_snapshot_id(features_table, date) != record.features_snapshot_id:
        return None  # an expired or damaged tag: D is not readable as of D any more
    return record


def published_dates(features_table) -> list[str]:
    """Dates readable as of themselves, oldest first."""
    return [d for d in tag_dates(features_table) if read_record(features_table, d) is not None]


def describe_date(
    date: str,
    *,
    store: str | None = None,
    catalog: str | None = None,
    warehouse: str | None = None,
    namespace: str = "binfeat",
    s3_endpoint_url: str | None = None,
) -> dict | None:
    """For a sensor: None until D is published, then what D holds (from table metadata only).

    Cheap (one catalog lookup and one metadata.json read per table, no data file) and free of
    Spark. Raises :class:`jobs.corpus.catalog.StoreError` when the store itself is unusable.
    """
    from jobs.corpus.catalog import FEATURES, LABELS, StoreConfig, open_catalog

    check_date(date)
    cfg = StoreConfig(
        store=store, catalog=catalog, warehouse=warehouse, namespace=namespace, s3_endpoint_url=s3_endpoint_url
    )
    from pyiceberg.exceptions import NoSuchTableError

    cat = open_catalog(cfg)
    try:
        features = cat.load_table(cfg.identifier(FEATURES))
    except NoSuchTableError:
        return None
    record = read_record(features, date)
    if record is None:
        return None
    return {
        "date": record.date,
        "tag": tag_name(date),
        "table": f"{namespace}.{FEATURES}",
        "labels_table": f"{namespace}.{LABELS}",
        "rows": record.rows,
        "feature_version": record.feature_version,
        "labelled_rows": record.labelled_rows,
        "label_coverage": round(record.labelled_rows / record.rows, 6) if record.rows else 0.0,
        "features_snapshot_id": record.features_snapshot_id,
        "labels_snapshot_id": record.labels_snapshot_id,
        "run_id": record.run_id,
        "committed_at": record.committed_at,
    }
