"""LIEF 0.9's Python API, as EMBER v2's code calls it, over the LIEF 1.0 installed here.

binfeat's own compatibility shim (not LIEF's code, nor EMBER's): it lets EMBER's whole
``PEFeatureExtractor(feature_version=2)`` run from a checkout (:mod:`benchmarks.ember_checkout`), to
compare ``ember2`` with EMBER's own vectors and to time EMBER's whole extractor. The parse is LIEF
1.0's; what the shim adapts, and how:

- ``lief.__version__`` is "0.9.0" (EMBER takes its LIEF 0.9 code paths: exports as strings,
  ``has_signature``, the entry section by ``section_from_offset(entrypoint)``);
- ``lief.PE.parse(list_of_ints)``: LIEF 1.0 parses the bytes; where it returns None, ``bad_format``
  is raised, one of the exception types EMBER catches (the file then has EMBER's "no binary" values);
- enum values print as LIEF 0.9 printed them (``TYPE.NAME``, ``TYPE.???`` for a value LIEF 0.9's
  Python module did not register), from the 0.9 tables written below; flag lists hold the known
  flags whose bits are set (for sections: every known value v with ``characteristics & v``);
- ``section_from_offset(o)``: the first section with PointerToRawData <= o < PointerToRawData +
  SizeOfRawData (32-bit sum), else ``lief.not_found`` (0.9 raised; 1.0 returns None);
- ``entrypoint``: ImageBase + AddressOfEntryPoint (a virtual address, as in both releases);
- ``exported_functions``: the names of named exports only (0.9 skipped unnamed ones);
- ``data_directories``: 15 entries read from the bytes right after the fixed optional header,
  whatever NumberOfRvaAndSizes says (none when they do not fit in the file), as 0.9 did;
- a section name that is not UTF-8 raises UnicodeDecodeError, as 0.9's binding did;
- everything else (sections' sizes and entropy, imports, counts, flags) is LIEF 1.0's value.
"""

from __future__ import annotations

import struct
import types
from typing import Any

__version__ = "0.9.0"


class not_found(Exception):  # LIEF 0.9's exception names
    pass


class bad_format(Exception):
    pass


class bad_file(Exception):
    pass


class pe_error(Exception):
    pass


class parser_error(Exception):
    pass


class read_out_of_bound(Exception):
    pass


class Enum:
    """An enum value that prints as LIEF 0.9's did and compares by value."""

    def __init__(self, kind: str, value: int, names: dict[int, str]) -> None:
        self.kind, self.value, self.name = kind, value, names.get(value, "???")

    def __repr__(self) -> str:
        return f"{self.kind}.{self.name}"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Enum) and (other.kind, other.value) == (self.kind, self.value)

    def __hash__(self) -> int:
        return hash((self.kind, self.value))


MACHINE = {0xFFFF: "INVALID", 0: "UNKNOWN", 0x13: "AM33", 0x8664: "AMD64", 0x1C0: "ARM", 0x1C4: "ARMNT",
           0xEBC: "EBC", 0x14C: "I386", 0x200: "IA64", 0x9041: "M32R", 0x266: "MIPS16", 0x366: "MIPSFPU",
           0x466: "MIPSFPU16", 0x1F0: "POWERPC", 0x1F1: "POWERPCFP", 0x166: "R4000", 0x1A2: "SH3", 0x1A3: "SH3DSP",
           0x1A6: "SH4", 0x1A8: "SH5", 0x1C2: "THUMB", 0x169: "WCEMIPSV2"}
HEADER_FLAGS = dict(zip([1 << b for b in (0, 1, 2, 3, 4, 5, 7, 8, 9, 10, 11, 12, 13, 14, 15)], [
    "RELOCS_STRIPPED", "EXECUTABLE_IMAGE", "LINE_NUMS_STRIPPED", "LOCAL_SYMS_STRIPPED", "AGGRESSIVE_WS_TRIM",
    "LARGE_ADDRESS_AWARE", "BYTES_REVERSED_LO", "CHARA_32BIT_MACHINE", "DEBUG_STRIPPED", "REMOVABLE_RUN_FROM_SWAP",
    "NET_RUN_FROM_SWAP", "SYSTEM", "DLL", "UP_SYSTEM_ONLY", "BYTES_REVERSED_HI"], strict=True))
DLL_FLAGS = dict(zip([1 << b for b in range(5, 16)], [
    "HIGH_ENTROPY_VA", "DYNAMIC_BASE", "FORCE_INTEGRITY", "NX_COMPAT", "NO_ISOLATION", "NO_SEH", "NO_BIND",
    "APPCONTAINER", "WDM_DRIVER", "GUARD_CF", "TERMINAL_SERVER_AWARE"], strict=True))
SUBSYSTEM = {0: "UNKNOWN", 1: "NATIVE", 2: "WINDOWS_GUI", 3: "WINDOWS_CUI", 5: "OS2_CUI", 7: "POSIX_CUI",
             8: "NATIVE_WINDOWS", 9: "WINDOWS_CE_GUI", 10: "EFI_APPLICATION", 11: "EFI_BOOT_SERVICE_DRIVER",
             12: "EFI_RUNTIME_DRIVER", 13: "EFI_ROM", 14: "XBOX", 16: "WINDOWS_BOOT_APPLICATION"}
PE_TYPE = {0x10B: "PE32", 0x20B: "PE32_PLUS"}
SECTION_FLAGS = {0x8: "TYPE_NO_PAD", 0x20: "CNT_CODE", 0x40: "CNT_INITIALIZED_DATA", 0x80: "CNT_UNINITIALIZED_DATA",
                 0x100: "LNK_OTHER", 0x200: "LNK_INFO", 0x800: "LNK_REMOVE", 0x1000: "LNK_COMDAT", 0x8000: "GPREL",
                 0x20000: "MEM_16BIT", 0x40000: "MEM_LOCKED", 0x80000: "MEM_PRELOAD"}
SECTION_FLAGS.update({a << 20: f"ALIGN_{2 ** (a - 1)}BYTES" for a in range(1, 15)})
SECTION_FLAGS.update({0x1000000: "LNK_NRELOC_OVFL", 0x2000000: "MEM_DISCARDABLE", 0x4000000: "MEM_NOT_CACHED",
                      0x8000000: "MEM_NOT_PAGED", 0x10000000: "MEM_SHARED", 0x20000000: "MEM_EXECUTE",
                      0x40000000: "MEM_READ", 0x80000000: "MEM_WRITE"})
DIRECTORIES = ["EXPORT_TABLE", "IMPORT_TABLE", "RESOURCE_TABLE", "EXCEPTION_TABLE", "CERTIFICATE_TABLE",
               "BASE_RELOCATION_TABLE", "DEBUG", "ARCHITECTURE", "GLOBAL_PTR", "TLS_TABLE", "LOAD_CONFIG_TABLE",
               "BOUND_IMPORT", "IAT", "DELAY_IMPORT_DESCRIPTOR", "CLR_RUNTIME_HEADER"]


def _flag_list(kind: str, table: dict[int, str], bits: int) -> set[Enum]:
    return {Enum(kind, v, table) for v in table if bits & v}


class _Section:
    def __init__(self, s: Any) -> None:
        name = s.name
        self.name = name.decode("utf-8") if isinstance(name, bytes) else name  # 0.9 raised on bad UTF-8
        self.size, self.entropy, self.virtual_size = s.size, s.entropy, s.virtual_size
        self.offset = s.pointerto_raw_data
        self.characteristics_lists = _flag_list("SECTION_CHARACTERISTICS", SECTION_FLAGS, s.characteristics)


class _Header:
    def __init__(self, h: Any) -> None:
        self.time_date_stamps = h.time_date_stamps
        self.machine = Enum("MACHINE_TYPES", int(h.machine), MACHINE)
        self.characteristics_list = _flag_list("HEADER_CHARACTERISTICS", HEADER_FLAGS, int(h.characteristics))


class _OptionalHeader:
    INTS = ("major_image_version", "minor_image_version", "major_linker_version", "minor_linker_version",
            "major_operating_system_version", "minor_operating_system_version", "major_subsystem_version",
            "minor_subsystem_version", "sizeof_code", "sizeof_headers", "sizeof_heap_commit")

    def __init__(self, o: Any, data: bytes) -> None:
        for k in self.INTS:
            setattr(self, k, getattr(o, k))
        lfanew = struct.unpack_from("<I", data, 0x3C)[0]
        subsystem, dll = struct.unpack_from("<HH", data, lfanew + 24 + 68)
        self.magic = Enum("PE_TYPE", struct.unpack_from("<H", data, lfanew + 24)[0], PE_TYPE)
        self.subsystem = Enum("SUBSYSTEM", subsystem, SUBSYSTEM)
        self.dll_characteristics_lists = _flag_list("DLL_CHARACTERISTICS", DLL_FLAGS, dll)


class _Directory:
    def __init__(self, index: int, rva: int, size: int) -> None:
        self.type = Enum("DATA_DIRECTORY", index, dict(enumerate(DIRECTORIES)))
        self.rva, self.size = rva, size


class Binary:
    """The 0.9 attributes EMBER reads, from a LIEF 1.0 binary and the file's bytes."""

    def __init__(self, b: Any, data: bytes) -> None:
        self._b = b
        self.sections = [_Section(s) for s in b.sections]
        self.header = _Header(b.header)
        self.optional_header = _OptionalHeader(b.optional_header, data)
        self.entrypoint = b.optional_header.imagebase + b.optional_header.addressof_entrypoint
        self.imports = b.imports
        exp = b.get_export()
        self.exported_functions = [e.name for e in exp.entries if e.name] if exp is not None else []
        self.imported_functions = b.imported_functions
        self.virtual_size, self.has_debug, self.has_tls = b.virtual_size, b.has_debug, b.has_tls
        self.has_relocations, self.has_resources = b.has_relocations, b.has_resources
        self.has_signature = b.has_signatures
        self.symbols = b.symbols
        lfanew = struct.unpack_from("<I", data, 0x3C)[0]
        at = lfanew + 24 + (112 if self.optional_header.magic.value == 0x20B else 96)
        fits = at + 8 * len(DIRECTORIES) <= len(data)
        self.data_directories = [_Directory(i, *struct.unpack_from("<II", data, at + 8 * i))
                                 for i in range(len(DIRECTORIES))] if fits else []

    def section_from_offset(self, offset: int) -> _Section:
        for s in self.sections:
            if s.offset <= offset < (s.offset + s.size) & 0xFFFFFFFF:
                return s
        raise not_found("Section not found")


def module() -> types.ModuleType:
    """A fresh ``lief`` module with the 0.9 API above (handed to EMBER's code only)."""
    import lief as lief10

    lief10.logging.disable()
    m = types.ModuleType("lief", "binfeat's LIEF 0.9 API over LIEF 1.0 (benchmarks/lief09_shim.py)")
    for name in ("not_found", "bad_format", "bad_file", "pe_error", "parser_error", "read_out_of_bound"):
        setattr(m, name, globals()[name])
    m.__version__ = __version__  # type: ignore[attr-defined]

    def parse(raw: Any) -> Binary:
        data = bytes(raw)
        b = lief10.PE.parse(data)
        if b is None:
            raise bad_format("LIEF 1.0 could not parse the file")
        return Binary(b, data)

    pe = types.ModuleType("lief.PE")
    pe.parse = parse  # type: ignore[attr-defined]
    pe.SECTION_CHARACTERISTICS = types.SimpleNamespace(  # type: ignore[attr-defined]
        MEM_EXECUTE=Enum("SECTION_CHARACTERISTICS", 0x20000000, SECTION_FLAGS))
    m.PE = pe  # type: ignore[attr-defined]
    return m
