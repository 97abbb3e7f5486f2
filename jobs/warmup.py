"""Once per Python worker process: warm the extractor, then freeze the heap for the collector.

Why: Spark reuses Python workers across tasks and jobs, and pyspark's daemon runs a full
``gc.collect()`` after every task. With numpy, numba, pyarrow and the feature groups loaded that
collection walks ~150,000 long-lived objects (~60-80 ms of CPU per task, as much as a few files'
extraction). Warming first (imports, the compiled byte kernels, the extractor) and then
``gc.freeze()`` moves those objects out of the collector's sight, so the per-task collection only
walks what the tasks allocate (~5 ms). Also run by :mod:`jobs.pyspark_daemon` before it forks the
workers; a forked worker then freezes only what it added itself.

Tests inject faults into real executors through :data:`TEST_PLUGIN_ENV`: a module that each worker
imports here before its first partition (it patches what the test needs to break). Never set it in
production.
"""

from __future__ import annotations

import os
import sys

TEST_PLUGIN_ENV = "BINFEAT_TEST_WORKER_PLUGIN"

_PREPARED: set[tuple[int, str]] = set()  # (pid, repr(options)) warmed; a forked child warms again
_FROZEN_PID = 0  # the process that last ran gc.freeze() (a forked child freezes its own additions)


def prepare_worker(options) -> None:
    """Warm the extractor for ``options`` in this process (once), then freeze the heap."""
    global _FROZEN_PID
    pid = os.getpid()
    key = (pid, repr(options))
    if key in _PREPARED:
        return
    import gc

    import pyarrow as pa
    import pyarrow.parquet  # the writer's import, before the freeze

    import extract

    _load_test_plugin()
    # a small in-memory input of no executable format: runs the byte kernels and row assembly,
    # never the parser worker (that starts with the first executable)
    warm = pa.record_batch({"path": pa.array(["<warm-up>"]), "content": pa.array([bytes(4096)], pa.binary())})
    extract.extract_batch(warm, options)
    _PREPARED.add(key)
    if pid != _FROZEN_PID:
        gc.collect()
        gc.freeze()
        _FROZEN_PID = pid


def _load_test_plugin() -> None:
    name = os.environ.get(TEST_PLUGIN_ENV)
    if name and name not in sys.modules:
        import importlib

        importlib.import_module(name)
