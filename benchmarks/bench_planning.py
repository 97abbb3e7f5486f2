"""Scale measurements, each in a fresh subprocess: partition planning for a million entries, and the
peak memory of an extraction worker on one big file.

Why subprocesses: a peak RSS only ever grows, so each figure needs a process that did nothing else.
Peaks are read as VmHWM from /proc (the extractor's own, and its parser worker's while it runs).

Entries: ``python -m benchmarks.bench_scale plan N CORES REPEAT`` and
``python -m benchmarks.bench_scale rss PATH``; both print one JSON object on stdout.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import threading
import time
import tracemalloc
from pathlib import Path
from typing import Any


def hwm_mib(pid: int | str = "self") -> float | None:
    """Peak RSS (VmHWM) of one process. Why not ``ru_maxrss``: Linux carries it across fork + exec, so a
    child started by a big parent reports the parent's size; VmHWM belongs to the new address space."""
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        return None
    return None


def plan_million(n: int, cores: int, repeat: int) -> dict[str, Any]:
    """Plan ``n`` synthetic (path, size) entries: time (median) and peak memory of the planning alone."""
    import numpy as np

    from jobs.inputs import InputFile
    from jobs.planning import DEFAULT_PER_FILE_COST, partition_loads, plan_partitions

    rng = np.random.default_rng(20261123)
    # executables: log-normal around ~200 KB, a long tail up to a few hundred MB
    sizes = np.minimum(rng.lognormal(mean=12.2, sigma=1.6, size=n), 600e6).astype(np.int64)
    inputs = [
        InputFile(f"s3://bench-bucket/corpus/{i % 256:02x}/{i:012d}.bin", int(s)) for i, s in enumerate(sizes.tolist())
    ]
    rss_inputs = hwm_mib()
    try:
        from jobs.planning import plan_inputs as _make_plan
    except ImportError:  # the job's own wrapper (InputFile -> tuples) is internal; measure what exists
        _make_plan = None
    times_core: list[float] = []
    times_job: list[float] = []
    plan: list[list[int]] = []
    for _ in range(repeat):  # timings without tracemalloc (it slows every allocation several-fold)
        t0 = time.perf_counter()
        plan = plan_partitions([f.size for f in inputs], cores=cores)
        times_core.append(time.perf_counter() - t0)
        if _make_plan is not None:
            t0 = time.perf_counter()
            _make_plan(inputs, cores, None, DEFAULT_PER_FILE_COST)
            times_job.append(time.perf_counter() - t0)
    tracemalloc.start()  # one more run of each, for the peak memory
    plan_partitions([f.size for f in inputs], cores=cores)
    peak_core = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    peak_job = 0
    if _make_plan is not None:
        tracemalloc.start()
        _make_plan(inputs, cores, None, DEFAULT_PER_FILE_COST)
        peak_job = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    loads = partition_loads(sizes, plan, DEFAULT_PER_FILE_COST)
    out = {
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
    }
    if times_job:
        out.update(
            job_make_plan_s=round(statistics.median(times_job), 3),
            job_make_plan_peak_mib=round(peak_job / 2**20, 1),
        )
    return out


def rss_of_extraction(path: str) -> dict[str, Any]:
    """Extract one file with default options (isolated parser worker); peak RSS of both processes."""
    import psutil

    from extract.extractor import Extractor

    base_self = hwm_mib()
    ex = Extractor()
    worker_peak: list[float] = []
    stop = threading.Event()

    def watch() -> None:  # the worker may be restarted (crash, time-out): sample every child's peak
        while not stop.wait(0.05):
            for child in psutil.Process().children():
                peak = hwm_mib(child.pid)
                if peak is not None:
                    worker_peak.append(peak)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    t0, c0 = time.perf_counter(), time.process_time()
    row = ex.extract(path)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    stop.set()
    watcher.join()
    for child in psutil.Process().children():  # the final peak, before the worker is closed
        peak = hwm_mib(child.pid)
        if peak is not None:
            worker_peak.append(peak)
    ex.close()
    return {
        "path": path,
        "size": os.stat(path).st_size,
        "format": row["format"],
        "status": row["status"],
        "error": row["error"],
        "wall_s": round(wall, 3),
        "extractor_cpu_s": round(cpu, 3),
        "extractor_rss_before_mib": base_self,
        "extractor_peak_rss_mib": hwm_mib(),
        "parser_worker_peak_rss_mib": max(worker_peak) if worker_peak else None,
        "parser_worker_note": None if worker_peak else "no parser worker ran (format unknown or structure skipped)",
    }


def run_json(args: list[str], timeout: float) -> dict[str, Any]:
    """Run one of this module's entries in a fresh interpreter and parse its JSON answer."""
    root = str(Path(__file__).resolve().parent.parent)
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH", "")) if p)
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks.bench_scale", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        cwd=root,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"bench_scale {args[0]} exited with {proc.returncode}: {proc.stderr.strip()[-800:]}")
    return json.loads(proc.stdout)


def make_sparse(path: Path, size: int) -> Path:
    """A sparse file of ``size`` bytes (no disk used) starting with "MZ", so it reads as a PE whose
    structural parse is skipped for size while the byte groups stream over all of it."""
    with open(path, "wb") as f:
        f.write(b"MZ")
        f.truncate(size)
    return path


def main(argv: list[str]) -> int:
    if len(argv) == 4 and argv[0] == "plan":
        result = plan_million(int(argv[1]), int(argv[2]), int(argv[3]))
    elif len(argv) == 2 and argv[0] == "rss":
        result = rss_of_extraction(argv[1])
    else:
        sys.stderr.write("usage: python -m benchmarks.bench_scale plan N CORES REPEAT | rss PATH\n")
        return 2
    sys.stdout.write(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
