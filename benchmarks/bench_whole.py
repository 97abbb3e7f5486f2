"""Stage ``whole``: the whole extraction, one core (a plain loop) and a multiprocessing pool, plus
each file's cost.

The loop is what the Spark stage compares its jobs with (:func:`extract_loop`, interleaved there);
here it runs pinned to one CPU, interleaved with a pool over every core. CPU is the whole process
tree's: the extractor, its isolated parser worker, the pool's workers.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import time
from collections.abc import Callable, Sequence
from typing import Any

import psutil
import pyarrow as pa

from benchmarks.input_files import FileEntry
from benchmarks.machine import usable_cores
from benchmarks.markdown import num, table
from benchmarks.measure import Sample, fine_cpu, median_ratio, summarize, timed
from benchmarks.stage import Context, Stage


def _warm(ex: Any, entries: Sequence[FileEntry]) -> None:
    """Start the parser worker and load the compiled kernels (the worker's too: a worker starts light
    and would load them inside the timing once sent enough bytes) outside the timing."""
    for fmt in ("pe", "elf", "macho", "unknown"):
        for e in entries:
            if e.format == fmt:
                ex.extract(e.path)
                break
    if ex.options.isolate:
        ex._parser_worker().warm()


def extract_loop(
    entries: Sequence[FileEntry],
    *,
    options: Any = None,
    per_file: bool = False,
    exclude: Callable[[Any], bool] | None = None,
    one_core: bool = False,
) -> tuple[Sample, list]:
    """The plain single-process loop: one Extractor over every file (parser worker CPU counted); per_file
    calls ``extract`` once per file to time each, otherwise the batch API takes the whole list."""
    from extract.extractor import Extractor

    ex = Extractor(options)
    pinned: list[tuple[Any, list[int]]] = []
    try:
        _warm(ex, entries)
        if one_core:
            pinned = _pin_to_one_cpu(ex)
        rows: list = []
        with timed(sum(e.size for e in entries), len(entries), tree=True, exclude=exclude) as s:
            if per_file:
                for e in entries:
                    c0, w0 = fine_cpu(), time.perf_counter()
                    row = ex.extract(e.path)
                    rows.append(
                        (e.size, e.format, time.perf_counter() - w0, fine_cpu() - c0, row["status"], row["error"])
                    )
            else:
                # the batch API (Arrow rows out), as a user with a list of files and the Spark job call it
                batch = ex.extract_batch(pa.record_batch({"path": [e.path for e in entries]}))
                statuses, errors = batch.column("status").to_pylist(), batch.column("error").to_pylist()
                for e, status, error in zip(entries, statuses, errors, strict=True):
                    rows.append((e.size, e.format, None, None, status, error))
        return s, rows
    finally:
        for proc, cpus in pinned:
            with contextlib.suppress(psutil.Error):
                proc.cpu_affinity(cpus)
        ex.close()


def _pin_to_one_cpu(ex: Any) -> list[tuple[Any, list[int]]]:
    """Pin this process and the extractor's parser worker to one CPU; returns what to restore.

    Why: the loop's parser worker parses while this process hashes, so unpinned the "single-core"
    loop uses up to two cores and its wall-clock speed is not one core's.
    """
    me = psutil.Process()
    procs = [me]
    worker = getattr(getattr(ex, "_worker", None), "_proc", None)
    if worker is not None:
        procs.append(psutil.Process(worker.pid))
    cpu = me.cpu_affinity()[0]
    saved = []
    for p in procs:
        saved.append((p, p.cpu_affinity()))
        p.cpu_affinity([cpu])
    return saved


_POOL_EX: Any = None


def _pool_init(warm_path: str | None) -> None:
    global _POOL_EX
    from extract.extractor import Extractor

    _POOL_EX = Extractor()
    if warm_path:
        _POOL_EX.extract(warm_path)
        _POOL_EX._parser_worker().warm()


def _pool_batch(paths: list[str]) -> list[str]:
    return _POOL_EX.extract_batch(pa.record_batch({"path": paths})).column("status").to_pylist()


def _pool_ping(_: int) -> int:
    time.sleep(0.2)  # every worker gets one, so all are started and warm before the timing
    return os.getpid()


def extract_pool(entries: Sequence[FileEntry], processes: int) -> Sample:
    """A plain multiprocessing.Pool over all cores (pool start and warm-up excluded, like the JVM)."""
    warm = next((e.path for e in entries if e.format != "unknown"), entries[0].path if entries else None)
    ctx = multiprocessing.get_context("fork")
    pool = ctx.Pool(processes, initializer=_pool_init, initargs=(warm,))
    try:
        pool.map(_pool_ping, range(processes * 2), chunksize=1)
        # biggest first, small chunks: the same balancing idea as the Spark planner
        paths = [e.path for e in sorted(entries, key=lambda e: -e.size)]
        with timed(sum(e.size for e in entries), len(entries), tree=True) as s:
            step = max(1, len(paths) // (processes * 16))
            batches = pool.map(_pool_batch, [paths[i : i + step] for i in range(0, len(paths), step)], chunksize=1)
            statuses = [st for batch in batches for st in batch]
        s.extra["statuses"] = {k: statuses.count(k) for k in sorted(set(statuses))}
        return s
    finally:
        pool.terminate()
        pool.join()


def bench_whole(entries: Sequence[FileEntry], repeat: int, progress: Callable[[str], None]) -> dict[str, Any]:
    """One core (plain loop) and a pool on all cores, interleaved; per-file costs from one extra run."""
    cores = usable_cores()
    loop: list[Sample] = []
    pool: list[Sample] = []
    rows: list = []
    for r in range(repeat):
        progress(f"whole extraction: one core, plain loop (run {r + 1}/{repeat})")
        s, rows = extract_loop(entries, one_core=True)
        loop.append(s)
        progress(f"whole extraction: multiprocessing.Pool({cores}) (run {r + 1}/{repeat})")
        pool.append(extract_pool(entries, cores))
    progress("whole extraction: per-file costs (one run)")
    _, per_file = extract_loop(entries, per_file=True)
    statuses: dict[str, int] = {}
    for row in rows:
        statuses[row[4]] = statuses.get(row[4], 0) + 1
    return {
        "one_core": {**summarize(loop), "statuses": statuses},
        "pool": {**summarize(pool), "processes": cores, "statuses": pool[-1].extra.get("statuses")},
        "pool_speedup_wall": median_ratio(loop, pool, "wall_s"),
        "pool_cpu_over_loop": median_ratio(pool, loop),
        "per_file": [
            {"size": s_, "format": f, "wall_s": round(w, 6), "cpu_s": round(c, 6), "status": st}
            for s_, f, w, c, st, _ in per_file
        ],
        "per_file_cpu_clock": "ns: process_time + the parser worker's /proc schedstat",
        "errors_sample": sorted({(r[1], (r[5] or "")[:160]) for r in rows if r[4] == "error"})[:10],
    }


def run(ctx: Context) -> dict[str, Any]:
    return bench_whole(ctx.entries, ctx.repeat, ctx.progress)


def render(w: dict[str, Any], results: dict[str, Any]) -> list[str]:
    o, p = w["one_core"], w["pool"]
    rows = [
        [label, num(x["mb_per_s_cpu"]), num(x["mb_per_s_wall"]), num(x["files_per_s_wall"]), num(x["cpu_s"], 2),
         num(x["wall_s"], 2)]
        for label, x in (
            ("plain loop, one core (Extractor, isolated parser worker)", o),
            (f"multiprocessing.Pool({p['processes']})", p),
        )
    ]
    lines = table(["engine", "MB/s per CPU-s", "MB/s (wall)", "files/s (wall)", "CPU s (tree)", "wall s"], rows)
    lines += [
        "",
        f"Pool speed-up over one core (wall): {num(w.get('pool_speedup_wall'), 2)}×; pool CPU / loop CPU: "
        f"{num(w.get('pool_cpu_over_loop'), 3)}. Row statuses: {o.get('statuses')}.",
        "",
    ]
    for label, x in (("plain loop", o), ("pool", p)):
        if by := x.get("cpu_s_by_process_last_run"):
            lines += [f"- CPU s by process, {label} (last run): " + by_process(by)]
    return [*lines, ""]


def by_process(cpu_s: dict[str, float]) -> str:
    """``kind seconds, ...`` of a CPU split by process kind."""
    return ", ".join(f"{k} {v:.2f}" for k, v in sorted(cpu_s.items()))


STAGE = Stage("whole", "Whole extraction: one core and a multiprocessing pool", run, render)
