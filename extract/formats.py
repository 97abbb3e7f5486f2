"""Format detection from magic bytes: pe (.NET included), elf, macho (thin and fat), unknown."""

from __future__ import annotations

import struct

HEAD_BYTES = 64  # enough for every rule below

_MACHO_THIN = {
    b"\xfe\xed\xfa\xce",  # MH_MAGIC, 32-bit big-endian
    b"\xce\xfa\xed\xfe",  # MH_CIGAM, 32-bit little-endian
    b"\xfe\xed\xfa\xcf",  # MH_MAGIC_64, big-endian
    b"\xcf\xfa\xed\xfe",  # MH_CIGAM_64, little-endian
}
_FAT = {b"\xca\xfe\xba\xbe", b"\xca\xfe\xba\xbf"}  # FAT_MAGIC, FAT_MAGIC_64 (always big-endian)
# A Java class file starts with CAFEBABE too, followed by minor/major version (major >= 45), which
# read as a fat header's architecture count is >= 45. Real fat files hold a handful of slices;
# file(1) uses the same cut-off.
MAX_FAT_ARCHS = 20


def detect_format(head: bytes | memoryview) -> str:
    """Return "pe", "elf", "macho" or "unknown" from the first bytes of a file."""
    head = bytes(head[:HEAD_BYTES])
    if head[:2] == b"MZ":
        return "pe"
    if head[:4] == b"\x7fELF":
        return "elf"
    magic = head[:4]
    if magic in _MACHO_THIN:
        return "macho"
    if magic in _FAT and len(head) >= 8:
        (nfat,) = struct.unpack(">I", head[4:8])
        if 0 < nfat < MAX_FAT_ARCHS:
            return "macho"
    return "unknown"


def is_fat_macho(head: bytes | memoryview) -> bool:
    return detect_format(head) == "macho" and bytes(head[:4]) in _FAT
