"""The macho_fat group: the fat (universal) architecture list and the slice the other groups describe."""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from extract.groups.macho.headers import CPU_TYPES
from extract.groups.macho.parse import MAX_FAT_ARCHS
from extract.groups.shared import onehot, onehot_names
from extract.parsed import Parsed
from extract.registry import REGISTRY, declare

_FAT_TYPE = pa.struct([
    ("fat", pa.bool_()), ("count", pa.int64()), ("chosen", pa.int32()), ("chosen_cputype", pa.int64()),
    # fat_arch: 32-bit fields (int64); offset and size are 64-bit in fat_arch_64 (decimal128(20, 0))
    ("archs", pa.list_(pa.struct([("cputype", pa.int64()), ("cpusubtype", pa.int64()),
                                  ("offset", pa.decimal128(20, 0)), ("size", pa.decimal128(20, 0)),
                                  ("align", pa.int64())]))),
])
_FAT_DIMS = ["fat", "count", "total_size", "max_align", *onehot_names("has_cputype", CPU_TYPES),
             *onehot_names("chosen_cputype", CPU_TYPES)]


def _fat_row(raw: dict) -> list:
    archs = raw["archs"]
    has = [0.0] * (len(CPU_TYPES) + 1)
    for a in archs:
        has = [max(x, y) for x, y in zip(has, onehot(a["cputype"], CPU_TYPES), strict=True)]
    chosen = onehot(raw["chosen_cputype"], CPU_TYPES) if raw["fat"] else [0.0] * (len(CPU_TYPES) + 1)
    head = [float(raw["fat"]), raw["count"], sum(a["size"] for a in archs),
            max((a["align"] for a in archs), default=0)]
    return head + has + chosen


def _fill_fat(raws: list[dict], out: np.ndarray) -> None:
    out[:] = np.array([_fat_row(raw) for raw in raws], dtype=np.float32)


@declare(REGISTRY, name="macho_fat", version=1, formats=["macho"], stage="structure",
         raw_type=_FAT_TYPE, dim_names=_FAT_DIMS, fill=_fill_fat)
def macho_fat(parsed: Parsed) -> dict:
    """The fat (universal) architecture list and the slice the other groups describe.

    For a thin file: fat false, count 0, chosen -1, no archs, and chosen_cputype the image's CPU
    type. Slice choice (extract.groups.macho.parse): first x86_64, else first arm64, else file
    order, skipping slices out of bounds or unparsable. Vector: fat, count, total slice size, max
    alignment, which CPU types are present (one-hot union) and the chosen one.
    """
    x = parsed.extra
    return {"fat": x["fat"], "count": x["nfat"], "chosen": x["chosen"], "chosen_cputype": x["cputype"],
            "archs": x["archs"][:MAX_FAT_ARCHS]}
