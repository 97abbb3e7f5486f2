"""The portable byte-scan kernel: the same results as :func:`extract.byte_kernels._scan`, for CPUs
where that one is slow.

``extract.byte_kernels._scan`` handles 64 bytes at a time through vector intrinsics (bit masks, a
compress of the nonzero bytes' table indices) that are a few instructions with AVX2 or AVX-512; on a
target without them (an x86-64 baseline build, other architectures) LLVM expands them into code
about twice as slow as this one. This kernel works a byte at a time in plain loops that LLVM
vectorises anywhere. :func:`extract.kernels.kernels` chooses; tests hold the two to equal outputs.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from extract.byte_kernels import (
    FLUSH,
    M16,
    U0,
    U1,
    U2,
    U3,
    U4,
    U16,
    U512,
    U1024,
    U1536,
    _add_window,
    _count_block,
    _flush,
    _fold,
    _patterns,
)
from extract.kernels import BLOCK

# more unsigned index steps (with unsigned indices numba omits its negative-index wraparound code)
U7, U8, U48, U256 = (np.uint64(v) for v in (7, 8, 48, 256))
M8 = np.uint64(0x00FF00FF00FF00FF)  # byte lanes of a word, summed pairwise into 16-bit lanes


@njit(cache=True, nogil=True, boundscheck=False)
def _scan(a, n_full, pre, rstop, pstart, hist, longhist, grid, prev_nib, state, runs, pat, unc):  # pragma: no cover
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
        # _patterns' pair screen while the block is in cache, kept in byte lanes by the store; its
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
                            _patterns(a, e, e + 1, pat)
        i = end
    _fold(t, tt, 0, hist, longhist)
    state[0] = have_prev
    runs[0] = pl
    runs[1] = numstr
    return nunc
