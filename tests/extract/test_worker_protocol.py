"""The parser worker's protocol: replies a few files per message with a fault still costing one row,
the light start and the kernels loaded later (under the memory cap too), the worker started ahead,
and the message codec."""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

import extract
from extract import isolation
from extract.extractor import ExtractOptions, Extractor
from extract.isolation import ParserWorker
from extract.worker import REPLIES_PER_MESSAGE, decode, encode
from tests.rows import canonical_rows

FAULTS = {
    "crash": (b"BINFEAT-CRASH", "parser crashed (SIGSEGV)"),
    "hang": (b"BINFEAT-HANG", "parser timed out after 2 s"),
    "balloon": (b"BINFEAT-BALLOON", "parser ran out of memory (limit 512 MiB)"),
}
FAULTY = ExtractOptions(fuzzy_hashes=(), parse_timeout_s=2, memory_limit_mb=512,
                        worker_preload=("tests.extract.fault_plugin",))


def _bad(tmp_path: Path, marker: bytes) -> Path:
    bad = tmp_path / "bad"
    bad.write_bytes(b"\x7fELF\x02\x01\x01" + bytes(9) + marker + bytes(100))
    return bad


def _vm_maps(pid: int) -> str:
    return Path(f"/proc/{pid}/maps").read_text(errors="replace")


def _soft_as_limit(pid: int) -> int:
    line = next(x for x in Path(f"/proc/{pid}/limits").read_text().splitlines() if x.startswith("Max address space"))
    return int(line.split()[3])


# Replies go 1, 2, 4, ... per message: in a window of 8 files the worker sends file 0, files 1-2, then
# files 3-6 together, then 7. A fault at file 4 loses file 3's finished reply with the worker (one file
# before it), at file 6 three of them; at 0 and 3 none.
@pytest.mark.parametrize("at", [0, 1, 3, 4, 6, 7])
def test_a_crash_anywhere_in_a_message_costs_that_files_row_only(tmp_path, fixture_files, at):
    good = str(fixture_files["elf64_le_minimal"])
    paths = [good] * 8
    paths[at] = str(_bad(tmp_path, FAULTS["crash"][0]))
    batch = extract.extract_batch(pa.record_batch({"path": paths}), FAULTY)
    status, errors = batch.column("status").to_pylist(), batch.column("error").to_pylist()
    assert status == ["error" if i == at else "ok" for i in range(8)], errors
    assert errors[at] == FAULTS["crash"][1]
    clean = extract.extract_batch(pa.record_batch({"path": [good]}), FAULTY).to_pylist()[0]
    for i, row in enumerate(batch.to_pylist()):
        if i != at:
            assert canonical_rows([row]) == canonical_rows([clean])


@pytest.mark.parametrize("fault", ["hang", "balloon"])
@pytest.mark.parametrize("at", [4, 6])
def test_a_hang_or_balloon_inside_a_message_costs_that_files_row_only(tmp_path, fixture_files, fault, at):
    good = str(fixture_files["elf64_le_minimal"])
    paths = [good] * 8
    paths[at] = str(_bad(tmp_path, FAULTS[fault][0]))
    batch = extract.extract_batch(pa.record_batch({"path": paths}), FAULTY)
    status, errors = batch.column("status").to_pylist(), batch.column("error").to_pylist()
    assert status == ["error" if i == at else "ok" for i in range(8)], errors
    assert errors[at] == FAULTS[fault][1]


def test_two_faults_in_one_message_each_cost_their_row(tmp_path, fixture_files):
    good = str(fixture_files["elf64_le_minimal"])
    crash = str(_bad(tmp_path, FAULTS["crash"][0]))
    paths = [good] * 3 + [good, crash, good, crash] + [good] * 3
    batch = extract.extract_batch(pa.record_batch({"path": paths}), FAULTY)
    status = batch.column("status").to_pylist()
    assert [i for i, s in enumerate(status) if s != "ok"] == [4, 6]
    assert set(batch.column("error").to_pylist()[i] for i in (4, 6)) == {FAULTS["crash"][1]}


def test_replies_come_several_files_per_message(monkeypatch, fixture_files):
    """A window of 40 files comes back in 1 + 2 + 4 + 8 + 16 + 9 replies: 6 messages, in order."""
    kinds = {"elf64_le_minimal": "elf", "pe32plus_minimal": "pe", "macho64_minimal": "macho"}
    requests = [{"path": str(fixture_files[name]), "format": fmt, "size": fixture_files[name].stat().st_size}
                for name, fmt in kinds.items()] * 14
    requests = requests[:40]
    messages: list = []
    real_decode = isolation.decode
    monkeypatch.setattr(isolation, "decode", lambda body: messages.append(real_decode(body)) or messages[-1])
    worker = ParserWorker(timeout_s=30, memory_limit_mb=1024)
    try:
        worker.submit_many(requests)
        replies = [worker.result(time.monotonic()) for _ in requests]
    finally:
        worker.shutdown()
    assert REPLIES_PER_MESSAGE == 16
    assert [len(m) for m in messages[1:]] == [1, 2, 4, 8, 16, 9]  # messages[0]: the worker is ready
    assert [r["parse_error"] for r in replies] == [None] * 40
    expected = {fmt: extract.extract_file(str(fixture_files[name])) for name, fmt in kinds.items()}
    for request, reply in zip(requests, replies, strict=True):  # each reply is its own file's
        assert reply["raw"]["general"] == expected[request["format"]]["general"]


def test_a_light_worker_never_loads_numba_and_gives_the_same_rows(small_corpus):
    """The kernels' stand-ins (numpy histograms, the plain COFF loop) give the same rows; the worker is
    warmed once it has been sent WARM_BYTES."""
    from benchmarks.input_files import corpus_entries

    entries = [e for e in corpus_entries(small_corpus) if e.format != "unknown"]
    paths = [e.path for e in entries]
    light, warm = Extractor(ExtractOptions(fuzzy_hashes=())), Extractor(ExtractOptions(fuzzy_hashes=()))
    try:
        warm._parser_worker().warm()
        few = light.extract_batch(pa.record_batch({"path": paths[:20]}))  # far below WARM_BYTES
        assert "llvmlite" not in _vm_maps(light._worker._proc.pid)
        rows_light = few.to_pylist() + light.extract_batch(pa.record_batch({"path": paths[20:60]})).to_pylist()
        assert sum(e.size for e in entries[:60]) < isolation.WARM_BYTES
        assert "llvmlite" not in _vm_maps(light._worker._proc.pid)
        rows_warm = warm.extract_batch(pa.record_batch({"path": paths[:60]})).to_pylist()
        assert "llvmlite" in _vm_maps(warm._worker._proc.pid)
        assert canonical_rows(rows_light) == canonical_rows(rows_warm)
        for a, b in zip(rows_light, rows_warm, strict=True):
            assert np.asarray(a["vector"], np.float32).tobytes() == np.asarray(b["vector"], np.float32).tobytes()
        pid = light._worker._proc.pid
        light.extract_batch(pa.record_batch({"path": paths}))  # now past WARM_BYTES in all
        assert light._worker._proc.pid == pid and "llvmlite" in _vm_maps(pid)  # warmed in place
    finally:
        light.close()
        warm.close()


def test_kernels_load_under_the_smallest_cap_with_a_cold_cache(tmp_path, monkeypatch, fixture_files):
    """A light worker already capped lifts its limit while LLVM compiles, then caps itself again from
    its new footprint: the budget stays on top of what the process holds."""
    monkeypatch.setenv("NUMBA_CACHE_DIR", str(tmp_path / "numba"))
    good = fixture_files["elf64_le_minimal"]
    request = {"path": str(good), "format": "elf", "size": good.stat().st_size}
    worker = ParserWorker(timeout_s=30, memory_limit_mb=256)
    try:
        worker.submit_many([request])
        assert worker.result(time.monotonic())["parse_error"] is None
        pid = worker._proc.pid
        light_limit = _soft_as_limit(pid)
        assert "llvmlite" not in _vm_maps(pid)
        worker.warm()
        assert worker._proc.pid == pid and "llvmlite" in _vm_maps(pid)
        assert _soft_as_limit(pid) > light_limit  # set again from the larger footprint
        worker.submit_many([request])
        assert worker.result(time.monotonic())["parse_error"] is None
    finally:
        worker.shutdown()
    assert any((tmp_path / "numba").rglob("*.nbi"))  # it compiled: the cache really was cold


def test_a_prestarted_worker_is_taken_and_configured_by_the_next_extractor(fixture_files):
    isolation.prestart()
    prestarted = isolation._PRESTARTED
    pid = prestarted._proc.pid
    ex = Extractor(ExtractOptions(fuzzy_hashes=(), memory_limit_mb=256))
    try:
        row = ex.extract(str(fixture_files["pe32plus_minimal"]))
        assert ex._worker is prestarted and ex._worker._proc.pid == pid
        assert ex._worker.memory_limit_mb == 256
        status = Path(f"/proc/{pid}/status").read_text().splitlines()
        vm = int(next(x for x in status if x.startswith("VmSize:")).split()[1]) << 10
        assert 0 < _soft_as_limit(pid) - (256 << 20) <= vm  # its budget is this extractor's
    finally:
        ex.close()
    assert isolation._PRESTARTED is None
    assert row["status"] == "ok"
    assert isolation.take_prestarted(timeout_s=1, memory_limit_mb=256) is None  # taken once


def test_a_prestarted_worker_never_taken_is_stopped_at_exit():
    import subprocess
    import sys

    code = ("import os, sys; from extract import isolation; isolation.prestart(); "
            "print(isolation._PRESTARTED._proc.pid, flush=True)")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                          cwd=Path(__file__).resolve().parents[2])
    assert proc.returncode == 0, proc.stderr
    pid = int(proc.stdout)
    for _ in range(200):  # reaped by its parent at exit (a zombie would still be listed)
        if not os.path.exists(f"/proc/{pid}"):
            break
        time.sleep(0.05)
    assert not os.path.exists(f"/proc/{pid}")


def test_numpy_values_in_a_reply_come_back_as_they_were():
    """Replies are pickles: marshal, cheaper to write, would turn a numpy scalar into its bytes."""
    value = [{"raw": {"g": {"n": np.int64(7), "f": np.float32(0.5), "a": np.arange(3)}}}]
    back = decode(encode(value))
    assert type(back[0]["raw"]["g"]["n"]) is np.int64 and back[0]["raw"]["g"]["n"] == 7
    assert type(back[0]["raw"]["g"]["f"]) is np.float32 and back[0]["raw"]["g"]["a"].tolist() == [0, 1, 2]
