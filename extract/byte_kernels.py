"""The numba kernels behind :mod:`extract.kernels`, defined at module level.

Imported only on first use (``extract.kernels.kernels()``), so importing binfeat never imports numba.
Module level matters: numba's disk cache recognises a kernel that calls another (``_scan`` calls
``_patterns``) across processes only when the callee is a module global, not a closure variable.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from extract.kernels import BLOCK, UNCERTAIN

# unsigned index steps: with unsigned indices numba omits its negative-index wraparound code
U1, U2, U3, U4, U8, U256 = (np.uint64(v) for v in (1, 2, 3, 4, 8, 256))


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
