"""The byte scan of one whole in-memory buffer in numpy: the same counts as the compiled kernels
(:mod:`extract.byte_kernels`), for a process that scans only a file or two.

Loading the compiled kernels costs ~0.3 s of CPU (numba's own start, then its disk cache), two
thousand times what this takes for a 100 KB file (~1 ms, ~150 MB/s against the kernels' 2 GB/s).
``binfeat file`` scans with it until it has scanned ``kernels.defer_kernels``' budget; everything
else uses the kernels. The rules are docs/architecture.md's "Byte-level rules": a string is a
maximal run of at least 5 bytes in 0x20-0x7f; entropy windows are the pairs of adjacent whole
1 KiB blocks (one window of the whole file below 2 KiB), each binned with EMBER's float32 rule where
float64 could disagree; the patterns are counted with ``bytes.count`` (none can overlap itself).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from extract.byte_spec import BLOCK, PATTERNS, UNCERTAIN, WINDOW

_MIN_RUN = 5
_CHUNK_BLOCKS = 1024  # blocks whose nibbles are counted at once (bounds the intp temporaries)


def scan_whole(data: bytes | bytearray | memoryview | np.ndarray,
               ember_entropy_bin: Callable[[np.ndarray], int]) -> dict:
    """The raw counts :meth:`extract.kernels.ByteScanner.finish` gives for ``data`` fed whole;
    ``ember_entropy_bin`` is :func:`extract.kernels.ember_entropy_bin` (EMBER's float32 binning)."""
    a = data.reshape(-1).view(np.uint8) if isinstance(data, np.ndarray) else np.frombuffer(data, dtype=np.uint8)
    hist = np.bincount(a, minlength=256).astype(np.int64)
    longhist, numstrings = _strings(a)
    grid = np.zeros((16, 16), np.int64)
    if a.size < WINDOW:  # one window of the whole file, still divided by 2048
        counts = hist.reshape(16, 16).sum(axis=1)
        grid[ember_entropy_bin(counts)] += counts
    else:
        nib = _block_nibbles(a)
        windows = nib[:-1] + nib[1:]
        np.add.at(grid, _rows(windows, ember_entropy_bin), windows)
    raw = data if isinstance(data, bytes) else a.tobytes()
    lower = raw.lower()  # ASCII letters only
    patterns = (lower.count(b"c:\\"), lower.count(b"http://") + lower.count(b"https://"), raw.count(b"HKEY_"),
                raw.count(b"MZ"))
    return {
        "histogram": hist,
        "entropy_grid": grid.ravel(),
        "numstrings": numstrings,
        "string_bytes": int(longhist.sum()),
        "printabledist": longhist[32:128].copy(),
        "patterns": dict(zip(PATTERNS, patterns, strict=True)),
    }


def _strings(a: np.ndarray) -> tuple[np.ndarray, int]:
    """The byte histogram inside strings, and the number of strings."""
    printable = ((a >= 0x20) & (a <= 0x7F)).view(np.int8)
    edges = np.diff(np.concatenate((np.zeros(1, np.int8), printable, np.zeros(1, np.int8))))
    starts, stops = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
    long = stops - starts >= _MIN_RUN
    starts, stops = starts[long], stops[long]
    inside = np.zeros(a.size + 1, np.int8)  # +1 where a string starts, -1 after it ends (never both)
    inside[starts] = 1
    inside[stops] = -1
    mask = np.cumsum(inside[:-1], dtype=np.int32) > 0
    return np.bincount(a[mask], minlength=256).astype(np.int64), int(starts.size)


def _block_nibbles(a: np.ndarray) -> np.ndarray:
    """(blocks, 16) high-nibble counts of each whole 1 KiB block."""
    nblocks = a.size // BLOCK
    out = np.empty((nblocks, 16), np.int64)
    for first in range(0, nblocks, _CHUNK_BLOCKS):
        last = min(first + _CHUNK_BLOCKS, nblocks)
        hi = (a[first * BLOCK : last * BLOCK].reshape(last - first, BLOCK) >> 4).astype(np.intp)
        hi += (np.arange(last - first, dtype=np.intp) * 16)[:, None]
        out[first:last] = np.bincount(hi.ravel(), minlength=(last - first) * 16).reshape(last - first, 16)
    return out


def _rows(windows: np.ndarray, exact_bin: Callable[[np.ndarray], int]) -> np.ndarray:
    """Each window's grid row: from its float64 entropy, or EMBER's float32 rule where 4 x the entropy
    lies within UNCERTAIN of an integer (where the two could disagree)."""
    p = windows / float(WINDOW)
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(windows > 0, p * np.log2(p), 0.0)
    x = -4.0 * terms.sum(axis=1)
    floor = np.floor(x)
    rows = np.minimum(floor, 15).astype(np.intp)
    for i in np.flatnonzero((x - floor < UNCERTAIN) | (floor + 1.0 - x < UNCERTAIN)).tolist():
        rows[i] = exact_bin(windows[i])
    return rows
