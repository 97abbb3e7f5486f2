"""``binfeat corpus update``: the nightly, incremental, idempotent corpus update (a Spark job).

For one logical DATE:

1. discover the day's incoming files (a local folder, a manifest or an ``s3://`` prefix);
2. hash them on the executors (or take the manifest's sha256) and drop in-day duplicates;
3. anti-join on (sha256, feature_version) against the newest snapshot older than DATE, so only
   new files are extracted; rows of that snapshot with another feature_version are re-extracted
   from their recorded path (bumping feature_version re-extracts everything);
4. extract with :func:`jobs.extract_features.features_dataframe`;
5. merge the labels feed into the cumulative label state (newest label wins), so a label that
   arrives on a later day shows up in that day's snapshot;
6. validate (schema, counts, error share, unique sha256) and publish atomically
   (:mod:`jobs.corpus_store`), then keep the newest N snapshots.

The result depends only on DATE's inputs and the previous snapshot, so running a date twice
publishes the same snapshot; a run that fails or is killed before the manifest swap publishes
nothing. The Airflow run id (``--run-id``) is stamped on every log line and in the summary.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import os
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from jobs.corpus_store import CorpusStore

log = logging.getLogger("binfeat.corpus_update")

LABEL_OUTPUT_COLUMNS = ("label", "family", "label_source", "first_seen", "label_date")
CONTRACT_COLUMNS = (
    "sha256",
    "md5",
    "size",
    "path",
    "format",
    "status",
    "error",
    "feature_version",
    "binfeat_version",
    "parser",
    "vector",
)


class ValidationError(RuntimeError):
    """The staged snapshot failed a check; nothing was published."""


@dataclass
class Candidate:
    path: str
    size: int
    sha256: str
    ingest_date: str
    stale: bool = False


@dataclass
class Summary:
    """Figures of one run: logged, written to the manifest, optionally sent to StatsD."""

    run_id: str
    date: str
    feature_version: str = ""
    files: dict[str, int] = field(default_factory=dict)
    bytes: dict[str, int] = field(default_factory=dict)
    status: dict[str, int] = field(default_factory=dict)
    errors_by_kind: dict[str, int] = field(default_factory=dict)
    labels: dict[str, Any] = field(default_factory=dict)
    error_share: float = 0.0
    base_snapshot: str | None = None
    published: str | None = None
    duration_s: float = 0.0
    phases_s: dict[str, float] = field(default_factory=dict)

    def mark(self, phase: str, since: float) -> float:
        """Record the seconds spent in ``phase`` since ``since``; returns now (the next phase's start)."""
        now = time.monotonic()
        self.phases_s[phase] = round(now - since, 3)
        return now

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


# --- command line ---------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="binfeat corpus update",
        description="Add one day's incoming binaries to the corpus and publish that day's snapshot.",
    )
    p.add_argument("--date", required=True, help="logical date YYYY-MM-DD (the ingest date of new files)")
    p.add_argument(
        "--incoming",
        required=True,
        help="the day's files: a folder, a manifest (.jsonl/.csv/.parquet) or s3://bucket/prefix",
    )
    p.add_argument("--store", required=True, help="corpus store folder (local or shared filesystem)")
    p.add_argument(
        "--labels", help="the day's labels feed: a .jsonl/.csv/.parquet file, a folder or s3:// prefix"
    )
    p.add_argument(
        "--allow-missing-labels",
        action="store_true",
        help="a missing labels feed means no new labels today instead of an error",
    )
    p.add_argument(
        "--allow-missing-incoming",
        action="store_true",
        help="a missing incoming location means no new files today instead of an error",
    )
    p.add_argument(
        "--max-error-share",
        type=float,
        default=0.1,
        help="fail when more than this share of extracted rows has status 'error' (default 0.1)",
    )
    p.add_argument("--keep", type=int, default=14, help="snapshots to keep (default 14; 0 keeps all)")
    p.add_argument("--run-id", default="manual", help="caller's run id (Airflow's run_id), stamped on logs")
    p.add_argument("--master", help="Spark master when not launched by spark-submit (default local[*])")
    p.add_argument("--partitions", type=int, help="extraction partitions (default: planned from sizes)")
    p.add_argument(
        "--s3-endpoint-url", help="S3 endpoint (e.g. MinIO); credentials come from the environment"
    )
    p.add_argument("--summary-out", help="also write the run summary JSON to this file")
    p.add_argument("--statsd-host", help="send summary metrics to this StatsD host (off when unset)")
    p.add_argument("--statsd-port", type=int, default=8125)
    p.add_argument("--statsd-prefix", default="binfeat.corpus")
    return p


class _RunIdFilter(logging.Filter):
    def __init__(self, run_id: str) -> None:
        super().__init__()
        self.run_id = run_id

    def filter(self, record: logging.LogRecord) -> bool:
        record.run_id = self.run_id
        return True


def _configure_logging(run_id: str) -> None:
    """Log lines carry the run id, so a grep of the Airflow task log finds this run's lines."""
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(_RunIdFilter(run_id))
    handler.setFormatter(
        logging.Formatter("%(asctime)s %(levelname)s %(name)s run_id=%(run_id)s: %(message)s")
    )
    log.handlers[:] = [handler]
    log.setLevel(logging.INFO)
    log.propagate = False


def main(argv: list[str]) -> int:
    """Entry point of ``binfeat corpus update`` and of spark-submit; returns the exit code."""
    args = build_parser().parse_args(argv)
    _configure_logging(args.run_id)
    _exit_with_spark_submit()
    from jobs.corpus_store import StoreError

    try:
        summary = run_update(args)
    except (ValidationError, StoreError, ValueError, OSError) as exc:
        log.error("corpus update for %s failed, nothing published: %s", args.date, exc)
        return 1
    log.info("published %s", summary["published"])
    return 0


def _exit_with_spark_submit() -> None:
    """Stop at once when spark-submit dies: the operator's on_kill kills it, not this process.

    Under spark-submit the Python driver is a child of the submit JVM; killed, the JVM would leave
    this process running until its next Spark call. Exiting right away means a killed run cannot
    go on to publish.
    """
    if "PYSPARK_GATEWAY_PORT" not in os.environ:
        return
    import threading

    parent = os.getppid()

    def watch() -> None:
        while True:
            time.sleep(1.0)
            if os.getppid() != parent:
                log.error("spark-submit (pid %d) is gone: stopping, nothing published", parent)
                os._exit(143)

    threading.Thread(target=watch, name="binfeat-parent-watch", daemon=True).start()


# --- the job --------------------------------------------------------------------------------------


def run_update(args: argparse.Namespace) -> dict[str, Any]:
    """Run the whole update for ``args.date``; returns the summary. Raises on any failed check."""
    from jobs.corpus_store import CorpusStore, check_date, new_publish_id

    t0 = time.monotonic()
    date = check_date(args.date)
    if not 0.0 <= args.max_error_share <= 1.0:
        raise ValueError(f"--max-error-share must be within [0, 1], got {args.max_error_share}")
    if args.keep < 0:
        raise ValueError(f"--keep must be >= 0, got {args.keep}")
    store = CorpusStore(args.store)
    from extract import FEATURE_VERSION

    summary = Summary(run_id=args.run_id, date=date, feature_version=str(FEATURE_VERSION))
    base = store.latest_before(date)
    summary.base_snapshot = base["date"] if base else None
    log.info(
        "corpus update %s: incoming=%s store=%s base=%s feature_version=%s",
        date,
        args.incoming,
        store.root,
        summary.base_snapshot,
        FEATURE_VERSION,
    )

    incoming = _discover(args)
    t = summary.mark("discover", t0)
    publish_id = new_publish_id()
    staged = store.new_staging(publish_id)
    try:
        return _update_staged(args, store, base, incoming, summary, staged, publish_id, t0, t)
    finally:
        _remove_tree(staged)  # a failed run leaves nothing behind; a published one was renamed away


def _update_staged(
    args, store, base, incoming, summary: Summary, staged, publish_id: str, t0: float, t: float
):
    """Everything after discovery, writing only under ``staged`` until the final publish."""
    from extract import FEATURE_VERSION

    date = summary.date

    from pyspark.sql import functions as F

    from jobs.session import spark_session

    spark = spark_session(master=args.master, app_name=f"binfeat-corpus-update-{date}")
    spark.sparkContext.setJobGroup(
        f"binfeat-{args.run_id}", f"binfeat corpus update {date} run {args.run_id}"
    )

    t = summary.mark("spark_start", t)
    candidates, unreadable = _hash_inputs(spark, incoming, args.s3_endpoint_url, date)
    t = summary.mark("hash", t)
    summary.files["discovered"] = len(incoming)
    summary.bytes["discovered"] = sum(f.size for f in incoming)
    summary.files["unreadable"] = len(unreadable)
    if unreadable:
        summary.errors_by_kind["unreadable"] = len(unreadable)
        for path, why in unreadable[:20]:
            log.warning("skipping unreadable input %s: %s", path, why)

    unique: dict[str, Candidate] = {}
    for cand in sorted(candidates, key=lambda c: (c.sha256, c.path)):
        unique.setdefault(cand.sha256, cand)  # in-day duplicates: the smallest path wins
    summary.files["duplicates_in_day"] = len(candidates) - len(unique)

    carried, known, stale = _split_base(spark, store, base, str(FEATURE_VERSION))
    new = [c for s, c in sorted(unique.items()) if s not in known and s not in stale]
    t = summary.mark("anti_join", t)
    summary.files["known"] = sum(1 for s in unique if s in known)
    summary.files["new"] = len(new)
    summary.files["reextracted"] = len(stale)
    to_extract = new + sorted(stale.values(), key=lambda c: c.sha256)
    summary.bytes["extracted"] = sum(c.size for c in to_extract)
    log.info(
        "files: %d discovered, %d unreadable, %d duplicates in day, %d already in the store, "
        "%d new, %d to re-extract (feature_version changed)",
        len(incoming),
        len(unreadable),
        summary.files["duplicates_in_day"],
        summary.files["known"],
        len(new),
        len(stale),
    )

    extracted, n_extracted = _extract(spark, to_extract, args, staged / "extracted", summary)
    t = summary.mark("extract", t)
    labels_state = _merge_labels(spark, store, base, args, date, summary)
    labels_state.write.mode("error").parquet(str(staged / "labels"))
    labels_state = spark.read.parquet(str(staged / "labels"))
    t = summary.mark("labels", t)

    corpus = _assemble(carried, extracted, labels_state)
    (
        corpus.repartition("ingest_date")
        .sortWithinPartitions("sha256")
        .write.mode("error")
        .partitionBy("ingest_date")
        .parquet(str(staged / "corpus"))
    )
    t = summary.mark("write", t)
    written = spark.read.option("basePath", str(staged / "corpus")).parquet(str(staged / "corpus"))
    written = written.withColumn("ingest_date", F.col("ingest_date").cast("string"))
    n_carried = len(known)
    manifest = _validate_and_describe(written, n_carried + n_extracted, args.max_error_share, summary)
    summary.files["rows"] = manifest["rows"]["total"]
    manifest["rows"].update({"carried": n_carried, "extracted": n_extracted})
    manifest["labels"]["known_labels"] = labels_state.count()
    summary.labels.update(manifest["labels"])
    _remove_tree(staged / "extracted")
    t = summary.mark("validate", t)

    manifest.update(
        {
            "date": date,
            "feature_version": str(FEATURE_VERSION),
            "binfeat_version": _binfeat_version(),
            "publish_id": publish_id,
            "run_id": args.run_id,
            "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "base_snapshot": summary.base_snapshot,
        }
    )
    summary.duration_s = round(time.monotonic() - t0, 3)
    summary.published = str(store.manifest_path(date))
    manifest["summary"] = summary.as_dict()
    store.publish(date, staged, manifest)
    summary.mark("publish", t)
    if args.keep:
        removed = store.apply_retention(args.keep)
        if any(removed.values()):
            log.info("retention (keep %d) removed %s", args.keep, json.dumps(removed, sort_keys=True))
    summary.duration_s = round(time.monotonic() - t0, 3)
    out = summary.as_dict()
    log.info("summary %s", json.dumps(out, sort_keys=True))
    if args.summary_out:
        with open(args.summary_out, "w", encoding="utf-8") as fh:
            json.dump(out, fh, indent=2, sort_keys=True)
    if args.statsd_host:
        from jobs.corpus_metrics import send_summary

        sent = send_summary(out, args.statsd_host, args.statsd_port, args.statsd_prefix)
        log.info("sent %d StatsD metrics to %s:%s", sent, args.statsd_host, args.statsd_port)
    return out


def _discover(args: argparse.Namespace) -> list:
    from jobs.inputs import InputError, list_inputs

    try:
        return list_inputs(args.incoming, s3_endpoint_url=args.s3_endpoint_url)
    except InputError as exc:
        if args.allow_missing_incoming:
            log.warning("no incoming files for %s: %s", args.date, exc)
            return []
        raise


# --- hashing before extraction --------------------------------------------------------------------


def sha256_of(path: str, s3_endpoint_url: str | None = None) -> tuple[str | None, str | None]:
    """(sha256, None) or (None, why): one read of the file, streamed (SHA-NI makes this cheap)."""
    try:
        if path.startswith("s3://"):
            from jobs.s3 import fetch, s3_client

            got = fetch(path, s3_client(s3_endpoint_url))
            if got.error:
                return None, got.error
            try:
                if got.content is not None:
                    return hashlib.sha256(got.content).hexdigest(), None
                with open(got.local_path, "rb") as fh:  # type: ignore[arg-type]
                    return hashlib.file_digest(fh, "sha256").hexdigest(), None
            finally:
                got.cleanup()
        with open(path, "rb") as fh:
            return hashlib.file_digest(fh, "sha256").hexdigest(), None
    except OSError as exc:
        return None, f"cannot read: {exc.strerror or exc}"


def _hash_partition(paths, s3_endpoint_url: str | None = None):
    for path in paths:
        digest, why = sha256_of(path, s3_endpoint_url)
        yield path, digest, why


def _hash_inputs(spark, inputs: list, s3_endpoint_url: str | None, date: str):
    """Candidates with a sha256 each, plus (path, why) of inputs that cannot be read.

    A manifest's sha256 is trusted (lower-cased); other files are hashed on the executors so the
    driver never reads the corpus, and already-known files are skipped before extraction.
    """
    import functools

    unreadable = [(f.path, f.error) for f in inputs if f.error]
    readable = [f for f in inputs if not f.error]
    given = {f.path: f.sha256.lower() for f in readable if f.sha256 and len(f.sha256) == 64}
    todo = [f.path for f in readable if f.path not in given]
    hashed: dict[str, str] = {}
    if todo:
        slices = max(1, min(len(todo), spark.sparkContext.defaultParallelism * 3))
        fn = functools.partial(_hash_partition, s3_endpoint_url=s3_endpoint_url)
        for path, digest, why in spark.sparkContext.parallelize(todo, slices).mapPartitions(fn).collect():
            if digest is None:
                unreadable.append((path, why))
            else:
                hashed[path] = digest
    cands = [
        Candidate(f.path, f.size, given.get(f.path) or hashed[f.path], date)
        for f in readable
        if f.path in given or f.path in hashed
    ]
    return cands, sorted(unreadable)


# --- the previous snapshot ------------------------------------------------------------------------


def _split_base(spark, store: CorpusStore, base: dict | None, feature_version: str):
    """(carried rows DataFrame or None, known sha256 set, stale sha256 -> Candidate).

    Carried rows are the base's rows of the current feature_version, without their labels (the
    label state is joined again). The known set is collected: one day's anti-join needs only a
    set lookup, and a corpus of ten million samples is ~700 MB of hex on the driver at worst.
    """
    if base is None:
        return None, set(), {}
    from pyspark.sql import functions as F

    path = str(store.resolve(base, "corpus_path"))
    # Partition discovery reads "2026-11-20" as a date: back to the string the job writes.
    rows = spark.read.option("basePath", path).parquet(path)
    rows = rows.withColumn("ingest_date", F.col("ingest_date").cast("string"))
    rows = rows.drop(*[c for c in LABEL_OUTPUT_COLUMNS if c in rows.columns])
    carried = rows.filter(F.col("feature_version") == feature_version)
    known = {r.sha256 for r in carried.select("sha256").collect()}
    stale: dict[str, Candidate] = {}
    for r in (
        rows.filter(F.col("feature_version") != feature_version)
        .select("sha256", "path", "size", "ingest_date")
        .collect()
    ):
        stale[r.sha256] = Candidate(r.path, int(r.size or 0), r.sha256, str(r.ingest_date), stale=True)
    return carried, known, stale


# --- extraction -----------------------------------------------------------------------------------


def _extract(spark, todo: list[Candidate], args: argparse.Namespace, out, summary: Summary):
    """Extract ``todo`` once into a staging Parquet (so later actions never re-run extraction)."""
    summary.files["extracted"] = 0
    if not todo:
        return None, 0
    from pyspark.sql import functions as F

    from jobs.extract_features import features_dataframe
    from jobs.inputs import InputFile

    inputs = [InputFile(c.path, c.size, sha256=c.sha256) for c in todo]
    df = features_dataframe(spark, inputs, s3_endpoint_url=args.s3_endpoint_url, partitions=args.partitions)
    if "label" in df.columns:  # a manifest's label column: labels come from the labels feed only
        df = df.drop("label")
    meta = spark.createDataFrame(
        [(c.path, c.sha256, c.ingest_date) for c in todo],
        "_path string, _expected_sha256 string, ingest_date string",
    )
    df = df.join(F.broadcast(meta), df["path"] == meta["_path"], "left")
    df.write.mode("error").parquet(str(out))
    done = spark.read.parquet(str(out))
    good = F.col("sha256").isNotNull() & (F.col("sha256") == F.col("_expected_sha256"))
    kind = F.when(F.col("status") == "ok", F.lit("")).otherwise(
        F.regexp_extract(F.coalesce(F.col("error"), F.lit("")), r"^\s*([A-Za-z0-9_.-]{1,40})", 1)
    )
    stats = done.groupBy("status", kind.alias("kind"), good.alias("good")).count().collect()  # one pass
    kept = 0
    for r in stats:
        n = int(r["count"])
        summary.status[r["status"]] = summary.status.get(r["status"], 0) + n
        if r["status"] != "ok":
            k = r["kind"] or "other"
            summary.errors_by_kind[k] = summary.errors_by_kind.get(k, 0) + n
        if r["good"]:
            kept += n
    summary.status = dict(sorted(summary.status.items()))
    summary.files["extracted"] = sum(summary.status.values())
    changed = summary.files["extracted"] - kept
    if changed:
        summary.errors_by_kind["changed_since_hashed"] = changed
        log.warning("%d file(s) changed between hashing and extraction: left out of the snapshot", changed)
    errors = summary.status.get("error", 0)
    summary.error_share = round(errors / summary.files["extracted"], 6) if summary.files["extracted"] else 0.0
    return done.filter(good).drop("_path", "_expected_sha256"), kept


# --- labels ---------------------------------------------------------------------------------------


def _merge_labels(
    spark, store: CorpusStore, base: dict | None, args: argparse.Namespace, date: str, summary: Summary
):
    """The label state on ``date``: the base's labels overlaid by today's feed, newest wins.

    Ties within one day are broken deterministically (first_seen, source, label, family, all
    descending), so a re-run picks the same label.
    """
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    from jobs.corpus_labels import labels_schema, read_labels, split_valid

    schema = (
        "sha256 string, label string, family string, label_source string,"
        " first_seen string, label_date string"
    )
    feed_rows = 0
    invalid = 0
    today = spark.createDataFrame([], schema)
    if args.labels:
        table = read_labels(
            args.labels, s3_endpoint_url=args.s3_endpoint_url, allow_missing=args.allow_missing_labels
        )
        feed_rows = table.num_rows
        table, invalid = split_valid(table)
        if invalid:
            log.warning("labels feed: %d row(s) without a valid sha256 or label were dropped", invalid)
        if table.num_rows:
            rows = [
                (r["sha256"], r["label"], r["family"], r["source"], r["first_seen"], date)
                for r in table.select(list(labels_schema().names)).to_pylist()
            ]
            today = spark.createDataFrame(rows, schema)
    summary.labels.update({"feed_rows": feed_rows, "invalid": invalid})
    state = today
    if base is not None:
        prev = spark.read.parquet(str(store.resolve(base, "labels_path")))
        state = prev.select(*today.columns).unionByName(today)
    order = [
        F.col(c).desc_nulls_last() for c in ("label_date", "first_seen", "label_source", "label", "family")
    ]
    ranked = state.withColumn("_rank", F.row_number().over(Window.partitionBy("sha256").orderBy(*order)))
    return ranked.filter("_rank = 1").drop("_rank").repartition(1).sortWithinPartitions("sha256")


def _assemble(carried, extracted, labels_state):
    """Carried rows plus newly extracted rows, with the label state joined by sha256."""
    frames = [f for f in (carried, extracted) if f is not None]
    if not frames:
        raise ValidationError("the corpus would be empty: no earlier snapshot and no readable incoming files")
    rows = frames[0]
    for other in frames[1:]:
        rows = rows.unionByName(other, allowMissingColumns=True)
    cols = [c for c in rows.columns if c != "ingest_date"]
    return rows.join(labels_state, "sha256", "left").select(*cols, *LABEL_OUTPUT_COLUMNS, "ingest_date")


# --- validation -----------------------------------------------------------------------------------


def _required_columns() -> list[str]:
    names = list(CONTRACT_COLUMNS)
    try:
        from extract import output_schema

        names += [n for n in output_schema().names if n not in names]
    except ImportError:
        pass
    return [*names, *LABEL_OUTPUT_COLUMNS, "ingest_date"]


def content_digest(df) -> str:
    """An order-independent digest of every value of every row: equal data, equal digest."""
    from pyspark.sql import functions as F

    cols = sorted(df.columns)
    h = F.sha2(F.to_json(F.struct(*[F.col(c) for c in cols])), 256)
    agg = (
        df.select(F.conv(F.substring(h, 1, 15), 16, 10).cast("decimal(38,0)").alias("h"))
        .agg(F.count("*").alias("n"), F.sum("h").alias("s"))
        .collect()[0]
    )
    return f"{agg['n']}:{agg['s'] or 0}"


def _validate_and_describe(df, expected_rows: int, max_error_share: float, summary: Summary) -> dict:
    """Check the staged corpus and return the manifest's data-describing part. Raises ValidationError."""
    from pyspark.sql import functions as F

    missing = [c for c in _required_columns() if c not in df.columns]
    if missing:
        raise ValidationError(f"snapshot schema lacks column(s): {', '.join(missing)}")
    agg = df.agg(
        F.count("*").alias("rows"),
        F.countDistinct("sha256").alias("distinct"),
        F.sum(F.col("sha256").isNull().cast("int")).alias("null_sha"),
        F.sum((F.col("feature_version") != summary.feature_version).cast("int")).alias("other_fv"),
        F.sum(F.col("label").isNotNull().cast("int")).alias("labelled"),
    ).collect()[0]
    rows = int(agg["rows"])
    if rows != expected_rows:
        raise ValidationError(f"snapshot has {rows} rows, expected {expected_rows}")
    if agg["null_sha"]:
        raise ValidationError(f"{agg['null_sha']} row(s) without sha256")
    if int(agg["distinct"]) != rows:
        raise ValidationError(f"{rows - int(agg['distinct'])} duplicate sha256 value(s)")
    if agg["other_fv"]:
        raise ValidationError(
            f"{agg['other_fv']} row(s) with a feature_version other than {summary.feature_version}"
        )
    if summary.error_share > max_error_share:
        raise ValidationError(
            f"{summary.error_share:.1%} of extracted rows have status 'error', above the "
            f"{max_error_share:.1%} threshold (--max-error-share)"
        )
    groups = df.groupBy("ingest_date", "status", "label").count().collect()  # one pass for all three
    parts: dict[str, int] = {}
    by_status: dict[str, int] = {}
    by_label: dict[str, int] = {}
    for r in groups:
        n = int(r["count"])
        parts[str(r["ingest_date"])] = parts.get(str(r["ingest_date"]), 0) + n
        by_status[r["status"]] = by_status.get(r["status"], 0) + n
        if r["label"] is not None:
            by_label[r["label"]] = by_label.get(r["label"], 0) + n
    labelled = int(agg["labelled"] or 0)
    return {
        "format": "binfeat-corpus-snapshot/1",
        "rows": {"total": rows, "by_status": dict(sorted(by_status.items()))},
        "partitions": [
            {"ingest_date": d, "rows": n, "path": f"ingest_date={d}"} for d, n in sorted(parts.items())
        ],
        "labels": {
            "labelled_rows": labelled,
            "coverage": round(labelled / rows, 6) if rows else 0.0,
            "by_label": dict(sorted(by_label.items())),
        },
        "columns": list(df.columns),
        "content_digest": content_digest(df),
    }


# --- helpers --------------------------------------------------------------------------------------


def _binfeat_version() -> str:
    try:
        from importlib.metadata import version

        return version("binfeat")
    except Exception:
        return "0.1.0"


def _remove_tree(path) -> None:
    import shutil

    shutil.rmtree(path, ignore_errors=True)


if __name__ == "__main__":
    # spark-submit runs this file as a script: make the package importable, then run it as
    # jobs.corpus_update so that functions shipped to executors are found by module name.
    # (sys.path[0] is jobs/ itself, whose s3.py, session.py... would shadow other modules).
    _here = os.path.dirname(os.path.abspath(__file__))
    _root = os.path.dirname(_here)
    sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != _here]
    if _root not in sys.path:
        sys.path.insert(0, _root)
    from jobs.corpus_update import main as _main

    sys.exit(_main(sys.argv[1:]))
