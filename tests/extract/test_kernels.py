"""The byte scan on real files: the histogram, strings and pattern counts equal independent
computations (np.bincount, regular expressions), any chunking gives the whole-buffer result, and
importing the driver compiles nothing."""

from __future__ import annotations

import itertools
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from extract.kernels import ByteScanner, scan_bytes
from tests.conftest import corpus_dir, corpus_manifest

RUNS = re.compile(rb"[\x20-\x7f]{5,}")  # EMBER's strings: runs of 5 or more bytes in 0x20-0x7f
PATTERNS = {"paths": rb"c:\\", "urls": rb"https?://", "registry": rb"HKEY_", "MZ": rb"MZ"}


def _corpus_sample() -> list[bytes]:
    root = corpus_dir()
    if root is None:
        pytest.skip("small sample corpus not built (make corpus-small)")
    entries = corpus_manifest()
    return [(root / e["sha256"][:2] / e["sha256"]).read_bytes() for e in entries[:: max(1, len(entries) // 60)]]


def _chunked(data: bytes, cuts: list[int], last: bool) -> dict:
    s = ByteScanner()
    for a, b in itertools.pairwise(cuts):
        s.update(memoryview(data)[a:b], last=last and b == len(data))
    return s.finish()


def _assert_same(a: dict, b: dict, what: str) -> None:
    assert a.keys() == b.keys()
    for key in a:
        same = a[key] == b[key] if key == "patterns" else np.array_equal(np.asarray(a[key]), np.asarray(b[key]))
        assert same, (what, key)


def test_counts_equal_independent_computations_on_the_corpus():
    for data in _corpus_sample():
        r = scan_bytes(data)
        a = np.frombuffer(data, np.uint8)
        assert np.array_equal(r["histogram"], np.bincount(a, minlength=256))
        runs = RUNS.findall(data)
        assert r["numstrings"] == len(runs) and r["string_bytes"] == sum(map(len, runs))
        dist = np.bincount(np.frombuffer(b"".join(runs), np.uint8), minlength=128)[32:128]
        assert np.array_equal(r["printabledist"], dist)
        assert r["patterns"] == {k: len(re.findall(p, data, re.IGNORECASE if k in ("paths", "urls") else 0))
                                 for k, p in PATTERNS.items()}
        # one window of 2048 bytes every 1024 (a shorter file: one window of all its bytes), each adding
        # its 2048 high-nibble counts to one row
        assert r["entropy_grid"].sum() == (2048 * (a.size // 1024 - 1) if a.size >= 2048 else a.size)


def test_any_chunking_equals_the_whole_buffer():
    rng = np.random.default_rng(5)
    for data in _corpus_sample()[::3]:
        whole = scan_bytes(data)
        n = len(data)
        for step in (1024, 12 * 1024, 1 << 20):
            cuts = list(range(0, n, step)) + [n]
            _assert_same(_chunked(data, cuts, last=False), whole, f"{n} bytes in chunks of {step}")
        blocks = np.cumsum(rng.integers(1, 9, 64)) * 1024  # uneven multiples of 1024, the last one odd
        cuts = [0] + [int(c) for c in blocks if c < n] + [n]
        _assert_same(_chunked(data, cuts, last=True), whole, f"{n} bytes in uneven chunks, last marked")


def test_importing_the_driver_compiles_nothing():
    code = ("import sys, extract.kernels; "
            "assert 'numba' not in sys.modules and 'extract.byte_kernels' not in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=str(Path(__file__).resolve().parents[2]))
