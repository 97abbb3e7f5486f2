"""Taking a measurement: CPU of a process tree, timed samples, medians, interleaved variants, peak RSS.

Why a process tree: binfeat's work happens in several processes (the extractor, its isolated parser
worker, pool workers, the Spark JVM and its Python workers). ``time.process_time`` sees only one of
them, so every CPU figure here sums user + system time over the whole tree, including children that
already exited and were reaped (``children_user``/``children_system`` of their parent).

Why interleaved: on a shared, noisy machine only variants measured side by side (A, B, A, B, ...)
give honest ratios (:func:`interleave`).
"""

from __future__ import annotations

import os
import statistics
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import psutil


def _cpu_of(p: psutil.Process) -> float:
    t = p.cpu_times()
    return t.user + t.system + t.children_user + t.children_system


def tree_cpu(pid: int | None = None, *, exclude: Callable[[psutil.Process], bool] | None = None) -> float:
    """CPU seconds of a process and all its descendants, reaped children included."""
    root = psutil.Process(pid)
    total = 0.0
    for p in [root, *root.children(recursive=True)]:
        try:
            if exclude is not None and p.pid != root.pid and exclude(p):
                continue
            total += _cpu_of(p)
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            continue
    return total


def is_jvm(p: psutil.Process) -> bool:
    """True for a java process (excluded when a figure is about Python alone)."""
    try:
        return p.name().startswith("java")
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return False


def _kind(p: psutil.Process, parent_kind: str | None) -> str:
    try:
        if p.name().startswith("java"):
            return "spark_jvm"
        cmd = " ".join(p.cmdline())
    except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
        return "other"
    if "extract.worker" in cmd:
        return "parser_worker"
    if parent_kind == "spark_jvm" and "pyspark" in cmd:
        return "python_daemon"
    if parent_kind in ("python_daemon", "python_worker") or "pyspark.worker" in cmd:
        return "python_worker"  # forked by pyspark's daemon (same command line as the daemon)
    if parent_kind == "driver":
        return "pool_worker"  # a forked multiprocessing worker (its name is the parent's script)
    return "other"


def tree_cpu_by_kind(pid: int | None = None) -> dict[str, float]:
    """CPU seconds of the tree split by process kind (driver, Spark JVM, pyspark daemon and workers,
    parser workers, pool workers); a process's reaped children count as ``<kind>.reaped_children``."""
    root = psutil.Process(pid)
    out: dict[str, float] = {}

    def walk(p: psutil.Process, kind: str) -> None:
        try:
            t = p.cpu_times()
            children = p.children()
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            return
        out[kind] = out.get(kind, 0.0) + t.user + t.system
        reaped = t.children_user + t.children_system
        if reaped:
            out[f"{kind}.reaped_children"] = out.get(f"{kind}.reaped_children", 0.0) + reaped
        for c in children:
            walk(c, _kind(c, kind))

    walk(root, "driver")
    return out


def fine_cpu() -> float:
    """CPU seconds of this process plus its live children, at nanosecond resolution.

    Why: psutil's times tick at 10 ms, coarser than one small file; the children's figure comes from
    /proc/PID/schedstat (on-CPU nanoseconds of the child's main thread; the parser worker is one thread).
    """
    total = time.process_time()
    try:  # cheaper than psutil (whose own CPU would land inside a small file's interval)
        with open(f"/proc/self/task/{os.getpid()}/children", encoding="ascii") as f:
            pids = f.read().split()
    except OSError:
        pids = [str(c.pid) for c in psutil.Process().children()]
    for pid in pids:
        try:
            with open(f"/proc/{pid}/schedstat", encoding="ascii") as f:
                total += int(f.read().split()[0]) / 1e9
        except (OSError, ValueError, IndexError):
            continue
    return total


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


@dataclass
class Sample:
    """One timed run: wall seconds, CPU seconds of the tree, bytes and files processed."""

    wall_s: float
    cpu_s: float
    nbytes: int
    files: int
    extra: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "wall_s": round(self.wall_s, 4),
            "cpu_s": round(self.cpu_s, 4),
            "bytes": self.nbytes,
            "files": self.files,
            **self.extra,
        }


@contextmanager
def timed(
    nbytes: int, files: int, *, tree: bool = True, exclude: Callable[[psutil.Process], bool] | None = None,
    fine: bool = False,
) -> Iterator[Sample]:
    """Measure wall time and CPU (of the whole process tree, or of this process only; ``fine``: this
    process and its live children at nanosecond resolution, :func:`fine_cpu`, for passes short
    enough that 10 ms ticks would blur them)."""
    s = Sample(0.0, 0.0, nbytes, files)
    tree = tree and not fine
    cpu = fine_cpu if fine else (lambda: tree_cpu(exclude=exclude)) if tree else time.process_time
    k0 = tree_cpu_by_kind() if tree else {}
    c0 = cpu()
    w0 = time.perf_counter()
    yield s
    s.wall_s = time.perf_counter() - w0
    s.cpu_s = cpu() - c0
    if tree:
        k1 = tree_cpu_by_kind()
        s.extra["cpu_s_by_process"] = {
            k: round(k1.get(k, 0.0) - k0.get(k, 0.0), 3)
            for k in sorted(set(k0) | set(k1))
            if abs(k1.get(k, 0.0) - k0.get(k, 0.0)) >= 0.005
        }


def interleave(
    variants: dict[str, Callable[[], Sample]], repeat: int, progress: Callable[[str], None], label: str
) -> dict[str, list[Sample]]:
    """Run every variant once per round (A, B, C, A, B, C, ...), ``repeat`` rounds: its samples."""
    samples: dict[str, list[Sample]] = {name: [] for name in variants}
    for r in range(repeat):
        for name, once in variants.items():
            progress(f"{label}: {name} (run {r + 1}/{repeat})")
            samples[name].append(once())
    return samples


def median_ratio(over: list[Sample], under: list[Sample], attr: str = "cpu_s", digits: int = 3) -> float | None:
    """The median over runs of ``over[i].attr / under[i].attr`` (variants interleaved run by run)."""
    ratios = [getattr(a, attr) / getattr(b, attr) for a, b in zip(over, under, strict=True) if getattr(b, attr) > 0]
    return round(statistics.median(ratios), digits) if ratios else None


def summarize(samples: list[Sample]) -> dict[str, Any]:
    """Medians over repeated runs, with MB/s and files/s from wall and from CPU time."""
    if not samples:
        raise ValueError("summarize needs at least one sample")
    wall = statistics.median(s.wall_s for s in samples)
    cpu = statistics.median(s.cpu_s for s in samples)
    nbytes, files = samples[0].nbytes, samples[0].files
    return {
        "runs": len(samples),
        "bytes": nbytes,
        "files": files,
        "wall_s": round(wall, 4),
        "cpu_s": round(cpu, 4),
        "wall_s_all": [round(s.wall_s, 4) for s in samples],
        "cpu_s_all": [round(s.cpu_s, 4) for s in samples],
        "mb_per_s_wall": rate(nbytes, wall),
        "mb_per_s_cpu": rate(nbytes, cpu),
        "files_per_s_wall": rate(files * 1e6, wall),
        "files_per_s_cpu": rate(files * 1e6, cpu),
        **(
            {"cpu_s_by_process_last_run": samples[-1].extra["cpu_s_by_process"]}
            if "cpu_s_by_process" in samples[-1].extra
            else {}
        ),
    }


def rate(nbytes: float, seconds: float) -> float | None:
    """MB (10^6 bytes) per second, or None when nothing measurable happened."""
    if seconds <= 0:
        return None
    return round(nbytes / seconds / 1e6, 3)
