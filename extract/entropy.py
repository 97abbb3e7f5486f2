"""Shannon entropy of byte ranges (sections, overlays) for the structural groups.

A small numba kernel histograms all of a file's ranges in one call (a 4-way split table, ~2 GB/s);
it compiles on first use (``warm_up()`` in the parser worker), cached on disk by numba, never at import.
"""

from __future__ import annotations

from typing import Any

import numpy as np

_HIST: Any = None  # compiled multi-range histogram (numba), or False when numba is unavailable
_CHUNK = 1 << 18  # uint16 elements per numpy bincount chunk (keeps the intp temporary in cache)


def _compile_hist() -> Any:
    """Compile the range histogram on first use (cached on disk by numba), never at import."""
    global _HIST
    if _HIST is None:
        try:
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

            # read-only uint8 input, as every later call (one specialisation only)
            hist_ranges(np.frombuffer(bytes(8), dtype=np.uint8), np.zeros(1, np.int64),
                        np.full(1, 8, np.int64))
            _HIST = hist_ranges
        except Exception:
            _HIST = False
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
