"""``binfeat vectorize`` and ``binfeat matrix``: stored features to model inputs, without the binaries.

The features are FEATURES (a Parquet file or dataset, e.g. ``binfeat extract``'s output) or the
corpus store as of a date (``--store DIR | --catalog NAME --as-of DATE``: the rows of ``binfeat
corpus read --as-of DATE``, read in batches). Bad arguments, an unusable FEATURES, store or OUT, or
rows that cannot give the scheme asked for get one line on stderr and exit code 2, before any work
(and before Spark) starts.
"""

from __future__ import annotations

import argparse
import json
import sys

from jobs.arg_types import conf_pair

EXIT_USAGE = 2
EXIT_FAILED = 1


class _Parser(argparse.ArgumentParser):
    """argparse that reports a bad argument as ONE line and exit code 2 (no usage block)."""

    def error(self, message: str):
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}\n")


def _scheme_arg(p: argparse.ArgumentParser) -> None:
    from extract.schemes import DEFAULT, SCHEMES

    p.add_argument("--scheme", choices=SCHEMES, default=DEFAULT,
                   help="binfeat: every group's own vector (the default); ember2: EMBER v2's 2,381 floats")


class _Usage(Exception):
    """A bad combination of arguments: one line, exit 2."""


def _input_arguments(p: argparse.ArgumentParser) -> None:
    """FEATURES, or the store's options with --as-of (the store's own parsing and checks)."""
    from jobs.corpus.cli import add_store_arguments, date_argument

    p.add_argument("features", metavar="FEATURES", nargs="?",
                   help="a Parquet file or dataset folder of feature rows (or give --store/--catalog with --as-of)")
    add_store_arguments(p, required=False)
    p.add_argument("--as-of", type=date_argument, metavar="DATE",
                   help="with --store/--catalog: the published date whose corpus to read (features as of DATE "
                   "joined with the labels known that day)")


def _store_source(args: argparse.Namespace):
    """(a StoreSource, its date) when the store is the input, else (None, None); _Usage for a bad mix,
    StoreError when the store or the date is not there (both before any work)."""
    from jobs.corpus.cli import store_config

    store = args.store or args.catalog
    if store and args.features:
        raise _Usage("give FEATURES or --store/--catalog, not both")
    if not store:
        if args.as_of:
            raise _Usage("--as-of needs the store it reads: add --store DIR or --catalog NAME")
        if not args.features:
            raise _Usage("give FEATURES (a Parquet file or dataset folder) or --store DIR | --catalog NAME "
                         "with --as-of DATE")
        return None, None
    if not args.as_of:
        raise _Usage("--store/--catalog needs --as-of DATE (a date the store published: binfeat corpus read "
                     "names them when one is missing)")
    from jobs.corpus.source import StoreSource

    source = StoreSource(store_config(args))
    return source, source.date(args.as_of)


def vectorize_main(argv: list[str]) -> int:
    p = _Parser(prog="binfeat vectorize",
                description="Re-vectorise a stored feature dataset (binfeat extract's OUTPUT) with a scheme, "
                "from its raw columns: no binary is read. Every column is kept; 'vector' and the schema "
                "metadata become the scheme's.")
    _input_arguments(p)
    p.add_argument("output", metavar="OUT", help="the Parquet dataset folder to create or replace atomically")
    _scheme_arg(p)
    p.add_argument("--master", default=None,
                   help="run on Spark with this master (local[N], spark://HOST:PORT, ...): one task per input "
                   "file, for large inputs; default: convert here, file after file")
    p.add_argument("--conf", action="append", default=[], type=conf_pair, metavar="KEY=VALUE",
                   help="extra Spark configuration")
    args = p.parse_intermixed_args(argv)  # FEATURES is optional: positionals are matched after the options
    from extract.matrix import MatrixError
    from extract.sources import SourceError
    from jobs.corpus.catalog import StoreError
    from jobs.output import OutputError, check_output
    from jobs.session import MasterError, check_master
    from jobs.vectorize import check_input, check_store_input, run, run_store

    try:
        conf = dict(args.conf)
        source, date = _store_source(args)
        if source is not None and (args.master or conf):
            raise _Usage("--master/--conf are for FEATURES files; the store's corpus is re-vectorised here, "
                         "streamed (drop them, or binfeat corpus read it to Parquet first)")
        check_master(args.master)
        check_output(args.output)
        if source is None:
            check_input(args.features, args.scheme)
        else:
            check_store_input(source, date, args.scheme)
    except (_Usage, MatrixError, SourceError, OutputError, MasterError, StoreError, ValueError) as exc:
        sys.stderr.write(f"binfeat vectorize: error: {' '.join(str(exc).split())}\n")
        return EXIT_USAGE
    try:
        if source is None:
            summary = run(args.features, args.output, args.scheme, master=args.master, conf=conf)
        else:
            summary = run_store(source, date, args.output, args.scheme)
    except Exception as exc:
        sys.stderr.write(f"binfeat vectorize: failed: {type(exc).__name__}: {' '.join(str(exc).split())[:500]}\n")
        return EXIT_FAILED
    sys.stdout.write(json.dumps(summary, indent=2, sort_keys=True) + "\n")
    return 0


def matrix_main(argv: list[str]) -> int:
    p = _Parser(prog="binfeat matrix",
                description="Write a training matrix from stored feature rows: X.npy (float32, load it with "
                "numpy.load(..., mmap_mode='r') for large sets), y.npy (1 malicious, 0 benign, -1 unlabelled), "
                "names.txt (ML-safe dimension names) and ids.txt (sha256 per row), in the input's order.")
    _input_arguments(p)
    p.add_argument("output", metavar="OUT", help="the folder to write the files into (created when missing)")
    _scheme_arg(p)
    p.add_argument("--label", default="label", help="the label column (default: label; absent: all -1)")
    p.add_argument("--errors", choices=("drop", "nan"), default="drop",
                   help="rows with status 'error': drop them (default) or keep them as rows of NaN")
    args = p.parse_intermixed_args(argv)  # FEATURES is optional: positionals are matched after the options
    from pathlib import Path

    from extract.matrix import MatrixError, write_matrix
    from extract.sources import SourceError
    from jobs.corpus.catalog import StoreError

    out = Path(args.output)
    if out.exists() and (not out.is_dir() or (any(out.iterdir()) and not (out / "matrix.json").exists())):
        sys.stderr.write(f"binfeat matrix: error: OUT exists and is not a folder binfeat matrix wrote: {out}\n")
        return EXIT_USAGE
    try:
        source, date = _store_source(args)
        info = write_matrix(args.features if source is None else source, out, scheme=args.scheme, label=args.label,
                            errors=args.errors, as_of=date)
    except (_Usage, MatrixError, SourceError, StoreError, ValueError) as exc:
        sys.stderr.write(f"binfeat matrix: error: {' '.join(str(exc).split())}\n")
        return EXIT_USAGE
    sys.stdout.write(json.dumps(info, indent=2, sort_keys=True) + "\n")
    return 0
