"""Shannon entropy of byte ranges (sections, overlays) for the structural groups.

One small numba kernel histograms all of a file's ranges in one call: a 4-way split table of int32
counts over unsigned indices (four independent chains of increments, no wraparound code), ~3 GB/s.
It is compiled on first use (``warm_up()`` in the parser worker) and cached on disk by numba, never
at import. A hand-written vector variant (AVX-512 VBMI2 byte compress) counted 1.26x as fast, but
the whole extraction measured within run-to-run noise of this one (docs/architecture.md, "Kernels kept
and dropped"), so it was dropped.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

_HIST: Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray] | None = None  # compiled on first use
_SMALL = 4096  # ranges totalling fewer bytes are counted with np.bincount (no kernel call needed)
_DEFERRED = False  # True: count with numpy until warm_up() (a light parser worker, see extract.worker)
_CHUNK = 1 << 20  # numpy counts a long range in chunks (np.bincount widens its input to intp)


def _hist_ranges(a, starts, ends):  # pragma: no cover - compiled by _compile_hist
    # (k, 256) counts of a[starts[k]:ends[k]]; unsigned indices (no wraparound code, so LLVM
    # vectorises); int32 counts flushed into int64 every 1 GiB per range
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


def _compile_hist() -> Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]:
    """The range histogram kernel, compiled (or loaded from numba's disk cache) on the first call."""
    global _HIST
    if _HIST is None:
        from numba import njit

        # boundscheck off: range_counts clips every range to the data before the call
        _HIST = njit(cache=True, nogil=True, boundscheck=False)(_hist_ranges)
    return _HIST


def defer_kernel() -> None:
    """Count with numpy (the same counts, slower on large ranges) until :func:`warm_up` is called:
    for a process that may extract only a file or two, where loading numba would cost more."""
    global _DEFERRED
    _DEFERRED = True


def warm_up() -> None:
    """Compile (or load from numba's disk cache) the histogram kernel now, e.g. when a worker starts,
    instead of during the first file's parse (~1 s cold, ~0.1 s from the cache)."""
    a = np.zeros(1, np.uint8)
    a.flags.writeable = False  # the one specialisation every call uses (see range_counts)
    _compile_hist()(a, np.zeros(1, np.int64), np.ones(1, np.int64))


def _readonly(data: bytes | memoryview | np.ndarray) -> np.ndarray:
    a = data if isinstance(data, np.ndarray) else np.frombuffer(data, dtype=np.uint8)
    if a.flags.writeable:  # e.g. a memoryview of a bytearray: keep the kernel's one specialisation
        a = a.view()
        a.flags.writeable = False
    return a


def _counts(a: np.ndarray, starts: list[int], ends: list[int]) -> np.ndarray:
    """(k, 256) byte counts of ``a[starts[i]:ends[i]]`` for ranges already clipped to ``a``: the
    kernel, or (while it is not compiled yet) np.bincount for ranges totalling fewer than _SMALL
    bytes, or for any ranges while the kernel is deferred (see :func:`defer_kernel`)."""
    if _HIST is None and (_DEFERRED or sum(e - s for s, e in zip(starts, ends, strict=True)) < _SMALL):
        out = np.zeros((len(starts), 256), dtype=np.int64)
        for k, (s, e) in enumerate(zip(starts, ends, strict=True)):
            if e > s:
                out[k] = _bincount(a, s, e)
        return out
    return _compile_hist()(a, np.array(starts, dtype=np.int64), np.array(ends, dtype=np.int64))


def range_counts(data: bytes | memoryview | np.ndarray, starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """(k, 256) byte counts of ``data[starts[i]:ends[i]]``; ranges are clipped to the data."""
    a = _readonly(data)
    n = a.size
    starts = np.clip(np.asarray(starts, dtype=np.int64), 0, n)
    ends = np.clip(np.asarray(ends, dtype=np.int64), starts, n)
    if starts.size == 0:
        return np.zeros((0, 256), dtype=np.int64)
    return _counts(a, starts.tolist(), ends.tolist())


def _bincount(a: np.ndarray, start: int, end: int) -> np.ndarray:
    """int64 counts of ``a[start:end]`` by numpy, a chunk at a time."""
    if end - start <= _CHUNK:
        return np.bincount(a[start:end], minlength=256)
    out = np.zeros(256, np.int64)
    for at in range(start, end, _CHUNK):
        out += np.bincount(a[at : min(at + _CHUNK, end)], minlength=256)
    return out


def buffer_entropy(buf: bytes | memoryview) -> float:
    """Shannon entropy (bits per byte) of one buffer; 0.0 when empty."""
    a = _readonly(buf)
    if a.size == 0:
        return 0.0
    return float(entropies(_counts(a, [0], [a.size]))[0])


def entropies(counts: np.ndarray) -> np.ndarray:
    """Shannon entropy (bits per byte) of each row of a (k, 256) count matrix; 0 for empty rows.

    Per row: p = count / total in float64, the terms p * log2(p) (0 where p is 0), numpy's float64
    sum of the 256 terms in byte-value order, negated (0.0 - x: no -0.0 for empty or constant rows)."""
    c = counts.astype(np.float64)
    p = c / np.maximum(c.sum(axis=1), 1.0)[:, None]  # an empty row: 0 / 1
    return 0.0 - (p * np.log2(p + (p == 0))).sum(axis=1)  # log2(1) = 0 where p is 0


def range_entropies(data: bytes | memoryview, ranges: list[tuple[int, int]]) -> list[float]:
    """Entropy of each (offset, size) range of ``data``, clipped to the data (outside: 0)."""
    if not ranges:
        return []
    n = len(data)
    starts = [min(max(o, 0), n) for o, _ in ranges]
    ends = [max(lo, min(max(o, 0) + max(s, 0), n)) for lo, (o, s) in zip(starts, ranges, strict=True)]
    return entropies(_counts(_readonly(data), starts, ends)).tolist()
