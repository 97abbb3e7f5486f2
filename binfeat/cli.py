"""The ``binfeat`` command: argparse subcommands, each delegated to the module that owns it.

A subcommand's module is imported only when it is chosen (each runner below imports it inside
its body), so ``binfeat --help`` starts fast and never imports pyspark; the chosen module parses
its own arguments (``binfeat SUBCOMMAND --help``). Bad arguments get one line and exit code 2.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable

Runner = Callable[[list[str]], int]
EXIT_USAGE = 2
EXIT_BROKEN_PIPE = 141  # 128 + SIGPIPE, what a shell tool killed by a closed pipe reports


def _extract(argv: list[str]) -> int:
    from jobs.extract_cli import main

    return main(argv)


def _bench(argv: list[str]) -> int:
    from benchmarks.suite import main

    return main(argv)


def _corpus_sample(argv: list[str]) -> int:
    from benchmarks.corpus import cli

    return cli(argv)


def _corpus_update(argv: list[str]) -> int:
    from jobs.corpus.cli import update_main

    return update_main(argv)


def _corpus_read(argv: list[str]) -> int:
    from jobs.corpus.cli import read_main

    return read_main(argv)


def _corpus_maintain(argv: list[str]) -> int:
    from jobs.corpus.cli import maintain_main

    return maintain_main(argv)


def _file(argv: list[str]) -> int:
    from binfeat.local_commands import file_main

    return file_main(argv)


def _layout(argv: list[str]) -> int:
    from binfeat.local_commands import layout_main

    return layout_main(argv)


def _vectorize(argv: list[str]) -> int:
    from binfeat.model_commands import vectorize_main

    return vectorize_main(argv)


def _matrix(argv: list[str]) -> int:
    from binfeat.model_commands import matrix_main

    return matrix_main(argv)


def _version(argv: list[str]) -> int:
    from binfeat.local_commands import version_main

    return version_main(argv)


SUBCOMMANDS: dict[str, tuple[Runner | None, str]] = {
    "extract": (_extract, "extract features of a directory, glob, manifest or s3:// prefix with Spark"),
    "corpus": (None, "sample corpora and the corpus store (subcommands: sample, update, read, maintain)"),
    "bench": (_bench, "run the benchmark suite on a sample corpus"),
    "file": (_file, "extract one or more files in-process and print their rows as JSON"),
    "vectorize": (_vectorize, "re-vectorise stored features with a scheme (binfeat, ember2); no binary is read"),
    "matrix": (_matrix, "write a training matrix (X.npy, y.npy, names, ids) from stored features"),
    "layout": (_layout, "print the feature vector layout of a scheme"),
    "version": (_version, "print binfeat, feature and parser versions"),
}
CORPUS: dict[str, tuple[Runner, str]] = {
    "sample": (_corpus_sample, "build a sample corpus of real executables from pinned packages"),
    "update": (_corpus_update, "append a day's new samples to the corpus store (Spark)"),
    "read": (_corpus_read, "write the corpus as of a date (features with labels) to Parquet"),
    "maintain": (_corpus_maintain, "expire old dates, remove orphan files, compact"),
}


class _UsageError(Exception):
    pass


class _Parser(argparse.ArgumentParser):
    """argparse that reports a bad argument as ONE line (no usage block)."""

    def error(self, message: str):
        raise _UsageError(f"{self.prog}: error: {message}")


def build_parser() -> argparse.ArgumentParser:
    """The dispatch parser: subcommands only; each subcommand parses the rest itself."""
    parser = _Parser(
        prog="binfeat",
        description="Feature extraction for corpora of executable binaries (PE, ELF, Mach-O), with Spark.",
        epilog="`binfeat SUBCOMMAND --help` documents each one.",
    )
    sub = parser.add_subparsers(dest="command", metavar="SUBCOMMAND", title="subcommands", parser_class=_Parser)
    for name, (_, text) in SUBCOMMANDS.items():
        if name == "corpus":
            corpus = sub.add_parser(name, help=text, description=text)
            inner = corpus.add_subparsers(dest="corpus_command", metavar="{" + ",".join(CORPUS) + "}",
                                          title="subcommands",
                                          parser_class=_Parser)
            for cname, (_, ctext) in CORPUS.items():
                inner.add_parser(cname, help=ctext, add_help=False)
        else:
            sub.add_parser(name, help=text, add_help=False)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    try:
        code = _dispatch(parser, argv)
        sys.stdout.flush()  # here, not at exit: a closed pipe must be caught below
        return code
    except BrokenPipeError:
        # the reader went away (`binfeat layout | head`): stop quietly, as shell tools do
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_BROKEN_PIPE


def _dispatch(parser: argparse.ArgumentParser, argv: list[str]) -> int:
    if not argv:
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    try:
        if argv[0] not in SUBCOMMANDS and argv[0] not in ("-h", "--help"):
            parser.parse_args(argv[:1])  # one line: an unknown subcommand or option
        args, rest = parser.parse_known_args(argv)
    except _UsageError as exc:
        sys.stderr.write(f"{exc}\n")
        return EXIT_USAGE
    except SystemExit as exc:  # --help
        return int(exc.code or 0)
    if args.command == "corpus":
        if args.corpus_command is None:
            sys.stderr.write("binfeat corpus: error: choose a subcommand: sample, update, read or maintain "
                             "(binfeat corpus --help)\n")
            return EXIT_USAGE
        runner = CORPUS[args.corpus_command][0]
    else:
        runner = SUBCOMMANDS[args.command][0]
    try:
        return int(runner(rest) or 0)
    except SystemExit as exc:  # a subcommand's argparse (--help, a bad argument): its exit code
        if exc.code is None or isinstance(exc.code, int):
            return exc.code or 0
        sys.stderr.write(f"{exc.code}\n")
        return 1


if __name__ == "__main__":
    sys.exit(main())
