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


def _edge_buffers() -> list[bytes]:
    """Sizes around the block, window and string limits; random, printable-heavy, constant and
    pattern-dense contents."""
    rng = np.random.default_rng(16)
    out = []
    for n in (0, 1, 4, 5, 6, 1023, 1024, 1025, 2047, 2048, 2049, 3071, 3072, 5000, 70_000):
        out += [rng.integers(0, 256, n, dtype=np.uint8).tobytes(),
                rng.integers(0x1E, 0x82, n, dtype=np.uint8).tobytes(),
                b"A" * n, (b"MZ c:\\ C:\\ HTTP://x https://y HKEY_ hkey_ \x00" * (n // 40 + 1))[:n]]
    # every window entropy on a row boundary: k equal nibble counts, k a power of two
    for k in (1, 2, 4, 8, 16):
        out.append(bytes(16 * (i % k) for i in range(8192)))
    return out


def test_the_numpy_scan_equals_the_compiled_kernels():
    """``binfeat file``'s numpy scan (extract.byte_scan_numpy) against the kernels, key by key, dtype
    included, on the corpus sample, the fixtures and the edge cases."""
    from extract.byte_scan_numpy import scan_whole
    from extract.kernels import ember_entropy_bin
    from tests.fixtures import all_fixtures

    for data in _corpus_sample() + list(all_fixtures().values()) + _edge_buffers():
        ours, theirs = scan_whole(data, ember_entropy_bin), scan_bytes(data)
        _assert_same(ours, theirs, f"{len(data)} bytes")
        for key, value in theirs.items():
            assert type(ours[key]) is type(value) and getattr(ours[key], "dtype", None) == getattr(value, "dtype", None)


def test_deferred_kernels_scan_with_numpy_within_the_budget_then_load():
    """After defer_kernels(budget), whole buffers are scanned by numpy (numba never imported) until
    the budget is spent; the next buffer loads the kernels; the counts never change."""
    code = """
import sys
import numpy as np
from extract.kernels import defer_kernels, scan_bytes
data = [np.random.default_rng(i).integers(0, 256, 40_000, dtype=np.uint8).tobytes() for i in range(3)]
defer_kernels(90_000)
first = [scan_bytes(d) for d in data[:2]]
assert 'numba' not in sys.modules and 'extract.byte_kernels' not in sys.modules
third = scan_bytes(data[2])
assert 'extract.byte_kernels' in sys.modules
again = [scan_bytes(d) for d in data]
for a, b in zip(first + [third], again, strict=True):
    assert all(np.array_equal(np.asarray(a[k]), np.asarray(b[k])) if k != 'patterns' else a[k] == b[k] for k in a)
"""
    subprocess.run([sys.executable, "-c", code], check=True, cwd=str(Path(__file__).resolve().parents[2]))
