"""pyspark's daemon with binfeat loaded before it forks the Python workers.

Spark starts one daemon per executor (``spark.python.daemon.module``) and forks a Python worker
from it per concurrent task slot. With the stock daemon (``pyspark.daemon``) every worker then
imports pyarrow, numba and extract and loads the compiled byte kernels on its own (~1.5 CPU-s each,
more when numba's cache misses); here the daemon does it once and the forked workers share it
(copy-on-write, and frozen for the garbage collector, see ``jobs.warmup.prepare_worker``).
A worker that Spark replaces (after an idle minute, or a crash) starts warm too.

``jobs.session.spark_session`` sets it for local masters, where the executors' PYTHONPATH holds
this code; on a cluster with binfeat installed on every node, pass
``--conf spark.python.daemon.module=jobs.pyspark_daemon``. If the preload fails, the daemon logs
one line and serves workers that load binfeat themselves, exactly as the stock daemon does.
"""

from __future__ import annotations

import logging
import os
import sys


def preload() -> None:
    """Import binfeat and warm its extractor in this process; nothing may reach stdout.

    Why the guard: the daemon's stdout carries its port number to the JVM, so a library that
    prints during import would break the protocol; fd 1 points at stderr until the preload ends.
    """
    saved = os.dup(1)
    try:
        os.dup2(2, 1)
        from jobs.warmup import prepare_worker

        prepare_worker(None)
    finally:
        sys.stdout.flush()  # whatever a library printed goes to stderr, not after the port number
        os.dup2(saved, 1)
        os.close(saved)


def main() -> None:
    try:
        preload()
    except Exception as exc:  # the stock behaviour remains: each worker loads binfeat itself
        text = " ".join(str(exc).split())[:300]
        logging.getLogger("binfeat.pyspark_daemon").warning(
            "binfeat preload failed, workers load it themselves: %s: %s", type(exc).__name__, text
        )
    from pyspark.daemon import manager

    manager()


if __name__ == "__main__":
    main()
