"""Compiled byte-level kernels (EMBER v2 semantics) for the byte histogram, the byte-entropy histogram
and the printable-string statistics, streamed in constant memory.

Two numba kernels share each chunk while it is in cache:
- ``_blocks``: a 4-way split 256-bin histogram per 1024-byte block; the block's high-nibble counts
  come from its histogram, and each pair of adjacent blocks is one EMBER entropy window;
- ``_patterns``: EMBER's whole-file pattern counts (``c:\\`` and ``https?://`` in any case, ``HKEY_``,
  ``MZ``); none can overlap itself, so occurrence counts equal the non-overlapping regex match counts;
- ``_long_runs``: a byte belongs to a printable string (a run of >= 5 bytes in 0x20-0x7f) exactly when
  some 5-byte all-printable window contains it, which vectorises (no per-byte branch) and gives the
  string byte histogram, the number of strings and their total length.
``ByteScanner.update(chunk)`` takes chunk sizes that are multiples of 1024 except the last, so a file
larger than memory is never held whole. Compilation happens on first use (cached on disk by numba),
never at import.
"""

from __future__ import annotations

import math

import numpy as np

BLOCK = 1024  # EMBER's entropy step; a window is two adjacent blocks
WINDOW = 2 * BLOCK
MIN_RUN = 5  # EMBER: printable runs of 5 or more bytes
# A window whose 4*entropy lies this close to an integer is re-binned with EMBER's own float32 numpy
# code, so the bin is exactly EMBER's (float32 rounding can move a value across a row boundary).
UNCERTAIN = 1e-4
_CONTEXT = 16  # bytes of the previous chunk kept: 4 unresolved + context for the windows and patterns
PATTERNS = ("paths", "urls", "registry", "MZ")
_PATTERN_LAST = np.zeros(256, np.uint8)
_PATTERN_LAST[[ord("Z"), ord("\\"), ord("/"), ord("_")]] = 1

_kernels: tuple | None = None


def _compile() -> tuple:
    from numba import njit

    @njit(cache=True, nogil=True, boundscheck=False)
    def _blocks(a, n_full, hist, grid, prev_nib, state, unc):  # pragma: no cover - compiled
        have_prev = state[0]
        nunc = 0
        # A running 4-way split table over the whole chunk; a block's nibble counts are the growth of
        # the table's 16-bin row sums since the previous block (no per-block reset or merge).
        t = np.zeros((4, 256), np.int64)
        nib = np.zeros(16, np.int64)
        rows = np.zeros(16, np.int64)
        n = a.shape[0]
        i = 0
        while i < n:
            end = i + 1024 if i < n_full else n
            j = i
            while j + 4 <= end:
                t[0, a[j]] += 1
                t[1, a[j + 1]] += 1
                t[2, a[j + 2]] += 1
                t[3, a[j + 3]] += 1
                j += 4
            while j < end:
                t[0, a[j]] += 1
                j += 1
            for k in range(16):
                s = 0
                for m in range(k * 16, k * 16 + 16):
                    s += t[0, m] + t[1, m] + t[2, m] + t[3, m]
                nib[k] = s - rows[k]
                rows[k] = s
            if i < n_full:
                if have_prev:
                    ent = 0.0
                    nz = 0
                    first = -1
                    same = True
                    for k in range(16):
                        c = prev_nib[k] + nib[k]
                        if c > 0:
                            p = c / 2048.0
                            ent -= p * math.log2(p)
                            nz += 1
                            if first < 0:
                                first = c
                            elif c != first:
                                same = False
                    x = ent * 4.0  # EMBER: row = int(2 * (2 * H))
                    row = -1
                    if same and (nz & (nz - 1)) == 0:
                        row = round(x)  # exact in float32 too: k equal counts, k a power of 2
                    else:
                        fl = math.floor(x)
                        if x - fl < 1e-4 or fl + 1.0 - x < 1e-4:
                            for k in range(16):
                                unc[nunc, k] = prev_nib[k] + nib[k]
                            nunc += 1
                        else:
                            row = int(fl)
                    if row >= 0:
                        if row > 15:
                            row = 15
                        for k in range(16):
                            grid[row * 16 + k] += prev_nib[k] + nib[k]
                for k in range(16):
                    prev_nib[k] = nib[k]
                have_prev = 1
            i = end
        for m in range(256):
            hist[m] += t[0, m] + t[1, m] + t[2, m] + t[3, m]
        state[0] = have_prev
        return nunc

    @njit(cache=True, nogil=True, boundscheck=False)
    def _long_runs(x, start, stop, longhist, state):  # pragma: no cover - compiled
        # Resolves x[start:stop]; x[start-4:start] (or the file's start) and x[stop:stop+4] (or the
        # file's end) are context.
        n = x.shape[0]
        B = 4096
        p = np.zeros(B + 16, np.uint8)
        q = np.zeros(B + 16, np.uint8)
        lg = np.zeros(B + 16, np.uint8)
        prev_long = state[0]
        numstr = state[1]
        lh = np.zeros((4, 256), np.int64)
        j0 = start
        while j0 < stop:
            j1 = min(j0 + B, stop)
            m = j1 - j0
            for k in range(m + 8):
                s = j0 - 4 + k
                if s >= 0 and s < n:
                    b = x[s]
                    p[k] = 1 if (b >= 32 and b <= 127) else 0
                else:
                    p[k] = 0
            for k in range(m + 4):
                q[k] = p[k] & p[k + 1] & p[k + 2] & p[k + 3] & p[k + 4]
            for k in range(m):
                lg[k] = q[k] | q[k + 1] | q[k + 2] | q[k + 3] | q[k + 4]
            pl = prev_long
            starts = 0
            for k in range(m):
                starts += lg[k] & (1 - pl)
                pl = lg[k]
            prev_long = pl
            numstr += starts
            k = 0
            while k + 4 <= m:
                lh[0, x[j0 + k]] += lg[k]
                lh[1, x[j0 + k + 1]] += lg[k + 1]
                lh[2, x[j0 + k + 2]] += lg[k + 2]
                lh[3, x[j0 + k + 3]] += lg[k + 3]
                k += 4
            while k < m:
                lh[0, x[j0 + k]] += lg[k]
                k += 1
            j0 = j1
        for k in range(256):
            longhist[k] += lh[0, k] + lh[1, k] + lh[2, k] + lh[3, k]
        state[0] = prev_long
        state[1] = numstr

    @njit(cache=True, nogil=True, boundscheck=False)
    def _patterns(x, start, stop, lut, out):  # pragma: no cover - compiled
        # EMBER's pattern counts for matches ending in x[start:stop]; the 7 bytes before start are
        # context. A screen of 8 bytes at a time against the patterns' last bytes keeps it cheap.
        paths = 0
        urls = 0
        reg = 0
        mz = 0
        e = start
        while e < stop:
            if e + 8 <= stop:
                f = (lut[x[e]] | lut[x[e + 1]] | lut[x[e + 2]] | lut[x[e + 3]] | lut[x[e + 4]]
                     | lut[x[e + 5]] | lut[x[e + 6]] | lut[x[e + 7]])
                end = e + 8
            else:
                f = 1
                end = stop
            if f:
                for k in range(e, end):
                    c = x[k]
                    if c == 90:  # MZ
                        if k >= 1 and x[k - 1] == 77:
                            mz += 1
                    elif c == 92:  # c:\ in any case
                        if k >= 2 and x[k - 1] == 58 and (x[k - 2] | 32) == 99:
                            paths += 1
                    elif c == 47:  # https?:// in any case
                        if k >= 6 and x[k - 1] == 47 and x[k - 2] == 58:
                            http = ((x[k - 3] | 32) == 112 and (x[k - 4] | 32) == 116
                                    and (x[k - 5] | 32) == 116 and (x[k - 6] | 32) == 104)
                            https = (k >= 7 and (x[k - 3] | 32) == 115 and (x[k - 4] | 32) == 112
                                     and (x[k - 5] | 32) == 116 and (x[k - 6] | 32) == 116
                                     and (x[k - 7] | 32) == 104)
                            if http or https:
                                urls += 1
                    elif c == 95:  # HKEY_
                        if k >= 4 and x[k - 1] == 89 and x[k - 2] == 69 and x[k - 3] == 75 and x[k - 4] == 72:
                            reg += 1
            e = end
        out[0] += paths
        out[1] += urls
        out[2] += reg
        out[3] += mz

    return _blocks, _long_runs, _patterns


def kernels() -> tuple:
    """The compiled kernels, compiled (or loaded from numba's cache) on first call."""
    global _kernels
    if _kernels is None:
        _kernels = _compile()
    return _kernels


def ember_entropy_bin(counts: np.ndarray, window: int = WINDOW) -> int:
    """EMBER v2's own float32 computation of a window's entropy row (used for near-boundary windows)."""
    c = np.asarray(counts, dtype=np.int64)
    p = c.astype(np.float32) / window
    wh = np.where(c)[0]
    h = np.sum(-p[wh] * np.log2(p[wh])) * 2
    hbin = int(h * 2)
    return 15 if hbin == 16 else hbin


class ByteScanner:
    """Streaming state of the byte kernels for one file: ``update`` chunks, then ``finish`` once."""

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
        self._tail = np.zeros(0, np.uint8)
        self._unresolved = 0
        self._nbytes = 0

    @property
    def nbytes(self) -> int:
        return self._nbytes

    def update(self, chunk: bytes | bytearray | memoryview | np.ndarray) -> None:
        a = chunk if isinstance(chunk, np.ndarray) else np.frombuffer(chunk, dtype=np.uint8)
        n = a.shape[0]
        if n == 0:
            return
        if self._nbytes % BLOCK:
            raise ValueError("only the last chunk may have a size that is not a multiple of 1024")
        blocks, long_runs, patterns = kernels()
        n_full = (n // BLOCK) * BLOCK
        unc = np.empty((max(n_full // BLOCK, 1), 16), np.int64)
        k = blocks(a, n_full, self.hist, self.grid, self.prev_nib, self.state, unc)
        for row in unc[:k]:
            self._add_window(row)
        if self._tail.shape[0]:
            x = np.concatenate((self._tail, a))
            start = self._tail.shape[0] - self._unresolved
        else:
            x, start = a, 0
        stop = max(start, x.shape[0] - 4)
        long_runs(x, start, stop, self.longhist, self.runs)
        patterns(x, start, stop, _PATTERN_LAST, self.patterns)
        self._unresolved = x.shape[0] - stop
        self._tail = x[-_CONTEXT:].copy()
        self._nbytes += n

    def _add_window(self, counts: np.ndarray) -> None:
        r = ember_entropy_bin(counts)
        self.grid[r * 16 : r * 16 + 16] += counts

    def finish(self) -> dict:
        """Resolve the last bytes and the short-file window; return the raw counts."""
        if self._unresolved:
            _, long_runs, patterns = kernels()
            x = self._tail
            long_runs(x, x.shape[0] - self._unresolved, x.shape[0], self.longhist, self.runs)
            patterns(x, x.shape[0] - self._unresolved, x.shape[0], _PATTERN_LAST, self.patterns)
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
    s.update(data)
    return s.finish()
