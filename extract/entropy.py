"""Shannon entropy of byte ranges (sections, overlays) for the structural groups.

A small numba kernel histograms all of a file's ranges in one call, compiled on first use
(``warm_up()`` in the parser worker), cached on disk by numba, never at import. Two kernels, chosen as
:mod:`extract.kernels` chooses the scan (:func:`extract.kernels.vector_scan_fits`, here also
requiring AVX-512 VBMI2, or ``BINFEAT_SCAN_KERNEL=vector|portable``), with the same counts:

- vector (hosts with AVX-512 VBMI2, see :func:`_vector_fits`): 64 bytes at a time, the bytes 0x00,
  0x01 and 0xff (about a third of executables' bytes) are only counted (vector compare + popcount)
  and the others packed by ``llvm.experimental.vector.compress`` (``vpcompressb``) into a 1 KiB
  buffer that a 4-way split table then counts; ~4.1 GB/s on the sample corpus (~0.72x the portable kernel's
  CPU time);
- portable: the 4-way split table over every byte (~3 GB/s); also the fallback when the vector kernel
  cannot be built.
"""

from __future__ import annotations

from typing import Any

import numpy as np

_HIST: Any = None  # compiled multi-range histogram (numba), or False when numba is unavailable
_CHUNK = 1 << 18  # uint16 elements per numpy bincount chunk (keeps the intp temporary in cache)
_BLOCK = 1024  # bytes per compress-then-count step of the vector kernel (its buffer stays in L1)
# the vector kernel's intrinsics, set by _build_vector: module globals, so numba's disk cache (which
# hashes closure variables, not globals) recognises the kernel across processes
_hv_keep_compress: Any = None
_hv_ones: Any = None
_hv_ffs: Any = None


def _probe(hist: Any) -> None:
    """One call on read-only uint8 input, as every later call (one specialisation only): compiles or
    loads the kernel and checks its counts (raises if it cannot be built or miscounts here)."""
    a = np.frombuffer(bytes(range(256)) * 17 + bytes(100) + b"\xff" * 77 + b"\x01" * 3, dtype=np.uint8)
    starts = np.array([0, 0, 5, 64, 4000, a.size - 1, a.size, 3], np.int64)
    ends = np.array([8, a.size, 4200, 1090, a.size, a.size, a.size, 3], np.int64)
    got = hist(a, starts, ends)
    for row, s, e in zip(got, starts.tolist(), ends.tolist(), strict=True):
        if not np.array_equal(row, np.bincount(a[s:e], minlength=256)):
            raise RuntimeError("range histogram kernel miscounts on this target")


def _build_portable() -> Any:
    from numba import njit

    @njit(cache=True, nogil=True, boundscheck=False)
    def hist_ranges(a, starts, ends):  # pragma: no cover - compiled
        # unsigned indices (no wraparound code, so LLVM vectorises); int32 counts flushed
        # into int64 every 1 GiB per range
        out = np.zeros((starts.size, 256), np.int64)
        h = np.zeros((4, 256), np.int32)
        step = np.uint64(1 << 30)
        for k in range(starts.size):
            s = np.uint64(starts[k])
            e = np.uint64(ends[k])
            while s < e:
                stop = min(e, s + step)
                m = s + ((stop - s) & ~np.uint64(3))
                h[:] = 0
                i = s
                while i < m:
                    h[0, a[i]] += 1
                    h[1, a[i + np.uint64(1)]] += 1
                    h[2, a[i + np.uint64(2)]] += 1
                    h[3, a[i + np.uint64(3)]] += 1
                    i += np.uint64(4)
                while i < stop:
                    h[0, a[i]] += 1
                    i += np.uint64(1)
                for j in range(256):
                    out[k, j] += h[0, j] + h[1, j] + h[2, j] + h[3, j]
                s = stop
        return out

    _probe(hist_ranges)
    return hist_ranges


def _build_vector() -> Any:
    """The vector kernel (its intrinsics become the module globals ``_hv_*``)."""
    from llvmlite import ir
    from numba import njit, types
    from numba.core import cgutils
    from numba.core.extending import intrinsic

    from extract.byte_kernels import _bits, _is_u8_array, _splat, _vec_load

    i64 = ir.IntType(64)

    def _ctpop(builder, mask):
        fn = cgutils.get_or_insert_function(builder.module, ir.FunctionType(i64, [i64]), "llvm.ctpop.i64")
        return builder.call(fn, [_bits(builder, mask)])

    @intrinsic
    def keep_compress(typingctx, a, pos, out, cnt):
        # the bytes of a[pos:pos + 64] other than 0x00, 0x01 and 0xff packed into out[cnt:] (64 bytes
        # written: the caller keeps a[pos:pos + 64] and out[cnt:cnt + 64] in bounds); cnt + their number
        if not (_is_u8_array(a) and _is_u8_array(out) and out.layout == "C"):
            return None

        def codegen(context, builder, sig, args):
            v = _vec_load(context, builder, sig.args[0], args[0], args[1], 64)
            vty = v.type
            keep = builder.icmp_unsigned("<", builder.sub(v, _splat(vty, 2)), _splat(vty, 253))  # 2..254
            fn = cgutils.get_or_insert_function(builder.module, ir.FunctionType(vty, [vty, keep.type, vty]),
                                                "llvm.experimental.vector.compress.v64i8")
            packed = builder.call(fn, [v, keep, ir.Constant(vty, ir.Undefined)])
            o = context.make_array(sig.args[2])(context, builder, args[2])
            builder.store(packed, builder.bitcast(builder.gep(o.data, [args[3]]), vty.as_pointer()), align=1)
            return builder.add(args[3], _ctpop(builder, keep))

        return types.uint64(a, types.uint64, out, types.uint64), codegen

    def _eq_count(value):
        @intrinsic
        def count(typingctx, a, pos):
            # how many of a[pos:pos + 64] equal ``value``
            if not _is_u8_array(a):
                return None

            def codegen(context, builder, sig, args):
                v = _vec_load(context, builder, sig.args[0], args[0], args[1], 64)
                return _ctpop(builder, builder.icmp_unsigned("==", v, _splat(v.type, value)))

            return types.uint64(a, types.uint64), codegen

        return count

    globals().update(_hv_keep_compress=keep_compress, _hv_ones=_eq_count(1), _hv_ffs=_eq_count(255))

    @njit(cache=True, nogil=True, boundscheck=False)
    def hist_ranges_vector(a, starts, ends):  # pragma: no cover - compiled
        # per 64-byte word: count 0x01 and 0xff, pack the other nonzero bytes into buf; per block of
        # up to _BLOCK bytes: the 4-way split table over buf. Words only where a whole one fits in the
        # range; the range's last < 64 bytes byte by byte. int32 table flushed every 1 GiB.
        out = np.zeros((starts.size, 256), np.int64)
        h = np.zeros((4, 256), np.int32)
        buf = np.zeros(_BLOCK + 64, np.uint8)
        n = np.uint64(a.shape[0])
        u0 = np.uint64(0)
        u1 = np.uint64(1)
        u2 = np.uint64(2)
        u3 = np.uint64(3)
        u4 = np.uint64(4)
        u64 = np.uint64(64)
        ublock = np.uint64(_BLOCK)
        step = np.uint64(1 << 30)
        for k in range(starts.size):
            s = np.uint64(starts[k])
            e = min(np.uint64(ends[k]), n)  # never past the data (ranges come clipped anyway)
            skipped = u0  # bytes of whole words not packed: 0x00, 0x01, 0xff
            ones = u0
            ffs = u0
            while s < e:
                stop = min(e, s + step)
                h[:] = 0
                i = s
                while i + u64 <= stop:
                    blk = min(stop, i + ublock)
                    c = u0
                    nb = u0
                    while i + u64 <= blk:  # a[i:i + 64] within the range; buf[c:c + 64], c <= nb <= _BLOCK - 64
                        ones += _hv_ones(a, i)
                        ffs += _hv_ffs(a, i)
                        c = _hv_keep_compress(a, i, buf, c)
                        i += u64
                        nb += u64
                    skipped += nb - c
                    j = u0
                    while j + u4 <= c:
                        h[0, buf[j]] += 1
                        h[1, buf[j + u1]] += 1
                        h[2, buf[j + u2]] += 1
                        h[3, buf[j + u3]] += 1
                        j += u4
                    while j < c:
                        h[0, buf[j]] += 1
                        j += u1
                while i < stop:
                    h[0, a[i]] += 1
                    i += u1
                for j in range(256):
                    out[k, j] += h[0, j] + h[1, j] + h[2, j] + h[3, j]
                s = stop
            out[k, 0] += np.int64(skipped - ones - ffs)
            out[k, 1] += np.int64(ones)
            out[k, 255] += np.int64(ffs)
        return out

    _probe(hist_ranges_vector)
    return hist_ranges_vector


def _vector_fits() -> bool:
    """Where the vector kernel is fast: :func:`extract.kernels.vector_scan_fits` (the host CPU with
    AVX2) and a native byte compress (AVX-512 VBMI2, host features). Measured on the sample corpus:
    0.72x the portable kernel's CPU time with AVX-512 VBMI2, 2.4x on an AVX2-only target (LLVM
    expands the 64-byte compress)."""
    from extract import kernels

    if not kernels.vector_scan_fits():
        return False
    from numba.core import config

    if config.CPU_FEATURES is not None:
        return False  # explicit target features (e.g. a cache shared by different machines)
    import llvmlite.binding as llvm

    try:
        features = llvm.get_host_cpu_features()
        return bool(features.get("avx512bw", False) and features.get("avx512vbmi2", False))
    except Exception:
        return False


def _compile_hist() -> Any:
    """Choose and compile (or load from numba's disk cache) the range histogram on first use, never at
    import: the vector kernel where it fits (or forced by ``BINFEAT_SCAN_KERNEL``), else, or when it
    cannot be built (unless forced), the portable one; False when numba is unavailable."""
    global _HIST
    if _HIST is None:
        from extract.kernels import choose_kernel

        def portable() -> Any:
            try:
                return _build_portable()
            except Exception:
                return False  # numba unavailable: numpy counts

        _HIST = choose_kernel(_vector_fits, _build_vector, portable)
    return _HIST


def warm_up() -> None:
    """Compile (or load from numba's disk cache) the histogram kernel now, e.g. when a worker starts,
    instead of during the first file's parse (~1 s cold, ~0.1 s from the cache)."""
    _compile_hist()


def _numpy_counts(a: np.ndarray) -> np.ndarray:
    n = a.size
    if n < 65536:
        return np.bincount(a, minlength=256)
    m = n & ~1
    v = a[:m].view(np.uint16)
    acc = np.zeros(65536, dtype=np.int64)
    for i in range(0, v.size, _CHUNK):
        acc += np.bincount(v[i:i + _CHUNK], minlength=65536)
    c = acc.reshape(256, 256)
    counts = c.sum(axis=0) + c.sum(axis=1)
    if m < n:
        counts[a[-1]] += 1
    return counts


def range_counts(data: bytes | memoryview | np.ndarray, starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """(k, 256) byte counts of ``data[starts[i]:ends[i]]`` (ranges already clipped to the data)."""
    a = data if isinstance(data, np.ndarray) else np.frombuffer(data, dtype=np.uint8)
    if a.flags.writeable:  # e.g. a memoryview of a bytearray: keep the kernel's one specialisation
        a = a.view()
        a.flags.writeable = False
    starts = np.ascontiguousarray(starts, dtype=np.int64)
    ends = np.ascontiguousarray(ends, dtype=np.int64)
    if starts.size == 0:
        return np.zeros((0, 256), dtype=np.int64)
    hist = _compile_hist() if int((ends - starts).sum()) >= 4096 else False
    if hist:
        return hist(a, starts, ends)
    return np.stack([_numpy_counts(a[s:e]) for s, e in zip(starts.tolist(), ends.tolist(), strict=True)])


def buffer_entropy(buf: bytes | memoryview) -> float:
    """Shannon entropy (bits per byte) of one buffer; 0.0 when empty."""
    a = np.frombuffer(buf, dtype=np.uint8)
    n = a.size
    if n == 0:
        return 0.0
    return float(entropies(range_counts(a, np.zeros(1, np.int64), np.full(1, n, np.int64)))[0])


def entropies(counts: np.ndarray) -> np.ndarray:
    """Shannon entropy (bits per byte) of each row of a (k, 256) count matrix; 0 for empty rows."""
    counts = counts.astype(np.float64)
    n = counts.sum(axis=1, keepdims=True)
    p = np.divide(counts, n, out=np.zeros_like(counts), where=n > 0)
    logp = np.log2(p, out=np.zeros_like(p), where=p > 0)
    return 0.0 - (p * logp).sum(axis=1)  # 0.0 - x: no -0.0 for empty or constant ranges


def range_entropies(data: bytes | memoryview, ranges: list[tuple[int, int]]) -> list[float]:
    """Entropy of each (offset, size) range of ``data``, clipped to the data (outside: 0)."""
    n = len(data)
    starts = np.asarray([min(max(o, 0), n) for o, _ in ranges], dtype=np.int64)
    ends = np.asarray([min(max(o, 0) + max(s, 0), n) for o, s in ranges], dtype=np.int64)
    return entropies(range_counts(data, starts, ends)).tolist()
