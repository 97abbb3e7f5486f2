"""A reference for the byte-level groups written from their rules (docs/architecture.md, "Byte-level
rules"), for the tests: plain numpy over whole buffers, sharing no code with the kernels under test
(extract/kernels.py, byte_kernels*.py) and none with EMBER.

Strings are found as runs of a printable mask, windows by slicing, patterns with ``bytes.count``
(non-overlapping, left to right; ASCII-only case folding with ``bytes.lower``).
"""

from __future__ import annotations

import numpy as np

WINDOW, STEP, MIN_RUN = 2048, 1024, 5
FIRST_PRINTABLE, LAST_PRINTABLE = 0x20, 0x7F


def float32_entropy(counts: np.ndarray, denominator: int) -> np.float32:
    """-sum(p * log2 p) over the counts that are not zero, p = float32(count) / float32(denominator),
    numpy's float32 log2, product and sum (terms in index order)."""
    nonzero = np.asarray(counts)[np.asarray(counts) != 0]
    p = nonzero.astype(np.float32) / np.float32(denominator)
    return -np.sum(p * np.log2(p), dtype=np.float32)


def entropy_row(nibble_counts: np.ndarray) -> int:
    """The grid row of one window: 4 x its float32 nibble entropy, truncated, at most 15."""
    return min(15, int(float32_entropy(nibble_counts, WINDOW) * 4))


def histogram(data: bytes) -> list[int]:
    values, counts = np.unique(np.frombuffer(data, dtype=np.uint8), return_counts=True)
    out = [0] * 256
    for v, c in zip(values.tolist(), counts.tolist(), strict=True):
        out[v] = c
    return out


def _nibble_counts(chunk: np.ndarray) -> np.ndarray:
    values, counts = np.unique(chunk >> 4, return_counts=True)
    out = np.zeros(16, np.int64)
    out[values] = counts
    return out


def entropy_grid(data: bytes) -> list[int]:
    a = np.frombuffer(data, dtype=np.uint8)
    grid = np.zeros((16, 16), np.int64)
    starts = range(0, len(a) - WINDOW + 1, STEP) if len(a) >= WINDOW else [0]
    for start in starts:
        counts = _nibble_counts(a[start:start + WINDOW])
        grid[entropy_row(counts)] += counts
    return grid.ravel().tolist()


def _runs(a: np.ndarray) -> list[tuple[int, int]]:
    """(start, stop) of every maximal run of printable bytes at least MIN_RUN long."""
    printable = ((a >= FIRST_PRINTABLE) & (a <= LAST_PRINTABLE)).astype(np.int8)
    edges = np.diff(np.concatenate(([0], printable, [0])))
    starts, stops = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
    keep = stops - starts >= MIN_RUN
    return list(zip(starts[keep].tolist(), stops[keep].tolist(), strict=True))


def strings(data: bytes) -> dict:
    a = np.frombuffer(data, dtype=np.uint8)
    runs = _runs(a)
    dist = np.zeros(96, np.int64)
    for start, stop in runs:
        values, counts = np.unique(a[start:stop], return_counts=True)
        dist[values - FIRST_PRINTABLE] += counts
    printables = int(dist.sum())
    lower = data.lower()
    return {
        "numstrings": len(runs),
        "avlength": printables / len(runs) if runs else 0.0,
        "printables": printables,
        "printabledist": dist.tolist(),
        "entropy": float(float32_entropy(dist, printables)) if printables else 0.0,
        "paths": lower.count(b"c:\\"),
        "urls": lower.count(b"http://") + lower.count(b"https://"),
        "registry": data.count(b"HKEY_"),
        "MZ": data.count(b"MZ"),
    }


def shares_f32(counts: list[int]) -> np.ndarray:
    """Histogram vectors: float32 counts over their float32 numpy sum (zeros stay zeros)."""
    c = np.array(counts, dtype=np.float32)
    total = np.sum(c, dtype=np.float32)
    return c / total if total else c


def strings_vector(raw: dict) -> np.ndarray:
    divisor = raw["printables"] or 1
    values = [raw["numstrings"], raw["avlength"], raw["printables"]]
    values += [c / divisor for c in raw["printabledist"]]  # Python float64 division
    values += [raw["entropy"], raw["paths"], raw["urls"], raw["registry"], raw["MZ"]]
    return np.array(values, dtype=np.float64).astype(np.float32)
