"""The numba kernels behind :mod:`extract.kernels`: one pass over a chunk's bytes per 1 KiB block
for the byte histogram, the EMBER entropy windows, the printable strings and the pattern counts.

Imported only on first use (:func:`extract.kernels.kernels`), so importing binfeat never imports
numba; compiled then, or loaded from numba's disk cache. Module level matters: numba's disk cache
recognises a kernel that calls another (``scan`` calls ``count_patterns``) across processes only when
the callee is a module global, not a closure variable.

The kernels work a byte at a time in plain loops over unsigned indices, which LLVM vectorises on any
target. A hand-written variant (64 bytes a step through vector intrinsics in LLVM IR: bit masks, a
vector compress of the nonzero bytes' table indices) ran this scan alone 1.43x as fast with
AVX-512, but the whole extraction within run-to-run noise of this one (docs/architecture.md,
"Kernels kept and dropped"), so it was dropped.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from extract.byte_spec import BLOCK, UNCERTAIN, WINDOW

# unsigned index steps: with unsigned indices numba omits its negative-index wraparound code and
# LLVM vectorises the loops
U0, U1, U2, U3, U4, U7, U8, U16, U48 = (np.uint64(v) for v in (0, 1, 2, 3, 4, 7, 8, 16, 48))
U256, U512, U1024, U1536, U2048 = (np.uint64(v) for v in (256, 512, 1024, 1536, 2048))
M8 = np.uint64(0x00FF00FF00FF00FF)  # byte lanes of a word, summed pairwise into 16-bit lanes
M16 = np.uint64(0x0001000100010001)  # a uint16 in each of a word's four lanes
FLUSH = 128  # blocks between moves of the uint16 table into int64: an entry gains <= 256 a block
# p * log2(p) for the counts c = 0..2048 of a window (p = c / 2048): a global array, which numba
# freezes into the kernels as a constant. Python's math.log2 and numba's are the same libm call.
PLOGP = np.array([0.0] + [(c / WINDOW) * math.log2(c / WINDOW) for c in range(1, WINDOW + 1)])


@njit(cache=True, nogil=True, boundscheck=False)
def count_patterns(x, start, stop, out):  # pragma: no cover - compiled
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
def _add_window(prev_nib, nib, grid, unc, nunc):  # pragma: no cover - compiled
    # One EMBER entropy window (the previous block's and this block's high-nibble counts) added to
    # its row of the grid; a window whose 4*entropy lies within UNCERTAIN of an integer goes to unc
    # instead, for EMBER's own float32 binning. Returns the new number of such windows.
    ent = 0.0
    nz = 0
    first = -1
    same = True
    for k in range(16):
        cc = prev_nib[k] + nib[k]
        if cc > 0:
            ent -= PLOGP[cc]
            nz += 1
            if first < 0:
                first = cc
            elif cc != first:
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
            return nunc + 1
        row = int(fl)
    if row > 15:
        row = 15
    for k in range(16):
        grid[row * 16 + k] += prev_nib[k] + nib[k]
    return nunc


@njit(cache=True, nogil=True, boundscheck=False)
def _count_block(t, ix, ix64, stop):  # pragma: no cover - compiled
    # t[ix[:stop]] += 1 into the 4-way split table (way w at offset 512 * w), four independent chains
    # of increments instead of one; a whole block of one value (padding) as four adds of 256 (a
    # quarter per way: an entry still gains at most 256 a block). ix64 is ix viewed as uint64.
    if stop == U1024 and ix[0] == ix[256] and ix[0] == ix[512] and ix[0] == ix[1023]:
        xw = np.uint64(ix[0]) * M16
        dif = U0
        for w in range(BLOCK // 4):
            dif |= ix64[w] ^ xw
        if dif == 0:
            x = ix[0]
            t[x] += 256
            t[U512 + x] += 256
            t[U1024 + x] += 256
            t[U1536 + x] += 256
            return
    j = U0
    while j + U4 <= stop:
        t[ix[j]] += 1
        t[U512 + ix[j + U1]] += 1
        t[U1024 + ix[j + U2]] += 1
        t[U1536 + ix[j + U3]] += 1
        j += U4
    while j < stop:
        t[ix[j]] += 1
        j += U1


@njit(cache=True, nogil=True, boundscheck=False)
def _flush(t, tt, rows):  # pragma: no cover - compiled
    # the uint16 table moved into int64 before an entry can wrap; the row sums restart from zero
    for h in range(U2048):
        tt[h] += t[h]
        t[h] = 0
    for k in range(16):
        rows[k] = 0


@njit(cache=True, nogil=True, boundscheck=False)
def _fold(t, tt, zeros, hist, longhist):  # pragma: no cover - compiled
    # the uint16 table moved into tt, plus ``zeros`` zero bytes, folded into the byte histogram
    # (both halves of each way) and the string-byte histogram (the upper halves)
    for h in range(U2048):
        tt[h] += t[h]
    tt[0] += zeros
    for mm in range(256):
        sw = ((mm & 15) << 4) | (mm >> 4)
        lo = tt[sw] + tt[512 + sw] + tt[1024 + sw] + tt[1536 + sw]
        hi = tt[256 + sw] + tt[768 + sw] + tt[1280 + sw] + tt[1792 + sw]
        hist[mm] += lo + hi
        longhist[mm] += hi


@njit(cache=True, nogil=True, boundscheck=False)
def scan(a, n_full, pre, rstop, pstart, hist, longhist, grid, prev_nib, state, runs, pat, unc):  # pragma: no cover
    # The chunk a[:n]: n_full bytes of whole blocks, then the last partial block; pre: the 4 bytes
    # before the chunk; positions >= rstop are left unresolved; pattern matches ending before pstart
    # were counted with the previous chunk. Adds into hist, longhist, grid, pat; carries prev_nib,
    # state (a previous block exists) and runs (previous byte in a string, number of strings) to the
    # next chunk; near-boundary windows go to unc, their number is returned.
    # One pass per 1024-byte block, the block held in L1 cache:
    # 1. printable flags p for the block and 4 bytes each side (``pre``: the 4 bytes before the
    #    chunk; past the chunk's end: not printable, and positions >= rstop are left unresolved);
    #    q = 5-byte all-printable windows, lg = "in a string" (some window covers the byte);
    # 2. one 4-way split table indexed by the nibble-swapped byte + 256 * lg: its low+high halves
    #    are the byte histogram and its high half the string-byte histogram. Swapped nibbles put
    #    the 16 bins of a high nibble 16 entries apart, so its row sums are vertical vector adds
    #    (numba's row-wise sums became gathers);
    # 3. the block's nibble counts are the growth of the table's 16 row sums, each pair of
    #    adjacent blocks is one EMBER entropy window;
    # 4. per-byte flags (run starts, pattern pairs) are stored as bytes and summed or or-ed 8 to a
    #    uint64: reduced directly, numba widens each byte to int64 (8 bytes per vector, not 64).
    have_prev = state[0]
    pl = runs[0]
    numstr = runs[1]
    nunc = 0
    # uint16 counts (half the vector work of int32 in the row sums), moved into int64 ``tt`` every
    # FLUSH blocks before an entry can wrap; the row sums may wrap, their growth (<= 1024) is exact
    # modulo 2**16
    t = np.zeros(2048, np.uint16)  # way * 512 + lg * 256 + low nibble * 16 + high nibble
    tt = np.zeros(2048, np.int64)
    acc = np.zeros(1024, np.uint16)
    nblk = 0
    nib = np.zeros(16, np.int64)
    rows = np.zeros(16, np.int64)
    p = np.zeros(BLOCK + 8, np.uint8)
    q = np.zeros(BLOCK + 4, np.uint8)
    lg = np.zeros(BLOCK, np.uint8)
    ix = np.zeros(BLOCK, np.uint16)  # the table index of each byte (less the way's offset)
    ix64 = ix.view(np.uint64)
    d = np.zeros(BLOCK, np.uint8)  # run starts
    d64 = d.view(np.uint64)
    g = np.zeros(BLOCK, np.uint8)  # pattern pair screen
    g64 = g.view(np.uint64)
    n = a.shape[0]
    i = 0
    while i < n:
        end = i + BLOCK if i < n_full else n
        m = end - i
        # unsigned indices: numba then drops its negative-index wraparound and LLVM vectorises
        um = np.uint64(m)
        ub = np.uint64(i)
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
            umr = np.uint64(mr)
            d[0] = lg[0] & (1 - pl)
            for k in range(U1, umr):
                d[k] = lg[k] > lg[k - U1]
            nwr = (umr + U7) >> U3
            for k in range(umr, nwr << U3):
                d[k] = 0
            s8 = np.uint64(0)  # 8 byte lanes, each <= BLOCK / 8
            for w in range(nwr):
                s8 += d64[w]
            s8 = (s8 & M8) + ((s8 >> U8) & M8)  # 4 16-bit lanes, summed by the multiply
            numstr += np.int64((s8 * M16) >> U48)
            pl = lg[mr - 1]
        for k in range(um):
            b = a[ub + k]
            ix[k] = ((b << 4) & 0xF0) | (b >> 4) | (np.uint16(lg[k]) << 8)
        if nblk == FLUSH:
            _flush(t, tt, rows)
            nblk = 0
        nblk += 1
        _count_block(t, ix, ix64, um)
        if i < n_full:
            # fold the table in halves down to its 16 high-nibble sums: contiguous vector adds
            for h in range(U512):
                acc[h] = t[h] + t[h + U512] + t[h + U1024] + t[h + U1536]
            w = U256
            while w >= U16:
                for h in range(w):
                    acc[h] += acc[h + w]
                w >>= U1
            for k in range(16):
                nib[k] = (np.int64(acc[k]) - rows[k]) & 0xFFFF
                rows[k] = acc[k]
            if have_prev:
                nunc = _add_window(prev_nib, nib, grid, unc, nunc)
            for k in range(16):
                prev_nib[k] = nib[k]
            have_prev = 1
        # count_patterns' pair screen while the block is in cache, kept in byte lanes by the store; its
        # exact checks only at the flagged positions (about 1 in 4000 bytes of binaries)
        k0 = U1 if i == 0 else U0
        g[0] = 0
        for k in range(k0, um):
            a0 = a[ub + k - U1]
            a1 = a[ub + k]
            g[k] = ((a0 == 77) & (a1 == 90)) | ((a0 == 58) & (a1 == 92)) | ((a0 == 47) & (a1 == 47)) | (
                (a0 == 89) & (a1 == 95))
        nwp = (um + U7) >> U3
        for k in range(um, nwp << U3):
            g[k] = 0
        f = np.uint64(0)
        for w in range(nwp):  # most blocks have no pair at all
            f |= g64[w]
        for w in range(U0, nwp if f else U0):
            if g64[w]:
                for k in range(w << U3, (w << U3) + U8):
                    if g[k]:  # exact checks at flagged positions only
                        e = i + np.int64(k)
                        if e >= pstart:
                            count_patterns(a, e, e + 1, pat)
        i = end
    _fold(t, tt, 0, hist, longhist)
    state[0] = have_prev
    runs[0] = pl
    runs[1] = numstr
    return nunc


@njit(cache=True, nogil=True, boundscheck=False)
def string_runs(x, start, stop, longhist, state):  # pragma: no cover - compiled
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
