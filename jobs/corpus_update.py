"""spark-submit application file of ``binfeat corpus update`` (the night: jobs.corpus.night).

``spark-submit jobs/corpus_update.py --date D --incoming ... --store DIR`` runs exactly what
``binfeat corpus update`` runs; the arguments are :func:`jobs.corpus.cli.build_parser`'s.
"""

from __future__ import annotations

import os
import sys


def build_parser():
    """The job's argument parser (no pyspark import: operators validate their arguments with it)."""
    from jobs.corpus.cli import build_parser as parser

    return parser()


def main(argv: list[str]) -> int:
    from jobs.corpus.cli import update_main

    return update_main(argv)


if __name__ == "__main__":
    # spark-submit runs this file as a script: make the package importable, then run it as
    # jobs.corpus_update so that functions shipped to executors are found by module name
    # (sys.path[0] is jobs/ itself, whose s3.py, session.py... would shadow other modules).
    _here = os.path.dirname(os.path.abspath(__file__))
    _root = os.path.dirname(_here)
    sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != _here]
    if _root not in sys.path:
        sys.path.insert(0, _root)
    from jobs.corpus_update import main as _main

    sys.exit(_main(sys.argv[1:]))
