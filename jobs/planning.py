"""Bin-pack files into Spark partitions by bytes plus a per-file cost.

Why not Spark's own packing: ``binaryFile`` charges every file a 4 MB open cost and packs
next-fit-decreasing into 128 MB splits, so a corpus of small files becomes tens of thousands of
tasks at ~70 ms of CPU each, and a huge file shares its task with others. Here each file costs
``size + per_file_cost`` (the per-file part models open/parse/hash set-up), files at least as big
as the target get a partition of their own, and the rest go largest first into the currently
lightest partition (LPT, a heap), which keeps the tasks within a few percent of each other; the
number of shared partitions is rounded up to a multiple of the cores.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from jobs.inputs import InputFile

# One planned input as the executors get it (small to pickle): (path, size, label, sha256, error),
# the path in its text form (extract.paths), error set when the listing already knows why not.
PlanEntry = tuple[str, int, "str | None", "str | None", "str | None"]

DEFAULT_PER_FILE_COST = 64 * 1024  # bytes-equivalent of the fixed work per file (~1 ms)
# extract runs at ~160 MB per CPU-second on executables once warm, and a task costs ~20-40 ms of
# CPU whatever it does (JVM scheduling; in Python the command, and a Parquet file's fixed cost):
# 256 MB tasks (~1.6 CPU-s) keep that near 2%; 1 GB is ~6-10 s. Measured on the 351 MB sample
# corpus, local[2] (medians of 5): 2 tasks 2.24 CPU-s, 4 tasks 2.32, 8 tasks 2.37, wall 1.19-1.23 s.
MIN_TARGET_BYTES = 256 * 1024 * 1024
MAX_TARGET_BYTES = 1024 * 1024 * 1024
MIN_TASK_BYTES = 8 * 1024 * 1024  # yet split a small corpus over the cores down to tasks this big
PARTITIONS_PER_CORE = 3  # a few per core so stragglers even out


def target_partition_bytes(total_cost: int, cores: int) -> int:
    """The cost one partition aims at: a few partitions per core, clamped to sane task sizes."""
    per = total_cost / max(1, cores * PARTITIONS_PER_CORE)
    return int(min(max(per, MIN_TARGET_BYTES), MAX_TARGET_BYTES))


def plan_partitions(
    sizes: Sequence[int] | np.ndarray,
    *,
    cores: int,
    per_file_cost: int = DEFAULT_PER_FILE_COST,
    target_bytes: int | None = None,
) -> list[list[int]]:
    """Assign file indices to partitions; returns one list of indices per partition.

    Deterministic: ties are broken by index (stable sort) and by partition number (heap order).
    Partitions come heaviest first (Spark starts tasks in partition order, so the long ones start
    early), indices within a partition largest first. Every index appears exactly once; an empty
    input gives an empty plan. One million entries take about a second.
    """
    if cores < 1:
        raise ValueError(f"cores must be >= 1, got {cores}")
    if per_file_cost < 0:
        raise ValueError(f"per_file_cost must be >= 0, got {per_file_cost}")
    arr = np.asarray(sizes, dtype=np.int64).reshape(-1)
    n = arr.size
    if n == 0:
        return []
    if (arr < 0).any():
        raise ValueError("sizes must be >= 0")
    cost = arr + per_file_cost
    total = int(cost.sum())
    target = target_bytes if target_bytes is not None else target_partition_bytes(total, cores)
    if target <= 0:
        raise ValueError(f"target_bytes must be > 0, got {target}")

    order = np.argsort(-cost, kind="stable")  # largest first, ties by index
    sorted_cost = cost[order]
    n_huge = int(np.count_nonzero(sorted_cost >= target))
    parts: list[list[int]] = [[int(i)] for i in order[:n_huge]]  # a huge file alone
    loads: list[int] = [int(c) for c in sorted_cost[:n_huge]]

    rest = order[n_huge:]
    if rest.size:
        rest_total = int(sorted_cost[n_huge:].sum())
        n_bins = max(1, math.ceil(rest_total / target), min(cores, rest_total // MIN_TASK_BYTES))
        if n_bins > 1:  # a multiple of the cores, so the last wave of tasks keeps every core busy
            n_bins = math.ceil(n_bins / cores) * cores
        n_bins = min(rest.size, n_bins)
        bins: list[list[int]] = [[] for _ in range(n_bins)]
        bin_load = [0] * n_bins
        heap = [(0, b) for b in range(n_bins)]
        push_pop = heapq.heapreplace
        rest_list = rest.tolist()
        cost_list = sorted_cost[n_huge:].tolist()
        for idx, c in zip(rest_list, cost_list, strict=True):
            load, b = heap[0]
            bins[b].append(idx)
            push_pop(heap, (load + c, b))
        for load, b in heap:
            bin_load[b] = load
        parts.extend(bins)
        loads.extend(bin_load)

    order_parts = sorted(range(len(parts)), key=lambda p: (-loads[p], p))
    return [parts[p] for p in order_parts]


def partition_loads(
    sizes: Sequence[int] | np.ndarray, plan: list[list[int]], per_file_cost: int
) -> list[int]:
    """The cost of each planned partition (for logs, tests and the benchmark)."""
    arr = np.asarray(sizes, dtype=np.int64)
    return [int(arr[p].sum()) + per_file_cost * len(p) for p in plan]


def plan_inputs(
    inputs: Sequence[InputFile], cores: int, partitions: int | None, per_file_cost: int = DEFAULT_PER_FILE_COST
) -> list[list[PlanEntry]]:
    """The job's plan: ``inputs`` bin-packed (``partitions`` forces their number), as plan entries."""
    from extract.paths import canonical_path

    sizes = [f.size for f in inputs]
    target = None
    if partitions:
        total = sum(sizes) + per_file_cost * len(sizes)
        target = max(1, -(-total // partitions))
    plan = plan_partitions(sizes, cores=cores, per_file_cost=per_file_cost, target_bytes=target)
    entries = [(canonical_path(f.path), f.size, f.label, f.sha256, f.error) for f in inputs]
    return [[entries[i] for i in part] for part in plan]
