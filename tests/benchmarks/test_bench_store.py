"""The store benchmark's helpers: seeded mutants and the computed storage comparison (nothing timed)."""

from __future__ import annotations

import hashlib

from benchmarks import bench_store
from benchmarks.bench_store_data import mutants


def test_mutants_are_seeded_distinct_and_keep_the_parent(tmp_path):
    parent = tmp_path / "p.bin"
    parent.write_bytes(b"\x7fELF" + bytes(100))
    a = mutants([parent], tmp_path / "a", 5, seed="s")
    b = mutants([parent], tmp_path / "b", 5, seed="s")
    assert a == b == {"files": 5, "bytes": 5 * 120}
    da = {p.name: p.read_bytes() for p in (tmp_path / "a").iterdir()}
    assert da == {p.name: p.read_bytes() for p in (tmp_path / "b").iterdir()}  # same seed, same bytes
    assert len({hashlib.sha256(v).hexdigest() for v in da.values()}) == 5
    assert all(v[:104] == parent.read_bytes() for v in da.values())


def test_storage_against_the_old_full_copies():
    results = {"build": {"1m": {"rows": 1_000_000, "bytes": 5_000_000_000}},
               "year": {"with_maintenance": {"checkpoints": {"30": {"metadata_bytes": 1000}}}}}  # fmt: skip
    got = bench_store.storage(results, nights_n=30, keep=14)
    rows = [1_000_000 + k * 10_170 for k in range(1, 31)]
    assert got["rows_after"] == rows[-1] and got["bytes_per_row"] == 5000.0
    assert got["iceberg_bytes"] == rows[-1] * 5000 + 1000
    assert got["old_keep_14_bytes"] == sum(rows[-14:]) * 5000
    assert got["old_keep_all_bytes"] == sum(rows) * 5000
