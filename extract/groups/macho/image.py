"""The (chosen) Mach-O image as the loader maps it: segments, sections and the entry point."""

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


def _name16(raw: bytes) -> str:
    return clean(raw.split(b"\0", 1)[0], NAME_CAP)


def segments_sections(p: Parsed) -> tuple[list[dict], list[dict]]:
    """Segments (LC_SEGMENT / LC_SEGMENT_64, as the image's class says, at most 256) and their
    sections (at most 4,096, with the entropy of their file bytes), read from the load commands."""

    def build(p: Parsed) -> tuple[list[dict], list[dict]]:
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
            segs.append({"name": _name16(name), "vmaddr": vmaddr, "vmsize": vmsize, "fileoff": fileoff,
                         "filesize": filesize, "maxprot": maxprot & 0xFFFFFFFF,
                         "initprot": initprot & 0xFFFFFFFF, "nsects": nsects, "flags": flags})
            room = (size - seg_len) // sec_len
            for k in range(min(nsects, room, MAX_SECTIONS - len(secs))):
                so = off + seg_len + k * sec_len
                sname, segname, addr, ssize, soff, _al, _ro, _nr, sflags = struct.unpack_from(
                    p.extra["end"] + sec_fmt, img, so)[:9]
                secs.append({"segment": _name16(segname), "name": _name16(sname), "addr": addr,
                             "size": ssize, "offset": soff, "flags": sflags, "entropy": 0.0})
        base, limit = p.extra["slice_offset"], p.extra["slice_size"]
        ranges = []
        for s in secs:
            zero = s["flags"] & 0xFF in ZEROFILL_TYPES or s["offset"] == 0 or s["offset"] >= limit
            n = 0 if zero else min(s["size"], limit - s["offset"])
            ranges.append((base + s["offset"], n))
        for s, e in zip(secs, range_entropies(p.data, ranges), strict=True):
            s["entropy"] = e
        return segs, secs

    return cached(p, "segsecs", build)


def entry_va(p: Parsed) -> int | None:
    """The entry point's virtual address (LC_MAIN or thread state), None when there is none."""
    b = p.binary
    try:
        if b.has_entrypoint:
            return int(b.entrypoint)
    except Exception:
        return None
    return None
