"""The subcommands that run in this process over extract alone: ``file``, ``layout``, ``version``."""

from __future__ import annotations

import argparse
import json
import os
import sys


class _Parser(argparse.ArgumentParser):
    """argparse that reports a bad argument as ONE line and exit code 2 (no usage block)."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message}\n")


def file_main(argv: list[str]) -> int:
    """``binfeat file PATH...``: one JSON row per file, extracted here (no Spark)."""
    p = _Parser(
        prog="binfeat file",
        description="Extract files in-process; print one JSON row per file.",
        epilog="PATH is the file's name as the shell passes it, whatever its bytes; the row's 'path' is its "
        "text form (bytes that are not UTF-8 as \\xNN, a backslash as \\\\; extract.path_bytes reverses it).",
    )
    p.add_argument("paths", nargs="+", metavar="PATH")
    p.add_argument("--vector", action="store_true", help="include the vector (long)")
    args = p.parse_args(argv)
    import gc

    from extract.isolation import prestart

    prestart()  # the parser worker imports LIEF while this process imports numpy and pyarrow
    from extract.kernels import defer_kernels

    defer_kernels()  # a file or two: numpy's byte scan costs less than loading the compiled kernels
    # Start-up allocates much and frees little: no collections meanwhile; after the first row the
    # heap is frozen, so neither later collections nor the one at exit walk numba's and pyarrow's
    # objects again (~0.15 s of CPU at exit).
    gc.disable()
    try:
        import extract

        for path in args.paths:
            row = extract.extract_file(os.fsencode(path))  # the real name's bytes: no text-form reading
            if not gc.isenabled():
                gc.freeze()
                gc.enable()
            vec = row.pop("vector")
            if args.vector:
                row["vector"] = None if vec is None else [float(x) for x in vec]
            sys.stdout.write(json.dumps(row, default=_jsonable) + "\n")
    finally:
        gc.enable()
    return 0


def _jsonable(value: object) -> object:
    import numpy as np

    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def layout_main(argv: list[str]) -> int:
    """``binfeat layout``: the vector layout (offsets, names, or the docs' Markdown table)."""
    p = _Parser(prog="binfeat layout", description="Print the feature vector layout of a scheme.")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--markdown", action="store_true", help="the tables in docs/vector_layout.md")
    g.add_argument("--names", action="store_true", help="one ML-safe dimension name per line, in vector order")
    p.add_argument("--scheme", choices=("binfeat", "ember2"), default="binfeat", help="the vector scheme")
    args = p.parse_args(argv)
    from extract.layout import layout_markdown
    from extract.schemes import get

    scheme = get(args.scheme)
    if args.markdown:
        sys.stdout.write(layout_markdown())
    elif args.names:
        sys.stdout.write("\n".join(scheme.names) + "\n")
    else:
        for r in scheme.layout():
            sys.stdout.write(f"{r['offset']:>6} {r['length']:>5}  {r['block']}\n")
    return 0


def version_main(argv: list[str]) -> int:
    """``binfeat version``: binfeat's, the feature version and the parser's."""
    _Parser(prog="binfeat version", description="Print versions.").parse_args(argv)
    from extract.version import __version__, feature_version, parser_names

    parsers = "".join(f"parser {fmt} {name}\n" for fmt, name in parser_names().items())
    sys.stdout.write(f"binfeat {__version__}\nfeature_version {feature_version()}\n{parsers}")
    return 0
