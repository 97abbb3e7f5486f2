"""The range histogram kernels: the vector and portable kernels count exactly as np.bincount on crafted
and real ranges (never reading past the data), the choice follows the target and the override, and a
vector kernel that cannot be built falls back."""

from __future__ import annotations

import ctypes
import mmap
import subprocess
import sys

import numpy as np
import pytest

from extract import entropy as E
from extract import kernels as K


@pytest.fixture(scope="module")
def both():
    return {"vector": E._build_vector(), "portable": E._build_portable()}


@pytest.fixture
def fresh(monkeypatch):
    monkeypatch.setattr(E, "_HIST", None)
    monkeypatch.delenv(K.SCAN_KERNEL_ENV, raising=False)
    return monkeypatch


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


@pytest.mark.parametrize("kind", ["vector", "portable"])
@pytest.mark.parametrize("fill", ["zeros", "ff", "ones", "random", "mixed"])
def test_crafted_ranges(both, kind, fill):
    rng = np.random.default_rng(7)
    n = 5000
    a = {"zeros": np.zeros(n, np.uint8), "ff": np.full(n, 255, np.uint8), "ones": np.ones(n, np.uint8),
         "random": rng.integers(0, 256, n, dtype=np.uint8),
         "mixed": rng.choice(np.array([0, 1, 2, 0xCC, 254, 255], np.uint8), n)}[fill]
    _check(both[kind], _ro(a), *_crafted_ranges(n))


@pytest.mark.parametrize("kind", ["vector", "portable"])
def test_tiny_and_empty_inputs(both, kind):
    for n in (0, 1, 63, 64, 65):
        a = _ro(np.arange(n, dtype=np.uint8))
        _check(both[kind], a, [0, 0, n], [n, 0, n])


@pytest.mark.parametrize("kind", ["vector", "portable"])
def test_ranges_ending_at_a_guard_page(both, kind):
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
            _check(both[kind], a, [0, max(n - 64, 0), max(n - 1, 0), max(n - 1025, 0), n // 3], [n] * 5)
        del a, whole
    finally:
        libc.mprotect(ctypes.c_void_p(base + 2 * page), ctypes.c_size_t(page), 3)
        m.close()


def test_kernels_agree_on_system_binaries(both, system_binaries):
    rng = np.random.default_rng(11)
    for path in system_binaries:
        a = np.frombuffer(path.read_bytes(), dtype=np.uint8)
        n = a.size
        s = rng.integers(0, n + 1, 40)
        e = np.minimum(s + rng.integers(0, n + 1, 40), n)
        starts = np.concatenate(([0, n, max(n - 1, 0), max(n - 100, 0)], s, s[:10])).astype(np.int64)
        ends = np.concatenate(([n, n, n, n], e, np.full(10, n))).astype(np.int64)
        vec = both["vector"](a, starts, ends)
        assert np.array_equal(vec, both["portable"](a, starts, ends)), path
        assert np.array_equal(vec[0], np.bincount(a, minlength=256)), path


def test_range_counts_and_entropies(fresh):
    data = bytes(range(256)) * 40 + bytes(3000)
    for buf in (data, bytearray(data), memoryview(bytearray(data))):
        c = E.range_counts(buf, np.array([0, 5, 100]), np.array([len(data), 9000, 100]))
        a = np.frombuffer(data, dtype=np.uint8)
        assert np.array_equal(c[0], np.bincount(a, minlength=256))
        assert np.array_equal(c[1], np.bincount(a[5:9000], minlength=256))
        assert not c[2].any()
    assert len(E._compile_hist().signatures) == 1  # writable input made read-only: one specialisation
    assert E.buffer_entropy(bytes(range(256)) * 20) == 8.0
    assert E.range_entropies(data, [(0, 0), (len(data) - 10, 100)]) == [0.0, 0.0]


def test_override_and_bad_value(fresh):
    fresh.setenv(K.SCAN_KERNEL_ENV, "portable")
    assert E._compile_hist().py_func.__name__ == "hist_ranges"
    fresh.setattr(E, "_HIST", None)
    fresh.setenv(K.SCAN_KERNEL_ENV, "vector")
    assert E._compile_hist().py_func.__name__ == "hist_ranges_vector"
    fresh.setattr(E, "_HIST", None)
    fresh.setenv(K.SCAN_KERNEL_ENV, "fast")
    with pytest.raises(ValueError, match="BINFEAT_SCAN_KERNEL='fast': use 'vector', 'portable'"):
        E._compile_hist()


def test_choice_follows_the_target(fresh):
    import llvmlite.binding as llvm
    from numba.core import config

    fresh.setattr(K, "vector_scan_fits", lambda: False)
    assert E._vector_fits() is False
    assert E._compile_hist().py_func.__name__ == "hist_ranges"
    fresh.setattr(E, "_HIST", None)
    fresh.setattr(K, "vector_scan_fits", lambda: True)
    features = llvm.get_host_cpu_features()
    vbmi2 = bool(features.get("avx512bw", False) and features.get("avx512vbmi2", False))
    assert E._vector_fits() is vbmi2  # AVX2 alone: LLVM expands the byte compress, slower than portable
    assert E._compile_hist().py_func.__name__ == ("hist_ranges_vector" if vbmi2 else "hist_ranges")
    fresh.setattr(config, "CPU_FEATURES", "+avx2")
    assert E._vector_fits() is False
    fresh.setattr(E, "_HIST", None)
    fresh.setattr(E, "_vector_fits", lambda: True)
    assert E._compile_hist().py_func.__name__ == "hist_ranges_vector"


def test_falls_back_when_the_vector_kernel_cannot_be_built(fresh):
    def broken():
        raise RuntimeError("LLVM has no llvm.experimental.vector.compress here")

    fresh.setattr(E, "_vector_fits", lambda: True)
    fresh.setattr(E, "_build_vector", broken)
    assert E._compile_hist().py_func.__name__ == "hist_ranges"
    fresh.setattr(E, "_HIST", None)
    fresh.setenv(K.SCAN_KERNEL_ENV, "vector")  # forced: the failure is raised, not hidden
    with pytest.raises(RuntimeError, match="has no llvm"):
        E._compile_hist()


def test_a_miscounting_kernel_is_rejected(fresh):
    fresh.setattr(E, "_vector_fits", lambda: True)
    real = E._build_portable()
    fresh.setattr(E, "_build_vector", lambda: E._probe(lambda a, s, e: real(a, s, e) + 1))
    assert E._compile_hist().py_func.__name__ == "hist_ranges"


def test_warm_up_and_lazy_numba(fresh):
    E.warm_up()
    assert E._HIST
    code = "import sys, extract.entropy; assert 'numba' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True, cwd=str(__import__("pathlib").Path(E.__file__).parents[1]))
