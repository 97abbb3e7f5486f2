"""binfeat's spellings of PE header values: the tokens its raw values store and its vector hashes.

Names follow the PE/COFF specification in LIEF's enum spelling (what EMBER-era tools store); a value
without a name becomes ``0x...`` and an unnamed set bit its own ``0x...`` token, so nothing is lost.
The section alignment field (bits 20-23) is one token, ``ALIGN_<n>BYTES``. EMBER v2's own spellings
(LIEF 0.9's, with its quirks) are the ``ember2`` scheme's business: :mod:`extract.schemes.lief09`.
"""

from __future__ import annotations

import functools

MACHINES = {
    0x0: "UNKNOWN", 0x184: "ALPHA", 0x284: "ALPHA64", 0x1D3: "AM33", 0x8664: "AMD64", 0x1C0: "ARM",
    0xAA64: "ARM64", 0xA641: "ARM64EC", 0xA64E: "ARM64X", 0x1C4: "ARMNT", 0xEBC: "EBC", 0x14C: "I386",
    0x200: "IA64", 0x6232: "LOONGARCH32", 0x6264: "LOONGARCH64", 0x9041: "M32R", 0x266: "MIPS16",
    0x366: "MIPSFPU", 0x466: "MIPSFPU16", 0x1F0: "POWERPC", 0x1F1: "POWERPCFP", 0x166: "R4000",
    0x5032: "RISCV32", 0x5064: "RISCV64", 0x5128: "RISCV128", 0x1A2: "SH3", 0x1A3: "SH3DSP",
    0x1A6: "SH4", 0x1A8: "SH5", 0x1C2: "THUMB", 0x169: "WCEMIPSV2",
}
COFF_FLAGS = {
    0x1: "RELOCS_STRIPPED", 0x2: "EXECUTABLE_IMAGE", 0x4: "LINE_NUMS_STRIPPED",
    0x8: "LOCAL_SYMS_STRIPPED", 0x10: "AGGRESSIVE_WS_TRIM", 0x20: "LARGE_ADDRESS_AWARE",
    0x80: "BYTES_REVERSED_LO", 0x100: "CHARA_32BIT_MACHINE", 0x200: "DEBUG_STRIPPED",
    0x400: "REMOVABLE_RUN_FROM_SWAP", 0x800: "NET_RUN_FROM_SWAP", 0x1000: "SYSTEM", 0x2000: "DLL",
    0x4000: "UP_SYSTEM_ONLY", 0x8000: "BYTES_REVERSED_HI",
}
DLL_FLAGS = {
    0x20: "HIGH_ENTROPY_VA", 0x40: "DYNAMIC_BASE", 0x80: "FORCE_INTEGRITY", 0x100: "NX_COMPAT",
    0x200: "NO_ISOLATION", 0x400: "NO_SEH", 0x800: "NO_BIND", 0x1000: "APPCONTAINER",
    0x2000: "WDM_DRIVER", 0x4000: "GUARD_CF", 0x8000: "TERMINAL_SERVER_AWARE",
}
SUBSYSTEMS = {
    0: "UNKNOWN", 1: "NATIVE", 2: "WINDOWS_GUI", 3: "WINDOWS_CUI", 5: "OS2_CUI", 7: "POSIX_CUI",
    8: "NATIVE_WINDOWS", 9: "WINDOWS_CE_GUI", 10: "EFI_APPLICATION", 11: "EFI_BOOT_SERVICE_DRIVER",
    12: "EFI_RUNTIME_DRIVER", 13: "EFI_ROM", 14: "XBOX", 16: "WINDOWS_BOOT_APPLICATION",
}
MAGICS = {0x10B: "PE32", 0x20B: "PE32_PLUS", 0x107: "ROM"}
SECTION_FLAGS = {
    0x8: "TYPE_NO_PAD", 0x20: "CNT_CODE", 0x40: "CNT_INITIALIZED_DATA",
    0x80: "CNT_UNINITIALIZED_DATA", 0x100: "LNK_OTHER", 0x200: "LNK_INFO", 0x800: "LNK_REMOVE",
    0x1000: "LNK_COMDAT", 0x8000: "GPREL", 0x20000: "MEM_PURGEABLE", 0x40000: "MEM_LOCKED",
    0x80000: "MEM_PRELOAD", 0x1000000: "LNK_NRELOC_OVFL", 0x2000000: "MEM_DISCARDABLE",
    0x4000000: "MEM_NOT_CACHED", 0x8000000: "MEM_NOT_PAGED", 0x10000000: "MEM_SHARED",
    0x20000000: "MEM_EXECUTE", 0x40000000: "MEM_READ", 0x80000000: "MEM_WRITE",
}
SECTION_ALIGN_MASK = 0x00F00000
# The optional header's data directories in table order, as the PE/COFF specification names them
# ("Optional Header Data Directories"): 8 bytes each (RVA, size), the table at offset 96 (PE32) or
# 112 (PE32+) of the optional header; entry 4 holds a file offset, not an RVA; the 16th is reserved.
SPEC_DIRECTORIES = (
    "Export Table", "Import Table", "Resource Table", "Exception Table", "Certificate Table",
    "Base Relocation Table", "Debug", "Architecture", "Global Ptr", "TLS Table", "Load Config Table",
    "Bound Import", "IAT", "Delay Import Descriptor", "CLR Runtime Header", "Reserved",
)
# A directory's token is its specification name in upper snake case (LIEF's enum spelling, so the
# names EMBER stores): "Load Config Table" -> LOAD_CONFIG_TABLE.
DIR_NAMES = tuple(name.upper().replace(" ", "_") for name in SPEC_DIRECTORIES)


def name_of(table: dict[int, str], value: int) -> str:
    return table.get(value, f"0x{value:x}")


def flag_names(table: dict[int, str], value: int) -> list[str]:
    """Names of the set bits, in bit order; unnamed set bits as ``0x...``."""
    out = []
    bit = 1
    while bit <= value:
        if value & bit:
            out.append(table.get(bit, f"0x{bit:x}"))
        bit <<= 1
    return out


def section_props(chars: int) -> list[str]:
    """Section characteristics as EMBER-era tokens; the 4-bit alignment field as ALIGN_<n>BYTES."""
    return list(_section_props(chars))


@functools.lru_cache(maxsize=4096)
def _section_props(chars: int) -> tuple[str, ...]:
    # a corpus has a few dozen distinct characteristics values across millions of sections
    props = flag_names(SECTION_FLAGS, chars & ~SECTION_ALIGN_MASK)
    align = (chars & SECTION_ALIGN_MASK) >> 20
    if align:
        props.append(f"ALIGN_{1 << (align - 1)}BYTES" if align <= 14 else f"ALIGN_0x{align:x}")
    return tuple(props)
