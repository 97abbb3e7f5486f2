"""Compiled byte-level kernels (EMBER v2 semantics) for the byte histogram, the byte-entropy histogram
and the printable-string statistics, streamed in constant memory.

One pass (``_scan`` in :mod:`extract.byte_kernels`) per 1024-byte block while the block is in L1:
- printable-run membership as bit masks, 64 bytes to a word: a byte belongs to a string (a run of
  >= 5 bytes in 0x20-0x7f) exactly when some 5-byte all-printable window contains it, which is a few
  shifts and ands of the printable bits; run starts are counted with a popcount;
- one 4-way split table of uint16 counts (moved into int64 every 128 blocks), indexed by the
  nibble-swapped byte + 256 * in-string: its two halves together are the byte histogram, its upper
  half the string-byte histogram. Only nonzero bytes are scattered into it (their indices packed
  by a vector compress); zeros, never in a string, are only counted;
- a block's high-nibble counts are the growth of the table's 16 row sums (one vector add tree,
  thanks to the swapped nibbles); each pair of adjacent blocks is one EMBER entropy window, its
  entropy summed from a p*log2(p) table;
- EMBER's whole-file pattern counts (``c:\\`` and ``https?://`` in any case, ``HKEY_``, ``MZ``): a
  64-bit mask of positions ending one of their last-two-byte pairs, exact checks only at its set
  bits; none can overlap itself, so occurrence counts equal the non-overlapping regex match counts.
The vector steps are numba intrinsics written as generic LLVM IR, a few instructions each with AVX2
or AVX-512. Where LLVM must expand them (a baseline x86-64 build, other architectures) the portable
kernel (:mod:`extract.byte_kernels_portable`, byte loops, the same results) is used instead: see
:func:`kernels`. ``ByteScanner.update(chunk)`` takes chunk sizes that are multiples of 1024 except
the last, so a file larger than memory is never held whole. Compilation happens on first use
(cached on disk by numba), never at import.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import TypeVar

import numpy as np

T = TypeVar("T")

BLOCK = 1024  # EMBER's entropy step; a window is two adjacent blocks
WINDOW = 2 * BLOCK
MIN_RUN = 5  # EMBER: printable runs of 5 or more bytes
# A window whose 4*entropy lies this close to an integer is re-binned with EMBER's own float32 numpy
# code, so the bin is exactly EMBER's (float32 rounding can move a value across a row boundary).
UNCERTAIN = 1e-4
_CONTEXT = 8  # bytes of the previous chunk kept: up to 4 unresolved after 4 of context; 7 for patterns
PATTERNS = ("paths", "urls", "registry", "MZ")
_NO_BYTES = np.zeros(0, np.uint8)
MAX_CALL = 1 << 32  # bytes per kernel call: longer inputs are split (its scratch grows with a call)
_NO_CONTEXT = np.zeros(4, np.uint8)  # before the file: not printable


_KERNELS: tuple | None = None
# "vector" or "portable" forces a scan kernel (tests, or a cluster whose nodes differ); unset: chosen
SCAN_KERNEL_ENV = "BINFEAT_SCAN_KERNEL"


def vector_scan_fits() -> bool:
    """Whether numba compiles for a target where the vector scan is fast: the host CPU (numba's
    default) with AVX2. Measured on the sample corpus: 1.5x the portable kernel with AVX-512 or
    AVX2, 0.43x on a baseline x86-64 target."""
    from numba.core import config

    if config.CPU_NAME not in (None, "host"):
        return False  # e.g. NUMBA_CPU_NAME=generic for a cache shared by different machines
    import llvmlite.binding as llvm

    try:
        return bool(llvm.get_host_cpu_features().get("avx2", False))
    except Exception:
        return False


def choose_kernel(fits: Callable[[], bool], vector: Callable[[], T], portable: Callable[[], T]) -> T:
    """``vector()`` where ``fits()`` (or when ``BINFEAT_SCAN_KERNEL=vector``), else ``portable()``;
    also ``portable()`` when the vector build fails, unless it was forced (then the failure is raised)."""
    forced = os.environ.get(SCAN_KERNEL_ENV, "")
    if forced not in ("", "vector", "portable"):
        raise ValueError(f"{SCAN_KERNEL_ENV}={forced!r}: use 'vector', 'portable' or leave it unset")
    if forced == "vector" or (not forced and fits()):
        try:
            return vector()
        except Exception:
            if forced:
                raise
    return portable()


def kernels() -> tuple:
    """The compiled kernels (``_scan``, ``_long_runs``, ``_patterns``), chosen (:func:`choose_kernel`,
    :func:`vector_scan_fits`) and loaded from numba's disk cache (or compiled) on the first call,
    never at import."""
    global _KERNELS
    if _KERNELS is None:
        from extract import byte_kernels as bk

        def portable() -> Callable:
            from extract import byte_kernels_portable

            return byte_kernels_portable._scan

        scan = choose_kernel(vector_scan_fits, lambda: _probe(bk._scan), portable)
        _KERNELS = (scan, bk._long_runs, bk._patterns)
    return _KERNELS


def _probe(scan: Callable) -> Callable:
    """``scan`` after one call on 4 KiB (compiles or loads it; raises if it cannot be built here)."""
    a = np.frombuffer(bytes(range(256)) * 16, dtype=np.uint8)
    out = (np.zeros(256, np.int64), np.zeros(256, np.int64), np.zeros(256, np.int64), np.zeros(16, np.int64),
           np.zeros(1, np.int64), np.zeros(2, np.int64), np.zeros(len(PATTERNS), np.int64))
    scan(a, a.shape[0], _NO_CONTEXT, a.shape[0], 0, *out, np.empty((4, 16), np.int64))
    return scan


def ember_entropy_bin(counts: np.ndarray, window: int = WINDOW) -> int:
    """Row (0-15) of EMBER v2's byte-entropy grid for one window, from its 16 high-nibble counts.

    The rule (docs/architecture.md, "Byte-level rules"): each nibble that occurs has the share
    ``float32(count) / float32(window)`` (2048 even for a file shorter than one window); its term is
    ``share * -log2(share)``, numpy's float32 log2 and product; the terms, in ascending nibble order,
    are added by numpy's float32 sum (``ndarray.sum``, pairwise); the row is that sum times 4 (the
    nibble entropy doubled to approximate the byte entropy, then two rows per bit), truncated toward
    zero, and 16 (a window of uniform nibbles) is row 15. Every step is float32 because EMBER's is:
    a window whose exact entropy sits next to a row boundary lands where float32 rounding puts it.
    """
    occurring = np.flatnonzero(counts)
    shares = np.asarray(counts, dtype=np.float32)[occurring] / np.float32(window)
    bits = (shares * -np.log2(shares)).sum(dtype=np.float32)
    return min(int(bits * np.float32(4)), 15)


class ByteScanner:
    """Streaming state of the byte kernels for one file: ``update`` chunks, then ``finish`` once.

    The string test of a chunk's last 4 bytes needs the next 4 bytes: unless the chunk is marked
    ``last``, they are counted as plain bytes and resolved (moved into the string histogram) by
    the next ``update`` or by ``finish``.
    """

    __slots__ = ("_nbytes", "_tail", "_unresolved", "grid", "hist", "longhist", "patterns", "prev_nib", "runs",
                 "state")

    def __init__(self) -> None:
        self.hist = np.zeros(256, np.int64)
        self.grid = np.zeros(256, np.int64)
        self.prev_nib = np.zeros(16, np.int64)
        self.state = np.zeros(1, np.int64)
        self.longhist = np.zeros(256, np.int64)
        self.runs = np.zeros(2, np.int64)  # previous byte in a string; number of strings
        self.patterns = np.zeros(len(PATTERNS), np.int64)
        self._tail = _NO_BYTES  # the stream's last _CONTEXT bytes
        self._unresolved = 0  # how many of them still await their string test
        self._nbytes = 0

    @property
    def nbytes(self) -> int:
        return self._nbytes

    def update(self, chunk: bytes | bytearray | memoryview | np.ndarray, last: bool = False) -> None:
        """Feed the next chunk (a multiple of 1024 bytes unless it is the last); ``last`` says no more follow."""
        a = chunk if isinstance(chunk, np.ndarray) else np.frombuffer(chunk, dtype=np.uint8)
        n = a.shape[0]
        if n == 0:
            return
        if self._nbytes % BLOCK:
            raise ValueError("only the last chunk may have a size that is not a multiple of 1024")
        for at in range(0, n, MAX_CALL):
            self._update(a[at : at + MAX_CALL], last and at + MAX_CALL >= n)

    def _update(self, a: np.ndarray, last: bool) -> None:
        scan, long_runs, patterns = kernels()
        n = a.shape[0]
        tail = self._tail
        nt = tail.shape[0]
        if nt:
            # the chunk's first bytes are the lookahead of the previous chunk's unresolved ones and the
            # end of patterns that started there
            edge = np.concatenate((tail, a[:_CONTEXT]))
            if self._unresolved:
                long_runs(edge, nt - self._unresolved, nt, self.longhist, self.runs)
            patterns(edge, nt, edge.shape[0], self.patterns)
            pre = tail[-4:] if nt >= 4 else np.concatenate((np.zeros(4 - nt, np.uint8), tail))
        else:
            pre = _NO_CONTEXT
        n_full = (n // BLOCK) * BLOCK
        unc = np.empty((max(n_full // BLOCK, 1), 16), np.int64)
        rstop = n if last else n - 4
        pstart = min(_CONTEXT, n) if nt else 0
        k = scan(a, n_full, pre, rstop, pstart, self.hist, self.longhist, self.grid, self.prev_nib, self.state,
                 self.runs, self.patterns, unc)
        for row in unc[:k]:
            self._add_window(row)
        self._unresolved = n - max(rstop, 0)
        self._tail = np.concatenate((tail, a))[-_CONTEXT:] if n < _CONTEXT else a[-_CONTEXT:].copy()
        self._nbytes += n

    def _add_window(self, counts: np.ndarray) -> None:
        r = ember_entropy_bin(counts)
        self.grid[r * 16 : r * 16 + 16] += counts

    def finish(self) -> dict:
        """Resolve the last bytes and the short-file window; return the raw counts."""
        if self._unresolved:
            _, long_runs, _ = kernels()
            x = self._tail
            long_runs(x, x.shape[0] - self._unresolved, x.shape[0], self.longhist, self.runs)
            self._unresolved = 0
        if self._nbytes < WINDOW:
            # EMBER: a file shorter than one window is one window, still divided by 2048
            self._add_window(self.hist.reshape(16, 16).sum(axis=1))
        return {
            "histogram": self.hist,
            "entropy_grid": self.grid,
            "numstrings": int(self.runs[1]),
            "string_bytes": int(self.longhist.sum()),
            "printabledist": self.longhist[32:128].copy(),
            "patterns": dict(zip(PATTERNS, self.patterns.tolist(), strict=True)),
        }


def scan_bytes(data: bytes | bytearray | memoryview | np.ndarray) -> dict:
    """The byte kernels over one in-memory buffer."""
    s = ByteScanner()
    s.update(data, last=True)
    return s.finish()
