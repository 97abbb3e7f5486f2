"""``binfeat corpus update | read | maintain``: argument parsers and entry points.

A bad argument gets one line saying what is wrong and exit code 2, before Spark or the local engine
starts (the engine options by :func:`jobs.engine.check_engine`, as for ``binfeat extract``); a night
that fails gets one line and exit code 1 (nothing committed). The parsers import no pyspark, so an
Airflow operator can validate its arguments with them.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import threading
import time

from jobs.arg_types import positive_int, share
from jobs.engine import ENGINES, LOCAL_MAX_FILES, check_engine
from jobs.session import under_spark_submit

EXIT_FAILED = 1
EXIT_USAGE = 2
log = logging.getLogger("binfeat.corpus_update")


class UsageError(Exception):
    """A bad argument: one line, exit 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):
        raise UsageError(message)


def date_argument(text: str) -> str:
    """An argparse type: a YYYY-MM-DD date (one line when it is not)."""
    from jobs.corpus.tags import DateError, check_date

    try:
        return check_date(text)
    except DateError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _checked(field: str):
    """An argparse type that runs the store's own check of one setting (one line when it fails)."""

    def check(text: str) -> str:
        from jobs.corpus.catalog import StoreConfig, StoreError, check_config

        probe = {"store": "/probe", "catalog": None, field: text}
        if field == "catalog":
            probe["store"] = None
        try:
            check_config(StoreConfig(**probe))
        except StoreError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None
        return text

    return check


def add_store_arguments(p: argparse.ArgumentParser, *, required: bool = True) -> None:
    """The store's options (--store | --catalog, --warehouse, --namespace, --s3-endpoint-url), each
    checked as it is parsed; also used by ``binfeat matrix`` and ``binfeat vectorize``."""
    g = p.add_argument_group("the store (one of --store or --catalog)")
    which = g.add_mutually_exclusive_group(required=required)
    which.add_argument("--store", metavar="DIR", type=_checked("store"),
                       help="folder of the embedded catalog (SQLite catalog.db + warehouse/)")  # fmt: skip
    which.add_argument("--catalog", metavar="NAME", type=_checked("catalog"), help="a pyiceberg catalog "
                       "configured in .pyiceberg.yaml or PYICEBERG_CATALOG__NAME__* variables")  # fmt: skip
    g.add_argument("--warehouse", metavar="URI", type=_checked("warehouse"),
                   help="where new tables' files go: s3://bucket/prefix or a path (default: the catalog's; "
                        "DIR/warehouse for --store)")  # fmt: skip
    g.add_argument("--namespace", default="binfeat", type=_checked("namespace"),
                   help="namespace of the features and labels tables (default binfeat)")
    g.add_argument("--s3-endpoint-url", metavar="URL", type=_checked("s3_endpoint_url"),
                   help="S3-compatible endpoint (MinIO, moto) for inputs, feeds and the warehouse; credentials come "
                        "from the environment or pyiceberg's configuration, never from the command line")  # fmt: skip


def build_parser() -> argparse.ArgumentParser:
    """The parser of ``binfeat corpus update`` (and of ``spark-submit jobs/corpus_update.py``)."""
    p = _Parser(
        prog="binfeat corpus update",
        description="Append one day's new binaries to the corpus's Iceberg tables, upsert the day's labels and "
        "publish the corpus as of that day (tag corpus-DATE).",
    )
    p.add_argument("--date", required=True, type=date_argument, help="logical date YYYY-MM-DD (the ingest date of new files)")
    p.add_argument("--incoming", required=True, help="the day's files: a folder, a manifest "
                   "(.jsonl/.csv/.parquet) or s3://bucket/prefix")
    add_store_arguments(p)
    p.add_argument("--labels", help="the day's labels feed: a .jsonl/.csv/.parquet file, a folder or s3:// prefix")
    p.add_argument("--allow-missing-labels", action="store_true",
                   help="a missing labels feed means no new labels today instead of an error")  # fmt: skip
    p.add_argument("--allow-missing-incoming", action="store_true",
                   help="a missing incoming location means no new files today instead of an error")  # fmt: skip
    p.add_argument("--max-error-share", type=share, default=0.1,
                   help="fail when more than this share of extracted rows has status 'error' (default 0.1)")
    p.add_argument("--run-id", default="manual", help="caller's run id (Airflow's run_id), on every log line and row")
    p.add_argument("--master", help="Spark master when not launched by spark-submit (default local[*]); "
                   "implies the Spark engine")  # fmt: skip
    p.add_argument("--engine", choices=ENGINES, default="auto",
                   help="local: a pool of processes on this machine, no JVM; spark: Spark; auto (default): Spark "
                   f"when --master is given or under spark-submit, else local up to {LOCAL_MAX_FILES:,} incoming "
                   "files and 1 GiB, Spark above (the rule of binfeat extract)")  # fmt: skip
    p.add_argument("--workers", type=positive_int, metavar="N",
                   help="the local engine's worker processes (default: up to one per core, as many as the new "
                   "files pay for); when auto picks Spark, its master is local[N]")  # fmt: skip
    p.add_argument("--partitions", type=positive_int, help="extraction partitions (default: planned from sizes)")
    p.add_argument("--summary-out", help="also write the run summary JSON to this file")
    p.add_argument("--statsd-host", help="send summary metrics to this StatsD host (off when unset)")
    p.add_argument("--statsd-port", type=positive_int, default=8125)
    p.add_argument("--statsd-prefix", default="binfeat.corpus")
    return p


def build_read_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="binfeat corpus read",
                description="Write the corpus as of a date (features joined with labels) to one Parquet file.")
    p.add_argument("out", metavar="OUT", help="Parquet file to write (replaced atomically)")
    p.add_argument("--as-of", required=True, type=date_argument, metavar="DATE", help="a published date YYYY-MM-DD")
    p.add_argument("--columns", type=lambda s: [c.strip() for c in s.split(",") if c.strip()],
                   help="comma-separated columns (feature columns and label, family, label_source, first_seen, "
                        "label_updated_at); default: all")  # fmt: skip
    add_store_arguments(p)
    return p


def build_maintain_parser() -> argparse.ArgumentParser:
    from jobs.corpus.maintenance import DEFAULTS

    p = _Parser(prog="binfeat corpus maintain",
                description="Expire old dates and snapshots, remove orphan files, compact past partitions.")
    add_store_arguments(p)
    p.add_argument("--keep-days", type=positive_int, default=DEFAULTS["keep_days"],
                   help="keep the tags (dates) and snapshots of this many days (default %(default)s)")  # fmt: skip
    p.add_argument("--orphan-age-hours", type=float, default=DEFAULTS["orphan_age_hours"],
                   help="remove unreferenced files older than this "
                   "(default %(default)s; protects running nights)")
    p.add_argument("--no-compact", dest="compact", action="store_false", help="skip compaction")
    return p


def store_config(args: argparse.Namespace):
    """The StoreConfig of parsed store options (StoreError when they do not make a store)."""
    from jobs.corpus.catalog import StoreConfig, check_config

    cfg = StoreConfig(store=args.store, catalog=args.catalog, warehouse=args.warehouse, namespace=args.namespace,
                      s3_endpoint_url=args.s3_endpoint_url)  # fmt: skip
    check_config(cfg)
    return cfg


def _usage(prog: str, message: str) -> int:
    print(f"{prog}: error: {message}", file=sys.stderr)
    return EXIT_USAGE


def _failed(prog: str, exc: BaseException) -> int:
    print(f"{prog}: failed: {' '.join(str(exc).split())[:500] or type(exc).__name__}", file=sys.stderr)
    return EXIT_FAILED


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
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s run_id=%(run_id)s: %(message)s"))
    log.handlers[:] = [handler]
    log.setLevel(logging.INFO)
    log.propagate = False


def _exit_with_spark_submit() -> None:
    """Stop at once when spark-submit dies (the operator's on_kill kills it, not this process).

    Under spark-submit the Python driver is a child of the submit JVM; once it is gone, this
    process exits before it could commit anything.
    """
    if "PYSPARK_GATEWAY_PORT" not in os.environ:
        return
    parent = os.getppid()

    def watch() -> None:
        while True:
            time.sleep(1.0)
            if os.getppid() != parent:
                log.error("spark-submit (pid %d) is gone: stopping, nothing committed", parent)
                os._exit(143)

    threading.Thread(target=watch, name="binfeat-parent-watch", daemon=True).start()


def update_main(argv: list[str]) -> int:
    """``binfeat corpus update``; returns the exit code."""
    prog = "binfeat corpus update"
    try:
        args = build_parser().parse_args(argv)
        check_engine(args.engine, master=args.master, workers=args.workers, submitted=under_spark_submit())
        store_config(args)
        from jobs.corpus.extraction import InputError, check_spec

        if not args.allow_missing_incoming:
            check_spec(args.incoming)
    except (UsageError, ValueError) as exc:
        return _usage(prog, str(exc))
    except Exception as exc:  # StoreError, InputError: the store or the input is unusable as given
        return _usage(prog, str(exc))
    _configure_logging(args.run_id)
    _exit_with_spark_submit()
    from jobs.corpus.night import run_night

    try:
        summary = run_night(args)
    except (InputError, RuntimeError, ValueError, OSError) as exc:
        log.error("corpus update for %s failed, nothing committed: %s", args.date, " ".join(str(exc).split()))
        return _failed(prog, exc)
    log.info("published corpus-%s: %s rows", args.date, summary["files"].get("rows"))
    return 0


def read_main(argv: list[str]) -> int:
    """``binfeat corpus read --as-of D OUT``."""
    prog = "binfeat corpus read"
    try:
        args = build_read_parser().parse_args(argv)
        cfg = store_config(args)
    except (UsageError, ValueError, RuntimeError) as exc:
        return _usage(prog, str(exc))
    from jobs.corpus.read import write_as_of

    try:
        done = write_as_of(args.as_of, args.out, cfg=cfg, columns=args.columns)
    except (RuntimeError, ValueError, OSError) as exc:
        return _failed(prog, exc)
    print(f"{prog}: {done['rows']} rows as of {done['date']} written to {done['out']}", file=sys.stderr)
    return 0


def maintain_main(argv: list[str]) -> int:
    """``binfeat corpus maintain``."""
    import json

    prog = "binfeat corpus maintain"
    try:
        args = build_maintain_parser().parse_args(argv)
        cfg = store_config(args)
    except (UsageError, ValueError, RuntimeError) as exc:
        return _usage(prog, str(exc))
    from jobs.corpus.maintenance import maintain_store

    try:
        report = maintain_store(store=cfg.store, catalog=cfg.catalog, warehouse=cfg.warehouse,
                                namespace=cfg.namespace, s3_endpoint_url=cfg.s3_endpoint_url, keep_days=args.keep_days,
                                orphan_age_hours=args.orphan_age_hours, compact=args.compact)  # fmt: skip
    except (RuntimeError, ValueError, OSError) as exc:
        return _failed(prog, exc)
    print(json.dumps(report, indent=2, sort_keys=True))
    return 0
