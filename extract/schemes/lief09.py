"""How EMBER v2's code saw a PE's header values: the spellings of LIEF 0.9's Python API.

EMBER v2 (feature version 2) was computed with LIEF 0.9.0 and writes tokens as
``str(enum_value).split('.')[-1]``. These tables are facts about that release, read from its
sources (``src/PE/EnumToString.cpp``, ``api/python/PE/pyEnums.cpp``, ``Structures.hpp.in``):

- an enum value LIEF 0.9's Python module does not register prints as ``TYPE.???``, so its token
  is ``???``: machine 0xAA64 (ARM64; in the C++ enum but neither registered nor in
  ``to_string``), 0x1D3 (LIEF 0.9 gives AM33 the value 0x13), the RISC-V values, any unknown
  subsystem;
- flag lists hold the names of the flags LIEF knows whose bits are set; an unknown bit has no
  token (binfeat's own spelling keeps it as ``0x...``); COFF 0x0100 is ``CHARA_32BIT_MACHINE``;
- a section's list tests every known value with ``(characteristics & value) != 0``, the 4-bit
  alignment field's values too, so ``ALIGN_16BYTES`` (0x500000) also yields ALIGN_1BYTES,
  ALIGN_4BYTES, ALIGN_8BYTES, ALIGN_32BYTES, ... (every value sharing a bit with 5); 0x20000 is
  spelled ``MEM_16BIT`` (MEM_PURGEABLE has the same value; LIEF 0.9 built with its default
  "frozen" maps looks the name up after a sort that puts MEM_16BIT first; a build without them
  would say MEM_PURGEABLE);
- the optional header's magic: only PE32 (0x10B) and PE32_PLUS (0x20B) parse at all.
"""

from __future__ import annotations

import functools

UNKNOWN = "???"
MACHINES = {
    0xFFFF: "INVALID", 0x0: "UNKNOWN", 0x13: "AM33", 0x8664: "AMD64", 0x1C0: "ARM", 0x1C4: "ARMNT",
    0xEBC: "EBC", 0x14C: "I386", 0x200: "IA64", 0x9041: "M32R", 0x266: "MIPS16", 0x366: "MIPSFPU",
    0x466: "MIPSFPU16", 0x1F0: "POWERPC", 0x1F1: "POWERPCFP", 0x166: "R4000", 0x1A2: "SH3",
    0x1A3: "SH3DSP", 0x1A6: "SH4", 0x1A8: "SH5", 0x1C2: "THUMB", 0x169: "WCEMIPSV2",
}
HEADER_FLAGS = {
    0x1: "RELOCS_STRIPPED", 0x2: "EXECUTABLE_IMAGE", 0x4: "LINE_NUMS_STRIPPED", 0x8: "LOCAL_SYMS_STRIPPED",
    0x10: "AGGRESSIVE_WS_TRIM", 0x20: "LARGE_ADDRESS_AWARE", 0x80: "BYTES_REVERSED_LO",
    0x100: "CHARA_32BIT_MACHINE", 0x200: "DEBUG_STRIPPED", 0x400: "REMOVABLE_RUN_FROM_SWAP",
    0x800: "NET_RUN_FROM_SWAP", 0x1000: "SYSTEM", 0x2000: "DLL", 0x4000: "UP_SYSTEM_ONLY",
    0x8000: "BYTES_REVERSED_HI",
}
DLL_FLAGS = {
    0x20: "HIGH_ENTROPY_VA", 0x40: "DYNAMIC_BASE", 0x80: "FORCE_INTEGRITY", 0x100: "NX_COMPAT",
    0x200: "NO_ISOLATION", 0x400: "NO_SEH", 0x800: "NO_BIND", 0x1000: "APPCONTAINER", 0x2000: "WDM_DRIVER",
    0x4000: "GUARD_CF", 0x8000: "TERMINAL_SERVER_AWARE",
}
SUBSYSTEMS = {
    0: "UNKNOWN", 1: "NATIVE", 2: "WINDOWS_GUI", 3: "WINDOWS_CUI", 5: "OS2_CUI", 7: "POSIX_CUI",
    8: "NATIVE_WINDOWS", 9: "WINDOWS_CE_GUI", 10: "EFI_APPLICATION", 11: "EFI_BOOT_SERVICE_DRIVER",
    12: "EFI_RUNTIME_DRIVER", 13: "EFI_ROM", 14: "XBOX", 16: "WINDOWS_BOOT_APPLICATION",
}
MAGICS = {0x10B: "PE32", 0x20B: "PE32_PLUS"}
SECTION_VALUES = {
    0x8: "TYPE_NO_PAD", 0x20: "CNT_CODE", 0x40: "CNT_INITIALIZED_DATA", 0x80: "CNT_UNINITIALIZED_DATA",
    0x100: "LNK_OTHER", 0x200: "LNK_INFO", 0x800: "LNK_REMOVE", 0x1000: "LNK_COMDAT", 0x8000: "GPREL",
    0x20000: "MEM_16BIT", 0x40000: "MEM_LOCKED", 0x80000: "MEM_PRELOAD",
    **{k << 20: f"ALIGN_{1 << (k - 1)}BYTES" for k in range(1, 15)},
    0x1000000: "LNK_NRELOC_OVFL", 0x2000000: "MEM_DISCARDABLE", 0x4000000: "MEM_NOT_CACHED",
    0x8000000: "MEM_NOT_PAGED", 0x10000000: "MEM_SHARED", 0x20000000: "MEM_EXECUTE", 0x40000000: "MEM_READ",
    0x80000000: "MEM_WRITE",
}
MEM_EXECUTE = 0x20000000


def machine(value: int) -> str:
    return MACHINES.get(value, UNKNOWN)


def subsystem(value: int) -> str:
    return SUBSYSTEMS.get(value, UNKNOWN)


def magic(value: int) -> str:
    return MAGICS.get(value, UNKNOWN)


def header_flags(bits: int) -> list[str]:
    return [name for value, name in HEADER_FLAGS.items() if bits & value]


def dll_flags(bits: int) -> list[str]:
    return [name for value, name in DLL_FLAGS.items() if bits & value]


@functools.lru_cache(maxsize=4096)
def section_props(characteristics: int) -> tuple[str, ...]:
    """The tokens of LIEF 0.9's ``Section.characteristics_lists``, in value order."""
    return tuple(name for value, name in SECTION_VALUES.items() if characteristics & value)


def parses(magic_number: int) -> bool:
    """LIEF 0.9 parses a PE only when its optional header's magic is PE32 or PE32+."""
    return magic_number in MAGICS
