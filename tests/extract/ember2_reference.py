"""An independent EMBER v2 ``feature_vector`` for the tests: EMBER's documented semantics over
pefile's parse of the bytes and scikit-learn's own ``FeatureHasher``, sharing no code with binfeat.

What "EMBER v2" means here is written in docs/ember2.md (EMBER's ``ember/features.py`` with LIEF
0.9.0 and scikit-learn): the vector is nine parts; byte-level parts come from
``tests/extract/byte_reference.py`` (the tests' own reference for those rules); the structural parts
follow LIEF 0.9's reading where it is known from the bytes, and binfeat's documented rules (LIEF
1.0's) for the general fields EMBER took from LIEF's parse. LIEF 0.9's Python spellings are written
out below as (value, name) facts, independently of binfeat's tables.
"""

from __future__ import annotations

import math
import struct
from collections import Counter

import numpy as np
import pefile
from sklearn.feature_extraction import FeatureHasher

from tests.extract import byte_reference as br
from tests.extract import pe_expect

# (offset, length) of each part in EMBER v2's published vector layout
LAYOUT = {"histogram": (0, 256), "byteentropy": (256, 256), "strings": (512, 104), "general": (616, 10),
          "header": (626, 62), "section": (688, 255), "imports": (943, 1280), "exports": (2223, 128),
          "datadirectories": (2351, 30)}
DIM = 2381

# LIEF 0.9.0's Python enums: the names a value prints with; any other value prints "???"
MACHINE_09 = [("INVALID", 0xFFFF), ("UNKNOWN", 0), ("AM33", 0x13), ("AMD64", 0x8664), ("ARM", 0x1C0),
              ("ARMNT", 0x1C4), ("EBC", 0xEBC), ("I386", 0x14C), ("IA64", 0x200), ("M32R", 0x9041),
              ("MIPS16", 0x266), ("MIPSFPU", 0x366), ("MIPSFPU16", 0x466), ("POWERPC", 0x1F0),
              ("POWERPCFP", 0x1F1), ("R4000", 0x166), ("SH3", 0x1A2), ("SH3DSP", 0x1A3), ("SH4", 0x1A6),
              ("SH5", 0x1A8), ("THUMB", 0x1C2), ("WCEMIPSV2", 0x169)]
SUBSYSTEM_09 = [("UNKNOWN", 0), ("NATIVE", 1), ("WINDOWS_GUI", 2), ("WINDOWS_CUI", 3), ("OS2_CUI", 5),
                ("POSIX_CUI", 7), ("NATIVE_WINDOWS", 8), ("WINDOWS_CE_GUI", 9), ("EFI_APPLICATION", 10),
                ("EFI_BOOT_SERVICE_DRIVER", 11), ("EFI_RUNTIME_DRIVER", 12), ("EFI_ROM", 13), ("XBOX", 14),
                ("WINDOWS_BOOT_APPLICATION", 16)]
COFF_FLAGS_09 = ["RELOCS_STRIPPED", "EXECUTABLE_IMAGE", "LINE_NUMS_STRIPPED", "LOCAL_SYMS_STRIPPED",
                 "AGGRESSIVE_WS_TRIM", "LARGE_ADDRESS_AWARE", None, "BYTES_REVERSED_LO", "CHARA_32BIT_MACHINE",
                 "DEBUG_STRIPPED", "REMOVABLE_RUN_FROM_SWAP", "NET_RUN_FROM_SWAP", "SYSTEM", "DLL",
                 "UP_SYSTEM_ONLY", "BYTES_REVERSED_HI"]  # bit i; bit 6 has no name
DLL_FLAGS_09 = [None] * 5 + ["HIGH_ENTROPY_VA", "DYNAMIC_BASE", "FORCE_INTEGRITY", "NX_COMPAT", "NO_ISOLATION",
                             "NO_SEH", "NO_BIND", "APPCONTAINER", "WDM_DRIVER", "GUARD_CF", "TERMINAL_SERVER_AWARE"]
SECTION_09 = ([("TYPE_NO_PAD", 0x8), ("CNT_CODE", 0x20), ("CNT_INITIALIZED_DATA", 0x40),
               ("CNT_UNINITIALIZED_DATA", 0x80), ("LNK_OTHER", 0x100), ("LNK_INFO", 0x200), ("LNK_REMOVE", 0x800),
               ("LNK_COMDAT", 0x1000), ("GPREL", 0x8000), ("MEM_16BIT", 0x20000), ("MEM_LOCKED", 0x40000),
               ("MEM_PRELOAD", 0x80000)]
              + [(f"ALIGN_{2 ** k}BYTES", (k + 1) * 0x100000) for k in range(14)]
              + [("LNK_NRELOC_OVFL", 0x1000000), ("MEM_DISCARDABLE", 0x2000000), ("MEM_NOT_CACHED", 0x4000000),
                 ("MEM_NOT_PAGED", 0x8000000), ("MEM_SHARED", 0x10000000), ("MEM_EXECUTE", 0x20000000),
                 ("MEM_READ", 0x40000000), ("MEM_WRITE", 0x80000000)])
DIRECTORY_COUNT = 15


def _name(table: list[tuple[str, int]], value: int) -> str:
    return next((n for n, v in table if v == value), "???")


def _bits(names: list[str | None], value: int) -> list[str]:
    return [n for i, n in enumerate(names) if n is not None and value >> i & 1]


def section_tokens(characteristics: int) -> list[str]:
    """LIEF 0.9's list: every known value v with (characteristics & v) != 0."""
    return [n for n, v in SECTION_09 if characteristics & v]


def hashed(n: int, samples, kind: str = "string") -> np.ndarray:
    return FeatureHasher(n, input_type=kind).transform([samples]).toarray()[0]


def lief09_parses(data: bytes) -> bool:
    """LIEF 0.9's checks before parsing: MZ, e_lfanew + 24 inside the file, PE signature there, magic
    PE32 or PE32+ (and the fixed optional header readable)."""
    if len(data) < 64 or data[:2] != b"MZ":
        return False
    lfanew = struct.unpack_from("<I", data, 0x3C)[0]
    if lfanew + 24 >= len(data) or data[lfanew:lfanew + 4] != b"PE\0\0":
        return False
    if lfanew + 26 > len(data):
        return False
    return struct.unpack_from("<H", data, lfanew + 24)[0] in (0x10B, 0x20B)


# ---------------------------------------------------------------------------------------------
# the parts

def byte_parts(data: bytes) -> np.ndarray:
    out = []
    for counts in (br.histogram(data), br.entropy_grid(data)):
        c = np.array(counts, dtype=np.float32)
        with np.errstate(invalid="ignore"):
            out.append(c / c.sum())  # EMBER: an empty file divides 0 by 0
    out.append(br.strings_vector(br.strings(data)))
    return np.concatenate(out).astype(np.float32)


def coff_symbol_records(data: bytes, pointer: int, count: int) -> int:
    """Records LIEF 1.0 reads from the COFF symbol table: each 18-byte record counts, its auxiliary
    records (its last byte) are skipped, while the index is below ``count`` and the record fits."""
    if not pointer or not count:
        return 0
    n = index = 0
    at = pointer
    while index < count and at + 18 <= len(data):
        n += 1
        aux = data[at + 17]
        index += 1 + aux
        at += 18 * (1 + aux)
    return n


def certificates(data: bytes, offset: int, size: int) -> int:
    """PKCS#7 WIN_CERTIFICATE entries in the certificate table (8-byte aligned)."""
    n, at = 0, offset
    while offset and at + 8 <= min(offset + size, len(data)):
        length, _, kind = struct.unpack_from("<IHH", data, at)
        if length < 8:
            break
        n += kind == 2
        at += (length + 7) // 8 * 8
    return n


def general(pe: pefile.PE, data: bytes) -> list[float]:
    oh, fh = pe.OPTIONAL_HEADER, pe.FILE_HEADER
    end = pe.DOS_HEADER.e_lfanew + 24 + (96 if oh.Magic == 0x10B else 112)
    for s in pe.sections:
        end = max(end, s.VirtualAddress + s.Misc_VirtualSize)
    if oh.SectionAlignment and end % oh.SectionAlignment:
        end += oh.SectionAlignment - end % oh.SectionAlignment
    dirs = oh.DATA_DIRECTORY
    exports = getattr(pe, "DIRECTORY_ENTRY_EXPORT", None)
    named = sum(1 for s in exports.symbols if s.name) if exports else 0
    debug = getattr(pe, "DIRECTORY_ENTRY_DEBUG", [])
    sec = dirs[4] if len(dirs) > 4 else None
    return [len(data), end, int(len(debug) > 0), named,
            sum(len(e.imports) for e in getattr(pe, "DIRECTORY_ENTRY_IMPORT", [])),
            int(len(dirs) > 5 and dirs[5].VirtualAddress != 0 and dirs[5].Size != 0),
            int(len(dirs) > 2 and dirs[2].VirtualAddress != 0 and dirs[2].Size != 0),
            int(sec is not None and certificates(data, sec.VirtualAddress, sec.Size) > 0),
            int(hasattr(pe, "DIRECTORY_ENTRY_TLS")),
            coff_symbol_records(data, fh.PointerToSymbolTable, fh.NumberOfSymbols)]


def header(pe: pefile.PE | None) -> np.ndarray:
    if pe is None:
        stamp, machine, chars, subsystem, dll, magic, ints = 0, "", [], "", [], "", [0] * 11
    else:
        fh, oh = pe.FILE_HEADER, pe.OPTIONAL_HEADER
        stamp = fh.TimeDateStamp
        machine, chars = _name(MACHINE_09, fh.Machine), _bits(COFF_FLAGS_09, fh.Characteristics)
        subsystem, dll = _name(SUBSYSTEM_09, oh.Subsystem), _bits(DLL_FLAGS_09, oh.DllCharacteristics)
        magic = {0x10B: "PE32", 0x20B: "PE32_PLUS"}[oh.Magic]
        ints = [oh.MajorImageVersion, oh.MinorImageVersion, oh.MajorLinkerVersion, oh.MinorLinkerVersion,
                oh.MajorOperatingSystemVersion, oh.MinorOperatingSystemVersion, oh.MajorSubsystemVersion,
                oh.MinorSubsystemVersion, oh.SizeOfCode, oh.SizeOfHeaders, oh.SizeOfHeapCommit]
    return np.hstack([stamp, hashed(10, [machine]), hashed(10, chars), hashed(10, [subsystem]), hashed(10, dll),
                      hashed(10, [magic]), ints]).astype(np.float32)


def lief_entropy(content: bytes) -> float:
    """LIEF's section entropy: -sum of p log2 p over byte values in ascending order, p = count / n."""
    if not content:
        return 0.0
    counts = Counter(content)
    total = 0.0
    for value in range(256):
        if counts[value]:
            p = counts[value] / len(content)
            total += p * math.log2(p)
    return -total


def section(pe: pefile.PE, data: bytes) -> np.ndarray:
    fh, oh = pe.FILE_HEADER, pe.OPTIONAL_HEADER
    table_end = pe.DOS_HEADER.e_lfanew + 24 + fh.SizeOfOptionalHeader + 40 * fh.NumberOfSections
    sections = []
    if table_end <= len(data):
        for s in pe.sections:
            n = min(s.Misc_VirtualSize, s.SizeOfRawData) if s.Misc_VirtualSize else s.SizeOfRawData
            start = s.PointerToRawData
            content = data[start:start + n] if start < len(data) else b""
            sections.append({"name": s.Name.split(b"\0")[0].decode("utf-8"), "size": s.SizeOfRawData,
                             "entropy": lief_entropy(content), "vsize": s.Misc_VirtualSize,
                             "props": section_tokens(s.Characteristics), "start": start})
    target = oh.ImageBase + oh.AddressOfEntryPoint  # LIEF 0.9's entrypoint, a virtual address
    entry = next((s["name"] for s in sections
                  if s["start"] <= target < (s["start"] + s["size"]) % 2**32), None)
    if entry is None:
        entry = next((s["name"] for s in sections if "MEM_EXECUTE" in s["props"]), "")
    counts = [len(sections), sum(s["size"] == 0 for s in sections), sum(s["name"] == "" for s in sections),
              sum("MEM_READ" in s["props"] and "MEM_EXECUTE" in s["props"] for s in sections),
              sum("MEM_WRITE" in s["props"] for s in sections)]
    return np.hstack([
        counts,
        hashed(50, [(s["name"], s["size"]) for s in sections], "pair"),
        hashed(50, [(s["name"], s["entropy"]) for s in sections], "pair"),
        hashed(50, [(s["name"], s["vsize"]) for s in sections], "pair"),
        hashed(50, list(entry)),  # EMBER passes the bare name: one token per character
        hashed(50, [p for s in sections if s["name"] == entry for p in s["props"]]),
    ]).astype(np.float32)


def imports(pe: pefile.PE) -> np.ndarray:
    by_library: dict[str, list[str]] = {}
    for entry in getattr(pe, "DIRECTORY_ENTRY_IMPORT", []):
        functions = by_library.setdefault(entry.dll.decode("utf-8"), [])
        for imp in entry.imports:
            functions.append(f"ordinal{imp.ordinal}" if imp.import_by_ordinal else imp.name.decode("utf-8")[:10000])
    libraries = list({lib.lower() for lib in by_library})
    qualified = [f"{lib.lower()}:{f}" for lib, fs in by_library.items() for f in fs]
    return np.hstack([hashed(256, libraries), hashed(1024, qualified)]).astype(np.float32)


def exports(pe: pefile.PE) -> np.ndarray:
    exp = getattr(pe, "DIRECTORY_ENTRY_EXPORT", None)
    names = [s.name.decode("utf-8")[:10000] for s in exp.symbols if s.name] if exp else []
    return hashed(128, names).astype(np.float32)


def datadirectories(data: bytes) -> np.ndarray:
    lfanew = struct.unpack_from("<I", data, 0x3C)[0]
    magic = struct.unpack_from("<H", data, lfanew + 24)[0]
    at = lfanew + 24 + (96 if magic == 0x10B else 112)
    out = np.zeros(2 * DIRECTORY_COUNT, np.float32)
    if at + 8 * DIRECTORY_COUNT <= len(data):
        for k in range(DIRECTORY_COUNT):
            rva, size = struct.unpack_from("<II", data, at + 8 * k)
            out[2 * k], out[2 * k + 1] = size, rva
    return out


def vector(data: bytes) -> np.ndarray:
    """EMBER v2's vector of ``data``; pefile must parse it when LIEF 0.9 would (PEFormatError else)."""
    pe = pe_expect.load(data) if lief09_parses(data) else None
    parts = [byte_parts(data)]
    if pe is None:
        no_binary = np.zeros(255 + 1280 + 128 + 30, np.float32)  # section, imports, exports, directories
        parts += [np.array([len(data)] + [0] * 9, np.float32), header(None), no_binary]
    else:
        parts += [np.array(general(pe, data), np.float32), header(pe), section(pe, data), imports(pe), exports(pe),
                  datadirectories(data)]
    out = np.concatenate(parts).astype(np.float32)
    assert out.shape == (DIM,)
    return out
