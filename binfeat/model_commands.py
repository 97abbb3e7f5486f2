"""``binfeat vectorize`` and ``binfeat matrix``: stored features to model inputs, without the binaries.

Bad arguments, an unusable FEATURES or OUT, or rows that cannot give the scheme asked for get one
line on stderr and exit code 2, before any work (and before Spark) starts.
"""

from __future__ import annotations

import argparse
import json
import sys

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


def vectorize_main(argv: list[str]) -> int:
    p = _Parser(prog="binfeat vectorize",
                description="Re-vectorise a stored feature dataset (binfeat extract's OUTPUT) with a scheme, "
                "from its raw columns: no binary is read. Every column is kept; 'vector' and the schema "
                "metadata become the scheme's.")
    p.add_argument("features", metavar="FEATURES", help="a Parquet file or dataset folder of feature rows")
    p.add_argument("output", metavar="OUT", help="the Parquet dataset folder to create or replace atomically")
    _scheme_arg(p)
    p.add_argument("--master", default=None,
                   help="run on Spark with this master (local[N], spark://HOST:PORT, ...): one task per input "
                   "file, for large inputs; default: convert here, file after file")
    p.add_argument("--conf", action="append", default=[], metavar="KEY=VALUE", help="extra Spark configuration")
    args = p.parse_args(argv)
    from extract.matrix import MatrixError
    from extract.sources import SourceError
    from jobs.output import OutputError, check_output
    from jobs.session import MasterError, check_master
    from jobs.vectorize import check_input, run

    try:
        conf = dict(_pair(c) for c in args.conf)
        check_master(args.master)
        check_output(args.output)
        check_input(args.features, args.scheme)
    except (MatrixError, SourceError, OutputError, MasterError, ValueError) as exc:
        sys.stderr.write(f"binfeat vectorize: error: {exc}\n")
        return EXIT_USAGE
    try:
        summary = run(args.features, args.output, args.scheme, master=args.master, conf=conf)
    except Exception as exc:
        sys.stderr.write(f"binfeat vectorize: failed: {type(exc).__name__}: {' '.join(str(exc).split())[:500]}\n")
        return EXIT_FAILED
    sys.stdout.write(json.dumps(summary, indent=2, sort_keys=True) + "\n")
    return 0


def _pair(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise ValueError(f"--conf expects KEY=VALUE, got {text!r}")
    return key.strip(), value


def matrix_main(argv: list[str]) -> int:
    p = _Parser(prog="binfeat matrix",
                description="Write a training matrix from stored feature rows: X.npy (float32, load it with "
                "numpy.load(..., mmap_mode='r') for large sets), y.npy (1 malicious, 0 benign, -1 unlabelled), "
                "names.txt (ML-safe dimension names) and ids.txt (sha256 per row), in the input's order.")
    p.add_argument("features", metavar="FEATURES", help="a Parquet file or dataset folder of feature rows")
    p.add_argument("output", metavar="OUT", help="the folder to write the files into (created when missing)")
    _scheme_arg(p)
    p.add_argument("--label", default="label", help="the label column (default: label; absent: all -1)")
    p.add_argument("--errors", choices=("drop", "nan"), default="drop",
                   help="rows with status 'error': drop them (default) or keep them as rows of NaN")
    args = p.parse_args(argv)
    from pathlib import Path

    from extract.matrix import MatrixError, write_matrix
    from extract.sources import SourceError

    out = Path(args.output)
    if out.exists() and (not out.is_dir() or (any(out.iterdir()) and not (out / "matrix.json").exists())):
        sys.stderr.write(f"binfeat matrix: error: OUT exists and is not a folder binfeat matrix wrote: {out}\n")
        return EXIT_USAGE
    try:
        info = write_matrix(args.features, out, scheme=args.scheme, label=args.label, errors=args.errors)
    except (MatrixError, SourceError) as exc:
        sys.stderr.write(f"binfeat matrix: error: {exc}\n")
        return EXIT_USAGE
    sys.stdout.write(json.dumps(info, indent=2, sort_keys=True) + "\n")
    return 0
