"""The parser worker's memory cap: a budget on top of the warm worker's own footprint, set after the
kernels are compiled (compiling under the cap made LLVM abort at start-up with a cold numba cache)."""

from __future__ import annotations

import time
from pathlib import Path

import pyarrow as pa

import extract
from extract.extractor import ExtractOptions
from extract.isolation import ParserWorker


def _limits(pid: int) -> tuple[int, int]:
    """(soft address-space limit, current VmSize) of a process, in bytes."""
    limit = next(
        int(line.split()[3]) for line in Path(f"/proc/{pid}/limits").read_text().splitlines()
        if line.startswith("Max address space")
    )
    vm = next(
        int(line.split()[1]) << 10 for line in Path(f"/proc/{pid}/status").read_text().splitlines()
        if line.startswith("VmSize:")
    )
    return limit, vm


def test_cold_kernel_cache_under_the_smallest_budget(tmp_path, monkeypatch, fixture_files):
    monkeypatch.setenv("NUMBA_CACHE_DIR", str(tmp_path / "numba"))  # the worker compiles every kernel
    good = fixture_files["elf64_le_minimal"]
    options = ExtractOptions(fuzzy_hashes=(), memory_limit_mb=256)
    batch = extract.extract_batch(pa.record_batch({"path": [str(good)]}), options)
    assert batch.column("status").to_pylist() == ["ok"], batch.column("error").to_pylist()
    assert any((tmp_path / "numba").rglob("*.nbi"))  # the compiled kernels were written: it really was cold


def test_budget_is_on_top_of_the_warm_footprint(fixture_files):
    good = fixture_files["elf64_le_minimal"]
    worker = ParserWorker(timeout_s=30, memory_limit_mb=256)
    try:
        worker.submit_many([{"path": str(good), "format": "elf", "size": good.stat().st_size}])
        assert worker.result(time.monotonic())["parse_error"] is None
        limit, vm = _limits(worker._proc.pid)
    finally:
        worker.close()
    footprint = limit - (256 << 20)
    assert 0 < footprint <= vm  # the cap was set from the address space held then, plus the budget
    assert footprint > 256 << 20  # LIEF and LLVM alone are more than the budget: a total cap would fail


def test_a_parse_may_take_most_of_its_budget(tmp_path, fixture_files):
    taker = tmp_path / "taker"
    taker.write_bytes(fixture_files["elf64_le_minimal"].read_bytes() + b"BINFEAT-TAKE200")
    options = ExtractOptions(fuzzy_hashes=(), memory_limit_mb=256, worker_preload=("tests.extract.fault_plugin",))
    batch = extract.extract_batch(pa.record_batch({"path": [str(taker)]}), options)
    assert batch.column("status").to_pylist() == ["ok"], batch.column("error").to_pylist()
