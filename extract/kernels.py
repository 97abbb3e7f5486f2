"""Compiled byte-level kernels (EMBER v2 semantics) for the byte histogram, the byte-entropy histogram
and the printable-string statistics, streamed in constant memory.

One pass (:func:`extract.byte_kernels.scan`) per 1024-byte block while the block is in L1:
- printable-run membership: a byte belongs to a string (a run of >= 5 bytes in 0x20-0x7f) exactly
  when some 5-byte all-printable window contains it; run starts are counted from those flags;
- one 4-way split table of uint16 counts (moved into int64 every 128 blocks), indexed by the
  nibble-swapped byte + 256 * in-string: its two halves together are the byte histogram, its upper
  half the string-byte histogram;
- a block's high-nibble counts are the growth of the table's 16 row sums (contiguous vector adds,
  thanks to the swapped nibbles); each pair of adjacent blocks is one EMBER entropy window, its
  entropy summed from a p*log2(p) table;
- EMBER's whole-file pattern counts (``c:\\`` and ``https?://`` in any case, ``HKEY_``, ``MZ``): a
  screen for their last-two-byte pairs, exact checks only where it fires; none can overlap itself,
  so occurrence counts equal the non-overlapping regex match counts.
``ByteScanner.update(chunk)`` takes chunk sizes that are multiples of 1024 except the last, so a file
larger than memory is never held whole. Compilation happens on first use (cached on disk by numba),
never at import.
"""

from __future__ import annotations

import sys
from collections.abc import Callable

import numpy as np

from extract.byte_spec import BLOCK, PATTERNS, WINDOW

_CONTEXT = 8  # bytes of the previous chunk kept: up to 4 unresolved after 4 of context; 7 for patterns
_NO_BYTES = np.zeros(0, np.uint8)
MAX_CALL = 1 << 32  # bytes per kernel call: longer inputs are split (its scratch grows with a call)
_NO_CONTEXT = np.zeros(4, np.uint8)  # before the file: not printable
_NUMPY_BUDGET = [0]  # bytes the numpy scan may still take before the kernels load (defer_kernels)


def defer_kernels(budget_bytes: int = 16 << 20) -> None:
    """Scan whole buffers with numpy (:mod:`extract.byte_scan_numpy`, the same counts) until this
    process has scanned ``budget_bytes`` so, unless the compiled kernels are loaded already: for a
    command that extracts a file or two (``binfeat file``), where loading them (~0.3 s) would cost
    more than the scan itself."""
    _NUMPY_BUDGET[0] = budget_bytes


def kernels() -> tuple[Callable, Callable, Callable]:
    """The compiled kernels (``scan``, ``string_runs``, ``count_patterns``), imported on the first
    call (numba loads them from its disk cache or compiles them then), never at import."""
    from extract.byte_kernels import count_patterns, scan, string_runs

    return scan, string_runs, count_patterns


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

    __slots__ = ("_done", "_nbytes", "_tail", "_unresolved", "grid", "hist", "longhist", "patterns", "prev_nib",
                 "runs", "state")

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
        self._done: dict | None = None  # a whole buffer scanned by numpy (defer_kernels)

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
        if last and not self._nbytes and n <= _NUMPY_BUDGET[0] and "extract.byte_kernels" not in sys.modules:
            from extract.byte_scan_numpy import scan_whole

            _NUMPY_BUDGET[0] -= n
            self._done = scan_whole(chunk, ember_entropy_bin)
            self._nbytes = n
            return
        for at in range(0, n, MAX_CALL):
            self._update(a[at : at + MAX_CALL], last and at + MAX_CALL >= n)

    def _update(self, a: np.ndarray, last: bool) -> None:
        scan, string_runs, count_patterns = kernels()
        n = a.shape[0]
        tail = self._tail
        nt = tail.shape[0]
        if nt:
            # the chunk's first bytes are the lookahead of the previous chunk's unresolved ones and the
            # end of patterns that started there
            edge = np.concatenate((tail, a[:_CONTEXT]))
            if self._unresolved:
                string_runs(edge, nt - self._unresolved, nt, self.longhist, self.runs)
            count_patterns(edge, nt, edge.shape[0], self.patterns)
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
        if self._done is not None:
            return self._done
        if self._unresolved:
            _, string_runs, _ = kernels()
            x = self._tail
            string_runs(x, x.shape[0] - self._unresolved, x.shape[0], self.longhist, self.runs)
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
