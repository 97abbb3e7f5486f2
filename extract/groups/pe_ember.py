"""EMBER v2's PE groups: header (62 dims), section (255), imports (1280), exports (128), data
directories (30), same raw shapes and vector layouts, hashed with extract.hashing (MurmurHash3)
instead of scikit-learn's FeatureHasher (so the bins differ from EMBER's, the meaning does not).

Token names are EMBER-era LIEF spellings from our own tables over the raw integers; an integer with
no name becomes ``0x...`` so nothing is lost. pe_imports additionally stores the imphash (LIEF's
``get_imphash`` in pefile mode) in its raw value; it is not vectorised (an MD5 has no useful
numeric order).
"""

from __future__ import annotations

import functools
import itertools
import struct

import numpy as np
import pyarrow as pa

from extract.entropy import buffer_entropy, range_entropies
from extract.groups.pe_parse import data_dir, export_names
from extract.hashing import add_hashed, hash_tokens, hashed_dim_names
from extract.parsed import Parsed, load_lief
from extract.registry import REGISTRY, declare
from extract.text import clean, clean_all

MAX_SECTIONS = 4096
MAX_LIBRARIES = 4096
MAX_FUNCTIONS = 10_000  # imported functions over all libraries, and exported functions
MAX_IMPORT_SCAN = 100_000  # import entries read at all, bounding Python time
NAME_CAP = 256
IMPORT_NAME_CAP = 1024
NUM_DIRS = 15  # EMBER vectorises the first 15 data directories

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


def _name(table: dict[int, str], value: int) -> str:
    return table.get(value, f"0x{value:x}")


def _flags(table: dict[int, str], value: int) -> list[str]:
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
    props = _flags(SECTION_FLAGS, chars & ~SECTION_ALIGN_MASK)
    align = (chars & SECTION_ALIGN_MASK) >> 20
    if align:
        props.append(f"ALIGN_{1 << (align - 1)}BYTES" if align <= 14 else f"ALIGN_0x{align:x}")
    return tuple(props)


# ---------------------------------------------------------------------------------------------
# pe_header (62 dims)

_OPT_INTS = (
    "major_image_version", "minor_image_version", "major_linker_version", "minor_linker_version",
    "major_operating_system_version", "minor_operating_system_version", "major_subsystem_version",
    "minor_subsystem_version", "sizeof_code", "sizeof_headers", "sizeof_heap_commit",
)
HEADER_TYPE = pa.struct([
    ("coff", pa.struct([("timestamp", pa.int64()), ("machine", pa.string()),
                        ("characteristics", pa.list_(pa.string()))])),
    ("optional", pa.struct([("subsystem", pa.string()), ("dll_characteristics", pa.list_(pa.string())),
                            ("magic", pa.string())] + [(k, pa.uint64()) for k in _OPT_INTS])),
])
_HASHED_HEADER = (("machine", 10), ("characteristics", 10), ("subsystem", 10),
                  ("dll_characteristics", 10), ("magic", 10))
HEADER_DIMS = ["timestamp"] + [n for key, d in _HASHED_HEADER for n in hashed_dim_names(f"{key}_hash", d)] \
    + list(_OPT_INTS)


def _vec_header(raw: dict) -> np.ndarray:
    coff, opt = raw["coff"], raw["optional"]
    tokens = {"machine": [coff["machine"]], "characteristics": coff["characteristics"],
              "subsystem": [opt["subsystem"]], "dll_characteristics": opt["dll_characteristics"],
              "magic": [opt["magic"]]}
    out = np.zeros(len(HEADER_DIMS), dtype=np.float32)
    out[0] = float(coff["timestamp"])
    pos = 1
    for key, dims in _HASHED_HEADER:
        add_hashed(out, pos, tokens[key], dims)
        pos += dims
    out[pos:] = [float(opt[k]) for k in _OPT_INTS]  # float first: SizeOfHeapCommit is a uint64
    return out


@declare(REGISTRY, name="pe_header", version=1, formats=["pe"], stage="structure", raw_type=HEADER_TYPE,
         dim_names=HEADER_DIMS, vectorize=_vec_header)
def pe_header(parsed: Parsed) -> dict:
    """COFF and optional header fields as EMBER v2's header group (timestamp, machine, flags, ...)."""
    b, buf = parsed.binary, parsed.data
    # Enum-typed fields are read from the bytes: LIEF turns values outside its enums into bare ints
    # with a RuntimeWarning. COFF header at e_lfanew+4 (bounds checked by the parse step), optional
    # header at e_lfanew+24; an optional header cut by the file's end reads as zeros.
    lfanew = int(b.dos_header.addressof_new_exeheader)
    (machine,) = struct.unpack_from("<H", buf, lfanew + 4)
    (characteristics,) = struct.unpack_from("<H", buf, lfanew + 22)
    opt_raw = bytes(buf[lfanew + 24:lfanew + 24 + 72]).ljust(72, b"\x00")
    (magic,) = struct.unpack_from("<H", opt_raw, 0)
    subsystem, dll_chars = struct.unpack_from("<HH", opt_raw, 68)
    o = b.optional_header
    opt = {
        "subsystem": _name(SUBSYSTEMS, subsystem),
        "dll_characteristics": _flags(DLL_FLAGS, dll_chars),
        "magic": _name(MAGICS, magic),
    }
    opt.update({k: int(getattr(o, k)) for k in _OPT_INTS})
    return {
        "coff": {
            "timestamp": int(b.header.time_date_stamps),
            "machine": _name(MACHINES, machine),
            "characteristics": _flags(COFF_FLAGS, characteristics),
        },
        "optional": opt,
    }


# ---------------------------------------------------------------------------------------------
# pe_section (255 dims)

SECTION_TYPE = pa.struct([
    ("entry", pa.string()),
    ("sections", pa.list_(pa.struct([("name", pa.string()), ("size", pa.int64()), ("entropy", pa.float64()),
                                     ("vsize", pa.int64()), ("props", pa.list_(pa.string()))]))),
    ("truncated", pa.bool_()),
])
_SECTION_HASH = 50
SECTION_DIMS = [
    "sections", "sections_zero_size", "sections_empty_name", "sections_rx", "sections_w",
    *hashed_dim_names("section_size_hash", _SECTION_HASH), *hashed_dim_names("section_entropy_hash", _SECTION_HASH),
    *hashed_dim_names("section_vsize_hash", _SECTION_HASH), *hashed_dim_names("entry_name_hash", _SECTION_HASH),
    *hashed_dim_names("entry_characteristics_hash", _SECTION_HASH),
]


def _vec_section(raw: dict) -> np.ndarray:
    secs = raw["sections"]
    out = np.zeros(len(SECTION_DIMS), dtype=np.float32)
    zero = unnamed = rx = w = 0
    names: list[str] = []
    sizes: list[float] = []
    entropies: list[float] = []
    vsizes: list[float] = []
    entry = raw["entry"]
    entry_props: list[str] = []
    for s in secs:
        props = s["props"]
        zero += s["size"] == 0
        unnamed += s["name"] == ""
        rx += "MEM_READ" in props and "MEM_EXECUTE" in props
        w += "MEM_WRITE" in props
        names.append(s["name"])
        sizes.append(float(s["size"]))
        entropies.append(float(s["entropy"]))
        vsizes.append(float(s["vsize"]))
        if s["name"] == entry:
            entry_props += props
    general = [float(len(secs)), float(zero), float(unnamed), float(rx), float(w)]
    out[:len(general)] = general
    parts = ((names, sizes), (names, entropies), (names, vsizes), ([entry], None), (entry_props, None))
    for i, (tokens, weights) in enumerate(parts):
        add_hashed(out, len(general) + i * _SECTION_HASH, tokens, _SECTION_HASH, weights)
    return out


def _entry_section(binary, sections: list[dict]) -> str:
    """Name of the section holding the entry point (EMBER v2: section_from_rva), else the first
    executable section's, else ""."""
    try:
        sec = binary.section_from_rva(int(binary.optional_header.addressof_entrypoint))
    except Exception:
        sec = None
    if sec is not None:
        return clean(sec.name, NAME_CAP)
    for s in sections:
        if "MEM_EXECUTE" in s["props"]:
            return s["name"]
    return ""


def _section_entropies(parsed: Parsed, secs: list) -> list[float]:
    """Entropy of each section's content as LIEF reads it, histogrammed in one kernel call.

    LIEF's content is the file's bytes at the section's raw offset (cut as LIEF cuts them); its
    ends are checked against the file, and a section whose content is anything else is measured
    from LIEF's own copy.
    """
    data = parsed.data
    size = len(data)
    ranges: list[tuple[int, int]] = []
    own: dict[int, float] = {}
    for i, s in enumerate(secs):
        c = s.content
        n = len(c)
        o = int(s.offset)
        if n == 0 or (o >= 0 and o + n <= size and c[:16] == data[o:o + 16] and c[-16:] == data[o + n - 16:o + n]):
            ranges.append((o, n))
        else:
            ranges.append((0, 0))
            own[i] = buffer_entropy(c)
    values = range_entropies(data, ranges)
    for i, v in own.items():
        values[i] = v
    return values


@declare(REGISTRY, name="pe_section", version=2, formats=["pe"], stage="structure", raw_type=SECTION_TYPE,
         dim_names=SECTION_DIMS, vectorize=_vec_section)
def pe_section(parsed: Parsed) -> dict:
    """Entry section and per-section name, raw size, entropy, virtual size and flags (EMBER v2).

    Entropy is over the section's content as LIEF (EMBER's source) reads it, i.e. the raw data cut at
    the virtual size when that is smaller; binfeat computes it (version 2: equal to LIEF's value to
    about 1e-12, computed faster).

    Caps: the first 4,096 sections (``truncated`` says when more exist); names cut at 256 chars.
    """
    all_secs = parsed.binary.sections
    kept = list(itertools.islice(all_secs, MAX_SECTIONS))
    entropies = _section_entropies(parsed, kept)
    sections = []
    for s, ent in zip(kept, entropies, strict=True):
        sections.append({
            "name": clean(s.name, NAME_CAP), "size": int(s.size), "entropy": ent,
            "vsize": int(s.virtual_size), "props": section_props(int(s.characteristics)),
        })
    return {"entry": _entry_section(parsed.binary, sections), "sections": sections,
            "truncated": len(all_secs) > MAX_SECTIONS}


# ---------------------------------------------------------------------------------------------
# pe_imports (1280 dims) + imphash

IMPORTS_TYPE = pa.struct([
    ("libraries", pa.list_(pa.struct([("name", pa.string()), ("functions", pa.list_(pa.string()))]))),
    ("imphash", pa.string()),
    ("truncated", pa.bool_()),
])
IMPORTS_DIMS = hashed_dim_names("library_hash", 256) + hashed_dim_names("function_hash", 1024)


def _vec_imports(raw: dict) -> np.ndarray:
    """Lower-cased library names (each once, sorted) into 256 hashed dims; one ``library:function``
    token per imported function (library lower-cased, function as stored) into 1024."""
    out = np.zeros(256 + 1024, dtype=np.float32)
    libraries: set[str] = set()
    qualified: list[str] = []
    for entry in raw["libraries"]:
        library = entry["name"].lower()
        libraries.add(library)
        qualified.extend(f"{library}:{function}" for function in entry["functions"])
    add_hashed(out, 0, sorted(libraries), 256)
    add_hashed(out, 256, qualified, 1024)
    return out


# md5 of nothing: what LIEF returns for import libraries that list no function at all
_MD5_OF_NOTHING = "d41d8cd98f00b204e9800998ecf8427e"


def imphash(binary) -> str:
    """LIEF's imphash in pefile mode (``pefile.PE.get_imphash()``'s definition) over the imports LIEF
    parsed; "" when no function is imported, as pefile (and pe_imports version 1) say, where LIEF
    gives the md5 of an empty string for a library listed without functions."""
    lief = load_lief()
    digest = lief.PE.get_imphash(binary, lief.PE.IMPHASH_MODE.PEFILE)
    return "" if digest == _MD5_OF_NOTHING else digest


@declare(REGISTRY, name="pe_imports", version=2, formats=["pe"], stage="structure", raw_type=IMPORTS_TYPE,
         dim_names=IMPORTS_DIMS, vectorize=_vec_imports)
def pe_imports(parsed: Parsed) -> dict:
    """Imported libraries and functions (ordinals as ``ord<N>``), EMBER v2's imports, plus imphash.

    Duplicate library entries are merged (EMBER). Caps: 4,096 libraries, 10,000 functions in all, the
    first 100,000 import entries read (``truncated`` says when cut), names cut at 1,024 chars.
    imphash: :func:`imphash` over every entry LIEF parsed (LIEF reads at most 65,536 per library).
    Version 2: the imphash is LIEF's; version 1 computed it here over the first 100,000 entries. The
    two differ for a file with more import entries than that, and for one that lists a library
    without any function next to libraries with functions (LIEF's list then holds an empty item).
    """
    merged: dict[str, list[str]] = {}
    n_funcs = n_seen = 0
    truncated = False
    for lib in parsed.binary.imports:
        if n_seen >= MAX_IMPORT_SCAN:
            truncated = True
            break
        lib_name = clean(lib.name, IMPORT_NAME_CAP)
        funcs = merged.get(lib_name)
        if funcs is None:
            if len(merged) >= MAX_LIBRARIES:
                truncated = True
            else:
                funcs = merged[lib_name] = []
        kept: list = []  # this entry's function names, cleaned together below
        for e in lib.entries:
            n_seen += 1
            if n_seen > MAX_IMPORT_SCAN:
                truncated = True
                break
            if funcs is None or n_funcs >= MAX_FUNCTIONS:
                truncated = True
                continue
            kept.append(f"ord{int(e.ordinal)}" if e.is_ordinal else e.name)
            n_funcs += 1
        if kept:
            funcs.extend(clean_all(kept, IMPORT_NAME_CAP))
    return {"libraries": [{"name": k, "functions": v} for k, v in merged.items()],
            "imphash": imphash(parsed.binary), "truncated": truncated}


# ---------------------------------------------------------------------------------------------
# pe_exports (128 dims)

EXPORTS_TYPE = pa.struct([("functions", pa.list_(pa.string())), ("truncated", pa.bool_())])


def _vec_exports(raw: dict) -> np.ndarray:
    return hash_tokens(raw["functions"], 128)


@declare(REGISTRY, name="pe_exports", version=1, formats=["pe"], stage="structure", raw_type=EXPORTS_TYPE,
         dim_names=hashed_dim_names("export_hash", 128), vectorize=_vec_exports)
def pe_exports(parsed: Parsed) -> dict:
    """Exported function names (EMBER v2). Caps: 10,000 names, each cut at 1,024 chars."""
    funcs = export_names(parsed)
    names = clean_all(funcs[:MAX_FUNCTIONS], IMPORT_NAME_CAP)
    return {"functions": names, "truncated": len(funcs) > MAX_FUNCTIONS}


# ---------------------------------------------------------------------------------------------
# pe_data_directories (30 dims)

DIRS_TYPE = pa.list_(pa.struct([("name", pa.string()), ("size", pa.int64()),
                                ("virtual_address", pa.int64())]))
DIRS_DIMS = [f"{n}.{f}" for n in DIR_NAMES[:NUM_DIRS] for f in ("size", "virtual_address")]


def _vec_dirs(raw: list) -> np.ndarray:
    """(size, RVA) of the first 15 directories, in table order; directories the file lacks are 0."""
    pairs = np.zeros((NUM_DIRS, 2), dtype=np.float32)
    for row, entry in zip(pairs, raw, strict=False):
        row[:] = (entry["size"], entry["virtual_address"])
    return pairs.reshape(-1)


@declare(REGISTRY, name="pe_data_directories", version=1, formats=["pe"], stage="structure",
         raw_type=DIRS_TYPE, dim_names=DIRS_DIMS, vectorize=_vec_dirs)
def pe_data_directories(parsed: Parsed) -> list:
    """Size and RVA of each data directory in table order (at most 16; the first 15 vectorised, as EMBER)."""
    b = parsed.binary
    n = min(len(b.data_directories), len(DIR_NAMES))
    out = []
    for i in range(n):
        rva, size = data_dir(b, i)
        out.append({"name": DIR_NAMES[i], "size": size, "virtual_address": rva})
    return out
