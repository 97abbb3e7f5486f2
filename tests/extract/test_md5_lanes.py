"""The multi-buffer MD5 equals hashlib.md5 for every buffer, whatever the mix of sizes and types, and
reads nothing outside the buffers (buffers placed against inaccessible pages)."""

from __future__ import annotations

import ctypes
import hashlib
import mmap
import subprocess
import sys

import numpy as np
import pytest

from extract import md5_lanes


def digests(bufs: list) -> list[bytes]:
    return [hashlib.md5(memoryview(np.ascontiguousarray(b)) if isinstance(b, np.ndarray) else b).digest()
            for b in bufs]


def edge_lengths() -> list[int]:
    """Every padding case: the length field fits in the last block (r < 56) or needs one more."""
    return [0, 1, 2, 3, 4] + [64 * k + r for k in (0, 1, 2, 17) for r in (55, 56, 57, 63, 64, 65)]


def test_no_buffers_and_one_empty_buffer():
    assert md5_lanes.md5_many([]) == []
    assert md5_lanes.md5_many([b""]) == [bytes.fromhex("d41d8cd98f00b204e9800998ecf8427e")]


def test_padding_edge_lengths():
    rng = np.random.default_rng(1)
    bufs = [rng.bytes(n) for n in edge_lengths()]
    assert md5_lanes.md5_many(bufs) == digests(bufs)


@pytest.mark.parametrize("seed", range(3))
def test_random_mixes_of_sizes(seed):
    rng = np.random.default_rng(seed)
    lengths = [int(n) for n in rng.integers(0, 200_001, 100)] + edge_lengths()
    rng.shuffle(lengths)
    bufs = [rng.bytes(n) for n in lengths]
    assert md5_lanes.md5_many(bufs) == digests(bufs)


def test_equal_long_buffers_stay_in_the_lanes_and_one_huge_goes_to_hashlib():
    rng = np.random.default_rng(5)
    same = [rng.bytes(300_063) for _ in range(40)]
    assert md5_lanes.md5_many(same) == digests(same)
    lopsided = [rng.bytes(3_000_000)] + [rng.bytes(int(n)) for n in rng.integers(0, 5000, 50)]
    order, to_hashlib = md5_lanes._plan(np.array([len(b) for b in lopsided], np.int64), md5_lanes._step_cost())
    assert to_hashlib >= 1 and order[0] == 0  # the 3 MB buffer is not worth a lane
    assert md5_lanes.md5_many(lopsided) == digests(lopsided)


def test_buffer_types():
    rng = np.random.default_rng(7)
    raw = rng.bytes(10_000)
    words = rng.integers(0, 2**32, 1000, dtype=np.uint64).astype(np.uint32)
    mat = rng.integers(0, 256, (50, 40), dtype=np.uint8)
    bufs = [raw, bytearray(raw[:777]), memoryview(raw)[5:6000], memoryview(raw)[::3],
            np.frombuffer(raw, np.uint8), words, mat[:, 3:17], np.zeros(0, np.uint8)]
    expected = [hashlib.md5(b).digest() for b in (raw, raw[:777], raw[5:6000], raw[::3], raw, words.tobytes(),
                                                  mat[:, 3:17].tobytes(), b"")]
    assert md5_lanes.md5_many(bufs) == expected


EDGES = [0, 1, 55, 56, 63, 64, 65, 119, 120, 127, 128, 129, 4095, 4096, 4097]


@pytest.fixture
def in_place(monkeypatch):
    """Every buffer read in place through its own address (none packed), none sent to hashlib."""
    monkeypatch.setattr(md5_lanes, "_PACK", 0)
    monkeypatch.setattr(md5_lanes, "_STEP_COST", 1.0)


def _all_in_lanes(bufs: list) -> bool:
    return md5_lanes._plan(np.array([memoryview(b).nbytes for b in bufs], np.int64), 1.0)[1] == 0


@pytest.fixture
def guarded():
    """Two readable pages between two inaccessible ones (PROT_NONE): a read past either edge of the
    readable span kills the process (SIGSEGV) instead of passing unnoticed."""
    libc = ctypes.CDLL(None, use_errno=True)
    page = mmap.PAGESIZE
    m = mmap.mmap(-1, 4 * page)
    m[page : 3 * page] = np.random.default_rng(9).integers(0, 256, 2 * page, dtype=np.uint8).tobytes()
    base = ctypes.addressof(ctypes.c_char.from_buffer(m))
    guards = (base, base + 3 * page)
    if any(libc.mprotect(ctypes.c_void_p(g), ctypes.c_size_t(page), 0) != 0 for g in guards):
        pytest.skip("mprotect unavailable")
    try:
        yield m, page
    finally:
        for g in guards:
            libc.mprotect(ctypes.c_void_p(g), ctypes.c_size_t(page), 3)
        m.close()


def test_buffers_against_inaccessible_pages(in_place, guarded):
    m, page = guarded
    for n in EDGES + [2 * page - 1, 2 * page]:
        view = memoryview(m)
        ends_at_guard = view[3 * page - n : 3 * page]  # its last byte is the last readable one
        starts_at_guard = view[page : page + n]  # its first byte is the first readable one
        arr = np.frombuffer(m, np.uint8, count=n, offset=3 * page - n)
        bufs = [ends_at_guard, starts_at_guard, arr] * 6  # more than 16: the lanes refill
        assert _all_in_lanes(bufs)
        assert md5_lanes.md5_many(bufs) == [hashlib.md5(b).digest() for b in bufs], n
        del view, ends_at_guard, starts_at_guard, arr, bufs


@pytest.mark.parametrize("packed", [False, True])
def test_edge_lengths_as_bytearrays_and_memoryviews(monkeypatch, packed):
    if not packed:
        monkeypatch.setattr(md5_lanes, "_PACK", 0)
    monkeypatch.setattr(md5_lanes, "_STEP_COST", 1.0)
    rng = np.random.default_rng(4)
    raw = [rng.bytes(n) for n in EDGES]
    bufs = ([bytearray(b) for b in raw] + [memoryview(b) for b in raw] + [memoryview(bytearray(b)) for b in raw]
            + [memoryview(b + b"tail")[: len(b)] for b in raw])
    assert _all_in_lanes(bufs)
    assert md5_lanes.md5_many(bufs) == [hashlib.md5(b).digest() for b in raw * 4]
    held = bytearray(b"x" * 100)
    view = md5_lanes._flat(held)  # md5_many keeps such a view until its kernel returns
    with pytest.raises(BufferError):
        held.extend(b"y")  # so the bytearray cannot move or shrink under the kernel
    del view


def test_step_cost_is_measured_and_bounded():
    cost = md5_lanes._step_cost()
    assert 1.0 <= cost <= md5_lanes._L


@pytest.mark.corpus
def test_corpus_files_in_windows(small_corpus):
    from tests.conftest import corpus_manifest

    records = corpus_manifest()
    data = [(small_corpus / r["sha256"][:2] / r["sha256"]).read_bytes() for r in records]
    for window in (16, 256):
        got = [d for i in range(0, len(data), window) for d in md5_lanes.md5_many(data[i : i + window])]
        assert got == digests(data)


def test_import_compiles_nothing():
    code = ("import extract.md5_lanes as m; "
            "assert not (m._kernel.signatures or m._compress.signatures or m._plan.signatures)")
    subprocess.run([sys.executable, "-c", code], check=True)
