"""Format-agnostic byte-level groups with EMBER v2's exact semantics, from the one-pass kernels.

Raw values equal EMBER v2's ``raw_features`` for the same bytes, and vectors its
``process_raw_features``, except that an empty file gives zeros where EMBER divides by zero. The
arithmetic rules (which steps are float32) are written out in docs/architecture.md ("Byte-level
rules"); the tests check them against a reference written from those rules, and against EMBER's own
code when a checkout is given (``BINFEAT_EMBER_SOURCE``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from extract.registry import ALL_FORMATS, REGISTRY, declare


@dataclass
class ByteContext:
    """What the byte-level groups share: the kernels' counts (histograms, strings, patterns)."""

    size: int
    scan: dict
    fuzzy: dict[str, str | None]


def normalised_rows(raws: Sequence[list[int] | np.ndarray], out: np.ndarray) -> None:
    """Counts as shares of their total, in float32, one row per raw value: the total is numpy's
    float32 sum of the row's float32 counts (rounded, like EMBER's, once it passes 2**24), each share
    one float32 division. No counts at all (an empty file) stay zeros."""
    counts = np.array(raws, dtype=np.float32)
    out[:] = counts / np.maximum(counts.sum(axis=1), np.float32(1))[:, None]


def count_shares(raws: Sequence[list[int] | np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """(counts as float32 rows, each row's float32 total): the parts of :func:`normalised_rows`."""
    counts = np.array(raws, dtype=np.float32)
    return counts, counts.sum(axis=1)


def _histogram(ctx: ByteContext) -> np.ndarray:
    """Byte value counts (256)."""
    return ctx.scan["histogram"]


declare(
    REGISTRY, name="byte_histogram", version=1, formats=ALL_FORMATS, stage="bytes",
    raw_type=pa.list_(pa.int64()), dim_names=[f"byte_histogram[0x{i:02x}]" for i in range(256)],
    fill=normalised_rows, doc="Counts of each byte value (EMBER ByteHistogram); vector: counts / size.",
)(_histogram)


def _byte_entropy(ctx: ByteContext) -> np.ndarray:
    """16x16 entropy-by-nibble grid of 2048-byte windows every 1024 bytes (EMBER ByteEntropyHistogram)."""
    return ctx.scan["entropy_grid"]


declare(
    REGISTRY, name="byte_entropy_histogram", version=1, formats=ALL_FORMATS, stage="bytes",
    raw_type=pa.list_(pa.int64()),
    dim_names=[f"byte_entropy_histogram[entropy={r},nibble=0x{n:x}]" for r in range(16) for n in range(16)],
    fill=normalised_rows,
    doc="Windows of 2048 bytes every 1024: row = int(4 x nibble entropy), nibble counts added; vector: / total.",
)(_byte_entropy)


STRINGS_TYPE = pa.struct([
    ("numstrings", pa.int64()), ("avlength", pa.float64()), ("printables", pa.int64()),
    ("printabledist", pa.list_(pa.int64())), ("entropy", pa.float64()), ("paths", pa.int64()),
    ("urls", pa.int64()), ("registry", pa.int64()), ("MZ", pa.int64()),
])


def _string_entropy(dist: np.ndarray, printables: int) -> float:
    """Shannon entropy (bits) of the printable-byte distribution, EMBER's float32 rule: each byte
    value that occurs has the share ``float32(count) / float32(printables)`` and the term
    ``share * -log2(share)`` (numpy float32); numpy's float32 sum adds the terms in ascending byte
    order; the float32 result is returned as a Python float. 0.0 without strings.

    Computed as 0.0 - sum(share * log2(share)): negating every term negates the sum exactly (the
    rounding is symmetric), and 0.0 - x gives the sum's 0.0 where every term is -0.0."""
    counts = dist[dist > 0]
    if counts.size == 0:
        return 0.0
    shares = counts.astype(np.float32) / np.float32(printables)
    return 0.0 - float(np.add.reduce(shares * np.log2(shares), dtype=np.float32))


def _strings(ctx: ByteContext) -> dict:
    """Printable runs (>= 5 bytes in 0x20-0x7f) and pattern counts (EMBER StringExtractor)."""
    scan = ctx.scan
    numstrings = scan["numstrings"]
    printables = scan["string_bytes"]
    dist = scan["printabledist"]
    return {
        "numstrings": numstrings,
        "avlength": printables / numstrings if numstrings else 0.0,
        "printables": printables,
        "printabledist": dist,
        "entropy": _string_entropy(dist, printables),
        **scan["patterns"],
    }


def strings_rows(raws: Sequence[dict], out: np.ndarray) -> None:
    """numstrings, avlength, printables, the 96 printable-byte counts as float64 shares of
    ``printables`` (plain counts, all zero, when there is no string), entropy, the four pattern
    counts; each number rounded once to float32. One row per raw value."""
    out[:, :3] = np.array([(r["numstrings"], r["avlength"], r["printables"]) for r in raws], np.float64)
    dist = np.array([r["printabledist"] for r in raws], np.float64)
    totals = np.array([max(r["printables"], 1) for r in raws], np.float64)
    out[:, 3:99] = dist / totals[:, None]
    out[:, 99:] = np.array([(r["entropy"], r["paths"], r["urls"], r["registry"], r["MZ"]) for r in raws], np.float64)


declare(
    REGISTRY, name="strings", version=1, formats=ALL_FORMATS, stage="bytes", raw_type=STRINGS_TYPE,
    dim_names=["strings.numstrings", "strings.avlength", "strings.printables",
               *[f"strings.printabledist[0x{i + 0x20:02x}]" for i in range(96)],
               "strings.entropy", "strings.paths", "strings.urls", "strings.registry", "strings.MZ"],
    fill=strings_rows,
)(_strings)


HASHES_TYPE = pa.struct([("tlsh", pa.string()), ("ssdeep", pa.string())])


def _hashes(ctx: ByteContext) -> dict:
    """Fuzzy hashes for similarity search (sha256 and md5 are identity columns); not vectorised."""
    return {"tlsh": ctx.fuzzy.get("tlsh"), "ssdeep": ctx.fuzzy.get("ssdeep")}


declare(
    REGISTRY, name="hashes", version=1, formats=ALL_FORMATS, stage="bytes", raw_type=HASHES_TYPE,
    dim_names=[], vectorize=lambda raw: np.zeros(0, np.float32),
)(_hashes)
