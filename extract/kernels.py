"""Compiled byte-level kernels (EMBER v2 semantics) for the byte histogram, the byte-entropy histogram
and the printable-string statistics, streamed in constant memory.

One pass (``_scan``) per 1024-byte block while the block is in L1 cache:
- printable-run membership without a per-byte branch: a byte belongs to a string (a run of >= 5
  bytes in 0x20-0x7f) exactly when some 5-byte all-printable window contains it;
- one 4-way split table indexed by byte + 256 * in-string: its two halves together are the byte
  histogram, its upper half the string-byte histogram;
- a block's high-nibble counts are the growth of the table's 16-bin row sums; each pair of adjacent
  blocks is one EMBER entropy window;
- EMBER's whole-file pattern counts (``c:\\`` and ``https?://`` in any case, ``HKEY_``, ``MZ``): a
  vectorised screen for their last two bytes, exact checks only where it fires; none can overlap
  itself, so occurrence counts equal the non-overlapping regex match counts.
Loops index with unsigned integers: numba then omits negative-index wraparound and LLVM vectorises.
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
_CONTEXT = 8  # bytes of the previous chunk kept: up to 4 unresolved after 4 of context; 7 for patterns
PATTERNS = ("paths", "urls", "registry", "MZ")
_NO_BYTES = np.zeros(0, np.uint8)
MAX_CALL = 1 << 32  # bytes per kernel call: keeps its int32 counts from overflowing
U1, U2, U3, U4, U8, U16, U256 = (np.uint64(v) for v in (1, 2, 3, 4, 8, 16, 256))
_NO_CONTEXT = np.zeros(4, np.uint8)  # before the file: not printable

_kernels: tuple | None = None


def _compile() -> tuple:
    from numba import njit

    @njit(cache=True, nogil=True, boundscheck=False)
    def _patterns(x, start, stop, out):  # pragma: no cover - compiled
        # EMBER's pattern counts for matches ending in x[start:stop]; the 7 bytes before start are
        # context. Every pattern ends in one of four byte pairs (MZ, :\\, //, Y_): a branch-free
        # screen for those pairs over 64 bytes at a time (vectorised) keeps the exact checks rare.
        paths = 0
        urls = 0
        reg = 0
        mz = 0
        e = max(start, 1)
        while e < stop:
            end = min(e + 64, stop)
            f = np.uint8(0)
            for k in range(np.uint64(e), np.uint64(end)):  # unsigned: no wraparound, so it vectorises
                a0 = x[k - U1]
                a1 = x[k]
                f |= (np.uint8((a0 == 77) & (a1 == 90)) | np.uint8((a0 == 58) & (a1 == 92))
                      | np.uint8((a0 == 47) & (a1 == 47)) | np.uint8((a0 == 89) & (a1 == 95)))
            if f:
                for k in range(e, end):
                    c = x[k]
                    if c == 90:  # MZ
                        if x[k - 1] == 77:
                            mz += 1
                    elif c == 92:  # c:\\ in any case
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

    @njit(cache=True, nogil=True, boundscheck=False)
    def _scan(a, n_full, pre, rstop, pstart, hist, longhist, grid, prev_nib, state, runs, pat, unc):  # pragma: no cover
        # One pass per 1024-byte block, the block held in L1 cache:
        # 1. printable flags p for the block and 4 bytes each side (``pre``: the 4 bytes before the
        #    chunk; past the chunk's end: not printable, and positions >= rstop are left unresolved);
        #    q = 5-byte all-printable windows, lg = "in a string" (some window covers the byte);
        # 2. one 4-way split table indexed by byte + 256 * lg: its low+high halves are the byte
        #    histogram and its high half the string-byte histogram;
        # 3. the block's nibble counts are the growth of the table's 16-bin row sums, each pair of
        #    adjacent blocks is one EMBER entropy window.
        have_prev = state[0]
        pl = runs[0]
        numstr = runs[1]
        nunc = 0
        # int32 counts: a call sees at most MAX_CALL bytes, a quarter of them per way
        t = np.zeros((4, 512), np.int32)
        tf = t.reshape(2048)  # the same table, flat
        acc = np.zeros(256, np.int32)
        nib = np.zeros(16, np.int64)
        rows = np.zeros(16, np.int64)
        p = np.zeros(BLOCK + 8, np.uint8)
        q = np.zeros(BLOCK + 4, np.uint8)
        lg = np.zeros(BLOCK, np.uint8)
        n = a.shape[0]
        i = 0
        while i < n:
            end = i + BLOCK if i < n_full else n
            m = end - i
            # unsigned indices: numba then drops its negative-index wraparound and LLVM vectorises
            um = np.uint64(m)
            if i >= 4 and end + 4 <= n:
                base = np.uint64(i - 4)
                for k in range(um + U8):
                    b = a[base + k]
                    p[k] = (b >= 32) & (b <= 127)
            else:
                for k in range(m + 8):
                    s = i - 4 + k
                    b = pre[s + 4] if s < 0 else (a[s] if s < n else 0)
                    p[k] = (b >= 32) & (b <= 127)
            for k in range(um + U4):
                q[k] = p[k] & p[k + U1] & p[k + U2] & p[k + U3] & p[k + U4]
            for k in range(um):
                lg[k] = q[k] | q[k + U1] | q[k + U2] | q[k + U3] | q[k + U4]
            mr = min(m, rstop - i)
            if mr < m:
                for k in range(max(mr, 0), m):
                    lg[k] = 0  # unresolved: counted as a plain byte now, resolved with the next chunk
            if mr > 0:
                starts = np.int64(lg[0] & (1 - pl))
                for k in range(U1, np.uint64(mr)):
                    starts += lg[k] & (lg[k - U1] ^ U1)
                numstr += starts
                pl = lg[mr - 1]
            ub = np.uint64(i)
            j = np.uint64(0)
            while j + U4 <= um:
                t[0, np.int64(a[ub + j]) | (np.int64(lg[j]) << 8)] += 1
                t[1, np.int64(a[ub + j + U1]) | (np.int64(lg[j + U1]) << 8)] += 1
                t[2, np.int64(a[ub + j + U2]) | (np.int64(lg[j + U2]) << 8)] += 1
                t[3, np.int64(a[ub + j + U3]) | (np.int64(lg[j + U3]) << 8)] += 1
                j += U4
            while j < um:
                t[0, np.int64(a[ub + j]) | (np.int64(lg[j]) << 8)] += 1
                j += U1
            if i < n_full:
                acc[:] = 0
                for w in range(U8):  # the 8 sub-tables (4 ways x string or not), contiguous: vectorised
                    base = w * U256
                    for mm in range(U256):
                        acc[mm] += tf[base + mm]
                for k in range(16):
                    s = 0
                    for mm in range(k * 16, k * 16 + 16):
                        s += acc[mm]
                    nib[k] = s - rows[k]
                    rows[k] = s
                if have_prev:
                    ent = 0.0
                    nz = 0
                    first = -1
                    same = True
                    for k in range(16):
                        c = prev_nib[k] + nib[k]
                        if c > 0:
                            pr = c / 2048.0
                            ent -= pr * math.log2(pr)
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
                        if x - fl < UNCERTAIN or fl + 1.0 - x < UNCERTAIN:
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
            _patterns(a, max(i, pstart), end, pat)  # while the block is in cache
            i = end
        for mm in range(256):
            lo = t[0, mm] + t[1, mm] + t[2, mm] + t[3, mm]
            hi = t[0, mm + 256] + t[1, mm + 256] + t[2, mm + 256] + t[3, mm + 256]
            hist[mm] += lo + hi
            longhist[mm] += hi
        state[0] = have_prev
        runs[0] = pl
        runs[1] = numstr
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

    return _scan, _long_runs, _patterns


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
