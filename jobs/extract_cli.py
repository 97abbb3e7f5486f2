"""``binfeat extract``'s command line: arguments, their checks, and one line per failure.

Bad arguments, an unusable INPUT, OUTPUT or master get one line on stderr and exit code 2, before
Spark starts; a job that fails gets one line and exit code 1; a finished job prints its summary
(JSON on stdout, a few lines for people on stderr).
"""

from __future__ import annotations

import argparse
import json
import sys
import time

from jobs.arg_types import conf_pair, positive_float, positive_int
from jobs.engine import ENGINES, LOCAL_MAX_FILES, EngineError, check_engine, choose_engine
from jobs.inputs import InputError, list_inputs
from jobs.output import OutputError, check_output
from jobs.planning import DEFAULT_PER_FILE_COST
from jobs.session import MasterError, check_master, under_spark_submit

EXIT_USAGE = 2
EXIT_FAILED = 1


class _Parser(argparse.ArgumentParser):
    """argparse that reports a bad argument as ONE line and exit code 2 (no usage block)."""

    def error(self, message: str):
        raise UsageError(message)


class UsageError(Exception):
    """A bad argument; its message is the one line to print."""


def _size(text: str) -> int:
    units = {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3}
    t = text.strip().lower().removesuffix("b").removesuffix("i")
    num, unit = (t[:-1], t[-1]) if t and t[-1] in "kmg" else (t, "")
    try:
        value = int(float(num) * units[unit])
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a size like 65536, 64k or 1m, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a size >= 0, got {text!r}")
    return value


def build_parser(prog: str = "binfeat extract") -> argparse.ArgumentParser:
    p = _Parser(
        prog=prog,
        description="Extract one feature row per executable file of INPUT into a Parquet dataset at OUTPUT, "
        "with a local process pool for small inputs or with Spark (see --engine). Failures become rows with "
        "status 'error'.",
        epilog="S3 credentials come from boto3's standard chain (AWS_* environment variables, a profile, "
        "an instance role), never from the command line. A run summary is written to OUTPUT.summary.json "
        "and printed at the end. A file name that is not UTF-8 appears in the 'path' column as text: "
        "bytes that are not UTF-8 as \\xNN, a backslash as \\\\ (extract.path_bytes turns it back).",
    )
    p.add_argument(
        "input",
        metavar="INPUT",
        help="a directory: EVERY file below it, recursively, whatever it is (a corpus folder's own "
        "manifest.jsonl or README too: choose with --include/--exclude); a file; a glob (quote it); a "
        "manifest (.jsonl/.ndjson/.csv/.parquet with a 'path' column and optional 'sha256', 'label', "
        "'size': exactly the files it lists); or s3://bucket/prefix (every object under it)",
    )
    p.add_argument(
        "output",
        metavar="OUTPUT",
        help="Parquet dataset directory to create or replace atomically (a previous binfeat output only)",
    )
    p.add_argument(
        "--master",
        default=None,
        help="Spark master: local[N], local[N,F], spark://HOST:PORT, yarn or k8s://URL (default: local[*,4], "
        "or spark-submit's); a local master without F gets 4 attempts per task (local[2] runs as local[2,4])",
    )
    p.add_argument(
        "--engine",
        choices=ENGINES,
        default="auto",
        help=f"local: a pool of processes on this machine, no JVM (starts in about a second); spark: Spark; auto "
        f"(default): Spark when --master or --conf is given or under spark-submit, else local up to "
        f"{LOCAL_MAX_FILES:,} files and 1 GiB, Spark above",
    )
    p.add_argument(
        "--workers",
        type=positive_int,
        default=None,
        metavar="N",
        help="the local engine's worker processes (default: up to one per core, one per ~2 CPU-s of estimated "
        "work); when auto picks Spark, its master is local[N]",
    )
    p.add_argument(
        "--input-type",
        choices=("auto", "files", "manifest"),
        default="auto",
        help="how to read INPUT: auto (manifests recognised by suffix), files (never a manifest), manifest",
    )
    p.add_argument(
        "--include",
        action="append",
        default=[],
        metavar="GLOB",
        help="extract only files matching GLOB (repeatable; any one matches): a shell glob matched against "
        "the path relative to the INPUT folder (or S3 prefix) and against the file name, e.g. '*.dll' or "
        "'bin/*'; not with a manifest",
    )
    p.add_argument(
        "--exclude",
        action="append",
        default=[],
        metavar="GLOB",
        help="skip files matching GLOB (repeatable), matched like --include, e.g. manifest.jsonl or '*.md'",
    )
    p.add_argument(
        "--no-follow-symlinks",
        dest="follow_symlinks",
        action="store_false",
        help="do not follow symbolic links (each becomes an error row); by default they are followed and "
        "a file reachable by several names is extracted once",
    )
    p.add_argument(
        "--dedupe",
        action="store_true",
        help="keep one row per sha256 (the smallest path); rows without sha256 are all kept",
    )
    p.add_argument(
        "--s3-endpoint-url",
        default=None,
        metavar="URL",
        help="endpoint of an S3-compatible store (MinIO, moto, ...); default: AWS",
    )
    p.add_argument(
        "--partitions",
        type=positive_int,
        default=None,
        metavar="N",
        help="number of Spark partitions (default: about 3 per core, sized by bytes)",
    )
    p.add_argument(
        "--per-file-cost",
        type=_size,
        default=DEFAULT_PER_FILE_COST,
        metavar="BYTES",
        help=f"bytes-equivalent charged per file when balancing partitions (default {DEFAULT_PER_FILE_COST})",
    )
    p.add_argument(
        "--parse-timeout",
        type=positive_float,
        default=None,
        metavar="SECONDS",
        help="give up parsing one file after this long (extract's default otherwise)",
    )
    p.add_argument(
        "--memory-limit-mb",
        type=positive_int,
        default=None,
        metavar="MB",
        help="address space one structural parse may take in the isolated parser worker (extract's default otherwise)",
    )
    p.add_argument(
        "--max-structural-bytes",
        type=_size,
        default=None,
        metavar="BYTES",
        help="files larger than this get byte-level features only (extract's default otherwise)",
    )
    p.add_argument(
        "--fuzzy-hashes",
        type=_fuzzy_list,
        default=None,
        metavar="NAMES",
        help="comma-separated fuzzy hashes to compute: tlsh, ssdeep (default none: they are the costliest part)",
    )
    p.add_argument(
        "--scheme",
        default=None,
        metavar="NAME",
        help="the vector: binfeat (every group's own, the default) or ember2 (EMBER v2's 2,381 floats); "
        "binfeat vectorize re-vectorises a stored output without reading the files again",
    )
    p.add_argument(
        "--groups",
        type=_name_list,
        default=None,
        metavar="NAMES",
        help="comma-separated feature groups to compute (default all; `binfeat layout` lists them), e.g. "
        "byte_histogram,byte_entropy_histogram,strings (no parsing at all) or the pe_* groups for a PE corpus",
    )
    p.add_argument(
        "--run-id",
        default=None,
        help="an external run id (e.g. Airflow's) recorded in the summary; default: $AIRFLOW_CTX_DAG_RUN_ID",
    )
    p.add_argument(
        "--conf",
        action="append",
        type=conf_pair,
        default=[],
        metavar="KEY=VALUE",
        help="extra Spark configuration (repeatable); never put secrets here",
    )
    p.add_argument(
        "--progress-interval",
        type=positive_float,
        default=5.0,
        metavar="SECONDS",
        help="seconds between progress lines on stderr (default 5)",
    )
    p.add_argument("--quiet", action="store_true", help="no progress lines (the summary is still printed)")
    return p


def _fuzzy_list(text: str) -> tuple[str, ...]:
    names = tuple(n.strip() for n in text.split(",") if n.strip())
    bad = sorted(set(names) - {"tlsh", "ssdeep"})
    if bad:
        raise argparse.ArgumentTypeError(f"unknown fuzzy hash {bad[0]!r}: choose from tlsh, ssdeep")
    return names


def _name_list(text: str) -> tuple[str, ...]:
    names = tuple(n.strip() for n in text.split(",") if n.strip())
    if not names:
        raise argparse.ArgumentTypeError(f"expected comma-separated group names, got {text!r}")
    return names


_OPTION_FLAGS = {
    "parse_timeout_s": "--parse-timeout",
    "memory_limit_mb": "--memory-limit-mb",
    "max_structural_bytes": "--max-structural-bytes",
    "fuzzy_hashes": "--fuzzy-hashes",
}


def options_from_args(args: argparse.Namespace):
    """ExtractOptions from the flags that were given (extract's defaults for the others).

    ExtractOptions validates its values (e.g. a memory limit below what a parse needs); its
    ValueError becomes one line naming the flag.
    """
    wanted = {
        "parse_timeout_s": args.parse_timeout,
        "memory_limit_mb": args.memory_limit_mb,
        "max_structural_bytes": args.max_structural_bytes,
        "fuzzy_hashes": args.fuzzy_hashes,
        "scheme": getattr(args, "scheme", None),
        "groups": getattr(args, "groups", None),
    }
    wanted = {k: v for k, v in wanted.items() if v is not None}
    if not wanted:
        return None
    import extract

    try:
        return extract.ExtractOptions(**wanted)
    except ValueError as exc:
        from extract.schemes import SchemeError

        if isinstance(exc, SchemeError):  # --scheme / --groups: the message says what to choose
            raise UsageError(str(exc)) from None
        text = str(exc)
        for field, flag in _OPTION_FLAGS.items():
            text = text.replace(field, flag)
        raise UsageError(f"{text}: give a larger value (or leave the option out for the default)") from None


def _prestart_if_local(engine: str, options, master: str | None, conf: dict, submitted: bool) -> None:
    """Start the local engine's first process while INPUT is listed, when the local engine may run."""
    if engine == "spark" or (engine == "auto" and (master or conf or submitted)):
        return
    from jobs.local_engine import prestart

    prestart(options)


def _discard_spares() -> None:
    if "jobs.local_engine" in sys.modules:
        from jobs.local_engine import discard_spares

        discard_spares()


def main(argv: list[str] | None = None) -> int:
    """CLI entry point; returns the exit code (0 ok, 1 job failed, 2 bad arguments or input)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        return _main(argv)
    finally:
        _discard_spares()  # a local engine process started ahead that no run took


def _main(argv: list[str]) -> int:
    try:
        try:
            args = build_parser().parse_args(argv)
        except SystemExit as exc:  # --help
            return int(exc.code or 0)
        options = options_from_args(args)
        conf = dict(args.conf)
        submitted = under_spark_submit()
        check_engine(args.engine, master=args.master, conf=conf, workers=args.workers, submitted=submitted)
        check_master(args.master)
        check_output(args.output)
        if args.s3_endpoint_url and not args.s3_endpoint_url.startswith(("http://", "https://")):
            raise UsageError(f"--s3-endpoint-url must start with http:// or https://, got {args.s3_endpoint_url!r}")
        _prestart_if_local(args.engine, options, args.master, conf, submitted)
        t0 = time.monotonic()
        inputs = list_inputs(
            args.input,
            follow_symlinks=args.follow_symlinks,
            s3_endpoint_url=args.s3_endpoint_url,
            input_type=args.input_type,
            include=args.include,
            exclude=args.exclude,
        )
        listing_s = time.monotonic() - t0
        if not inputs:
            raise InputError(f"no input files found in {args.input}")
    except (UsageError, InputError, OutputError, MasterError, EngineError) as exc:
        print(f"binfeat extract: error: {exc}", file=sys.stderr)
        return EXIT_USAGE

    from jobs.progress import format_progress
    from jobs.run import run

    def show(p: dict) -> None:
        print(format_progress(p), file=sys.stderr, flush=True)

    n_bytes = sum(f.size for f in inputs)
    engine = choose_engine(
        args.engine, n_files=len(inputs), n_bytes=n_bytes, master=args.master, conf=conf, submitted=submitted
    )
    if engine != "local":
        _discard_spares()
    print(
        f"binfeat extract: {len(inputs)} files, {n_bytes / 1e6:.1f} MB listed ({engine} engine)",
        file=sys.stderr,
        flush=True,
    )
    try:
        summary = run(
            args.input,
            args.output,
            engine=args.engine,
            workers=args.workers,
            master=args.master,
            options=options,
            s3_endpoint_url=args.s3_endpoint_url,
            follow_symlinks=args.follow_symlinks,
            input_type=args.input_type,
            dedupe=args.dedupe,
            partitions=args.partitions,
            per_file_cost=args.per_file_cost,
            airflow_run_id=args.run_id,
            conf=conf,
            progress=None if args.quiet else show,
            progress_interval=args.progress_interval,
            inputs=inputs,
            listing_s=listing_s,
        )
    except (InputError, OutputError) as exc:
        print(f"binfeat extract: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except Exception as exc:
        first = " ".join(str(exc).split())[:500] or type(exc).__name__
        print(f"binfeat extract: failed: {type(exc).__name__}: {first}", file=sys.stderr)
        return EXIT_FAILED
    if not args.quiet:
        from jobs.summary import human_summary

        sys.stderr.write(human_summary(summary))
    print(json.dumps(summary, indent=2, sort_keys=True))
    return 0
