"""The range histogram kernel counts exactly as np.bincount on crafted and real ranges, never reading
past the data (ranges outside it are clipped), and compiles nothing at import."""

from __future__ import annotations

import ctypes
import mmap
import subprocess
import sys

import numpy as np
import pytest

from extract import entropy as E


@pytest.fixture(scope="module")
def hist():
    return E._compile_hist()


def _ro(a: np.ndarray) -> np.ndarray:
    a = a.view()
    a.flags.writeable = False
    return a


def _check(hist, a: np.ndarray, starts, ends) -> None:
    starts = np.asarray(starts, np.int64)
    ends = np.asarray(ends, np.int64)
    got = hist(a, starts, ends)
    assert got.shape == (starts.size, 256) and got.dtype == np.int64
    for row, s, e in zip(got, starts.tolist(), ends.tolist(), strict=True):
        assert np.array_equal(row, np.bincount(a[s:e], minlength=256)), (s, e)


def _crafted_ranges(n: int) -> tuple[list[int], list[int]]:
    starts, ends = [], []
    for s in (0, 1, 3, 63, 64, 65, 1000, n - 1100, n - 1025, n - 65, n - 64, n - 63, n - 1, n):
        for length in (0, 1, 2, 31, 32, 33, 63, 64, 65, 127, 128, 129, 1023, 1024, 1025, 2047, 2048, 2049, n):
            s = max(0, min(s, n))
            starts.append(s)
            ends.append(min(s + length, n))
    starts += [0, 10, 500, 0]  # overlapping ranges
    ends += [n, n - 10, 3000, 2500]
    return starts, ends


@pytest.mark.parametrize("fill", ["zeros", "ff", "ones", "random", "mixed"])
def test_crafted_ranges(hist, fill):
    rng = np.random.default_rng(7)
    n = 5000
    a = {"zeros": np.zeros(n, np.uint8), "ff": np.full(n, 255, np.uint8), "ones": np.ones(n, np.uint8),
         "random": rng.integers(0, 256, n, dtype=np.uint8),
         "mixed": rng.choice(np.array([0, 1, 2, 0xCC, 254, 255], np.uint8), n)}[fill]
    _check(hist, _ro(a), *_crafted_ranges(n))


def test_tiny_and_empty_inputs(hist):
    for n in (0, 1, 63, 64, 65):
        a = _ro(np.arange(n, dtype=np.uint8))
        _check(hist, a, [0, 0, n], [n, 0, n])


def test_ranges_ending_at_a_guard_page(hist):
    # the data ends exactly where an inaccessible page starts: a read past its end would crash
    libc = ctypes.CDLL(None, use_errno=True)
    page = mmap.PAGESIZE
    m = mmap.mmap(-1, 3 * page)
    base = ctypes.addressof(ctypes.c_char.from_buffer(m))
    if libc.mprotect(ctypes.c_void_p(base + 2 * page), ctypes.c_size_t(page), 0) != 0:
        pytest.skip("mprotect unavailable")
    try:
        whole = np.frombuffer(m, dtype=np.uint8, count=2 * page)
        whole[:] = np.random.default_rng(3).integers(0, 4, 2 * page, dtype=np.uint8) * 85  # 0, 85, 170, 255
        for n in (2 * page, 2 * page - 1, 1000, 64, 65, 63):
            a = _ro(whole[2 * page - n:])
            _check(hist, a, [0, max(n - 64, 0), max(n - 1, 0), max(n - 1025, 0), n // 3], [n] * 5)
        del a, whole
    finally:
        libc.mprotect(ctypes.c_void_p(base + 2 * page), ctypes.c_size_t(page), 3)
        m.close()


def test_system_binaries(hist, system_binaries):
    rng = np.random.default_rng(11)
    for path in system_binaries:
        a = _ro(np.frombuffer(path.read_bytes(), dtype=np.uint8))
        n = a.size
        s = rng.integers(0, n + 1, 40)
        e = np.minimum(s + rng.integers(0, n + 1, 40), n)
        _check(hist, a, np.concatenate(([0, n, max(n - 1, 0)], s)), np.concatenate(([n, n, n], e)))


def test_range_counts_and_entropies():
    data = bytes(range(256)) * 40 + bytes(3000)
    a = np.frombuffer(data, dtype=np.uint8)
    for buf in (data, bytearray(data), memoryview(bytearray(data))):
        c = E.range_counts(buf, np.array([0, 5, 100, 7, 0]), np.array([len(data), 9000, 100, 20, 10]))
        assert np.array_equal(c[0], np.bincount(a, minlength=256))
        assert np.array_equal(c[1], np.bincount(a[5:9000], minlength=256))
        assert not c[2].any()
        assert np.array_equal(c[3], np.bincount(a[7:20], minlength=256))  # small total: numpy's count
    assert len(E._compile_hist().signatures) == 1  # writable input made read-only: one specialisation
    assert E.buffer_entropy(bytes(range(256)) * 20) == 8.0
    assert E.range_entropies(data, [(0, 0), (len(data) - 10, 100)]) == [0.0, 0.0]
    # a range past the end is cut there; a negative offset counts from 0 (bytes 0..3: 2 bits each)
    assert E.range_entropies(data, [(len(data) - 2, 10), (-5, 4)]) == [0.0, 2.0]


def test_ranges_outside_the_data_are_clipped():
    a = np.frombuffer(bytes(range(256)) * 20, dtype=np.uint8)
    n = a.size
    c = E.range_counts(a, np.array([-100, n - 10, n + 50, 0]), np.array([n + 100, n + 5000, n + 60, -3]))
    assert np.array_equal(c[0], np.bincount(a, minlength=256))
    assert np.array_equal(c[1], np.bincount(a[n - 10:], minlength=256))
    assert not c[2].any() and not c[3].any()


def test_warm_up_and_lazy_numba(monkeypatch):
    monkeypatch.setattr(E, "_HIST", None)
    E.warm_up()
    assert E._HIST is not None and len(E._HIST.signatures) == 1
    code = "import sys, extract.entropy; assert 'numba' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True, cwd=str(__import__("pathlib").Path(E.__file__).parents[1]))
