"""Streaming, numba-compiled TLSH and ssdeep fuzzy hashes, bit-exact with py-tlsh and ppdeep.

Why our own: py-tlsh (~115 MB/s) alone would eat binfeat's whole per-core budget and no fast,
self-contained ssdeep exists for Python 3.11. Both hashes here are written from the published
algorithms (TLSH: Trend Micro's reference; ssdeep: spamsum / libfuzzy as ppdeep implements it).

TLSH (default py-tlsh: 128 buckets, 1-byte checksum, window 5, "T1" version prefix):
``TlshHasher.hexdigest()`` is the 72-char "T1..." digest; it is ``None`` exactly where py-tlsh's
``tlsh.hash`` returns "TNULL" (fewer than 50 bytes, or too uniform: q3 == 0 or at most half of the
128 buckets non-zero); ``tlsh.Tlsh().final()`` raises instead for < 50 bytes. The reference keeps
counts and length in unsigned 32 bits, so inputs of 4 GiB or more wrap there; we wrap the same way.
Speed: the first two Pearson steps of each mapping come from byte-pair tables (448 KB, built on
first use; one load serves up to 4 mappings), the last step is one permutation for every salt so we
count its input and permute the histogram once at the end, and runs of one byte value are counted in
bulk. What is left is bound by the 6 histogram increments per byte.

ssdeep: ``SsdeepHasher.hexdigest()`` is ppdeep.hash's "blocksize:hash1:hash2" (no elimination of
runs of identical characters: neither ppdeep nor libfuzzy's fuzzy_hash_buf do that in the hash, only
at compare time). ppdeep knows the length first and re-reads the data with halved block sizes;
streaming, we keep every block size that can still be chosen in one pass (as libfuzzy 2.13+ does):
a level is dropped once its block size * 64 is below the bytes seen and the next level already has
32 characters (then the final choice can never reach it), and a level is created at its parent's
first trigger (until then it has seen exactly the parent's bytes). The per-level 6-bit FNV states
(and the separate half-digest states once a level has 31 characters) travel packed 6 to a 64-bit
word in 11-bit lanes, so h*19 never carries into the next lane: the ~6-10 live levels of a typical
input cost two words of shift/lea/xor/and per byte. A rare spread of more than 18 live states falls
back to an exact one-level-at-a-time loop. Memory is a few KB whatever the input size.

Compilation happens on first use (cached on disk by numba), never at import.
"""

from __future__ import annotations

from typing import Any

import numpy as np

# ---------------------------------------------------------------------------------------------
# TLSH tables
# Pearson permutation used by TLSH (Trend Micro reference, "v_table").
_V = np.array(
    [
        1, 87, 49, 12, 176, 178, 102, 166, 121, 193, 6, 84, 249, 230, 44, 163,
        14, 197, 213, 181, 161, 85, 218, 80, 64, 239, 24, 226, 236, 142, 38, 200,
        110, 177, 104, 103, 141, 253, 255, 50, 77, 101, 81, 18, 45, 96, 31, 222,
        25, 107, 190, 70, 86, 237, 240, 34, 72, 242, 20, 214, 244, 227, 149, 235,
        97, 234, 57, 22, 60, 250, 82, 175, 208, 5, 127, 199, 111, 62, 135, 248,
        174, 169, 211, 58, 66, 154, 106, 195, 245, 171, 17, 187, 182, 179, 0, 243,
        132, 56, 148, 75, 128, 133, 158, 100, 130, 126, 91, 13, 153, 246, 216, 219,
        119, 68, 223, 78, 83, 88, 201, 99, 122, 11, 92, 32, 136, 114, 52, 10,
        138, 30, 48, 183, 156, 35, 61, 26, 143, 74, 251, 94, 129, 162, 63, 152,
        170, 7, 115, 167, 241, 206, 3, 150, 55, 59, 151, 220, 90, 53, 23, 131,
        125, 173, 15, 238, 79, 95, 89, 16, 105, 137, 225, 224, 217, 160, 37, 123,
        118, 73, 2, 157, 46, 116, 9, 145, 134, 228, 207, 212, 202, 215, 69, 229,
        27, 188, 67, 124, 168, 252, 42, 4, 29, 108, 21, 247, 19, 205, 39, 203,
        233, 40, 186, 147, 198, 192, 155, 33, 164, 191, 98, 204, 165, 180, 117, 76,
        140, 36, 210, 172, 41, 54, 159, 8, 185, 232, 113, 196, 231, 47, 146, 120,
        51, 65, 28, 144, 254, 221, 93, 189, 194, 139, 112, 43, 71, 109, 184, 209,
    ],
    dtype=np.int64,
)  # fmt: skip
_UV = _V.astype(np.uint64)
_HIST_COPIES = 4  # byte i counts into copy i % 4: breaks store-to-load chains on runs


def _tlsh_pair_tables() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Two Pearson steps folded into tables keyed by a byte pair (448 KB, built on first use).

    Reference b_mapping(salt, i, j, k) = V[V[V[V[salt] ^ i] ^ j] ^ k]; for the salts TLSH uses
    (0, 2, 3, 5, 7, 11, 13) V[salt] is 1, 49, 12, 178, 166, 84, 230. Grouping the mappings by their
    second byte (previous byte: checksum, 49, 12, 84; two back: 178, 166; three back: 230) turns
    3 dependent loads per mapping into one pair load shared by up to 4 mappings plus one V load."""
    x = np.arange(256)

    def two(salt: int) -> np.ndarray:
        return _V[_V[salt ^ x][:, None] ^ x[None, :]].astype(np.uint32).reshape(-1)

    pa = two(1) | (two(49) << 8) | (two(12) << 16) | (two(84) << 24)
    pb = (two(178) | (two(166) << 8)).astype(np.uint16)
    pc = two(230).astype(np.uint8)
    return pa, pb, pc


TLSH_MIN_LEN = 50
# Upper bounds of TLSH's log-length buckets (reference l_capturing "topval").
_TOPVAL = np.array(
    [
        1, 2, 3, 5, 7, 11, 17, 25, 38, 57, 86, 129, 194, 291, 437, 656, 854, 1110, 1443, 1876,
        2439, 3171, 3475, 3823, 4205, 4626, 5088, 5597, 6157, 6772, 7450, 8195, 9014, 9916,
        10907, 11998, 13198, 14518, 15970, 17567, 19323, 21256, 23382, 25720, 28292, 31121,
        34233, 37656, 41422, 45564, 50121, 55133, 60646, 66711, 73382, 80721, 88793, 97672,
        107439, 118183, 130002, 143002, 157302, 173032, 190335, 209369, 230306, 253337, 278670,
        306538, 337191, 370911, 408002, 448802, 493682, 543050, 597356, 657091, 722800, 795081,
        874589, 962048, 1058252, 1164078, 1280486, 1408534, 1549388, 1704327, 1874759, 2062236,
        2268459, 2495305, 2744836, 3019320, 3321252, 3653374, 4018711, 4420582, 4862641,
        5348905, 5883796, 6472176, 7119394, 7831333, 8614467, 9475909, 10423501, 11465851,
        12612437, 13873681, 15261050, 16787154, 18465870, 20312458, 22343706, 24578077,
        27035886, 29739474, 32713425, 35984770, 39583245, 43541573, 47895730, 52685306,
        57953837, 63749221, 70124148, 77136564, 84850228, 93335252, 102668779, 112935659,
        124229227, 136652151, 150317384, 165349128, 181884040, 200072456, 220079703, 242087671,
        266296456, 292926096, 322218735, 354440623, 389884688, 428873168, 471760495, 518936559,
        570830240, 627913311, 690704607, 759775136, 835752671, 919327967, 1011260767,
        1112386880, 1223623232, 1345985727, 1480584256, 1628642751, 1791507135, 1970657856,
        2167723648, 2384496256, 2622945920, 2885240448, 3173764736, 3491141248, 3840255616,
        4224281216,
    ],
    dtype=np.int64,
)  # fmt: skip

# ---------------------------------------------------------------------------------------------
# ssdeep constants
_B64 = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
_SS_LEVELS = 40  # block sizes 3 * 2**k, k < 40: inputs up to ~10**14 bytes
_SS_INIT = 0x27
_SS_LEN = 64
_LANE_BITS = 11  # lane value <= 63, * 19 <= 1197 < 2**11: no carry into the next lane
_LANES_PER_WORD = 6  # the top lane (bit 55) may overflow past bit 63: only its low 6 bits matter
_N_WORDS = 3
_N_LANES = _LANES_PER_WORD * _N_WORDS
_LANE_ONES = sum(1 << (_LANE_BITS * j) for j in range(_LANES_PER_WORD))
_LANE_MASK = 63 * _LANE_ONES
# _SS_BCAST[c] = (c & 63) in every lane, the FNV xor operand for all levels at once.
_SS_BCAST = ((np.arange(256, dtype=np.uint64) & np.uint64(63)) * np.uint64(_LANE_ONES)).astype(np.uint64)
# ss state slots
_BHS, _BHE, _R1, _R2, _R3, _TOTAL, _SH4, _LANE_CAP, _TWO_WORD_CAP = range(9)

_kernels: dict[str, Any] | None = None


def _compile() -> dict[str, Any]:
    """Build the numba kernels once; numba's disk cache makes later processes skip the compile."""
    global _kernels
    if _kernels is not None:
        return _kernels
    from numba import njit

    @njit(cache=True, nogil=True, boundscheck=False)
    def _tlsh_update(data, hist, st, win, v, pa, pb, pc):  # pragma: no cover - compiled
        """Count the 6 window triplets of every byte at global position >= 4; roll the checksum.

        st = [checksum, bytes fed so far]; win = the last 4 bytes fed (win[3] newest). Indices are
        unsigned so numba adds no negative-index fix-ups to the ~16 table accesses per byte."""
        m8 = np.uint64(255)
        s8 = np.uint64(8)
        s16 = np.uint64(16)
        s24 = np.uint64(24)
        one = np.uint64(1)
        n = np.uint64(data.shape[0])
        fed = st[1]
        ucs = np.uint64(st[0])
        a0 = np.uint64(win[0])
        a1 = np.uint64(win[1])
        a2 = np.uint64(win[2])
        a3 = np.uint64(win[3])
        i = np.uint64(0)
        # The first 4 bytes of the whole input only fill the window.
        while fed + np.int64(i) < 4 and i < n:
            a0 = a1
            a1 = a2
            a2 = a3
            a3 = np.uint64(data[i])
            i += one
        while i < n:
            a4 = np.uint64(data[i])
            if a4 == a3 and a4 == a2 and a4 == a1 and a4 == a0:
                # Run of one byte value (padding, zero fill): every window in it is the same, so
                # count the run once; the checksum map s -> V[k ^ s] is a permutation, so a long
                # run only needs its length modulo the cycle length through the current state.
                j = i + one
                while j < n and np.uint64(data[j]) == a4:
                    j += one
                run = j - i
                hi = a4 << s8
                qa = np.uint64(pa[hi | a4])
                qb = np.uint64(pb[hi | a4])
                qc = np.uint64(pc[hi | a4])
                k = qa & m8
                if run > np.uint64(512):
                    s0 = ucs
                    x = v[k ^ s0]
                    period = one
                    while x != s0:
                        x = v[k ^ x]
                        period += one
                    steps = run % period
                else:
                    steps = run
                for _ in range(steps):
                    ucs = v[k ^ ucs]
                r = np.int64(run)
                hist[((qa >> s8) & m8) ^ a4] += r
                hist[((qa >> s16) & m8) ^ a4] += r
                hist[(qa >> s24) ^ a4] += r
                hist[(qb & m8) ^ a4] += r
                hist[(qb >> s8) ^ a4] += r
                hist[qc ^ a4] += r
                i = j
                continue
            hi = a4 << s8
            # pa[(x, y)] packs V[V[s ^ x] ^ y] for salts 1 (checksum), 49, 12, 84; pb for 178, 166;
            # pc for 230: the second-level partner is y = a3, a2, a1 respectively.
            qa = np.uint64(pa[hi | a3])
            qb = np.uint64(pb[hi | a2])
            qc = np.uint64(pc[hi | a1])
            ucs = v[(qa & m8) ^ ucs]
            off = (i & np.uint64(3)) << s8
            # The last Pearson step V is one permutation for every salt: count its input here
            # and permute the histogram once at the end (saves 6 loads per byte).
            hist[off + (((qa >> s8) & m8) ^ a2)] += 1
            hist[off + (((qa >> s16) & m8) ^ a1)] += 1
            hist[off + ((qa >> s24) ^ a0)] += 1
            hist[off + ((qb & m8) ^ a1)] += 1
            hist[off + ((qb >> s8) ^ a0)] += 1
            hist[off + (qc ^ a0)] += 1
            a0 = a1
            a1 = a2
            a2 = a3
            a3 = a4
            i += one
        win[0] = a0
        win[1] = a1
        win[2] = a2
        win[3] = a3
        st[0] = np.int64(ucs)
        st[1] = fed + np.int64(n)

    @njit(cache=True, nogil=True, boundscheck=False)
    def _ss_update(data, st, hs, hh, dlen, digest, lastc, lasthc, win, bcast):  # pragma: no cover
        """Advance all live spamsum levels over one chunk (see module docstring for the scheme)."""
        n = data.shape[0]
        nlev = hs.shape[0]
        bhs = st[0]
        bhe = st[1]
        r1 = st[2]
        r2 = st[3]
        r3 = st[4]
        total = st[5]
        lane_lev = np.empty(18, np.int64)
        lane_half = np.empty(18, np.int64)
        mask = np.uint64(_LANE_MASK)
        m32 = np.uint64(0xFFFFFFFF)
        u1 = np.uint64(1)
        u3 = np.uint64(3)
        u5 = np.uint64(5)
        u7 = np.uint64(7)
        un = np.uint64(n)
        i = 0
        t = np.int64(0)
        while i < n:
            # Assign lanes: h of every live level, halfh of levels whose half digest is full.
            nl = 0
            for j in range(bhs, bhe):
                lane_lev[nl] = j
                lane_half[nl] = 0
                nl += 1
                if nl == 18:
                    break
            for j in range(bhs + 1, bhe):
                if dlen[j] >= 31:
                    if nl < 18:
                        lane_lev[nl] = j
                        lane_half[nl] = 1
                    nl += 1
            if bhe - bhs > 18:
                nl = 19
            pmask = (np.int64(1) << bhs) - 1
            event = False
            if nl <= st[7]:
                w0 = np.uint64(0)
                w1 = np.uint64(0)
                w2 = np.uint64(0)
                for q in range(nl):
                    val = np.uint64(hh[lane_lev[q]] if lane_half[q] else hs[lane_lev[q]])
                    sh = np.uint64(11 * (q % 6))
                    if q < 6:
                        w0 |= val << sh
                    elif q < 12:
                        w1 |= val << sh
                    else:
                        w2 |= val << sh
                # Unsigned indices and arithmetic: no negative-index fix-ups in the hot loop.
                ui = np.uint64(i)
                ur1 = np.uint64(r1)
                ur12 = np.uint64(r1 + r2)
                ur3 = np.uint64(r3)
                upm = np.uint64(pmask)
                ut = np.uint64(0)
                three_words = nl > st[8]
                sh4 = np.uint64(st[6])
                while ui < un:
                    c = np.uint64(data[ui])
                    cb = bcast[c]
                    # w*19 as (w << 4) + 3w with a shift count unknown to LLVM: shift and lea run
                    # side by side (2 cycles) instead of a 3-cycle imul on the dependency chain.
                    w0 = (((w0 << sh4) + w0 * u3) ^ cb) & mask
                    w1 = (((w1 << sh4) + w1 * u3) ^ cb) & mask
                    if three_words:
                        w2 = (((w2 << sh4) + w2 * u3) ^ cb) & mask
                    old = np.uint64(data[ui - u7]) if ui >= u7 else np.uint64(win[ui])
                    # ur12 = r1 + r2 = sum of (8 - j) * b[-j]: one update instead of two.
                    ur12 = ur12 - ur1 + (c << u3) - old
                    ur1 = ur1 + c - old
                    ur3 = (ur3 << u5) ^ c  # only its low 32 bits are ever used
                    rh = (ur12 + ur3) & m32
                    ui += u1
                    # rh % bs == bs - 1 with bs = 3 << bhs: low bhs bits all ones, then mod 3.
                    if (rh & upm) == upm:
                        ut = rh + u1
                        if ut % u3 == 0:
                            event = True
                            break
                i = np.int64(ui)
                r1 = np.int64(ur1)
                r2 = np.int64(ur12 - ur1)
                r3 = np.int64(ur3 & m32)
                t = np.int64(ut)
                for q in range(nl):
                    sh = np.uint64(11 * (q % 6))
                    if q < 6:
                        val = np.int64((w0 >> sh) & np.uint64(63))
                    elif q < 12:
                        val = np.int64((w1 >> sh) & np.uint64(63))
                    else:
                        val = np.int64((w2 >> sh) & np.uint64(63))
                    if lane_half[q]:
                        hh[lane_lev[q]] = val
                    else:
                        hs[lane_lev[q]] = val
                for j in range(bhs, bhe):
                    if dlen[j] < 31:
                        hh[j] = hs[j]
            else:
                # Pathological spread of live levels: one level at a time (exact, slower).
                while i < n:
                    c = np.int64(data[i])
                    for j in range(bhs, bhe):
                        hs[j] = ((hs[j] * 19) ^ c) & 63
                        if dlen[j] >= 31:
                            hh[j] = ((hh[j] * 19) ^ c) & 63
                        else:
                            hh[j] = hs[j]
                    old = np.int64(data[i - 7]) if i >= 7 else np.int64(win[i])
                    r2 = r2 + 7 * c - r1
                    r1 = r1 + c - old
                    r3 = ((r3 << 5) ^ c) & 0xFFFFFFFF
                    t = ((r1 + r2 + r3) & 0xFFFFFFFF) + 1
                    i += 1
                    if (t & pmask) == 0 and t % 3 == 0:
                        event = True
                        break
            if event:
                k = bhs
                while k < bhe:
                    if t % (np.int64(3) << k) != 0:
                        break
                    if k == bhe - 1 and bhe < nlev:
                        # First trigger of the top level: its child has seen the same bytes.
                        hs[bhe] = hs[k]
                        hh[bhe] = hh[k]
                        dlen[bhe] = 0
                        lastc[bhe] = -1
                        lasthc[bhe] = -1
                        bhe += 1
                    d = dlen[k]
                    if d < _SS_LEN - 1:
                        digest[k, d] = hs[k]
                        dlen[k] = d + 1
                        hs[k] = _SS_INIT
                        lastc[k] = -1
                    else:
                        lastc[k] = hs[k]
                    if d < _SS_LEN // 2 - 1:
                        hh[k] = _SS_INIT
                        lasthc[k] = -1
                    else:
                        lasthc[k] = hh[k]
                    k += 1
                seen = total + i
                while bhe - bhs >= 2 and (np.int64(3) << bhs) * 64 < seen and dlen[bhs + 1] >= 32:
                    bhs += 1
        # Keep the last 7 bytes (oldest first) for the next chunk's rolling window.
        if n >= 7:
            for j in range(7):
                win[j] = data[n - 7 + j]
        else:
            keep = 7 - n
            for j in range(keep):
                win[j] = win[j + n]
            for j in range(n):
                win[keep + j] = data[j]
        st[0] = bhs
        st[1] = bhe
        st[2] = r1
        st[3] = r2
        st[4] = r3
        st[5] = total + n

    _kernels = {"tlsh": _tlsh_update, "tlsh_tables": _tlsh_pair_tables(), "ss": _ss_update}
    return _kernels


def _as_u8(chunk: bytes | bytearray | memoryview | np.ndarray) -> np.ndarray:
    """Zero-copy uint8 view of any bytes-like chunk or array."""
    if isinstance(chunk, np.ndarray):
        a = np.ascontiguousarray(chunk)
        return a.reshape(-1).view(np.uint8)
    return np.frombuffer(chunk, dtype=np.uint8)


class TlshHasher:
    """Streaming TLSH (py-tlsh 4.x/5.x default flavour: 128 buckets, 1-byte checksum, "T1")."""

    def __init__(self) -> None:
        self._hist = np.zeros(_HIST_COPIES * 256, dtype=np.int64)
        self._st = np.zeros(2, dtype=np.int64)  # checksum, length
        self._win = np.zeros(4, dtype=np.uint8)

    def update(self, chunk: bytes | bytearray | memoryview | np.ndarray) -> None:
        a = _as_u8(chunk)
        if a.size:
            k = _compile()
            k["tlsh"](a, self._hist, self._st, self._win, _UV, *k["tlsh_tables"])

    def hexdigest(self) -> str | None:
        """The "T1"-prefixed digest, or None where py-tlsh gives "TNULL" (too short / uniform)."""
        length = int(self._st[1]) & 0xFFFFFFFF
        if length < TLSH_MIN_LEN:
            return None
        pre = self._hist.reshape(_HIST_COPIES, 256).sum(axis=0)
        full = np.empty(256, dtype=np.int64)
        full[_V] = pre  # bucket V[x] counted every x
        b = full[:128] & 0xFFFFFFFF
        srt = np.sort(b)
        q1, q2, q3 = int(srt[31]), int(srt[63]), int(srt[95])
        if q3 == 0 or int(np.count_nonzero(b)) <= 64:
            return None
        code = np.zeros(32, dtype=np.int64)
        lvl = np.where(b > q3, 3, np.where(b > q2, 2, np.where(b > q1, 1, 0))).reshape(32, 4)
        code = (lvl << np.array([0, 2, 4, 6])).sum(axis=1)
        lvalue = int(np.searchsorted(_TOPVAL, length, side="left")) & 0xFF
        # Reference: (unsigned)((float)(q*100) / (float)q3) % 16 with 32-bit unsigned q*100.
        q1r = int(np.float32((q1 * 100) & 0xFFFFFFFF) / np.float32(q3)) % 16
        q2r = int(np.float32((q2 * 100) & 0xFFFFFFFF) / np.float32(q3)) % 16
        cs = int(self._st[0])
        swap = lambda x: ((x & 0x0F) << 4) | (x >> 4)  # noqa: E731 - nibble swap of the reference
        head = bytes([swap(cs), swap(lvalue), (q1r << 4) | q2r])
        return "T1" + (head + bytes(code[::-1].astype(np.uint8))).hex().upper()


class SsdeepHasher:
    """Streaming ssdeep (spamsum) equal to ppdeep.hash / libfuzzy fuzzy_hash_buf."""

    # Packed-lane limits (tests lower them to exercise the 3-word and the one-level-at-a-time paths).
    lane_cap = _N_LANES
    two_word_cap = 2 * _LANES_PER_WORD

    def __init__(self) -> None:
        L = _SS_LEVELS
        self._st = np.zeros(9, dtype=np.int64)
        self._st[_BHE] = 1
        self._st[_SH4] = 4  # shift count for w*19 = (w << 4) + 3w, passed at run time on purpose
        self._st[_LANE_CAP] = self.lane_cap
        self._st[_TWO_WORD_CAP] = self.two_word_cap
        self._hs = np.zeros(L, dtype=np.int64)
        self._hh = np.zeros(L, dtype=np.int64)
        self._hs[0] = self._hh[0] = _SS_INIT
        self._dlen = np.zeros(L, dtype=np.int64)
        self._digest = np.zeros((L, _SS_LEN), dtype=np.int64)
        self._lastc = np.full(L, -1, dtype=np.int64)
        self._lasthc = np.full(L, -1, dtype=np.int64)
        self._win = np.zeros(7, dtype=np.uint8)

    def update(self, chunk: bytes | bytearray | memoryview | np.ndarray) -> None:
        a = _as_u8(chunk)
        if a.size:
            _compile()["ss"](
                a, self._st, self._hs, self._hh, self._dlen, self._digest, self._lastc,
                self._lasthc, self._win, _SS_BCAST,
            )  # fmt: skip

    def _level(self, k: int, half: bool, rh: int) -> str:
        bhe = int(self._st[_BHE])
        if k >= bhe:  # never triggered: same state as the (untriggered) top level
            dl, chars, last = 0, [], -1
            state = int(self._hs[bhe - 1])
        else:
            dl = int(self._dlen[k])
            chars = [int(x) for x in self._digest[k, :dl]]
            state = int(self._hh[k] if half else self._hs[k])
            last = int(self._lasthc[k] if half else self._lastc[k])
        if half:
            chars = chars[: _SS_LEN // 2 - 1]
        if rh != 0:
            chars.append(state)
        elif last >= 0:
            chars.append(last)
        return bytes(_B64[c] for c in chars).decode()

    def hexdigest(self) -> str:
        """ "blocksize:hash1:hash2" exactly as ppdeep.hash would give for the bytes fed so far."""
        total = int(self._st[_TOTAL])
        rh = (int(self._st[_R1]) + int(self._st[_R2]) + int(self._st[_R3])) & 0xFFFFFFFF
        k = 0
        while (3 << k) * _SS_LEN < total:
            k += 1
        bhe = int(self._st[_BHE])
        while k > 0 and (int(self._dlen[k]) if k < bhe else 0) < _SS_LEN // 2:
            k -= 1
        return f"{3 << k}:{self._level(k, False, rh)}:{self._level(k + 1, True, rh)}"


def tlsh_hash(data: bytes | bytearray | memoryview | np.ndarray) -> str | None:
    """TLSH of a whole buffer; None where py-tlsh's tlsh.hash returns "TNULL"."""
    h = TlshHasher()
    h.update(data)
    return h.hexdigest()


def ssdeep_hash(data: bytes | bytearray | memoryview | np.ndarray) -> str:
    """ssdeep of a whole buffer, as ppdeep.hash(data)."""
    h = SsdeepHasher()
    h.update(data)
    return h.hexdigest()
