"""The ``binfeat`` command: one entry point, subcommands delegated to the modules that own them.

Subcommand modules are imported only when chosen, so ``binfeat --help`` starts fast and never starts
Spark.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable

SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "extract": ("jobs.extract_features:main",
                "extract features of a directory, glob, manifest or s3:// prefix with Spark"),
    "corpus": ("", "sample corpora and the corpus store (subcommands: sample, update, read, maintain)"),
    "bench": ("benchmarks.suite:main", "run the benchmark suite on a sample corpus"),
    "file": ("jobs.cli:_file_main", "extract one or more files in-process and print their rows as JSON"),
    "layout": ("jobs.cli:_layout_main", "print the feature vector layout"),
    "version": ("jobs.cli:_version_main", "print binfeat, feature and parser versions"),
}
CORPUS: dict[str, tuple[str, str]] = {
    "sample": ("benchmarks.corpus:cli", "build a sample corpus of real executables from pinned packages"),
    "update": ("jobs.corpus.cli:update_main", "append a day's new samples to the corpus store (Spark)"),
    "read": ("jobs.corpus.cli:read_main", "write the corpus as of a date (features with labels) to Parquet"),
    "maintain": ("jobs.corpus.cli:maintain_main", "expire old dates, remove orphan files, compact"),
}


def _load(target: str) -> Callable[[list[str]], int]:
    module, _, name = target.partition(":")
    mod = __import__(module, fromlist=[name])
    return getattr(mod, name)


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="binfeat",
        description="Feature extraction for corpora of executable binaries (PE, ELF, Mach-O), with Spark.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="subcommands:\n" + "\n".join(f"  {k:<10} {v[1]}" for k, v in SUBCOMMANDS.items())
        + "\n\n`binfeat SUBCOMMAND --help` documents each one.",
    )
    p.add_argument("command", metavar="SUBCOMMAND", choices=list(SUBCOMMANDS), help=argparse.SUPPRESS)
    p.add_argument("args", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
    return p


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] in ("-h", "--help"):
        _parser().print_help()
        return 0 if argv else 2
    command, rest = argv[0], argv[1:]
    if command not in SUBCOMMANDS:
        sys.stderr.write(f"binfeat: unknown subcommand {command!r}: choose from {', '.join(SUBCOMMANDS)}\n")
        return 2
    if command == "corpus":
        if not rest or rest[0] in ("-h", "--help") or rest[0] not in CORPUS:
            lines = "\n".join(f"  {k:<8} {v[1]}" for k, v in CORPUS.items())
            msg = f"usage: binfeat corpus {{{','.join(CORPUS)}}} ...\n\nsubcommands:\n{lines}\n"
            if rest and rest[0] not in ("-h", "--help"):
                sys.stderr.write(f"binfeat corpus: unknown subcommand {rest[0]!r}: choose {', '.join(CORPUS)}\n")
                return 2
            (sys.stdout if rest else sys.stderr).write(msg)
            return 0 if rest else 2
        return int(_load(CORPUS[rest[0]][0])(rest[1:]) or 0)
    return int(_load(SUBCOMMANDS[command][0])(rest) or 0)


def _file_main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="binfeat file", description="Extract files in-process; print JSON rows.")
    p.add_argument("paths", nargs="+", metavar="PATH")
    p.add_argument("--vector", action="store_true", help="include the vector (long)")
    args = p.parse_args(argv)
    import extract

    for path in args.paths:
        row = extract.extract_file(path)
        vec = row.pop("vector")
        if args.vector:
            row["vector"] = None if vec is None else [float(x) for x in vec]
        sys.stdout.write(json.dumps(row, default=_jsonable) + "\n")
    return 0


def _jsonable(value: object) -> object:
    import numpy as np

    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def _layout_main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="binfeat layout", description="Print the feature vector layout.")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--markdown", action="store_true", help="the table in docs/vector_layout.md")
    g.add_argument("--names", action="store_true", help="one dimension name per line, in vector order")
    args = p.parse_args(argv)
    from extract.layout import dim_names, layout_markdown, vector_layout

    if args.markdown:
        sys.stdout.write(layout_markdown())
    elif args.names:
        sys.stdout.write("\n".join(dim_names()) + "\n")
    else:
        for r in vector_layout():
            sys.stdout.write(f"{r['offset']:>6} {r['length']:>5}  {r['group']}\n")
    return 0


def _version_main(argv: list[str]) -> int:
    argparse.ArgumentParser(prog="binfeat version", description="Print versions.").parse_args(argv)
    from extract.version import __version__, feature_version, parser_name

    sys.stdout.write(f"binfeat {__version__}\nfeature_version {feature_version()}\nparser {parser_name()}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
