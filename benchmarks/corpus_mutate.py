"""Seeded damage to real executables: the malformed part of the sample corpus.

Every mutation is a pure function of (bytes, parameters), and its description string (the
manifest's `mutation` field) carries those parameters, so the file can be re-derived from its
parent and a test can check the damage is exactly what the description says.
"""

from __future__ import annotations

import random
import struct
from collections.abc import Callable

from benchmarks.corpus_sniff import FAT_MAGICS, MACHO_THIN_MAGICS, detect_format

MAGIC_ONLY = {
    "MZ": b"MZ",
    "ELF": b"\x7fELF",
    "MH_MAGIC_64": b"\xcf\xfa\xed\xfe",
    "MH_MAGIC": b"\xce\xfa\xed\xfe",
    "FAT_MAGIC": b"\xca\xfe\xba\xbe",
}
# How far past the end of the file the damaged offsets point.
PAST_END = 0x1000


class MutationError(ValueError):
    """The parent file does not have the structure this mutation damages."""


def truncate(data: bytes, fraction: float) -> tuple[bytes, str]:
    n = int(len(data) * fraction)
    return data[:n], f"truncate@{fraction:g}"


def bitflip(data: bytes, seed: int, n: int) -> tuple[bytes, str]:
    """Flip n distinct bits chosen by a seeded RNG (never bits of the first 4 bytes, so the magic,
    and with it the ground-truth format, survives)."""
    if len(data) <= 4:
        raise MutationError("too short to flip bits past the magic")
    rng = random.Random(seed)
    buf = bytearray(data)
    for bit in rng.sample(range(32, len(data) * 8), min(n, len(data) * 8 - 32)):
        buf[bit // 8] ^= 1 << (bit % 8)
    return bytes(buf), f"bitflip:seed={seed},n={n}"


def _put(data: bytes, off: int, fmt: str, value: int) -> bytes:
    if off < 0 or off + struct.calcsize(fmt) > len(data):
        raise MutationError(f"field at {off} lies outside the file")
    buf = bytearray(data)
    struct.pack_into(fmt, buf, off, value)
    return bytes(buf)


def _pe_header(data: bytes) -> int:
    if detect_format(data) != "pe" or len(data) < 0x40:
        raise MutationError("not a PE file")
    (e_lfanew,) = struct.unpack_from("<I", data, 0x3C)
    if data[e_lfanew : e_lfanew + 4] != b"PE\0\0":
        raise MutationError("no PE signature")
    return e_lfanew


def pe_lfanew_past_end(data: bytes) -> tuple[bytes, str]:
    _pe_header(data)
    return _put(data, 0x3C, "<I", len(data) + PAST_END), "e_lfanew_past_end"


def pe_nsections_absurd(data: bytes) -> tuple[bytes, str]:
    e_lfanew = _pe_header(data)
    return _put(data, e_lfanew + 6, "<H", 0xFFFF), "pe_nsections=65535"


def pe_section_raw_past_end(data: bytes) -> tuple[bytes, str]:
    """First section's PointerToRawData beyond EOF."""
    e_lfanew = _pe_header(data)
    (nsect,) = struct.unpack_from("<H", data, e_lfanew + 6)
    (opt_size,) = struct.unpack_from("<H", data, e_lfanew + 20)
    if nsect == 0:
        raise MutationError("no sections")
    first = e_lfanew + 24 + opt_size
    return _put(data, first + 20, "<I", len(data) + PAST_END), "pe_section_raw_past_end"


def _elf(data: bytes) -> tuple[str, bool]:
    if detect_format(data) != "elf" or len(data) < 52 or data[4] not in (1, 2) or data[5] not in (1, 2):
        raise MutationError("not an ELF file")
    return ("<" if data[5] == 1 else ">"), data[4] == 2


def elf_shoff_past_end(data: bytes) -> tuple[bytes, str]:
    e, wide = _elf(data)
    off = 40 if wide else 32
    return _put(data, off, e + ("Q" if wide else "I"), len(data) + PAST_END), "e_shoff_past_end"


def elf_phoff_past_end(data: bytes) -> tuple[bytes, str]:
    e, wide = _elf(data)
    off = 32 if wide else 28
    return _put(data, off, e + ("Q" if wide else "I"), len(data) + PAST_END), "e_phoff_past_end"


def elf_shnum_absurd(data: bytes) -> tuple[bytes, str]:
    e, wide = _elf(data)
    return _put(data, 60 if wide else 48, e + "H", 0xFFFF), "e_shnum=65535"


def elf_phnum_absurd(data: bytes) -> tuple[bytes, str]:
    e, wide = _elf(data)
    return _put(data, 56 if wide else 44, e + "H", 0xFFFF), "e_phnum=65535"


def _macho_thin(data: bytes) -> tuple[str, int]:
    if data[:4] not in MACHO_THIN_MAGICS:
        raise MutationError("not a thin Mach-O file")
    bits, endian = MACHO_THIN_MAGICS[data[:4]]
    return ("<" if endian == "little" else ">"), (32 if bits == 64 else 28)


def macho_cmdsize_past_end(data: bytes) -> tuple[bytes, str]:
    """First load command's cmdsize reaches beyond EOF."""
    e, header = _macho_thin(data)
    return _put(data, header + 4, e + "I", len(data) + PAST_END), "macho_cmdsize_past_end"


def macho_sizeofcmds_past_end(data: bytes) -> tuple[bytes, str]:
    e, _ = _macho_thin(data)
    return _put(data, 20, e + "I", len(data) + PAST_END), "macho_sizeofcmds_past_end"


def macho_ncmds_absurd(data: bytes) -> tuple[bytes, str]:
    e, _ = _macho_thin(data)
    return _put(data, 16, e + "I", 0xFFFFFFFF), "macho_ncmds=4294967295"


def fat_offset_past_end(data: bytes) -> tuple[bytes, str]:
    """First slice's offset beyond EOF (the slice count stays, so the format stays macho)."""
    if data[:4] not in FAT_MAGICS or detect_format(data) != "macho":
        raise MutationError("not a fat Mach-O file")
    if FAT_MAGICS[data[:4]] == 64:
        return _put(data, 16, ">Q", len(data) + PAST_END), "fat_offset_past_end"
    return _put(data, 16, ">I", len(data) + PAST_END), "fat_offset_past_end"


def magic_only(name: str) -> tuple[bytes, str]:
    return MAGIC_ONLY[name], f"magic_only:{name}"


def empty() -> tuple[bytes, str]:
    return b"", "empty"


# Structural mutations by the parent format they apply to ("macho" = thin, "macho-fat" = fat).
STRUCTURAL: dict[str, list[Callable[[bytes], tuple[bytes, str]]]] = {
    "pe": [pe_lfanew_past_end, pe_nsections_absurd, pe_section_raw_past_end],
    "elf": [elf_shoff_past_end, elf_phoff_past_end, elf_shnum_absurd, elf_phnum_absurd],
    "macho": [macho_cmdsize_past_end, macho_sizeofcmds_past_end, macho_ncmds_absurd],
    "macho-fat": [fat_offset_past_end],
}
TRUNCATE_FRACTIONS = (0.01, 0.1, 0.25, 0.5, 0.75, 0.99)


def family(mutation: str) -> str:
    """The mutation's family, e.g. truncate@0.5 -> truncate, magic_only:MZ -> magic_only."""
    for sep in ("@", ":", "="):
        mutation = mutation.split(sep, 1)[0]
    return mutation
