"""Segments and sections of the (chosen) Mach-O image, from binfeat's load-command walk.

Segments: the LC_SEGMENT_64 (64-bit image) or LC_SEGMENT (32-bit) commands of the walk whose
cmdsize holds the segment header, at most 256; their sections as far as nsects and cmdsize allow,
at most 4,096 in all, each with the entropy of its file bytes (zero-fill sections, sections without
a file offset or starting past the slice: 0; a section running past the slice: the part inside).
"""

from __future__ import annotations

import struct

from extract.entropy import range_entropies
from extract.groups.macho.parse import unpack
from extract.groups.macho.spec import LC_SEGMENT, LC_SEGMENT_64, ZEROFILL_TYPES
from extract.groups.shared import NAME_CAP, cached
from extract.parsed import Parsed
from extract.text import clean

MAX_SEGMENTS = 256
MAX_SECTIONS = 4096


def name16(raw: bytes) -> str:
    """A 16-byte segment or section name field: up to its first NUL, cleaned."""
    return clean(raw.split(b"\0", 1)[0], NAME_CAP)


def _read(p: Parsed) -> tuple[list[dict], list[dict]]:
    segs: list[dict] = []
    secs: list[dict] = []
    is64 = p.extra["is64"]
    img = p.extra["image"]
    seg_fmt, seg_len = ("16sQQQQiiII", 72) if is64 else ("16sIIIIiiII", 56)
    sec_fmt, sec_len = ("16s16sQQIIIIIIII", 80) if is64 else ("16s16sIIIIIIIII", 68)
    want = LC_SEGMENT_64 if is64 else LC_SEGMENT
    for cmd, off, size in p.extra["cmds"]:
        if cmd != want or size < seg_len or len(segs) >= MAX_SEGMENTS:
            continue
        name, vmaddr, vmsize, fileoff, filesize, maxprot, initprot, nsects, flags = unpack(
            p, seg_fmt, off + 8)
        segs.append({"name": name16(name), "vmaddr": vmaddr, "vmsize": vmsize, "fileoff": fileoff,
                     "filesize": filesize, "maxprot": maxprot & 0xFFFFFFFF,
                     "initprot": initprot & 0xFFFFFFFF, "nsects": nsects, "flags": flags})
        room = (size - seg_len) // sec_len
        for k in range(min(nsects, room, MAX_SECTIONS - len(secs))):
            so = off + seg_len + k * sec_len
            sname, segname, addr, ssize, soff, _align, _reloff, _nreloc, sflags = struct.unpack_from(
                p.extra["end"] + sec_fmt, img, so)[:9]
            secs.append({"segment": name16(segname), "name": name16(sname), "addr": addr,
                         "size": ssize, "offset": soff, "flags": sflags, "entropy": 0.0})
    base, limit = p.extra["slice_offset"], p.extra["slice_size"]
    ranges = []
    for s in secs:
        zero = s["flags"] & 0xFF in ZEROFILL_TYPES or s["offset"] == 0 or s["offset"] >= limit
        ranges.append((base + s["offset"], 0 if zero else min(s["size"], limit - s["offset"])))
    for s, e in zip(secs, range_entropies(p.data, ranges), strict=True):
        s["entropy"] = e
    return segs, secs


def segments_sections(p: Parsed) -> tuple[list[dict], list[dict]]:
    """(segments, sections) as the macho_sections group reports them, read once per parse."""
    return cached(p, "segsecs", _read)
