"""Stage ``planning``: partition planning of a million synthetic (path, size) entries, time and peak memory.

In a child process (``python -m benchmarks.bench_planning N CORES REPEAT RESULT``), so its peak
memory is its own. Timings run without tracemalloc (it slows every allocation several-fold); the
peak comes from one more run under tracemalloc.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
import tracemalloc
from typing import Any

from benchmarks.child_process import child_entry, run_json
from benchmarks.measure import hwm_mib
from benchmarks.stage import Context, Stage


def _peak_bytes(fn: Any) -> int:
    """The tracemalloc peak of one call of ``fn``."""
    tracemalloc.start()
    try:
        fn()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def plan_million(n: int, cores: int, repeat: int) -> dict[str, Any]:
    """Plan ``n`` synthetic (path, size) entries: time (median) and peak memory of the planning alone."""
    import numpy as np

    from jobs.inputs import InputFile
    from jobs.planning import DEFAULT_PER_FILE_COST, partition_loads, plan_inputs, plan_partitions

    rng = np.random.default_rng(20261123)
    # executables: log-normal around ~200 KB, a long tail up to a few hundred MB
    sizes = np.minimum(rng.lognormal(mean=12.2, sigma=1.6, size=n), 600e6).astype(np.int64)
    inputs = [
        InputFile(f"s3://bench-bucket/corpus/{i % 256:02x}/{i:012d}.bin", int(s)) for i, s in enumerate(sizes.tolist())
    ]
    rss_inputs = hwm_mib()

    def core() -> list[list[int]]:
        return plan_partitions([f.size for f in inputs], cores=cores)

    def job() -> None:  # the job's own step: InputFile -> plan entries
        plan_inputs(inputs, cores, None, DEFAULT_PER_FILE_COST)

    times_core: list[float] = []
    times_job: list[float] = []
    plan: list[list[int]] = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        plan = core()
        times_core.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        job()
        times_job.append(time.perf_counter() - t0)
    peak_core = _peak_bytes(core)
    peak_job = _peak_bytes(job)
    loads = partition_loads(sizes, plan, DEFAULT_PER_FILE_COST)
    return {
        "entries": n,
        "cores": cores,
        "total_bytes": int(sizes.sum()),
        "partitions": len(plan),
        "partition_load_max_over_mean": round(max(loads) / (sum(loads) / len(loads)), 4) if loads else None,
        "plan_partitions_s": round(statistics.median(times_core), 3),
        "plan_partitions_s_all": [round(t, 3) for t in times_core],
        "plan_partitions_peak_mib": round(peak_core / 2**20, 1),
        "rss_after_inputs_mib": rss_inputs,
        "max_rss_mib": hwm_mib(),
        "note": "peak = tracemalloc peak during planning alone (numpy buffers included); the 1M InputFile "
        "list itself is built before and counted in rss_after_inputs_mib",
        "job_make_plan_s": round(statistics.median(times_job), 3),
        "job_make_plan_peak_mib": round(peak_job / 2**20, 1),
    }


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--plan-entries", type=int, default=None, help="synthetic entries to plan (default 1,000,000)")


def run(ctx: Context) -> dict[str, Any]:
    n = ctx.args.plan_entries or (10_000 if ctx.quick else 1_000_000)
    return run_json("benchmarks.bench_planning", [str(n), str(os.cpu_count() or 2), str(ctx.repeat)], timeout=1800,
                    what="planning subprocess")


def render(pl: dict[str, Any], results: dict[str, Any]) -> list[str]:
    return [
        f"{pl['entries']:,} synthetic (path, size) entries ({pl['total_bytes'] / 1e12:.2f} TB, log-normal sizes), "
        f"{pl['cores']} cores → {pl['partitions']} partitions (heaviest / mean load "
        f"{pl['partition_load_max_over_mean']}): `plan_partitions` **{pl['plan_partitions_s']} s**, peak "
        f"{pl['plan_partitions_peak_mib']} MiB (tracemalloc); the job's full plan step (InputFile → tuples) "
        f"{pl.get('job_make_plan_s', '—')} s, peak {pl.get('job_make_plan_peak_mib', '—')} MiB; the process's "
        f"max RSS {pl['max_rss_mib']} MiB of which {pl['rss_after_inputs_mib']} MiB is the input list.",
        "",
    ]


STAGE = Stage(
    "planning",
    "Partition planning",
    run,
    render,
    add_arguments=add_arguments,
    notes=(
        "- **Planning**: `jobs.planning.plan_partitions` on 1M log-normal sizes (median ~200 KB), time without "
        "tracemalloc, peak from one more run under tracemalloc.",
    ),
)


def main(argv: list[str]) -> int:
    """Child entry: ``python -m benchmarks.bench_planning N CORES REPEAT RESULT.json``."""
    return child_entry(argv, "python -m benchmarks.bench_planning N CORES REPEAT RESULT.json", 3,
                       lambda a: plan_million(int(a[0]), int(a[1]), int(a[2])))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
