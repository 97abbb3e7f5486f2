"""Store maintenance: expire old dates and snapshots, remove orphans, compact past partitions.

No Spark: the maintenance DAG's task calls :func:`maintain_store` (it also runs as
``binfeat corpus maintain``). Each step is safe next to a running night:

* **expire**: the tags ``corpus-D`` (and D's record) of dates older than the newest published date
  minus ``keep_days`` go; then every snapshot that no tag or branch references and that is older
  than ``keep_days``; then the files only those snapshots referenced. A file still referenced by
  any remaining snapshot is never deleted.
* **orphans**: files under a table's location that no metadata references (a killed night's
  Parquet files, a lost commit's manifests) and that are older than ``orphan_age_hours``; the age
  protects the files of a night that is running now.
* **compact**: in ``features``, the files of each (ingest_date, feature_version) older than
  ``compact_after_days`` are merged, streamed batch by batch, into files of ``target_file_mb`` when
  there are at least ``compact_min_files`` of them; ``labels`` is rewritten into one file when it has
  that many. A compaction rewrites files but never a row, and tags keep the old files alive until
  they expire. (docs/corpus_store.md has the measurement behind these defaults.)
"""

from __future__ import annotations

import datetime as dt
import logging
import math
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from jobs.corpus.catalog import StoreConfig, Tables, open_tables
from jobs.corpus.tags import RECORD_PREFIX, published_dates, tag_dates, tag_name

log = logging.getLogger("binfeat.corpus_maintenance")
DEFAULTS = {"keep_days": 14, "orphan_age_hours": 72.0, "compact_after_days": 7, "compact_min_files": 4,
            "target_file_mb": 256}  # fmt: skip


@dataclass
class Report:
    removed_dates: list[str] = field(default_factory=list)
    expired_snapshots: dict[str, int] = field(default_factory=dict)
    deleted_files: int = 0
    deleted_bytes: int = 0
    orphans: int = 0
    compacted: dict[str, int] = field(default_factory=lambda: {"groups": 0, "files_in": 0, "files_out": 0})
    data_files: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


# --- what the metadata references -----------------------------------------------------------------


def _norm(table, location: str) -> str:
    """A location as the filesystem lists it (no scheme): file:///a/b -> /a/b, s3://b/k -> b/k."""
    _scheme, _netloc, path = table.io.parse_location(location)
    return path


def referenced(table, snapshots=None, cache: dict | None = None) -> set[str]:
    """Every file the given snapshots (default: all) reference: manifest lists, manifests, data files.

    ``cache`` (manifest list or manifest path -> what it references) lets one maintenance pass read
    each manifest once, whatever the number of snapshots sharing it (manifests never change).
    """
    cache = {} if cache is None else cache
    out: set[str] = set()
    for snap in table.metadata.snapshots if snapshots is None else snapshots:
        out.add(_norm(table, snap.manifest_list))
        manifests = cache.get(snap.manifest_list)
        if manifests is None:
            manifests = cache[snap.manifest_list] = snap.manifests(table.io)
        for manifest in manifests:
            out.add(_norm(table, manifest.manifest_path))
            files = cache.get(manifest.manifest_path)
            if files is None:
                entries = manifest.fetch_manifest_entry(table.io, discard_deleted=True)
                files = cache[manifest.manifest_path] = {_norm(table, e.data_file.file_path) for e in entries}
            out |= files
    return out


def _metadata_files(table) -> set[str]:
    files = {_norm(table, table.metadata_location)}
    files.update(_norm(table, e.metadata_file) for e in table.metadata.metadata_log)
    files.update(_norm(table, s.statistics_path) for s in table.metadata.statistics)
    return files


# --- expire --------------------------------------------------------------------------------------------


def expire(tables: Tables, keep_days: int, now: dt.datetime, report: Report, caches: dict | None = None) -> None:
    """Remove dates older than the newest published date minus ``keep_days``, then unreferenced old snapshots."""
    from pyiceberg.table.update.snapshot import ManageSnapshots

    newest = max(published_dates(tables.features), default=None)
    if newest is not None:
        cutoff = (dt.date.fromisoformat(newest) - dt.timedelta(days=keep_days)).isoformat()
        for name, table in (("features", tables.features), ("labels", tables.labels)):
            old = [d for d in tag_dates(table) if d <= cutoff]
            stale_records = [k for k in table.metadata.properties if k.startswith(RECORD_PREFIX)
                             and k[len(RECORD_PREFIX):] <= cutoff]  # fmt: skip
            if not old and not stale_records:
                continue
            tx = table.transaction()
            if old:
                with ManageSnapshots(tx) as ms:
                    for d in old:
                        ms.remove_tag(tag_name(d))
            if stale_records:
                tx.remove_properties(*stale_records)
            tx.commit_transaction()
            if name == "features":
                report.removed_dates = old
    horizon = now - dt.timedelta(days=keep_days)
    for name, table in (("features", tables.features), ("labels", tables.labels)):
        table.refresh()
        protected = {ref.snapshot_id for ref in table.metadata.refs.values()}
        doomed = [s for s in table.metadata.snapshots
                  if s.snapshot_id not in protected and s.timestamp_ms < horizon.timestamp() * 1000]  # fmt: skip
        report.expired_snapshots[name] = len(doomed)
        if not doomed:
            continue
        cache = (caches if caches is not None else {}).setdefault(name, {})
        candidates = referenced(table, doomed, cache)
        table.maintenance.expire_snapshots().by_ids([s.snapshot_id for s in doomed]).commit()
        table.refresh()
        keep = referenced(table, cache=cache) | _metadata_files(table)
        _delete(table, sorted(candidates - keep), report)


def _delete(table, paths: list[str], report: Report) -> None:
    fs, _root = _filesystem(table)
    for path in paths:
        try:
            info = fs.get_file_info(path)
            fs.delete_file(path)
        except (OSError, FileNotFoundError):
            continue
        report.deleted_files += 1
        report.deleted_bytes += info.size or 0


def _filesystem(table):
    scheme, netloc, path = table.io.parse_location(table.location())
    return table.io.fs_by_scheme(scheme, netloc), path


# --- orphans --------------------------------------------------------------------------------------------


def drop_leftover_branches(table, older_than: dt.datetime) -> int:
    """Remove the ``binfeat-tmp-*`` branches a killed back-fill left (when older than ``older_than``)."""
    from jobs.corpus.labels import TMP_BRANCH_PREFIX

    leftovers = [name for name, ref in table.metadata.refs.items() if name.startswith(TMP_BRANCH_PREFIX)
                 and table.metadata.snapshot_by_id(ref.snapshot_id).timestamp_ms < older_than.timestamp() * 1000]
    if leftovers:
        with table.manage_snapshots() as ms:
            for name in leftovers:
                ms.remove_branch(name)
        table.refresh()
    return len(leftovers)


def remove_orphans(table, older_than: dt.datetime, report: Report, cache: dict | None = None) -> None:
    """Delete files under the table's location that no metadata references and that are old enough."""
    from pyarrow.fs import FileSelector, FileType

    fs, root = _filesystem(table)
    keep = referenced(table, cache=cache) | _metadata_files(table)
    infos = fs.get_file_info(FileSelector(root, recursive=True, allow_not_found=True))
    doomed = [i for i in infos if i.type == FileType.File and i.path not in keep and i.mtime is not None
              and i.mtime.replace(tzinfo=i.mtime.tzinfo or dt.UTC) < older_than]  # fmt: skip
    before = report.deleted_files
    _delete(table, [i.path for i in doomed], report)
    report.orphans += report.deleted_files - before


# --- compaction ---------------------------------------------------------------------------------------------


def _groups(table, before: str, min_files: int, target: int) -> list[list]:
    """Head data files of partitions older than ``before``, grouped by (ingest_date, feature_version)."""
    from jobs.corpus.antijoin import version_bounds

    head = table.metadata.current_snapshot_id
    if head is None:
        return []
    groups: dict[tuple[str, str], list] = {}
    for task in table.scan(snapshot_id=head).plan_files():
        day = task.file.partition[0]
        day = (dt.date(1970, 1, 1) + dt.timedelta(days=day)).isoformat() if isinstance(day, int) else str(day)
        lo, hi = version_bounds(table, task)
        if day < before and lo == hi and lo is not None:
            groups.setdefault((day, lo), []).append(task.file)
    small = [files for _, files in sorted(groups.items()) if len(files) >= min_files]
    return [files for files in small if sum(f.file_size_in_bytes for f in files) / len(files) < target / 2]


def _rewrite(table, files: list, target: int, prefix: str) -> list[str]:
    """Stream the rows of ``files`` into about ceil(bytes / target) new files; returns their locations."""
    import pyarrow.parquet as pq

    from jobs.corpus.schema import ROW_GROUP_ROWS, conform, parquet_options

    schema = table.schema().as_arrow()
    total_rows = sum(f.record_count for f in files)
    n_out = max(1, math.ceil(sum(f.file_size_in_bytes for f in files) / target))
    per_file = math.ceil(total_rows / n_out)
    day_dir = files[0].file_path.rsplit("/", 1)[0]
    out: list[str] = []
    writer = stream = None
    written = 0
    try:
        for f in files:
            with table.io.new_input(f.file_path).open() as src:
                for batch in pq.ParquetFile(src).iter_batches(batch_size=ROW_GROUP_ROWS):
                    if writer is None or written >= per_file:
                        if writer is not None:
                            writer.close()
                            stream.close()
                        out.append(f"{day_dir}/{prefix}-{len(out):03d}.parquet")
                        stream = table.io.new_output(out[-1]).create(overwrite=False)
                        writer = pq.ParquetWriter(stream, schema, **parquet_options(schema))
                        written = 0
                    writer.write_table(conform(batch, schema))
                    written += batch.num_rows
    finally:
        if writer is not None:
            writer.close()
            stream.close()
    return out


def _replace(table, old: list, new_paths: list[str], props: dict[str, str], attempts: int = 5) -> bool:
    """Commit the swap of ``old`` data files for ``new_paths``; False when ``old`` changed meanwhile."""
    from pyiceberg.exceptions import CommitFailedException
    from pyiceberg.io.pyarrow import parquet_file_to_data_file

    for _ in range(attempts):
        table.refresh()
        present = {t.file.file_path for t in table.scan().plan_files()}
        if any(f.file_path not in present for f in old):
            return False
        tx = table.transaction()
        with tx.update_snapshot(snapshot_properties=props).overwrite() as ow:
            for f in old:
                ow.delete_data_file(f)
            for p in new_paths:
                ow.append_data_file(parquet_file_to_data_file(table.io, tx.table_metadata, p))
        try:
            tx.commit_transaction()
            return True
        except CommitFailedException:
            time.sleep(0.2)
    return False


def compact(tables: Tables, *, after_days: int, min_files: int, target_mb: int, report: Report) -> None:
    newest = max(published_dates(tables.features), default=None)
    target = target_mb * 1024 * 1024
    if newest is not None:
        before = (dt.date.fromisoformat(newest) - dt.timedelta(days=after_days) + dt.timedelta(days=1)).isoformat()
        for files in _groups(tables.features, before, min_files, target):
            new = _rewrite(tables.features, files, target, f"compacted-{uuid.uuid4().hex[:12]}")
            if _replace(tables.features, files, new, {"binfeat.compaction": "features"}):
                report.compacted["groups"] += 1
                report.compacted["files_in"] += len(files)
                report.compacted["files_out"] += len(new)
            else:
                _delete(tables.features, [_norm(tables.features, p) for p in new], report)
    labels = tables.labels
    if labels.metadata.current_snapshot_id is not None:
        files = [t.file for t in labels.scan().plan_files()]
        if len(files) >= min_files:
            new = _rewrite(labels, files, max(target, sum(f.file_size_in_bytes for f in files) + 1),
                           f"compacted-{uuid.uuid4().hex[:12]}")  # fmt: skip
            if _replace(labels, files, new, {"binfeat.compaction": "labels"}):
                report.compacted["files_in"] += len(files)
                report.compacted["files_out"] += len(new)


# --- the whole pass -------------------------------------------------------------------------------------------


def maintain(tables: Tables, *, keep_days: int = 14, orphan_age_hours: float = 72.0, compact_after_days: int = 7,
             compact_min_files: int = 4, target_file_mb: int = 256, do_compact: bool = True,
             now: dt.datetime | None = None) -> Report:  # fmt: skip
    """Compact, expire, then remove orphans (compaction first: the files it replaces can expire at once)."""
    if keep_days < 1:
        raise ValueError(f"keep_days must be at least 1, got {keep_days}")
    if orphan_age_hours < 0:
        raise ValueError(f"orphan_age_hours must be >= 0, got {orphan_age_hours}")
    t0 = time.monotonic()
    now = now or dt.datetime.now(dt.UTC)
    report = Report()
    for table in (tables.features, tables.labels):
        drop_leftover_branches(table, now - dt.timedelta(hours=orphan_age_hours))
    if do_compact:
        compact(tables, after_days=compact_after_days, min_files=compact_min_files, target_mb=target_file_mb,
                report=report)  # fmt: skip
    caches: dict[str, dict] = {}
    expire(tables, keep_days, now, report, caches)
    for name, table in (("features", tables.features), ("labels", tables.labels)):
        table.refresh()
        remove_orphans(table, now - dt.timedelta(hours=orphan_age_hours), report, caches.setdefault(name, {}))
        report.data_files[table.name()[-1]] = sum(1 for _ in table.scan().plan_files())
    report.seconds = round(time.monotonic() - t0, 3)
    return report


def maintain_store(
    *,
    store: str | None = None,
    catalog: str | None = None,
    warehouse: str | None = None,
    namespace: str = "binfeat",
    s3_endpoint_url: str | None = None,
    keep_days: int = 14,
    orphan_age_hours: float = 72.0,
    compact: bool = True,
) -> dict[str, Any]:
    """What the maintenance DAG's task calls (no Spark, no Airflow): one pass; returns a JSON-able report."""
    cfg = StoreConfig(store=store, catalog=catalog, warehouse=warehouse, namespace=namespace,
                      s3_endpoint_url=s3_endpoint_url)  # fmt: skip
    report = maintain(open_tables(cfg), keep_days=int(keep_days), orphan_age_hours=float(orphan_age_hours),
                      do_compact=bool(compact))  # fmt: skip
    out = report.as_dict()
    log.info("maintenance of the %s: %s", cfg.describe(), out)
    return out
