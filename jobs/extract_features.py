"""The Spark extraction job's application file: INPUT files -> one feature row per file -> Parquet.

Runnable as ``spark-submit jobs/extract_features.py INPUT OUTPUT [options]``, as
``binfeat extract INPUT OUTPUT [options]`` (local Spark by default) and as
``python -m jobs.extract_features``. The job itself lives in its own modules (docs/spark_job.md):
the command line in :mod:`jobs.extract_cli`, the run in :mod:`jobs.run`, the DataFrame API in
:mod:`jobs.dataframe`, the executor side in :mod:`jobs.partition` and :mod:`jobs.part_writer`.
"""

from __future__ import annotations

import os
import sys

if __name__ == "__main__" and __package__ in (None, ""):
    # Run as a script (spark-submit jobs/extract_features.py): sys.path[0] is jobs/ itself, whose
    # modules would shadow others. Make the packages importable (from --py-files, an install, or
    # this checkout) and enter through the package, so the functions Spark ships are pickled by
    # reference, not by value.
    _here = os.path.dirname(os.path.abspath(__file__))
    sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != _here]
    import importlib.util

    if importlib.util.find_spec("jobs") is None:
        sys.path.insert(0, os.path.dirname(_here))
    from jobs.extract_cli import main as _main

    sys.exit(_main(sys.argv[1:]))

from jobs.dataframe import features_dataframe
from jobs.extract_cli import build_parser, main
from jobs.run import run

__all__ = ["build_parser", "features_dataframe", "main", "run"]

if __name__ == "__main__":  # python -m jobs.extract_features
    sys.exit(main())
