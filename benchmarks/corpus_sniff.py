"""Independent magic-byte sniffing for the sample corpus.

This is the ground truth the extractor's detector is tested against, so it deliberately does not
import `extract`: a bug shared by both would go unnoticed.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

# A fat Mach-O header and a Java class file both start with CAFEBABE; the next u32 is the slice
# count (a handful) for Mach-O and minor<<16|major (major >= 45) for Java. Same cut-off as file(1).
MAX_FAT_ARCHS = 20

MACHO_THIN_MAGICS = {
    b"\xfe\xed\xfa\xce": (32, "big"),
    b"\xce\xfa\xed\xfe": (32, "little"),
    b"\xfe\xed\xfa\xcf": (64, "big"),
    b"\xcf\xfa\xed\xfe": (64, "little"),
}
FAT_MAGICS = {b"\xca\xfe\xba\xbe": 32, b"\xca\xfe\xba\xbf": 64}
# the kinds :func:`sniff` gives executables (the rest are data, or damage the corpus builder names)
EXECUTABLE_KINDS = frozenset({"pe32", "pe32+", "dotnet", "elf32", "elf64", "macho32", "macho64", "macho-fat"})

PE_MACHINES = {
    0x014C: "x86",
    0x8664: "x86_64",
    0xAA64: "arm64",
    0x01C0: "arm",
    0x01C2: "arm",
    0x01C4: "arm",
    0xA641: "arm64ec",
    0x0200: "ia64",
    0x5064: "riscv64",
    0x0EBC: "ebc",
    0xFD1D: "x86_64",  # .NET ReadyToRun images for Linux x64 (machine XOR'd with an OS constant)
}
ELF_MACHINES = {
    2: "sparc",
    3: "x86",
    8: "mips",
    18: "sparc",
    20: "ppc",
    21: "ppc64",
    22: "s390x",
    40: "arm",
    43: "sparc64",
    50: "ia64",
    62: "x86_64",
    183: "arm64",
    243: "riscv",
    258: "loongarch",
}
MACHO_CPUS = {
    7: "x86",
    0x01000007: "x86_64",
    12: "arm",
    0x0100000C: "arm64",
    0x0200000C: "arm64_32",
    18: "ppc",
    0x01000012: "ppc64",
}


@dataclass(frozen=True)
class Sniff:
    """What the first bytes of a file say; `kind` is None when nothing specific was recognised."""

    format: str  # pe, elf, macho, unknown
    kind: str | None
    arch: str | None = None
    endian: str | None = None


def _u16(data: bytes, off: int, endian: str = "<") -> int | None:
    return struct.unpack_from(endian + "H", data, off)[0] if off >= 0 and off + 2 <= len(data) else None


def _u32(data: bytes, off: int, endian: str = "<") -> int | None:
    return struct.unpack_from(endian + "I", data, off)[0] if off >= 0 and off + 4 <= len(data) else None


def detect_format(data: bytes) -> str:
    """pe / elf / macho / unknown from the magic alone (fat Mach-O told from Java by the count)."""
    if data[:2] == b"MZ":
        return "pe"
    if data[:4] == b"\x7fELF":
        return "elf"
    if data[:4] in MACHO_THIN_MAGICS:
        return "macho"
    if data[:4] in FAT_MAGICS:
        n = _u32(data, 4, ">")
        if n is not None and 0 < n < MAX_FAT_ARCHS:
            return "macho"
    return "unknown"


def sniff_pe(data: bytes) -> Sniff:
    e_lfanew = _u32(data, 0x3C)
    if e_lfanew is None or data[e_lfanew : e_lfanew + 4] != b"PE\0\0":
        return Sniff("pe", "pe-dos")
    machine = _u16(data, e_lfanew + 4)
    opt = e_lfanew + 24
    magic = _u16(data, opt)
    arch = PE_MACHINES.get(machine or -1, f"pe-machine-0x{machine or 0:04x}")
    if magic not in (0x10B, 0x20B):
        return Sniff("pe", "pe-noopt", arch, "little")
    kind = "pe32" if magic == 0x10B else "pe32+"
    n_dirs_off, dirs_off = (opt + 92, opt + 96) if magic == 0x10B else (opt + 108, opt + 112)
    n_dirs = _u32(data, n_dirs_off) or 0
    if n_dirs > 14:
        clr_rva = _u32(data, dirs_off + 14 * 8)
        clr_size = _u32(data, dirs_off + 14 * 8 + 4)
        if clr_rva and clr_size:
            kind = "dotnet"
    return Sniff("pe", kind, arch, "little")


def sniff_elf(data: bytes) -> Sniff:
    ei_class, ei_data = (data[4], data[5]) if len(data) >= 6 else (0, 0)
    endian = {1: "little", 2: "big"}.get(ei_data)
    kind = {1: "elf32", 2: "elf64"}.get(ei_class, "elf-badclass")
    machine = _u16(data, 18, ">" if endian == "big" else "<") if endian else None
    arch = ELF_MACHINES.get(machine) if machine is not None else None
    if arch is None and machine is not None:
        arch = f"elf-machine-{machine}"
    if arch == "ppc64" and endian == "little":
        arch = "ppc64le"
    elif arch == "mips":
        arch = ("mips64" if ei_class == 2 else "mips") + ("el" if endian == "little" else "")
    elif arch == "riscv":
        arch = "riscv64" if ei_class == 2 else "riscv32"
    return Sniff("elf", kind, arch, endian)


def _macho_cpu(cputype: int | None) -> str | None:
    if cputype is None:
        return None
    return MACHO_CPUS.get(cputype, f"macho-cpu-0x{cputype:x}")


def sniff_macho_thin(data: bytes) -> Sniff:
    bits, endian = MACHO_THIN_MAGICS[data[:4]]
    cpu = _u32(data, 4, "<" if endian == "little" else ">")
    return Sniff("macho", f"macho{bits}", _macho_cpu(cpu), endian)


def fat_slices(data: bytes) -> list[tuple[str | None, int, int]]:
    """(arch, offset, size) of each slice listed in a fat header (no bounds checks on the slices)."""
    wide = FAT_MAGICS[data[:4]] == 64
    n = _u32(data, 4, ">") or 0
    out = []
    entry = 32 if wide else 20
    for i in range(min(n, MAX_FAT_ARCHS)):
        off = 8 + i * entry
        cpu = _u32(data, off, ">")
        if wide:
            if off + 24 > len(data):
                break
            offset, size = struct.unpack_from(">QQ", data, off + 8)
        else:
            offset, size = _u32(data, off + 8, ">"), _u32(data, off + 12, ">")
            if offset is None or size is None:
                break
        out.append((_macho_cpu(cpu), offset, size))
    return out


def sniff(data: bytes) -> Sniff:
    """Format, kind, architecture and endianness of a file from its bytes."""
    fmt = detect_format(data)
    if fmt == "pe":
        return sniff_pe(data)
    if fmt == "elf":
        return sniff_elf(data)
    if fmt == "macho":
        if data[:4] in MACHO_THIN_MAGICS:
            return sniff_macho_thin(data)
        slices = fat_slices(data)
        arch = "+".join(a or "?" for a, _, _ in slices) or None
        magics = [data[o : o + 4] for _, o, _ in slices]
        endians = {MACHO_THIN_MAGICS[m][1] for m in magics if m in MACHO_THIN_MAGICS}
        endian = endians.pop() if len(endians) == 1 else ("mixed" if endians else None)
        return Sniff("macho", "macho-fat", arch, endian)
    return Sniff("unknown", sniff_nonexec(data))


def sniff_nonexec(data: bytes) -> str | None:
    """Kind of a non-executable file from its magic, or None (generated kinds are assigned by the builder)."""
    if data[:4] in FAT_MAGICS and len(data) >= 8:
        return "java-class"
    if data[:5] == b"%PDF-":
        return "pdf"
    if data[:4] in (b"PK\x03\x04", b"PK\x05\x06"):
        return "zip"
    if data[:2] == b"\x1f\x8b":
        return "gzip"
    if data[257:262] == b"ustar":
        return "tar"
    if data[:8] == b"!<arch>\n":
        return "ar"
    if data and is_text(data):
        return "text"
    return None


def is_text(data: bytes) -> bool:
    """UTF-8 without NULs or other control bytes besides whitespace."""
    if b"\0" in data:
        return False
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return all(c.isprintable() or c in "\n\r\t\f" for c in text)
