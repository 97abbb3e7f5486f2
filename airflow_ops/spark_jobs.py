"""binfeat's Spark jobs as the operators know them: the module spark-submit runs and its own parser.

Nothing here imports the ``jobs`` package when a DAG file is parsed: the application file is found
with ``find_spec`` and the parsers are imported only when asked for (tests, and anyone validating
arguments before a submit). When a job module moves, its declaration below is the one line to change.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass
from importlib.util import find_spec


def corpus_update_parser() -> argparse.ArgumentParser:
    """``binfeat corpus update``'s own argument parser (``jobs.corpus.cli``, through its application file)."""
    from jobs.corpus_update import build_parser

    return build_parser()


def extract_parser() -> argparse.ArgumentParser:
    """``binfeat extract``'s own argument parser (the one place that knows where it lives)."""
    from jobs.extract_cli import build_parser

    return build_parser()


@dataclass(frozen=True)
class SparkJob:
    """One job: the module whose file spark-submit runs, its parser, its positional arguments."""

    module: str
    parser: Callable[[], argparse.ArgumentParser]
    positional: tuple[str, ...] = ()

    def application(self) -> str:
        """The job's file on this machine, found without importing the module (no pyspark)."""
        spec = find_spec(self.module)
        if spec is None or not spec.origin:
            raise FileNotFoundError(f"cannot find {self.module}: install binfeat where the Airflow tasks run")
        return spec.origin


CORPUS_UPDATE = SparkJob(module="jobs.corpus_update", parser=corpus_update_parser)
EXTRACT = SparkJob(module="jobs.extract_features", parser=extract_parser, positional=("input", "output"))
