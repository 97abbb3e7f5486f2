"""The pe_overlay group: data appended past the image the PE headers describe, its start equal to
pefile's ``get_overlay_data_start_offset()`` by the rules written out below."""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from extract.entropy import buffer_entropy
from extract.groups.pe_parse import DIR_SECURITY, data_directories, sections
from extract.parsed import Parsed
from extract.registry import REGISTRY, declare

OVERLAY_TYPE = pa.struct([("present", pa.bool_()), ("offset", pa.int64()), ("size", pa.int64()),
                          ("file_size", pa.int64()), ("entropy", pa.float64())])
OVERLAY_DIMS = ["present", "offset", "size", "size_ratio", "entropy"]


def _fill_overlay(raws: list[dict], out: np.ndarray) -> None:
    out[:] = np.array([[float(raw["present"]), float(raw["offset"] or 0), float(raw["size"]),
                        raw["size"] / raw["file_size"] if raw["file_size"] else 0.0, raw["entropy"]]
                       for raw in raws], dtype=np.float32)


# Where the image described by the headers ends (docs/architecture.md, "PE rules that are not
# EMBER's", overlay start). The rules are the Windows loader's where it has one and pefile's
# (2024.8.26, the test oracle) where it guesses, so that the overlay offset equals
# ``pefile.PE.get_overlay_data_start_offset()``:
# - page: 0x1000. A SectionAlignment below it makes a "low alignment" image, mapped by the loader
#   with file offsets equal to RVAs; such an image's sections start at RVAs rounded down to the
#   FileAlignment, other images' at RVAs rounded down to the SectionAlignment (an alignment of 0:
#   no rounding).
# - sector: 0x200. The loader reads a section's raw data from PointerToRawData rounded down to a
#   multiple of 512, whatever the FileAlignment; in a low-alignment image a section whose
#   PointerToRawData equals its RVA is read from there, unrounded.
# - a section's mapped length (pefile's heuristic): its VirtualSize when its SizeOfRawData claims
#   more bytes than the file holds past the (rounded) raw pointer, else the larger of the two sizes;
#   cut where the next section starts (sections stably sorted by RVA) when that one starts above
#   this section's RVA.
# - an RVA lies in the first section, in that order, whose [start, start + length) holds it; its file
#   offset is the RVA's distance from the section's start plus the section's raw pointer. An RVA in
#   no section is its own file offset when it is below the file size (the loader maps the headers
#   that way); otherwise the directory is not located.
# - the image ends at the largest end, within the file, of: the optional header (e_lfanew + 24,
#   SizeOfOptionalHeader bytes), each section's raw data (PointerToRawData, SizeOfRawData, as
#   written) and each located data directory but the certificate table (whose entry is a file offset
#   and whose signature is appended data). Bytes past that end are the overlay.
PAGE = 0x1000
SECTOR = 0x200


def _round_down(value: int, unit: int) -> int:
    return value - value % unit if unit > 0 else value


def section_ranges(parsed: Parsed) -> list[tuple[int, int, int]]:
    """(first RVA, RVA past the end, file offset of the first RVA) of each section, in lookup order."""
    b, file_size = parsed.binary, parsed.size
    opt = b.optional_header
    section_align = int(opt.section_alignment)
    low_alignment = section_align < PAGE
    rva_unit = int(opt.file_alignment) if low_alignment else section_align
    # (rva, raw pointer, raw size, virtual size), in RVA order; equal RVAs keep their table order
    table = sorted(((s.virtual_address, s.pointerto_raw_data, s.sizeof_raw_data, s.virtual_size)
                    for s in sections(parsed)), key=lambda sec: sec[0])
    ranges = []
    for i, (rva, raw_ptr, raw_size, vsize) in enumerate(table):
        start = _round_down(rva, rva_unit)
        offset = raw_ptr if low_alignment and raw_ptr == rva else _round_down(raw_ptr, SECTOR)
        length = vsize if raw_size > file_size - offset else max(raw_size, vsize)
        if i + 1 < len(table) and table[i + 1][0] > rva:
            length = min(length, table[i + 1][0] - start)
        ranges.append((start, start + length, offset))
    return ranges


def rva_file_offset(ranges: list[tuple[int, int, int]], rva: int, file_size: int) -> int | None:
    """File offset of ``rva`` under the rules above, or None when it cannot be located."""
    for start, stop, offset in ranges:
        if start <= rva < stop:
            return offset + (rva - start)
    return rva if rva < file_size else None


def overlay_offset(parsed: Parsed) -> int | None:
    """File offset where the overlay starts (the rules above), or None when nothing follows the image."""
    b, file_size = parsed.binary, parsed.size
    extents = [(int(b.dos_header.addressof_new_exeheader) + 24, int(b.header.sizeof_optional_header))]
    extents += [(s.pointerto_raw_data, s.sizeof_raw_data) for s in sections(parsed)]
    ranges = section_ranges(parsed)
    for index, (rva, size) in enumerate(data_directories(parsed)):
        if index != DIR_SECURITY:
            at = rva_file_offset(ranges, rva, file_size)
            if at is not None:
                extents.append((at, size))
    image_end = max((at + n for at, n in extents if at + n <= file_size), default=0)
    return image_end if image_end < file_size else None


@declare(REGISTRY, name="pe_overlay", version=2, formats=["pe"], stage="structure", raw_type=OVERLAY_TYPE,
         dim_names=OVERLAY_DIMS, fill=_fill_overlay)
def pe_overlay(parsed: Parsed) -> dict:
    """Data appended past the image (pefile's overlay start, by the rules of overlay_offset; an
    Authenticode signature at the end counts as overlay, as in pefile): offset (null when none),
    size, share of the file, entropy."""
    start = overlay_offset(parsed)
    if start is None:
        return {"present": False, "offset": None, "size": 0, "file_size": parsed.size, "entropy": 0.0}
    tail = memoryview(parsed.data)[start:]
    return {"present": True, "offset": start, "size": len(tail), "file_size": parsed.size,
            "entropy": buffer_entropy(tail)}
