"""The multi-buffer MD5 equals hashlib.md5 for every buffer, whatever the mix of sizes and types."""

from __future__ import annotations

import hashlib
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
