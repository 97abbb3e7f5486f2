"""The suite's stages, in the order their sections stand in the report.

Adding a stage is adding its module (``benchmarks/bench_<what>.py`` ending with ``STAGE = Stage(...)``,
see :mod:`benchmarks.stage`) and one entry here. The suite runs them in this order, except that a stage
runs after the stages it ``needs`` (``structure`` reads which files crashed in ``whole``; ``update`` is
measured inside the Spark stage's last session). The registry is checked when it is declared: unique
keys, every need known, no circle.
"""

from __future__ import annotations

from benchmarks import (
    bench_ember,
    bench_fuzz,
    bench_kernels,
    bench_per_file,
    bench_planning,
    bench_rss,
    bench_spark,
    bench_startup,
    bench_structure,
    bench_update,
    bench_whole,
)
from benchmarks.stage import check_registry

STAGES = check_registry(
    (
        bench_kernels.STAGE,
        bench_ember.STAGE,
        bench_structure.STAGE,
        bench_whole.STAGE,
        bench_per_file.STAGE,
        bench_startup.STAGE,
        bench_spark.STAGE,
        bench_update.STAGE,
        bench_planning.STAGE,
        bench_rss.STAGE,
        bench_fuzz.STAGE,
    )
)
