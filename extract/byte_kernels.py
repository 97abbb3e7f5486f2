"""The numba kernels behind :mod:`extract.kernels`, defined at module level.

Imported only on first use (``extract.kernels.kernels()``), so importing binfeat never imports numba.
Module level matters: numba's disk cache recognises a kernel that calls another (``_scan`` calls
``_patterns``) across processes only when the callee is a module global, not a closure variable.

``_scan`` works on 64 bytes at a time through a few numba intrinsics written as generic LLVM IR
(vector compares read as bit masks, ``llvm.experimental.vector.compress``, ``ctpop``, ``cttz``): with
AVX-512 each is a handful of instructions (``vpcmpub`` into a mask, ``kmovq``, ``vpcompressw``); on
other CPUs LLVM expands the same IR into slower code with the same results.
"""

from __future__ import annotations

import math

import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.core import cgutils
from numba.core.extending import intrinsic

from extract.kernels import BLOCK, UNCERTAIN, WINDOW

# unsigned index steps: with unsigned indices numba omits its negative-index wraparound code
U0, U1, U2, U3, U4, U6, U16, U32, U64 = (np.uint64(v) for v in (0, 1, 2, 3, 4, 6, 16, 32, 64))
U60, U61, U62, U63 = (np.uint64(v) for v in (60, 61, 62, 63))  # word shifts
U512, U1024, U1536, U2048 = (np.uint64(v) for v in (512, 1024, 1536, 2048))
M16 = np.uint64(0x0001000100010001)  # a uint16 in each of a word's four lanes
FLUSH = 128  # blocks between moves of the uint16 table into int64: an entry gains <= 256 a block


# --- the intrinsics: 32- and 64-byte vector steps as generic LLVM IR (see the module docstring)
_I1, _I8, _I16, _I32, _I64 = ir.IntType(1), ir.IntType(8), ir.IntType(16), ir.IntType(32), ir.IntType(64)


def _vec_load(context, builder, aryty, ary, pos, count):
    # ``count`` bytes ary[pos:pos+count] as a <count x i8> vector (the caller keeps them in bounds)
    vty = ir.VectorType(_I8, count)
    arr = context.make_array(aryty)(context, builder, ary)
    if aryty.layout == "C":
        ptr = builder.gep(arr.data, [pos])
        return builder.load(builder.bitcast(ptr, vty.as_pointer()), align=1)
    v = ir.Constant(vty, ir.Undefined)  # strided: one element at a time
    for k in range(count):
        idx = builder.add(pos, ir.Constant(_I64, k))
        ptr = cgutils.get_item_pointer(context, builder, aryty, arr, [idx], wraparound=False)
        v = builder.insert_element(v, builder.load(ptr), ir.Constant(_I32, k))
    return v


def _splat(vty, value):
    return ir.Constant(vty, [value] * vty.count)


def _bits(builder, mask):
    # a <64 x i1> mask as an i64, bit k = lane k
    return builder.bitcast(mask, ir.IntType(mask.type.count))


def _is_u8_array(a):
    return isinstance(a, types.Array) and a.ndim == 1 and a.dtype == types.uint8


@intrinsic
def _printable_bits(typingctx, a, pos):
    # bit k: 32 <= a[pos + k] <= 127, for k < 64
    if not _is_u8_array(a):
        return None

    def codegen(context, builder, sig, args):
        v = _vec_load(context, builder, sig.args[0], args[0], args[1], 64)
        d = builder.sub(v, _splat(v.type, 32))
        return _bits(builder, builder.icmp_unsigned("<", d, _splat(v.type, 96)))

    return types.uint64(a, types.uint64), codegen


@intrinsic
def _pair_bits(typingctx, a, pos):
    # bit k: a[pos + k - 1], a[pos + k] is one of the pairs MZ, :\, //, Y_ (the last two bytes of
    # every pattern), for k < 64; reads a[pos - 1:pos + 64]
    if not _is_u8_array(a):
        return None

    def codegen(context, builder, sig, args):
        x0 = _vec_load(context, builder, sig.args[0], args[0], builder.sub(args[1], ir.Constant(_I64, 1)), 64)
        x1 = _vec_load(context, builder, sig.args[0], args[0], args[1], 64)
        hit = None
        for c0, c1 in ((77, 90), (58, 92), (47, 47), (89, 95)):
            h = builder.and_(builder.icmp_unsigned("==", x0, _splat(x0.type, c0)),
                             builder.icmp_unsigned("==", x1, _splat(x1.type, c1)))
            hit = h if hit is None else builder.or_(hit, h)
        return _bits(builder, hit)

    return types.uint64(a, types.uint64), codegen


@intrinsic
def _index_compress(typingctx, a, pos, lgbits, out, cnt):
    # the table indices of a[pos:pos + 32] (nibble-swapped byte | 256 * bit k of lgbits), the nonzero
    # bytes' only, stored at out[cnt:] (32 lanes written, out has room); returns cnt + their number
    if not (_is_u8_array(a) and isinstance(out, types.Array) and out.dtype == types.uint16 and out.layout == "C"):
        return None

    def codegen(context, builder, sig, args):
        wty = ir.VectorType(_I16, 32)
        v = builder.zext(_vec_load(context, builder, sig.args[0], args[0], args[1], 32), wty)
        low = builder.and_(builder.shl(v, _splat(wty, 4)), _splat(wty, 0xF0))
        sw = builder.or_(low, builder.lshr(v, _splat(wty, 4)))  # nibbles swapped
        lgm = builder.bitcast(builder.trunc(args[2], _I32), ir.VectorType(_I1, 32))
        ix = builder.or_(sw, builder.select(lgm, _splat(wty, 256), _splat(wty, 0)))
        nz = builder.icmp_unsigned("!=", v, _splat(wty, 0))
        fn = cgutils.get_or_insert_function(builder.module, ir.FunctionType(wty, [wty, nz.type, wty]),
                                            "llvm.experimental.vector.compress.v32i16")
        packed = builder.call(fn, [ix, nz, ir.Constant(wty, ir.Undefined)])
        o = context.make_array(sig.args[3])(context, builder, args[3])
        builder.store(packed, builder.bitcast(builder.gep(o.data, [args[4]]), wty.as_pointer()), align=2)
        ctpop = cgutils.get_or_insert_function(builder.module, ir.FunctionType(_I32, [_I32]), "llvm.ctpop.i32")
        return builder.add(args[4], builder.zext(builder.call(ctpop, [_bits(builder, nz)]), _I64))

    return types.uint64(a, types.uint64, types.uint64, out, types.uint64), codegen


@intrinsic
def _popcount(typingctx, x):
    def codegen(context, builder, sig, args):
        fn = cgutils.get_or_insert_function(builder.module, ir.FunctionType(_I64, [_I64]), "llvm.ctpop.i64")
        return builder.call(fn, args)

    return types.uint64(types.uint64), codegen


@intrinsic
def _ctz(typingctx, x):
    # the index of the lowest set bit (x != 0)
    def codegen(context, builder, sig, args):
        fn = cgutils.get_or_insert_function(builder.module, ir.FunctionType(_I64, [_I64, _I1]), "llvm.cttz.i64")
        return builder.call(fn, [args[0], ir.Constant(_I1, 1)])

    return types.uint64(types.uint64), codegen


@njit(cache=True, nogil=True, boundscheck=False)
def _edge_word(a, pos, n, buf):  # pragma: no cover - compiled
    # a[pos - 1:pos + 64] copied into buf[63:128], zero outside a (a zero byte is in no mask)
    for k in range(63, 128):
        s = pos + np.uint64(k) - U64
        buf[k] = a[s] if pos + np.uint64(k) >= U64 and s < n else 0


@njit(cache=True, nogil=True, boundscheck=False)
def _printable_edge(a, pos, n, buf):  # pragma: no cover - compiled
    if pos >= n:
        return U0
    _edge_word(a, pos, n, buf)
    return _printable_bits(buf, U64)


@njit(cache=True, nogil=True, boundscheck=False)
def _pair_edge(a, pos, n, buf):  # pragma: no cover - compiled
    _edge_word(a, pos, n, buf)
    return _pair_bits(buf, U64)


@intrinsic
def _row_sums(typingctx, t, out):
    # out[k] = the sum (mod 2**16) of t[k::16], t 2048 uint16 (the table's 16 high-nibble row sums)
    if not (isinstance(t, types.Array) and t.dtype == types.uint16 and t.layout == "C"
            and isinstance(out, types.Array) and out.dtype == types.uint16 and out.layout == "C"):
        return None

    def codegen(context, builder, sig, args):
        wty = ir.VectorType(_I16, 32)
        src = builder.bitcast(context.make_array(sig.args[0])(context, builder, args[0]).data, wty.as_pointer())
        vs = [builder.load(builder.gep(src, [ir.Constant(_I64, r)]), align=2) for r in range(64)]
        while len(vs) > 1:
            vs = [builder.add(vs[k], vs[k + 1]) for k in range(0, len(vs), 2)]
        hty = ir.VectorType(_I32, 16)
        lo = builder.shuffle_vector(vs[0], vs[0], ir.Constant(hty, list(range(16))))
        hi = builder.shuffle_vector(vs[0], vs[0], ir.Constant(hty, list(range(16, 32))))
        dst = context.make_array(sig.args[1])(context, builder, args[1]).data
        builder.store(builder.add(lo, hi), builder.bitcast(dst, lo.type.as_pointer()), align=2)
        return context.get_dummy_value()

    return types.none(t, out), codegen


@njit(cache=True, nogil=True)
def _windows(p, p_next):  # pragma: no cover - compiled
    # bit k: the 5-byte window at k is all printable (p: printable bits of a word, p_next: of the next)
    return p & ((p >> U1) | (p_next << U63)) & ((p >> U2) | (p_next << U62)) & ((p >> U3) | (p_next << U61)) & (
        (p >> U4) | (p_next << U60))


@njit(cache=True, nogil=True)
def _covered(q, q_prev):  # pragma: no cover - compiled
    # bit k: some window (bits q, q_prev: of the word before) covers byte k, i.e. it is in a string
    return q | ((q << U1) | (q_prev >> U63)) | ((q << U2) | (q_prev >> U62)) | ((q << U3) | (q_prev >> U61)) | (
        (q << U4) | (q_prev >> U60))


@njit(cache=True, nogil=True)
def _plogp_table():  # pragma: no cover - compiled
    # p * log2(p) for p = c / 2048, computed as _scan once did inline: the same bits, no log2 per bin
    out = np.zeros(WINDOW + 1, np.float64)
    for c in range(1, WINDOW + 1):
        pr = c / 2048.0
        out[c] = pr * math.log2(pr)
    return out


PLOGP = _plogp_table()  # a global array: numba freezes it into _scan as a constant


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
def _check_pairs(a, f, at, pstart, pat):  # pragma: no cover - compiled
    # _patterns' exact checks where the screen fired: bit k of f says a pair ends at a[at + k]
    while f:
        k = _ctz(f)
        f &= f - U1
        e = at + np.int64(k)
        if e >= pstart:
            _patterns(a, e, e + 1, pat)


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
def _scan(a, n_full, pre, rstop, pstart, hist, longhist, grid, prev_nib, state, runs, pat, unc):  # pragma: no cover
    # One pass per 1024-byte block, 64 bytes (one bit each in a uint64 word) at a time:
    # 1. printable bits P (the 4 bytes before the chunk from ``pre``; past its end: not printable),
    #    q = 5-byte all-printable windows, lg = "in a string" (some window covers the byte) and the
    #    run starts (lg bits whose previous bit is clear), all by word shifts and a popcount;
    #    positions >= rstop are left unresolved (lg = 0);
    # 2. each nonzero byte's table index (nibble-swapped byte + 256 * lg) compressed into ``cix``;
    #    zero bytes (about 30% of binaries' bytes, never in a string) are only counted;
    # 3. one 4-way split table over ``cix``: its low+high halves are the byte histogram and its high
    #    half the string-byte histogram. Swapped nibbles put the 16 bins of a high nibble 16 entries
    #    apart, so its row sums are vertical vector adds;
    # 4. the block's nibble counts are the growth of the table's 16 row sums (plus its zeros), each
    #    pair of adjacent blocks is one EMBER entropy window;
    # 5. _patterns' pair screen as bit masks, its exact checks only at their bits (rare).
    # Inner blocks (no chunk edge within 64 bytes) take a straight loop without calls.
    have_prev = state[0]
    pl = np.uint64(runs[0])
    numstr = runs[1]
    nunc = 0
    # uint16 counts (half the vector work of int32 in the row sums), moved into int64 ``tt`` every
    # FLUSH blocks before an entry can wrap; the row sums may wrap, their growth (<= 1024) is exact
    # modulo 2**16
    t = np.zeros(2048, np.uint16)  # way * 512 + lg * 256 + low nibble * 16 + high nibble
    tt = np.zeros(2048, np.int64)
    rs = np.zeros(16, np.uint16)
    nblk = 0
    nib = np.zeros(16, np.int64)
    rows = np.zeros(16, np.int64)
    cix = np.zeros(BLOCK + 64, np.uint16)  # the block's nonzero bytes' table indices (less the way's offset)
    cix64 = cix.view(np.uint64)
    fw = np.zeros(16, np.uint64)  # an inner block's pair screen, a word each
    nst = U0  # run starts of the inner blocks
    buf = np.zeros(128, np.uint8)  # an edge word, zero-padded: [63] the byte before, [64:128] the word
    n = a.shape[0]
    un = np.uint64(n)
    urstop = np.uint64(max(rstop, 0))
    zeros = 0
    # the chain's state: P of the current word, q and lg of the previous one (their bit 63 is the
    # position just before the word); the 4 bytes before the chunk are bits 60..63 of P_-1
    pw = U0
    for k in range(4):
        b = pre[k]
        if b >= 32 and b <= 127:
            pw |= U1 << np.uint64(60 + k)
    pn = _printable_bits(a, U0) if un >= U64 else _printable_edge(a, U0, un, buf)
    qprev = _windows(pw, pn)
    pw = pn
    lgprev = pl << np.uint64(63)
    i = 0
    while i < n:
        end = i + BLOCK if i < n_full else n
        m = end - i
        ub = np.uint64(i)
        full = m == BLOCK
        nw = np.uint64((m + 63) >> 6)
        c = U0
        if full and i >= 1 and i + BLOCK + 64 <= n and i + BLOCK <= rstop:
            # an inner block (no chunk edge within reach): a straight loop without calls
            fany = U0
            for w in range(U16):
                pos = ub + (w << U6)
                pn = _printable_bits(a, pos + U64)
                q = _windows(pw, pn)
                lg = _covered(q, qprev)
                nst += _popcount(lg & ~((lg << U1) | (lgprev >> np.uint64(63))))
                qprev = q
                pw = pn
                lgprev = lg
                c = _index_compress(a, pos, lg, cix, c)
                c = _index_compress(a, pos + U32, lg >> U32, cix, c)
                f = _pair_bits(a, pos)
                fw[w] = f
                fany |= f
            if fany:
                for w in range(U16):
                    if fw[w]:
                        _check_pairs(a, fw[w], i + np.int64(w << U6), pstart, pat)
        else:
            for w in range(nw):
                pos = ub + (w << U6)
                npos = pos + U64
                pn = _printable_bits(a, npos) if npos + U64 <= un else _printable_edge(a, npos, un, buf)
                q = _windows(pw, pn)
                lg = _covered(q, qprev)
                if pos + U64 > urstop:  # unresolved: counted as plain bytes now, resolved with the next chunk
                    if urstop > pos:
                        keep = urstop - pos
                        lg &= (U1 << keep) - U1
                        pl = (lg >> (keep - U1)) & U1
                    else:
                        lg = U0
                numstr += np.int64(_popcount(lg & ~((lg << U1) | (lgprev >> np.uint64(63)))))
                qprev = q
                pw = pn
                lgprev = lg
                if full:
                    c = _index_compress(a, pos, lg, cix, c)
                    c = _index_compress(a, pos + U32, lg >> U32, cix, c)
                else:
                    for k in range(pos, min(pos + U64, un)):
                        b = a[k]
                        if b:
                            cix[c] = ((np.uint16(b) << 4) & 0xF0) | (b >> 4) | (np.uint16((lg >> (k - pos)) & U1) << 8)
                            c += U1
                # the pattern screen: pairs ending in this word
                f = _pair_bits(a, pos) if pos >= U1 and pos + U64 <= un else _pair_edge(a, pos, un, buf)
                if f:
                    _check_pairs(a, f, i + np.int64(w << U6), pstart, pat)
        if urstop >= ub + np.uint64(m):
            pl = (lgprev >> np.uint64((m - 1) & 63)) & U1
        zb = m - np.int64(c)
        zeros += zb
        if nblk == FLUSH:
            _flush(t, tt, rows)
            nblk = 0
        nblk += 1
        _count_block(t, cix, cix64, c)
        if i < n_full:
            _row_sums(t, rs)  # the table's 16 high-nibble row sums
            for k in range(16):
                nib[k] = (np.int64(rs[k]) - rows[k]) & 0xFFFF
                rows[k] = rs[k]
            nib[0] += zb
            if have_prev:
                nunc = _add_window(prev_nib, nib, grid, unc, nunc)
            for k in range(16):
                prev_nib[k] = nib[k]
            have_prev = 1
        i = end
    _fold(t, tt, zeros, hist, longhist)
    state[0] = have_prev
    runs[0] = np.int64(pl)
    runs[1] = numstr + np.int64(nst)
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
