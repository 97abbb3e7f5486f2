"""One night of ``binfeat corpus update``: the day's new samples appended, labels upserted, D tagged.

1. read the labels feed and check the store and the contract (before Spark starts extracting);
2. list the day's inputs (folder, manifest or ``s3://``), choose the engine (:mod:`jobs.engine`'s
   rule, as ``binfeat extract``: the local process pool for a small day, else Spark) and hash them on
   the executors (on the local engine: in threads of this process);
3. anti-join on (sha256, feature_version) against the table's current snapshot, reading those two
   columns only (:mod:`jobs.corpus.antijoin`); after a feature-version bump also find the samples
   without a row of the new version, to re-extract each once;
4. extract on the executors, which write Parquet straight into the warehouse
   (:mod:`jobs.corpus.extraction`; on the local engine the same writer in the local pool,
   :mod:`jobs.corpus.local_night`, started only when a file is new); no existing data file is touched;
5. check the error share; upsert the labels and tag them (:mod:`jobs.corpus.labels`);
6. commit the new files, D's tag and D's record in one commit (:mod:`jobs.corpus.commit`).

A run killed or failed before step 6 publishes nothing (its files are orphans until maintenance
removes them); a re-run of D adds no row. The run id is on every log line and in the summary.
"""

from __future__ import annotations

import argparse
import json
import logging
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger("binfeat.corpus_update")


class ValidationError(RuntimeError):
    """A night's rows failed a check; nothing was committed."""


@dataclass
class Summary:
    """Figures of one night: logged, returned, optionally written to a file and sent to StatsD."""

    run_id: str
    date: str
    store: str
    feature_version: str = ""
    engine: str = ""  # "local" or "spark"
    workers: int | None = None  # the local engine's pool size (None on Spark)
    files: dict[str, int] = field(default_factory=dict)
    bytes: dict[str, int] = field(default_factory=dict)
    status: dict[str, int] = field(default_factory=dict)
    errors_by_kind: dict[str, int] = field(default_factory=dict)
    labels: dict[str, Any] = field(default_factory=dict)
    commit: dict[str, Any] = field(default_factory=dict)
    error_share: float = 0.0
    anti_join: dict[str, Any] = field(default_factory=dict)
    duration_s: float = 0.0
    phases_s: dict[str, float] = field(default_factory=dict)

    def mark(self, phase: str, since: float) -> float:
        now = time.monotonic()
        self.phases_s[phase] = round(now - since, 3)
        return now

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def store_config(args: argparse.Namespace):
    from jobs.corpus.catalog import StoreConfig

    return StoreConfig(
        store=args.store, catalog=args.catalog, warehouse=args.warehouse, namespace=args.namespace,
        s3_endpoint_url=args.s3_endpoint_url,
    )  # fmt: skip


def _read_feed(args: argparse.Namespace, summary: Summary):
    from jobs.corpus.feed import labels_schema, read_labels, split_valid

    if not args.labels:
        return labels_schema().empty_table()
    table = read_labels(args.labels, s3_endpoint_url=args.s3_endpoint_url, allow_missing=args.allow_missing_labels)
    valid, invalid = split_valid(table)
    if invalid:
        log.warning("labels feed: %d row(s) without a valid sha256 or label were dropped", invalid)
    summary.labels.update(feed_rows=table.num_rows, invalid=invalid)
    return valid


def _discover(args: argparse.Namespace) -> list:
    from jobs.corpus.extraction import InputError, list_inputs

    try:
        return list_inputs(args.incoming, s3_endpoint_url=args.s3_endpoint_url)
    except InputError as exc:
        if args.allow_missing_incoming:
            log.warning("no incoming files for %s: %s", args.date, exc)
            return []
        raise


def run_night(args: argparse.Namespace, *, spark=None, before_commit=None) -> dict[str, Any]:
    """Run D's night; returns the summary. Raises on any failed check (nothing committed then).

    ``spark`` reuses a session (tests, the benchmark; the night then runs on Spark);
    ``before_commit(attempt)`` is called right before each commit attempt of the features table (the
    concurrency test's rendezvous). ``args.engine``/``args.workers`` choose the engine as
    :func:`jobs.engine.choose_engine` does for ``binfeat extract``.
    """
    from jobs.engine import check_engine, choose_engine, default_workers
    from jobs.session import under_spark_submit

    from jobs.corpus.catalog import open_tables
    from jobs.corpus.extraction import load_contract
    from jobs.corpus.schema import check_evolution, features_schema, vector_properties
    from jobs.corpus.tags import COMPLETE_VERSION, check_date

    t0 = time.monotonic()
    engine, workers = getattr(args, "engine", "auto"), getattr(args, "workers", None)
    submitted = under_spark_submit()
    check_engine(engine, master=args.master, workers=workers, spark_given=spark is not None, submitted=submitted)
    date = check_date(args.date)
    if not 0.0 <= args.max_error_share <= 1.0:
        raise ValueError(f"--max-error-share must be within [0, 1], got {args.max_error_share}")
    cfg = store_config(args)
    contract = load_contract()
    version = contract.feature_version
    summary = Summary(run_id=args.run_id, date=date, store=cfg.describe(), feature_version=version)
    schema = features_schema(contract.schema)
    tables = open_tables(cfg, features_schema=schema)
    added = check_evolution(tables.features, schema)
    if added:
        log.info("feature version %s adds column(s) %s: the table's schema evolves by name", version, ", ".join(added))
    feed = _read_feed(args, summary)
    incoming = _discover(args)
    summary.engine = choose_engine(engine, n_files=len(incoming), n_bytes=sum(f.size for f in incoming),
                                   master=args.master, spark_given=spark is not None, submitted=submitted)  # fmt: skip
    log.info("corpus update %s: %d incoming, %s, feature_version=%s, %s engine", date, len(incoming), cfg.describe(),
             version, summary.engine)  # fmt: skip
    t = summary.mark("prepare", t0)

    own = spark is None and summary.engine == "spark"
    if summary.engine == "local":
        summary.workers = workers or default_workers()  # at most: the pool takes what the new files pay for
    elif own:
        from jobs.session import spark_session

        master = args.master or (f"local[{workers}]" if workers else None)  # auto chose Spark: as many processes
        spark = spark_session(master=master, app_name=f"binfeat-corpus-update-{date}", coordinator_jvm=True)
        spark.sparkContext.setJobGroup(f"binfeat-{args.run_id}", f"binfeat corpus update {date} run {args.run_id}")
        t = summary.mark("spark_start", t)
    night = _Night(args, spark, tables, contract, schema, feed, incoming, summary, before_commit,
                   vector_properties(version, contract.layout), COMPLETE_VERSION)  # fmt: skip
    try:
        return _run(night, t0, t)
    finally:
        if own:
            spark.stop()


@dataclass
class _Night:
    """What a night works with once prepared (the store opened, the feed read, the inputs listed)."""

    args: argparse.Namespace
    spark: Any
    tables: Any
    contract: Any
    schema: Any
    feed: Any
    incoming: list
    summary: Summary
    before_commit: Any
    vector_props: dict[str, str]
    complete_key: str


def _run(night: _Night, t0: float, t: float) -> dict[str, Any]:
    from jobs.corpus.antijoin import split_candidates
    from jobs.corpus.commit import publish_features
    from jobs.corpus.hashing import hash_inputs, unique_by_sha
    from jobs.corpus.labels import apply_labels, keys_as_of

    args, spark, tables, summary, incoming = night.args, night.spark, night.tables, night.summary, night.incoming
    date, version = summary.date, summary.feature_version
    candidates, unreadable = hash_inputs(spark, incoming, args.s3_endpoint_url, date, threads=summary.workers or 1)
    unique = unique_by_sha(candidates)
    summary.files.update(discovered=len(incoming), unreadable=len(unreadable),
                         duplicates_in_day=len(candidates) - len(unique))  # fmt: skip
    summary.bytes["discovered"] = sum(f.size for f in incoming)
    if unreadable:
        summary.errors_by_kind["unreadable"] = len(unreadable)
        for path, why in unreadable[:20]:
            log.warning("skipping unreadable input %s: %s", path, why)
    t = summary.mark("hash", t)

    tables.refresh()
    base = tables.features.metadata.current_snapshot_id
    split = split_candidates(tables.features, base, unique, version,
                             complete_version=tables.features.metadata.properties.get(night.complete_key))  # fmt: skip
    summary.anti_join = {"rows_scanned": split.rows_scanned, "seconds": split.seconds, "base_snapshot_id": base}
    todo = split.to_extract
    summary.files.update(known=len(split.known), new=len(split.new), reextracted=len(split.stale))
    summary.bytes["extracted"] = sum(c.size for c in todo)
    log.info(
        "files: %d discovered, %d unreadable, %d duplicates in day, %d already stored, %d new, %d to re-extract "
        "(feature_version changed)", len(incoming), len(unreadable), summary.files["duplicates_in_day"],
        len(split.known), len(split.new), len(split.stale),
    )  # fmt: skip
    t = summary.mark("anti_join", t)

    written = _write(night, [(c.path, c.size, c.sha256, c.ingest_date) for c in todo])
    t = summary.mark("extract", t)
    committing = False
    try:
        good = _tally(written.rows, summary)
        if sum(f[1] for f in written.files) != len(good):
            held = sum(f[1] for f in written.files)
            raise ValidationError(f"the written files hold {held} rows, expected {len(good)}")
        if summary.error_share > args.max_error_share:
            raise ValidationError(
                f"{summary.error_share:.1%} of extracted rows have status 'error', above the "
                f"{args.max_error_share:.1%} threshold (--max-error-share)"
            )
        labels = apply_labels(tables, date, night.feed, run_id=args.run_id)
        summary.labels.update(upserted=labels.upserted, mode=labels.mode, snapshot_id=labels.snapshot_id,
                              attempts=labels.attempts)  # fmt: skip
        t = summary.mark("labels", t)
        stale_ok = all(c.sha256 in good for c in split.stale)
        committing = True
        pub = publish_features(
            tables, date=date, version=version, run_id=args.run_id, schema=night.schema, properties=night.vector_props,
            files=written.files, new_keys=good, base_snapshot_id=base, labels_snapshot_id=labels.snapshot_id,
            label_keys=keys_as_of(tables, labels.snapshot_id), complete=stale_ok, before_commit=night.before_commit,
        )  # fmt: skip
    except BaseException:
        if not committing:
            from jobs.corpus.commit import delete_files

            delete_files(tables.features, written.files)
        raise
    t = summary.mark("commit", t)
    rec = pub.record
    summary.files["rows"] = rec.rows
    summary.labels.update(labelled_rows=rec.labelled_rows,
                          coverage=round(rec.labelled_rows / rec.rows, 6) if rec.rows else 0.0)  # fmt: skip
    summary.commit = {
        "tag": f"corpus-{date}", "features_snapshot_id": rec.features_snapshot_id,
        "labels_snapshot_id": rec.labels_snapshot_id, "committed": pub.committed, "added_files": pub.added_files,
        "added_rows": pub.added_rows, "adopted_rows": pub.adopted_rows, "attempts": pub.attempts,
        "schema_added": pub.schema_added, "bytes_written": sum(f[2] for f in written.files),
        "seconds": pub.seconds, "catalog_seconds": pub.catalog_seconds,
    }  # fmt: skip
    summary.duration_s = round(time.monotonic() - t0, 3)
    out = summary.as_dict()
    log.info("summary %s", json.dumps(out, sort_keys=True, default=str))
    if args.summary_out:
        with open(args.summary_out, "w", encoding="utf-8") as fh:
            json.dump(out, fh, indent=2, sort_keys=True, default=str)
    if args.statsd_host:
        from jobs.corpus.metrics import send_summary

        sent = send_summary(out, args.statsd_host, args.statsd_port, args.statsd_prefix)
        log.info("sent %d StatsD metrics to %s:%s", sent, args.statsd_host, args.statsd_port)
    return out


def _write(night: _Night, todo: list[tuple[str, int, str, str]]):
    """Extract ``todo`` into the warehouse on the night's engine (the local pool starts only for a file)."""
    from jobs.corpus.extraction import io_properties, write_night_files

    args, features = night.args, night.tables.features
    kw = dict(schema=night.schema, data_location=features.location().rstrip("/") + "/data",
              io_props=io_properties(features), run_id=args.run_id,
              file_prefix=f"{night.summary.date}-{uuid.uuid4().hex[:12]}", s3_endpoint_url=args.s3_endpoint_url,
              partitions=args.partitions)  # fmt: skip
    if night.spark is not None:
        return write_night_files(night.spark, todo, contract=night.contract, **kw)
    from jobs.corpus.local_night import write_night_files_local
    from jobs.local_engine import pool_size

    workers = getattr(args, "workers", None) or pool_size(len(todo), sum(t[1] for t in todo), night.summary.workers)
    night.summary.workers = workers if todo else 0
    return write_night_files_local(todo, workers=workers, transform=night.contract.transform, **kw)


def _tally(rows, summary: Summary) -> set[str]:
    """Counts by status and error kind from the executors' status rows; returns the sha256 written."""
    statuses = rows.column("status").to_pylist()
    kinds = rows.column("error_kind").to_pylist()
    goods = rows.column("good").to_pylist()
    shas = rows.column("sha256").to_pylist()
    summary.status = dict(sorted(Counter(statuses).items()))
    for status, kind in zip(statuses, kinds, strict=True):
        if status != "ok":
            summary.errors_by_kind[kind or "other"] = summary.errors_by_kind.get(kind or "other", 0) + 1
    summary.files["extracted"] = len(statuses)
    changed = sum(1 for g in goods if not g)
    if changed:
        summary.errors_by_kind["changed_since_hashed"] = changed
        log.warning("%d file(s) changed between hashing and extraction: left out of the corpus", changed)
    errors = summary.status.get("error", 0)
    summary.error_share = round(errors / len(statuses), 6) if statuses else 0.0
    return {s for s, g in zip(shas, goods, strict=True) if g}
