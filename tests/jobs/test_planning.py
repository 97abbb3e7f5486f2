"""Bin-packing: exact assignments on crafted sizes, huge files alone, one million entries."""

from __future__ import annotations

import numpy as np
import pytest

from jobs.planning import (
    MAX_TARGET_BYTES,
    MIN_TARGET_BYTES,
    partition_loads,
    plan_partitions,
    target_partition_bytes,
)

MB = 1024 * 1024


def test_exact_lpt_assignment():
    sizes = [10, 20, 30, 40, 50, 60, 70]  # total 280, target 100 -> 3 bins
    plan = plan_partitions(sizes, cores=1, per_file_cost=0, target_bytes=100)
    # largest first into the lightest bin (ties: lowest bin): 70->b0, 60->b1, 50->b2, 40->b2 (50),
    # 30->b1 (60), 20->b0 (70), 10->b0 (all at 90); heaviest partition first.
    assert plan == [[6, 1, 0], [5, 2], [4, 3]]
    assert partition_loads(sizes, plan, 0) == [100, 90, 90]


def test_per_file_cost_counts_in_balance():
    # Without a per-file cost the 100 small files would share one bin with... nothing: with it,
    # 100 files x 1000 weigh as much as the 100_000-byte file, so each side gets its own partition.
    sizes = [100_000] + [0] * 100
    plan = plan_partitions(sizes, cores=1, per_file_cost=1000, target_bytes=101_000)
    assert plan[0] == [0]
    assert sorted(plan[1]) == list(range(1, 101))
    assert partition_loads(sizes, plan, 1000) == [101_000, 100_000]


def test_huge_file_gets_a_partition_of_its_own():
    sizes = [5 * MB] * 20 + [900 * MB, 300 * MB]
    plan = plan_partitions(sizes, cores=2, per_file_cost=0)
    target = target_partition_bytes(sum(sizes), 2)
    assert plan[0] == [20] and plan[1] == [21]  # both above target, alone, heaviest first
    rest = plan[2:]
    assert sorted(i for p in rest for i in p) == list(range(20))
    loads = partition_loads(sizes, rest, 0)
    assert max(loads) - min(loads) <= 5 * MB and max(loads) <= target + 5 * MB


def test_ties_are_deterministic_and_every_index_once():
    sizes = [7] * 9
    a = plan_partitions(sizes, cores=3, per_file_cost=0, target_bytes=21)
    assert a == [[0, 3, 6], [1, 4, 7], [2, 5, 8]]
    assert a == plan_partitions(list(sizes), cores=3, per_file_cost=0, target_bytes=21)


def test_defaults_aim_at_a_few_partitions_per_core():
    sizes = [8 * MB] * 1000  # 8,000 MB + cost
    plan = plan_partitions(sizes, cores=4)
    assert len(plan) == 12  # ~3 per core
    # a smaller corpus: fewer, larger tasks (none below MIN_TARGET_BYTES), still a multiple of the cores
    small = plan_partitions([1 * MB] * 600, cores=4)  # 600 MB + cost: 3 tasks of 256 MB, made 4
    assert len(small) == 4
    assert min(partition_loads([1 * MB] * 600, small, 64 * 1024)) >= 600 * (MB + 64 * 1024) // 4 - MB
    assert target_partition_bytes(10, 8) == MIN_TARGET_BYTES
    assert target_partition_bytes(10**15, 8) == MAX_TARGET_BYTES
    assert plan_partitions([1, 2, 3], cores=64) == [[2, 1, 0]]  # tiny input: one task, not 64


def test_edge_cases():
    assert plan_partitions([], cores=4) == []
    assert plan_partitions([0], cores=4) == [[0]]
    with pytest.raises(ValueError, match="cores"):
        plan_partitions([1], cores=0)
    with pytest.raises(ValueError, match="sizes"):
        plan_partitions([-1], cores=1)


def test_one_million_entries():
    rng = np.random.default_rng(7)
    sizes = rng.lognormal(mean=11, sigma=2, size=1_000_000).astype(np.int64)
    plan = plan_partitions(sizes, cores=64)
    flat = np.concatenate([np.asarray(p, dtype=np.int64) for p in plan])
    assert flat.size == sizes.size and np.array_equal(np.sort(flat), np.arange(sizes.size))
    loads = np.asarray(partition_loads(sizes, plan, 64 * 1024))
    target = target_partition_bytes(int(sizes.sum()) + 64 * 1024 * sizes.size, 64)
    alone = np.asarray([len(p) == 1 for p in plan])
    shared = loads[~alone]
    assert shared.max() <= target + sizes.max() and shared.max() - shared.min() <= 0.02 * shared.max()
    assert (loads[alone] >= target).sum() == (sizes + 64 * 1024 >= target).sum()


def test_small_corpus_still_uses_every_core():
    plan = plan_partitions([1 * MB] * 34, cores=2)  # 34 MB: under one target, over 2 x 8 MB
    assert len(plan) == 2 and sorted(len(p) for p in plan) == [17, 17]
    assert len(plan_partitions([1 * MB] * 10, cores=2)) == 1  # 10 MB: not worth two tasks
