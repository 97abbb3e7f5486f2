"""The scan kernel's choice: the vector and portable kernels agree on real files, the choice follows
the target CPU and the override, and a vector kernel that cannot be built falls back."""

from __future__ import annotations

import numpy as np
import pytest

from extract import byte_kernels, byte_kernels_portable
from extract import kernels as K
from tests.conftest import corpus_dir, corpus_manifest


def _scan_with(scan, data: bytes, chunk: int | None) -> dict:
    saved = K._KERNELS
    K._KERNELS = (scan, byte_kernels._long_runs, byte_kernels._patterns)
    try:
        s = K.ByteScanner()
        if chunk is None:
            s.update(data, last=True)
        else:
            for i in range(0, len(data), chunk):
                s.update(data[i : i + chunk])
        return s.finish()
    finally:
        K._KERNELS = saved


def _assert_same(a: dict, b: dict, what: str) -> None:
    assert a.keys() == b.keys()
    for key in a:
        assert np.array_equal(np.asarray(a[key]), np.asarray(b[key])) if key != "patterns" else a[key] == b[key], (
            what, key)


def test_kernels_agree_on_system_binaries(system_binaries):
    for path in system_binaries:
        data = path.read_bytes()
        for chunk in (None, 1024, 12 * 1024):
            _assert_same(_scan_with(byte_kernels._scan, data, chunk),
                         _scan_with(byte_kernels_portable._scan, data, chunk), f"{path} chunk {chunk}")


def test_kernels_agree_on_the_sample_corpus():
    root = corpus_dir()
    if root is None:
        pytest.skip("small sample corpus not built (make corpus-small)")
    entries = corpus_manifest()
    for e in entries[:: max(1, len(entries) // 120)]:
        data = (root / e["sha256"][:2] / e["sha256"]).read_bytes()
        _assert_same(_scan_with(byte_kernels._scan, data, None),
                     _scan_with(byte_kernels_portable._scan, data, None), e["sha256"])


@pytest.fixture
def fresh(monkeypatch):
    monkeypatch.setattr(K, "_KERNELS", None)
    monkeypatch.delenv(K.SCAN_KERNEL_ENV, raising=False)
    return monkeypatch


def test_override_and_bad_value(fresh):
    fresh.setenv(K.SCAN_KERNEL_ENV, "portable")
    assert K.kernels()[0] is byte_kernels_portable._scan
    fresh.setattr(K, "_KERNELS", None)
    fresh.setenv(K.SCAN_KERNEL_ENV, "vector")
    assert K.kernels()[0] is byte_kernels._scan
    fresh.setattr(K, "_KERNELS", None)
    fresh.setenv(K.SCAN_KERNEL_ENV, "fast")
    with pytest.raises(ValueError, match="BINFEAT_SCAN_KERNEL='fast': use 'vector', 'portable'"):
        K.kernels()


def test_choice_follows_the_target(fresh):
    from numba.core import config

    fresh.setattr(config, "CPU_NAME", "generic")  # NUMBA_CPU_NAME=generic: no AVX2 in the build
    assert K.vector_scan_fits() is False
    assert K.kernels()[0] is byte_kernels_portable._scan
    fresh.setattr(config, "CPU_NAME", None)
    import llvmlite.binding as llvm

    fresh.setattr(llvm, "get_host_cpu_features", lambda: {"avx2": False, "sse4.2": True})
    assert K.vector_scan_fits() is False
    fresh.setattr(llvm, "get_host_cpu_features", lambda: {"avx2": True})
    assert K.vector_scan_fits() is True


def test_falls_back_when_the_vector_kernel_cannot_be_built(fresh):
    def broken(*args):
        raise RuntimeError("LLVM has no llvm.experimental.vector.compress here")

    fresh.setattr(K, "vector_scan_fits", lambda: True)
    fresh.setattr(byte_kernels, "_scan", broken)
    assert K.kernels()[0] is byte_kernels_portable._scan
    fresh.setattr(K, "_KERNELS", None)
    fresh.setenv(K.SCAN_KERNEL_ENV, "vector")  # forced: the failure is raised, not hidden
    with pytest.raises(RuntimeError, match="has no llvm"):
        K.kernels()
