"""Stage ``rss``: the peak memory of an extraction worker on the largest corpus file and on a generated
sparse file of a few GiB.

Each in a fresh child process (``python -m benchmarks.bench_rss PATH RESULT``), because a peak RSS
only ever grows. Peaks are read as VmHWM from /proc: the extractor's own, and its parser worker's
while it runs.
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
import time
from pathlib import Path
from typing import Any

from benchmarks.child_process import child_entry, run_json
from benchmarks.markdown import num, table
from benchmarks.measure import hwm_mib
from benchmarks.stage import Context, Stage

ROWS = (("largest corpus file", "largest_file"), ("generated sparse file", "sparse_file"))


def rss_of_extraction(path: str) -> dict[str, Any]:
    """Extract one file with default options (isolated parser worker); peak RSS of both processes."""
    import psutil

    from extract.extractor import Extractor

    base_self = hwm_mib()
    ex = Extractor()
    worker_peak: list[float] = []
    stop = threading.Event()

    def sample_children() -> None:  # the worker may be restarted (crash, time-out): every child's peak
        for child in psutil.Process().children():
            peak = hwm_mib(child.pid)
            if peak is not None:
                worker_peak.append(peak)

    def watch() -> None:
        while not stop.wait(0.05):
            sample_children()

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    t0, c0 = time.perf_counter(), time.process_time()
    row = ex.extract(path)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    stop.set()
    watcher.join()
    sample_children()  # the final peak, before the worker is closed
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


def make_sparse(path: Path, size: int) -> Path:
    """A sparse file of ``size`` bytes (no disk used) starting with "MZ", so it reads as a PE whose
    structural parse is skipped for size while the byte groups stream over all of it."""
    with open(path, "wb") as f:
        f.write(b"MZ")
        f.truncate(size)
    return path


def _measure(path: str, timeout: float) -> dict[str, Any]:
    return run_json("benchmarks.bench_rss", [path], timeout=timeout, what="peak-RSS subprocess")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--sparse-gib", type=float, default=None, help="size of the generated sparse file (default 3)")


def run(ctx: Context) -> dict[str, Any]:
    largest = max(ctx.entries, key=lambda e: e.size)
    ctx.progress(f"peak RSS: largest corpus file ({largest.size / 1e6:.1f} MB, subprocess)")
    res: dict[str, Any] = {"largest_file": _measure(largest.path, 1800)}
    gib = ctx.args.sparse_gib if ctx.args.sparse_gib is not None else (0.25 if ctx.quick else 3.0)
    sparse = make_sparse(ctx.out / "sparse.bin", int(gib * 2**30))
    try:
        ctx.progress(f"peak RSS: generated {gib:g} GiB sparse file (subprocess)")
        res["sparse_file"] = _measure(str(sparse), 3600)
    finally:
        sparse.unlink(missing_ok=True)
    return res


def render(rs: dict[str, Any], results: dict[str, Any]) -> list[str]:
    rows = []
    for label, key in ROWS:
        x = rs.get(key) or {}
        rows.append([label, num(x.get("size", 0) / 2**20), str(x.get("format")), str(x.get("status")),
                     num(x.get("extractor_peak_rss_mib")), num(x.get("parser_worker_peak_rss_mib")),
                     num(x.get("wall_s"), 2), (x.get("error") or "")[:90]])
    lines = table(["input", "size MiB", "format", "status", "extractor peak RSS MiB", "parser worker peak RSS MiB",
                   "wall s", "error"], rows)
    return [
        *lines,
        "",
        "Each in a fresh process (its baseline RSS with numba, pyarrow and LIEF loaded is ~110 MiB); files "
        "above `whole_read_bytes` stream in chunks, files above `max_structural_bytes` are not parsed.",
        "",
    ]


STAGE = Stage(
    "rss",
    "Peak memory of an extraction worker",
    run,
    render,
    add_arguments=add_arguments,
    notes=(
        "- **Peak RSS**: VmHWM from /proc of a fresh extractor process and of its parser worker "
        "(`ru_maxrss` is inherited across fork+exec on Linux).",
    ),
)


def main(argv: list[str]) -> int:
    """Child entry: ``python -m benchmarks.bench_rss PATH RESULT.json``."""
    return child_entry(argv, "python -m benchmarks.bench_rss PATH RESULT.json", 1, lambda a: rss_of_extraction(a[0]))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
