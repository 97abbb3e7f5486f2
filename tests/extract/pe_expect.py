"""What each PE group should hold for a file, worked out without binfeat: from pefile (and dnfile for
.NET) and from the bytes, for tests that assert values on every fixture.

Token spellings follow the names the PE/COFF specification gives the flags (pefile's, without their
``IMAGE_...`` prefixes; LIEF, and so EMBER, renamed one of them).
"""

from __future__ import annotations

import math
import struct
import warnings
from collections import Counter

import pefile

# The spec's data directories, in table order, in the spelling EMBER's raw features store
DIRECTORY_NAMES = [
    "EXPORT_TABLE", "IMPORT_TABLE", "RESOURCE_TABLE", "EXCEPTION_TABLE", "CERTIFICATE_TABLE",
    "BASE_RELOCATION_TABLE", "DEBUG", "ARCHITECTURE", "GLOBAL_PTR", "TLS_TABLE", "LOAD_CONFIG_TABLE",
    "BOUND_IMPORT", "IAT", "DELAY_IMPORT_DESCRIPTOR", "CLR_RUNTIME_HEADER", "RESERVED",
]
RENAMED = {"32BIT_MACHINE": "CHARA_32BIT_MACHINE"}  # LIEF's (EMBER's) spelling of this COFF flag
MAGICS = {0x10B: "PE32", 0x20B: "PE32_PLUS"}
OPTIONAL_INTS = {
    "major_image_version": "MajorImageVersion", "minor_image_version": "MinorImageVersion",
    "major_linker_version": "MajorLinkerVersion", "minor_linker_version": "MinorLinkerVersion",
    "major_operating_system_version": "MajorOperatingSystemVersion",
    "minor_operating_system_version": "MinorOperatingSystemVersion",
    "major_subsystem_version": "MajorSubsystemVersion", "minor_subsystem_version": "MinorSubsystemVersion",
    "sizeof_code": "SizeOfCode", "sizeof_headers": "SizeOfHeaders", "sizeof_heap_commit": "SizeOfHeapCommit",
}


def load(data: bytes) -> pefile.PE:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return pefile.PE(data=data)


def _flags(pairs: list[tuple[str, int]], value: int, prefix: str) -> list[str]:
    """Names of the single-bit flags set in ``value``, in bit order, without ``prefix``."""
    bits = sorted((v, n) for n, v in pairs if v & (v - 1) == 0 and v & value)
    return [RENAMED.get(n.removeprefix(prefix), n.removeprefix(prefix)) for v, n in bits]


def entropy(data: bytes) -> float:
    if not data:
        return 0.0
    n = len(data)
    return -sum(c / n * math.log2(c / n) for c in Counter(data).values())


def header(pe: pefile.PE) -> dict:
    fh, oh = pe.FILE_HEADER, pe.OPTIONAL_HEADER
    optional = {
        "subsystem": pefile.SUBSYSTEM_TYPE[oh.Subsystem].removeprefix("IMAGE_SUBSYSTEM_"),
        "dll_characteristics": _flags(pefile.dll_characteristics, oh.DllCharacteristics, "IMAGE_DLLCHARACTERISTICS_"),
        "magic": MAGICS[oh.Magic],
        **{k: getattr(oh, v) for k, v in OPTIONAL_INTS.items()},
        "subsystem_number": oh.Subsystem, "dll_characteristics_bits": oh.DllCharacteristics,
        "magic_number": oh.Magic, "imagebase": oh.ImageBase, "addressof_entrypoint": oh.AddressOfEntryPoint,
    }
    return {"coff": {"timestamp": fh.TimeDateStamp,
                     "machine": pefile.MACHINE_TYPE[fh.Machine].removeprefix("IMAGE_FILE_MACHINE_"),
                     "characteristics": _flags(pefile.image_characteristics, fh.Characteristics, "IMAGE_FILE_"),
                     "machine_number": fh.Machine, "characteristics_bits": fh.Characteristics},
            "optional": optional}


def sections(pe: pefile.PE) -> dict:
    """Sections in table order (pefile sorts by RVA: the fixtures' are in RVA order already)."""
    out = []
    for s in pe.sections:
        content = s.get_data()[: min(s.SizeOfRawData, s.Misc_VirtualSize or s.SizeOfRawData)]
        out.append({"name": s.Name.rstrip(b"\x00").decode(), "size": s.SizeOfRawData,
                    "entropy": entropy(content), "vsize": s.Misc_VirtualSize,
                    "props": _flags(pefile.section_characteristics, s.Characteristics, "IMAGE_SCN_"),
                    "offset": s.PointerToRawData, "characteristics": s.Characteristics})
    entry = pe.get_section_by_rva(pe.OPTIONAL_HEADER.AddressOfEntryPoint)
    fh = pe.FILE_HEADER
    table_end = pe.DOS_HEADER.e_lfanew + 24 + fh.SizeOfOptionalHeader + 40 * fh.NumberOfSections
    return {"entry": entry.Name.rstrip(b"\x00").decode() if entry else "", "sections": out, "truncated": False,
            "table_end": table_end}


def imports(pe: pefile.PE) -> dict:
    libs = [{"name": e.dll.decode(),
             "functions": [f"ord{i.ordinal}" if i.import_by_ordinal else i.name.decode() for i in e.imports],
             "is_ordinal": [bool(i.import_by_ordinal) for i in e.imports]}
            for e in getattr(pe, "DIRECTORY_ENTRY_IMPORT", [])]
    return {"libraries": libs, "imphash": pe.get_imphash(), "truncated": False}


def exports(pe: pefile.PE) -> dict:
    exp = getattr(pe, "DIRECTORY_ENTRY_EXPORT", None)
    return {"functions": [s.name.decode() for s in exp.symbols] if exp else [], "truncated": False}


def directories(pe: pefile.PE) -> list[dict]:
    """pefile lists NumberOfRvaAndSizes entries (at most 16), which are the ones LIEF lists too."""
    return [{"name": DIRECTORY_NAMES[i], "size": d.Size, "virtual_address": d.VirtualAddress, "listed": True}
            for i, d in enumerate(pe.OPTIONAL_HEADER.DATA_DIRECTORY)]


def rich_checksum(data: bytes, dans: int, values: list[int]) -> int:
    """The linker's Rich checksum: DanS offset + every DOS-header byte but e_lfanew's, rotated left by
    its offset, + every comp.id rotated left by its count, mod 2**32."""
    def rol(v: int, n: int) -> int:
        n %= 32
        return ((v << n) | (v >> (32 - n))) & 0xFFFFFFFF

    total = dans + sum(rol(data[i], i) for i in range(dans) if not 0x3C <= i < 0x40)
    total += sum(rol(values[i], values[i + 1]) for i in range(0, len(values), 2))
    return total & 0xFFFFFFFF


def rich(pe: pefile.PE, data: bytes) -> dict:
    found = pe.parse_rich_header()
    if found is None:
        return {"present": False, "key": None, "offset": None, "checksum_valid": None, "entries": []}
    key = int.from_bytes(found["key"], "little")
    values = found["values"]
    dans = data.find(struct.pack("<I", 0x536E6144 ^ key), 0x40)
    return {"present": True, "key": key, "offset": dans,
            "checksum_valid": rich_checksum(data, dans, values) == key,
            "entries": [{"product_id": c >> 16, "build_id": c & 0xFFFF, "count": n}
                        for c, n in zip(values[::2], values[1::2], strict=True)]}


def authenticode_directory(pe: pefile.PE, size: int) -> dict:
    d = pe.OPTIONAL_HEADER.DATA_DIRECTORY[4]
    present = d.VirtualAddress != 0 and d.Size != 0
    return {"present": present, "dir_offset": d.VirtualAddress, "dir_size": d.Size,
            "dir_in_file": present and d.VirtualAddress + d.Size <= size}


def overlay(pe: pefile.PE, data: bytes) -> dict:
    start = pe.get_overlay_data_start_offset()
    if start is None:
        return {"present": False, "offset": None, "size": 0, "file_size": len(data), "entropy": 0.0}
    return {"present": True, "offset": start, "size": len(data) - start, "file_size": len(data),
            "entropy": entropy(data[start:])}


def general(pe: pefile.PE) -> dict:
    dirs = pe.OPTIONAL_HEADER.DATA_DIRECTORY
    align = pe.OPTIONAL_HEADER.SectionAlignment
    return {
        "vsize": -(-pe.OPTIONAL_HEADER.SizeOfImage // align) * align,
        "has_debug": int(hasattr(pe, "DIRECTORY_ENTRY_DEBUG")),
        "exports": len(exports(pe)["functions"]),
        "imports": sum(len(e.imports) for e in getattr(pe, "DIRECTORY_ENTRY_IMPORT", [])),
        "has_relocations": int(dirs[5].VirtualAddress != 0 and dirs[5].Size != 0),
        "has_resources": int(dirs[2].VirtualAddress != 0 and dirs[2].Size != 0),
        "has_signature": 0,  # no fixture carries a signature LIEF can parse
        "has_tls": int(hasattr(pe, "DIRECTORY_ENTRY_TLS")),
        "symbols": pe.FILE_HEADER.NumberOfSymbols,
    }
