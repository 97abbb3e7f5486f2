"""Fuzzy hashes for the opt-in ``hashes`` group: TLSH through py-tlsh, and binfeat's own streaming,
numba-compiled ssdeep, equal to ppdeep.

TLSH: py-tlsh's default flavour (128 buckets, 1-byte checksum, window 5, "T1" version prefix), fed
chunk by chunk through ``tlsh.Tlsh().update``. binfeat once had its own compiled TLSH (equal digests
on every file of the sample corpus); py-tlsh measured as fast (docs/architecture.md, "Kernels kept
and dropped"), so the library does it. ``TlshHasher.hexdigest()`` is ``None`` exactly where py-tlsh's
``tlsh.hash`` returns "TNULL" (fewer than 50 bytes, or too little variation).

ssdeep: no fast, self-contained ssdeep library exists for Python 3.11 (ppdeep is pure Python, ~1
MB/s), so this one is written from the published algorithm (spamsum / libfuzzy as ppdeep implements
it). ``SsdeepHasher.hexdigest()`` is ppdeep.hash's "blocksize:hash1:hash2" (no elimination of
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

_TLSH_HOLD = 64  # bytes held back before py-tlsh's first update (see TlshHasher.update)

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

_ss_kernel: Any = None


def _compile() -> Any:
    """Build the ssdeep kernel once; numba's disk cache makes later processes skip the compile."""
    global _ss_kernel
    if _ss_kernel is not None:
        return _ss_kernel
    from numba import njit

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

    _ss_kernel = _ss_update
    return _ss_kernel


def _as_u8(chunk: bytes | bytearray | memoryview | np.ndarray) -> np.ndarray:
    """Zero-copy uint8 view of any bytes-like chunk or array."""
    if isinstance(chunk, np.ndarray):
        a = np.ascontiguousarray(chunk)
        return a.reshape(-1).view(np.uint8)
    return np.frombuffer(chunk, dtype=np.uint8)


class TlshHasher:
    """Streaming TLSH through py-tlsh (its default flavour). ``hexdigest()`` ends the stream."""

    def __init__(self) -> None:
        import tlsh

        self._tlsh = tlsh.Tlsh()
        self._held: bytearray | None = bytearray()  # the first bytes, until _TLSH_HOLD of them
        self._digest: str | None = None
        self._done = False

    def update(self, chunk: bytes | bytearray | memoryview | np.ndarray) -> None:
        if self._done:
            raise ValueError("TLSH stream already ended by hexdigest(): use a new TlshHasher")
        # py-tlsh takes bytes only (not a bytearray or memoryview): a copy, ~1% of TLSH's own time
        data = chunk if type(chunk) is bytes else _as_u8(chunk).tobytes()
        held = self._held
        if held is not None:
            # py-tlsh gives another digest when its first update is shorter than its 5-byte window
            # (trendmicro/tlsh issue 151): the first bytes go to it together
            if not held and len(data) >= _TLSH_HOLD:
                self._held = None
            else:
                held += data
                if len(held) < _TLSH_HOLD:
                    return
                data, self._held = bytes(held), None
        self._tlsh.update(data)

    def hexdigest(self) -> str | None:
        """The "T1"-prefixed digest, or None where py-tlsh's ``tlsh.hash`` gives "TNULL"."""
        if not self._done:
            self._done = True
            if self._held:
                self._tlsh.update(bytes(self._held))
            try:
                # py-tlsh raises ValueError for fewer than 50 bytes (final) and for too little
                # variation (hexdigest): the two cases where tlsh.hash returns "TNULL"
                self._tlsh.final()
                digest = self._tlsh.hexdigest()
            except ValueError:
                digest = None
            self._digest = digest if digest not in ("", "TNULL") else None
        return self._digest


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
            _compile()(
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
