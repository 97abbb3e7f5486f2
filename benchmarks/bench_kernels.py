"""Single-core measurements of the feature core: kernels, hashes, parsers, groups, whole extraction.

Why in-process and interleaved: a kernel's own speed is what the issue-3 goals are about, and on a
shared, noisy machine only variants measured side by side (A, B, A, B, ...) give honest ratios.
CPU time (``time.process_time``, or the process tree when a worker process is involved) is quoted
next to wall time because other people's jobs inflate the wall clock.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import multiprocessing
import os
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import psutil
import pyarrow as pa

from benchmarks.bench_sys import Sample, fine_cpu, rate, ratio, summarize, timed


@dataclass(frozen=True)
class FileEntry:
    """One benchmark input file."""

    path: str
    size: int
    format: str
    kind: str = ""


# -- inputs -----------------------------------------------------------------------------------------


def corpus_entries(root: Path) -> list[FileEntry]:
    """The files of a sample corpus (manifest.jsonl, files at ROOT/<sha[:2]>/<sha>) or of a plain folder."""
    from extract.formats import HEAD_BYTES, detect_format

    manifest = root / "manifest.jsonl"
    out: list[FileEntry] = []
    if manifest.exists():
        for n, line in enumerate(manifest.read_text().splitlines(), 1):
            if not line.strip():
                continue
            rec = json.loads(line)
            sha = rec.get("sha256")
            if not sha:
                raise ValueError(f"{manifest}: line {n} has no sha256")
            path = root / sha[:2] / sha
            with open(path, "rb") as f:
                head = f.read(HEAD_BYTES)
            # the extractor's own detection decides which parser runs (the manifest's may differ)
            out.append(
                FileEntry(
                    str(path),
                    int(rec.get("size", path.stat().st_size)),
                    detect_format(head),
                    str(rec.get("kind") or ""),
                )
            )
        return out
    for dirpath, _, names in os.walk(root):
        for name in sorted(names):
            p = Path(dirpath) / name
            if not p.is_file() or p.is_symlink():
                continue
            with open(p, "rb") as f:
                head = f.read(HEAD_BYTES)
            out.append(FileEntry(str(p), p.stat().st_size, detect_format(head)))
    out.sort(key=lambda e: e.path)
    return out


def subset(entries: Sequence[FileEntry], max_bytes: int) -> list[FileEntry]:
    """An evenly spread subset (every k-th file by size order) of at most ``max_bytes``."""
    if sum(e.size for e in entries) <= max_bytes:
        return list(entries)
    ordered = sorted(entries, key=lambda e: (e.size, e.path))
    for k in range(2, len(ordered) + 1):
        pick = ordered[::k]
        if sum(e.size for e in pick) <= max_bytes:
            return pick
    return ordered[:1]


def load(entries: Sequence[FileEntry]) -> list[bytes]:
    out = []
    for e in entries:
        with open(e.path, "rb") as f:
            out.append(f.read())
    return out


# -- kernel variants --------------------------------------------------------------------------------


def _scan_kernel(data: bytes) -> None:
    """The single-pass kernel alone: histogram, entropy windows, string runs and patterns."""
    from extract.kernels import kernels

    _scan_with(kernels()[0], data)


def _scan_with(scan: Callable, data: bytes) -> None:
    from extract.kernels import BLOCK, PATTERNS

    a = np.frombuffer(data, dtype=np.uint8)
    n_full = (a.shape[0] // BLOCK) * BLOCK
    unc = np.empty((max(n_full // BLOCK, 1), 16), np.int64)
    z = np.zeros
    scan(a, n_full, z(4, np.uint8), a.shape[0], 0, z(256, np.int64), z(256, np.int64), z(256, np.int64),
         z(16, np.int64), z(1, np.int64), z(2, np.int64), z(len(PATTERNS), np.int64), unc)


def byte_trio(data: bytes) -> None:
    """binfeat's byte kernels over one buffer (histogram, entropy grid, strings, patterns)."""
    from extract.kernels import scan_bytes

    scan_bytes(data)


def _trio_groups(data: bytes) -> None:
    """ByteScanner plus the three groups' compute and vectorize, as the extractor runs them."""
    from extract.groups import REGISTRY
    from extract.groups.bytelevel import ByteContext
    from extract.kernels import scan_bytes

    ctx = ByteContext(size=len(data), scan=scan_bytes(data), fuzzy={})
    for name in ("byte_histogram", "byte_entropy_histogram", "strings"):
        g = REGISTRY[name]
        g.vector(g.compute(ctx))


def _sha256(data: bytes) -> None:
    hashlib.sha256(data).hexdigest()


def _md5(data: bytes) -> None:
    hashlib.md5(data).hexdigest()


def _tlsh(data: bytes) -> None:
    from extract.fuzzy import TlshHasher

    h = TlshHasher()
    h.update(data)
    h.hexdigest()


def _ssdeep(data: bytes) -> None:
    from extract.fuzzy import SsdeepHasher

    h = SsdeepHasher()
    h.update(data)
    h.hexdigest()


def windows(bufs: Sequence[bytes]) -> list[list[bytes]]:
    """The buffers cut into the extractor's windows."""
    from extract.extractor import windows as cut

    return list(cut(bufs, len))


def _md5_lanes(window: Sequence[bytes]) -> None:
    from extract.md5_lanes import md5_many

    for d in md5_many(window):
        d.hex()


def _bytes_stage(window: Sequence[bytes]) -> None:
    """Everything the extractor computes from the bytes with default options: the window's md5s side
    by side, then one pass per file for the byte kernels and sha256."""
    from extract.extractor import ExtractOptions, _ByteState

    _md5_lanes(window)
    options = ExtractOptions()
    for data in window:
        bs = _ByteState(options, md5=False)
        bs.update(data, last=True)
        bs.scanner.finish()
        bs.sha256.hexdigest()
        bs.fuzzy.digests()


KERNELS: dict[str, tuple[str, Callable[[bytes], None]]] = {
    "scan_kernel": ("binfeat scan kernel alone: one pass for histogram, entropy, strings, patterns", _scan_kernel),
    "byte_trio": ("ByteScanner: histogram + entropy + strings", byte_trio),
    "byte_trio+groups": ("ByteScanner + the 3 groups' compute/vectorize", _trio_groups),
    "sha256": ("hashlib.sha256 (what the extractor uses)", _sha256),
    "md5": ("hashlib.md5, one file at a time", _md5),
    "tlsh": ("extract.fuzzy.TlshHasher (py-tlsh)", _tlsh),
    "ssdeep": ("extract.fuzzy.SsdeepHasher", _ssdeep),
}
# Kernels that take a whole window of files at once, as the extractor calls them.
WINDOWED: dict[str, tuple[str, Callable[[Sequence[bytes]], None]]] = {
    "md5_lanes": ("extract.md5_lanes.md5_many over the extractor's windows (what the extractor uses)", _md5_lanes),
    "bytes_stage": ("extractor byte pass: window md5s + trio + sha256 (fuzzy hashes off, the default)",
                    _bytes_stage),
}


def run_over(fn: Callable[[bytes], None], bufs: Sequence[bytes]) -> Sample:
    """One timed pass of ``fn`` over every buffer."""
    nbytes = sum(len(b) for b in bufs)
    with timed(nbytes, len(bufs), tree=False) as s:
        for b in bufs:
            fn(b)
    return s


def _run_windows(fn: Callable[[Sequence[bytes]], None], wins: Sequence[Sequence[bytes]]) -> Sample:
    nbytes = sum(len(b) for w in wins for b in w)
    with timed(nbytes, sum(len(w) for w in wins), tree=False) as s:
        for w in wins:
            fn(w)
    return s


def bench_kernels(bufs: Sequence[bytes], repeat: int, progress: Callable[[str], None]) -> dict[str, Any]:
    """Every byte-level kernel and hash over the same buffers, interleaved A/B/C... per repeat."""
    variants = {k: v[1] for k, v in KERNELS.items()}
    for fn in variants.values():  # compile / load numba's cache outside the timing
        fn(b"warm-up" * 1000)
    wins = windows(bufs)
    for wfn in (v[1] for v in WINDOWED.values()):
        wfn([b"warm-up" * 1000] * 20)
    samples: dict[str, list[Sample]] = {k: [] for k in [*variants, *WINDOWED]}
    for r in range(repeat):
        for name, fn in variants.items():
            progress(f"kernels: {name} (run {r + 1}/{repeat})")
            samples[name].append(run_over(fn, bufs))
        for name, (_, wfn) in WINDOWED.items():
            progress(f"kernels: {name} (run {r + 1}/{repeat})")
            samples[name].append(_run_windows(wfn, wins))
    what = {k: v[0] for k, v in [*KERNELS.items(), *WINDOWED.items()]}
    out = {name: {"what": what[name], **summarize(s)} for name, s in samples.items()}
    out["sha256"]["vs_hashlib"] = 1.0  # the extractor calls hashlib itself: the same code
    # md5: the multi-buffer kernel against hashlib on the same buffers, per run (interleaved)
    per_run = [a.cpu_s / b.cpu_s for a, b in zip(samples["md5"], samples["md5_lanes"], strict=True) if b.cpu_s > 0]
    out["md5_lanes"]["vs_hashlib"] = round(statistics.median(per_run), 3) if per_run else None
    out["md5_lanes"]["windows"] = len(wins)
    return out


# -- structural parsing and groups (run in a subprocess: a parser crash must not end the suite) -----


def structure_bench(entries: Sequence[FileEntry], repeat: int) -> dict[str, Any]:
    """Per format: the one parse, then each structural group's compute and vectorize, CPU seconds."""
    try:
        import lief

        lief.logging.disable()
    except Exception:
        pass
    from extract.groups import REGISTRY
    from extract.parsed import ParseError, parser_for

    by_fmt: dict[str, list[FileEntry]] = {}
    for e in entries:
        if e.format != "unknown":
            by_fmt.setdefault(e.format, []).append(e)
    out: dict[str, Any] = {}
    for fmt, files in sorted(by_fmt.items()):
        parse = parser_for(fmt)
        if parse is None:
            out[fmt] = {"not_measured": f"no parser registered for {fmt}"}
            continue
        bufs = load(files)
        groups = [g for g in REGISTRY.by_stage("structure") if g.applies_to(fmt)]
        runs: list[dict[str, float]] = []
        errors = {"parse": 0, **{g.name: 0 for g in groups}}
        for _ in range(repeat):
            cpu = {"parse": 0.0, **{g.name: 0.0 for g in groups}, "vectorize": 0.0}
            errors = dict.fromkeys(errors, 0)
            for data in bufs:
                t0 = time.process_time()
                try:
                    parsed = parse(data)
                except (ParseError, Exception):
                    cpu["parse"] += time.process_time() - t0
                    errors["parse"] += 1
                    continue
                cpu["parse"] += time.process_time() - t0
                parsed.size = len(data)
                for g in groups:
                    t0 = time.process_time()
                    try:
                        raw = g.compute(parsed)
                    except Exception:
                        errors[g.name] += 1
                        cpu[g.name] += time.process_time() - t0
                        continue
                    t1 = time.process_time()
                    cpu[g.name] += t1 - t0
                    with contextlib.suppress(Exception):
                        g.vector(raw)
                    cpu["vectorize"] += time.process_time() - t1
            runs.append(cpu)
        nbytes = sum(len(b) for b in bufs)
        med = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
        total = sum(med.values())
        out[fmt] = {
            "files": len(bufs),
            "bytes": nbytes,
            "errors": errors,
            "cpu_s": {k: round(v, 5) for k, v in med.items()},
            "mb_per_s_cpu": {k: rate(nbytes, v) for k, v in med.items()},
            "files_per_s_cpu": {k: rate(len(bufs) * 1e6, v) for k, v in med.items()},
            "total_cpu_s": round(total, 5),
            "total_mb_per_s_cpu": rate(nbytes, total),
        }
    return out


# -- whole extraction -------------------------------------------------------------------------------


def _warm(ex: Any, entries: Sequence[FileEntry]) -> None:
    """Start the parser worker and load the compiled kernels outside the timing."""
    for fmt in ("pe", "elf", "macho", "unknown"):
        for e in entries:
            if e.format == fmt:
                ex.extract(e.path)
                break


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
        nbytes = sum(e.size for e in entries)
        rows: list = []
        with timed(nbytes, len(entries), tree=True, exclude=exclude) as s:
            if per_file:
                for e in entries:
                    c0, w0 = fine_cpu(), time.perf_counter()
                    row = ex.extract(e.path)
                    rows.append(
                        (
                            e.size,
                            e.format,
                            time.perf_counter() - w0,
                            fine_cpu() - c0,
                            row["status"],
                            row["error"],
                        )
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
        nbytes = sum(e.size for e in entries)
        with timed(nbytes, len(entries), tree=True) as s:
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
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
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
    one = summarize(loop)
    many = summarize(pool)
    speedups = [a.wall_s / b.wall_s for a, b in zip(loop, pool, strict=True) if b.wall_s > 0]
    cpu_ratios = [b.cpu_s / a.cpu_s for a, b in zip(loop, pool, strict=True) if a.cpu_s > 0]
    return {
        "one_core": {**one, "statuses": statuses},
        "pool": {**many, "processes": cores, "statuses": pool[-1].extra.get("statuses")},
        "pool_speedup_wall": round(statistics.median(speedups), 3) if speedups else None,
        "pool_cpu_over_loop": round(statistics.median(cpu_ratios), 3) if cpu_ratios else None,
        "per_file": [
            {"size": s_, "format": f, "wall_s": round(w, 6), "cpu_s": round(c, 6), "status": st}
            for s_, f, w, c, st, _ in per_file
        ],
        "per_file_cpu_clock": "ns: process_time + the parser worker's /proc schedstat",
        "errors_sample": sorted({(r[1], (r[5] or "")[:160]) for r in rows if r[4] == "error"})[:10],
    }


def speed_of(result: dict[str, Any], key: str) -> float | None:
    """MB/s per CPU-second of one kernel result (None when it was not measured)."""
    return (result.get(key) or {}).get("mb_per_s_cpu")


def main(argv: list[str]) -> int:
    """Subprocess entry: ``python -m benchmarks.bench_core structure ENTRIES.json REPEAT OUT.json``."""
    if len(argv) != 4 or argv[0] != "structure":
        sys.stderr.write("usage: python -m benchmarks.bench_core structure ENTRIES.json REPEAT OUT.json\n")
        return 2
    entries = [FileEntry(**d) for d in json.loads(Path(argv[1]).read_text())]
    result = structure_bench(entries, int(argv[2]))
    Path(argv[3]).write_text(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))


__all__ = [
    "KERNELS",
    "FileEntry",
    "bench_kernels",
    "bench_whole",
    "byte_trio",
    "corpus_entries",
    "extract_loop",
    "extract_pool",
    "load",
    "ratio",
    "run_over",
    "speed_of",
    "structure_bench",
    "subset",
]
