"""The Mach-O parse step: the fat header, the choice of one slice, and the load-command walk.

binfeat's own reader is the only parse: the header and the load commands are walked once with
``struct`` (``Parsed.extra["cmds"]``: cmd, offset, size), so raw values are exactly what the file
says; segments, sections, the entry point and the virtual size come from that walk
(:mod:`extract.groups.macho.image`) and the symbol table is read with numpy. ``Parsed.binary`` is
None: no group reads a parser object. (LIEF used to parse each image as well, for three values
that :mod:`extract.groups.macho.loader_view` now computes by LIEF's rules.)

The walk: the header (magic FEEDFACE/FEEDFACF either byte order; 28 or 32 bytes) must be whole,
else ParseError; commands are then taken in order while each lies inside both the file and
sizeofcmds and has cmdsize >= 8 (at most 65,536 of them); the first that does not ends the walk.

Fat (universal) files: the fat header is read with ``struct`` (big-endian ``fat_arch`` or
``fat_arch_64``); ONE slice is chosen and parsed, by this deterministic rule: the first x86_64 slice,
else the first arm64 slice (any subtype, arm64e included), else the other slices in file order;
a candidate whose range lies outside the file or whose header the walk rejects is passed over for
the next. ``Parsed.extra`` holds the architecture list (``archs``), the chosen index and the slice's
offset and size; every group but ``macho_fat`` describes the chosen slice. Offsets in raw values
are relative to the slice, as in the file. When no slice parses, the ParseError lists each
slice's reason, joined by " | " (the row's ``error`` joins groups with "; "), cut at a reason's end
with the number of reasons left out.

A file starting with CAFEBABE whose count field reads 20 or more is a Java class file (minor/major
version), not Mach-O: the parse step raises ParseError.
"""

from __future__ import annotations

import struct
from typing import Any

from extract.groups.macho.spec import CPU_ARM64, CPU_X86_64
from extract.parsed import Parsed, ParseError, register_parser
from extract.text import clean

MAX_COMMANDS = 4096  # commands kept in macho_load_commands (the walk itself stops at 16 times this)
MAX_FAT_ARCHS = 20  # as extract.formats: 20+ "architectures" is a Java class file
FAT_PREFERENCE = (CPU_X86_64, CPU_ARM64)

_THIN_MAGIC = {
    b"\xfe\xed\xfa\xce": (">", False), b"\xce\xfa\xed\xfe": ("<", False),
    b"\xfe\xed\xfa\xcf": (">", True), b"\xcf\xfa\xed\xfe": ("<", True),
}

def read_fat(data: bytes | memoryview) -> list[dict[str, int]]:
    """The fat header's architecture list; ParseError for a Java class file or a truncated table."""
    head = bytes(data[:8])
    is64 = head[:4] == b"\xca\xfe\xba\xbf"
    (nfat,) = struct.unpack(">I", head[4:8])
    if nfat == 0 or nfat >= MAX_FAT_ARCHS:
        raise ParseError(f"CAFEBABE with count {nfat}: a Java class file or not a fat Mach-O")
    fmt, step = (">iiQQII", 32) if is64 else (">iiIII", 20)
    if 8 + nfat * step > len(data):
        raise ParseError(f"fat header lists {nfat} architectures but the file ends at {len(data)}")
    archs = []
    for i in range(nfat):
        cpu, sub, off, size, align = struct.unpack_from(fmt, data, 8 + i * step)[:5]
        archs.append({"cputype": cpu & 0xFFFFFFFF, "cpusubtype": sub & 0xFFFFFFFF, "offset": off,
                      "size": size, "align": align})
    return archs


def _candidates(archs: list[dict[str, int]]) -> list[int]:
    order = [i for pref in FAT_PREFERENCE for i, a in enumerate(archs) if a["cputype"] == pref]
    return order + [i for i in range(len(archs)) if i not in order]


def read_commands(buf: bytes | memoryview) -> dict[str, Any]:
    """Mach-O header and load-command list (cmd, offset, size) of one thin image, via struct."""
    magic = bytes(buf[:4])
    if magic not in _THIN_MAGIC:
        raise ParseError(f"not a thin Mach-O image (magic {magic.hex()})")
    end, is64 = _THIN_MAGIC[magic]
    hsize = 32 if is64 else 28
    if len(buf) < hsize:
        raise ParseError(f"Mach-O header truncated: {len(buf)} bytes")
    cpu, sub, ftype, ncmds, sizeofcmds, flags = struct.unpack_from(end + "iiIIII", buf, 4)
    cmds = []
    off = hsize
    limit = min(len(buf), hsize + sizeofcmds)
    for _ in range(min(ncmds, MAX_COMMANDS * 16)):
        if off + 8 > limit:
            break
        cmd, size = struct.unpack_from(end + "II", buf, off)
        if size < 8 or off + size > limit:
            break
        cmds.append((cmd, off, size))
        off += size
    return {"end": end, "is64": is64, "cputype": cpu & 0xFFFFFFFF, "cpusubtype": sub & 0xFFFFFFFF,
            "filetype": ftype, "ncmds": ncmds, "sizeofcmds": sizeofcmds, "flags": flags,
            "magic": int.from_bytes(magic, "little" if end == "<" else "big"), "cmds": cmds}


MAX_FAILURE_TEXT = 250  # characters of slice reasons in a fat file's ParseError


def slice_failures(reasons: list[str], limit: int = MAX_FAILURE_TEXT) -> str:
    """The reasons no slice parsed, joined by " | " while they fit in ``limit`` characters, then
    "… (+N more)" for those left out; a first reason longer than the limit is cut at a word."""
    kept: list[str] = []
    for reason in reasons:
        if len(" | ".join([*kept, reason])) > limit:
            break
        kept.append(reason)
    if reasons and not kept:
        head = reasons[0][:limit]
        kept = [(head.rsplit(" ", 1)[0] if " " in head else head) + "…"]
    left = len(reasons) - len(kept)
    text = " | ".join(kept)
    return f"{text} … (+{left} more)" if left else text


def parse_macho(data: bytes | memoryview) -> Parsed:
    """Parse a thin Mach-O, or the chosen slice of a fat one (rules in the module docstring)."""
    head = bytes(data[:8])
    if len(head) < 8:
        raise ParseError(f"file too short for Mach-O: {len(head)} bytes")
    extra: dict[str, Any] = {"fat": False, "archs": [], "nfat": 0, "chosen": -1}
    if head[:4] in (b"\xca\xfe\xba\xbe", b"\xca\xfe\xba\xbf"):
        archs = read_fat(data)
        extra.update(fat=True, archs=archs, nfat=len(archs))
        failures = []
        for i in _candidates(archs):
            a = archs[i]
            off, size = a["offset"], a["size"]
            if size <= 0 or off + size > len(data) or off < 8:
                failures.append(f"slice {i} out of bounds")
                continue
            image = memoryview(data)[off:off + size]
            try:
                info = read_commands(image)
            except ParseError as exc:
                failures.append(f"slice {i}: {exc}")
                continue
            extra.update(chosen=i, slice_offset=off, slice_size=size, image=image, **info)
            return Parsed(format="macho", data=data, size=len(data), extra=extra)
        raise ParseError("no parsable slice in fat Mach-O: " + slice_failures(failures))
    extra.update(slice_offset=0, slice_size=len(data), image=data, **read_commands(data))
    return Parsed(format="macho", data=data, size=len(data), extra=extra)


register_parser("macho", parse_macho, library="binfeat-macho")


def unpack(p: Parsed, fmt: str, off: int) -> tuple:
    """``struct.unpack_from`` in the image's byte order, at ``off`` in the (chosen) image."""
    return struct.unpack_from(p.extra["end"] + fmt, p.extra["image"], off)


def command_string(p: Parsed, off: int, size: int, rel: int, cap: int) -> str:
    """A NUL-terminated string at offset ``rel`` inside the load command at ``off`` ("" if outside)."""
    img = p.extra["image"]
    if rel < 8 or rel >= size:
        return ""
    chunk = bytes(img[off + rel:off + size])
    nul = chunk.find(b"\0")
    return clean(chunk if nul < 0 else chunk[:nul], cap)
