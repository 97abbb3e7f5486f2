"""EMBER v2's PE groups: header (62 dims), section (255), imports (1280), exports (128), data
directories (30), EMBER's raw shapes and vector layouts, hashed with extract.hashing (MurmurHash3)
instead of scikit-learn's FeatureHasher (so the bins differ from EMBER's, the meaning does not).

Token names are binfeat's spellings (:mod:`extract.groups.pe_tokens`). The raw values also keep the
numbers behind the tokens (machine, flags, section characteristics, ordinal flags, every data
directory slot): the ``ember2`` scheme re-spells them as EMBER v2 did, from the raw value alone.
pe_imports additionally stores the imphash (LIEF's ``get_imphash`` in pefile mode); it is not
vectorised (an MD5 has no useful numeric order).
"""

from __future__ import annotations

import struct

import numpy as np
import pyarrow as pa

from extract.entropy import buffer_entropy, range_entropies
from extract.groups import pe_tokens as tok
from extract.groups.pe_parse import Section, export_names
from extract.groups.pe_parse import sections as pe_sections
from extract.hashing import TokenBins, hashed_dim_names
from extract.parsed import Parsed, items, load_lief
from extract.registry import REGISTRY, declare
from extract.text import clean, clean_all

MAX_SECTIONS = 4096
MAX_LIBRARIES = 4096
MAX_FUNCTIONS = 10_000  # imported functions over all libraries, and exported functions
MAX_IMPORT_SCAN = 100_000  # import entries read at all, bounding Python time
NAME_CAP = 256
IMPORT_NAME_CAP = 1024
NUM_DIRS = 15  # EMBER vectorises the first 15 data directories

# ---------------------------------------------------------------------------------------------
# pe_header (62 dims)

_OPT_INTS = (
    "major_image_version", "minor_image_version", "major_linker_version", "minor_linker_version",
    "major_operating_system_version", "minor_operating_system_version", "major_subsystem_version",
    "minor_subsystem_version", "sizeof_code", "sizeof_headers", "sizeof_heap_commit",
)
# Integer types by the field's width on disk (extract.raw_types): WORD and BYTE fields int32, DWORD
# fields int64, fields of 64 bits in PE32+ (SizeOfHeapCommit, ImageBase) decimal128(20, 0).
_OPT_INT_TYPES = {**dict.fromkeys(_OPT_INTS[:8], pa.int32()), "sizeof_code": pa.int64(),
                  "sizeof_headers": pa.int64(), "sizeof_heap_commit": pa.decimal128(20, 0)}
HEADER_TYPE = pa.struct([
    ("coff", pa.struct([("timestamp", pa.int64()), ("machine", pa.string()),
                        ("characteristics", pa.list_(pa.string())),
                        ("machine_number", pa.int32()), ("characteristics_bits", pa.int32())])),
    ("optional", pa.struct([("subsystem", pa.string()), ("dll_characteristics", pa.list_(pa.string())),
                            ("magic", pa.string())] + [(k, _OPT_INT_TYPES[k]) for k in _OPT_INTS]
                           + [("subsystem_number", pa.int32()), ("dll_characteristics_bits", pa.int32()),
                              ("magic_number", pa.int32()), ("imagebase", pa.decimal128(20, 0)),
                              ("addressof_entrypoint", pa.int64())])),
])
_HASHED_HEADER = (("machine", 10), ("characteristics", 10), ("subsystem", 10),
                  ("dll_characteristics", 10), ("magic", 10))
HEADER_DIMS = ["timestamp"] + [n for key, d in _HASHED_HEADER for n in hashed_dim_names(f"{key}_hash", d)] \
    + list(_OPT_INTS)


def _fill_header(raws: list[dict], out: np.ndarray) -> None:
    bins = TokenBins(out)
    rows = []
    for i, raw in enumerate(raws):
        coff, opt = raw["coff"], raw["optional"]
        tokens = {"machine": [coff["machine"]], "characteristics": coff["characteristics"],
                  "subsystem": [opt["subsystem"]], "dll_characteristics": opt["dll_characteristics"],
                  "magic": [opt["magic"]]}
        pos = 1
        for key, dims in _HASHED_HEADER:
            bins.add(i, pos, tokens[key], dims)
            pos += dims
        rows.append([float(opt[k]) for k in _OPT_INTS])  # float first: SizeOfHeapCommit is a uint64
    out[:, 0] = [float(raw["coff"]["timestamp"]) for raw in raws]
    out[:, 1 + sum(d for _, d in _HASHED_HEADER):] = np.array(rows, dtype=np.float32)
    bins.write()


@declare(REGISTRY, name="pe_header", version=2, formats=["pe"], stage="structure", raw_type=HEADER_TYPE,
         dim_names=HEADER_DIMS, fill=_fill_header)
def pe_header(parsed: Parsed) -> dict:
    """COFF and optional header fields as EMBER v2's header group (timestamp, machine, flags, ...).

    Version 2 also keeps the numbers the tokens spell (machine, characteristics, subsystem, DLL
    characteristics, magic) and the image base and entry point RVA (the ``ember2`` scheme's entry
    section rule); the vector is unchanged.
    """
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
        "subsystem": tok.name_of(tok.SUBSYSTEMS, subsystem),
        "dll_characteristics": tok.flag_names(tok.DLL_FLAGS, dll_chars),
        "magic": tok.name_of(tok.MAGICS, magic),
    }
    opt.update({k: int(getattr(o, k)) for k in _OPT_INTS})
    opt.update(subsystem_number=subsystem, dll_characteristics_bits=dll_chars, magic_number=magic,
               imagebase=int(o.imagebase), addressof_entrypoint=int(o.addressof_entrypoint))
    return {
        "coff": {
            "timestamp": int(b.header.time_date_stamps),
            "machine": tok.name_of(tok.MACHINES, machine),
            "characteristics": tok.flag_names(tok.COFF_FLAGS, characteristics),
            "machine_number": machine,
            "characteristics_bits": characteristics,
        },
        "optional": opt,
    }


# ---------------------------------------------------------------------------------------------
# pe_section (255 dims)

SECTION_TYPE = pa.struct([
    ("entry", pa.string()),
    ("sections", pa.list_(pa.struct([("name", pa.string()), ("size", pa.int64()), ("entropy", pa.float64()),
                                     ("vsize", pa.int64()), ("props", pa.list_(pa.string())),
                                     ("offset", pa.int64()), ("characteristics", pa.int64())]))),
    ("truncated", pa.bool_()),
    ("table_end", pa.int64()),
])
_SECTION_HASH = 50
SECTION_DIMS = [
    "sections", "sections_zero_size", "sections_empty_name", "sections_rx", "sections_w",
    *hashed_dim_names("section_size_hash", _SECTION_HASH), *hashed_dim_names("section_entropy_hash", _SECTION_HASH),
    *hashed_dim_names("section_vsize_hash", _SECTION_HASH), *hashed_dim_names("entry_name_hash", _SECTION_HASH),
    *hashed_dim_names("entry_characteristics_hash", _SECTION_HASH),
]


def _fill_section(raws: list[dict], out: np.ndarray) -> None:
    bins = TokenBins(out)
    rows = []
    for i, raw in enumerate(raws):
        secs = raw["sections"]
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
        rows.append([float(len(secs)), float(zero), float(unnamed), float(rx), float(w)])
        parts = ((names, sizes), (names, entropies), (names, vsizes), ([entry], None), (entry_props, None))
        for k, (tokens, weights) in enumerate(parts):
            bins.add(i, 5 + k * _SECTION_HASH, tokens, _SECTION_HASH, weights)
    out[:, :5] = np.array(rows, dtype=np.float32)
    bins.write()


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


def _section_entropies(parsed: Parsed, secs: list[Section]) -> list[float]:
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
        c = s.section.content
        n = len(c)
        o = s.offset
        if n == 0 or (o >= 0 and o + n <= size and c[:16] == data[o:o + 16] and c[-16:] == data[o + n - 16:o + n]):
            ranges.append((o, n))
        else:
            ranges.append((0, 0))
            own[i] = buffer_entropy(c)
    values = range_entropies(data, ranges)
    for i, v in own.items():
        values[i] = v
    return values


@declare(REGISTRY, name="pe_section", version=3, formats=["pe"], stage="structure", raw_type=SECTION_TYPE,
         dim_names=SECTION_DIMS, fill=_fill_section)
def pe_section(parsed: Parsed) -> dict:
    """Entry section and per-section name, raw size, entropy, virtual size and flags (EMBER v2).

    Entropy is over the section's content as LIEF (EMBER's source) reads it, i.e. the raw data cut at
    the virtual size when that is smaller; binfeat computes it (version 2: equal to LIEF's value to
    about 1e-12, computed faster). Version 3 also keeps each section's PointerToRawData (``offset``)
    and Characteristics, and ``table_end``, the file offset where the section table the COFF header
    declares ends (e_lfanew + 24 + SizeOfOptionalHeader + 40 x NumberOfSections): the ``ember2``
    scheme's rules need them. The vector is unchanged.

    Caps: the first 4,096 sections (``truncated`` says when more exist); names cut at 256 chars.
    """
    all_secs = pe_sections(parsed)
    kept = all_secs[:MAX_SECTIONS]
    entropies = _section_entropies(parsed, kept)
    sections = [{"name": clean(s.name, NAME_CAP), "size": s.size, "entropy": ent, "vsize": s.virtual_size,
                 "props": tok.section_props(s.characteristics), "offset": s.pointerto_raw_data,
                 "characteristics": s.characteristics} for s, ent in zip(kept, entropies, strict=True)]
    return {"entry": _entry_section(parsed.binary, sections), "sections": sections,
            "truncated": len(all_secs) > MAX_SECTIONS, "table_end": _section_table_end(parsed.data)}


def _section_table_end(buf: bytes) -> int:
    """Where the section table the COFF header declares ends (the parse step checked the headers)."""
    (lfanew,) = struct.unpack_from("<I", buf, 0x3C)
    nsections, _, _, _, size_opt = struct.unpack_from("<HIIIH", buf, lfanew + 6)
    return lfanew + 24 + size_opt + 40 * nsections


# ---------------------------------------------------------------------------------------------
# pe_imports (1280 dims) + imphash

IMPORTS_TYPE = pa.struct([
    ("libraries", pa.list_(pa.struct([("name", pa.string()), ("functions", pa.list_(pa.string())),
                                      ("is_ordinal", pa.list_(pa.bool_()))]))),
    ("imphash", pa.string()),
    ("truncated", pa.bool_()),
])
IMPORTS_DIMS = hashed_dim_names("library_hash", 256) + hashed_dim_names("function_hash", 1024)


def _fill_imports(raws: list[dict], out: np.ndarray) -> None:
    """Lower-cased library names (each once, sorted) into 256 hashed dims; one ``library:function``
    token per imported function (library lower-cased, function as stored) into 1024."""
    bins = TokenBins(out)
    for i, raw in enumerate(raws):
        libraries: set[str] = set()
        qualified: list[str] = []
        for entry in raw["libraries"]:
            library = entry["name"].lower()
            libraries.add(library)
            qualified += [f"{library}:{function}" for function in entry["functions"]]
        bins.add(i, 0, sorted(libraries), 256)
        bins.add(i, 256, qualified, 1024)
    bins.write()


# md5 of nothing: what LIEF returns for import libraries that list no function at all
_MD5_OF_NOTHING = "d41d8cd98f00b204e9800998ecf8427e"


def imphash(binary) -> str:
    """LIEF's imphash in pefile mode (``pefile.PE.get_imphash()``'s definition) over the imports LIEF
    parsed; "" when no function is imported, as pefile (and pe_imports version 1) say, where LIEF
    gives the md5 of an empty string for a library listed without functions."""
    lief = load_lief()
    digest = lief.PE.get_imphash(binary, lief.PE.IMPHASH_MODE.PEFILE)
    return "" if digest == _MD5_OF_NOTHING else digest


@declare(REGISTRY, name="pe_imports", version=3, formats=["pe"], stage="structure", raw_type=IMPORTS_TYPE,
         dim_names=IMPORTS_DIMS, fill=_fill_imports)
def pe_imports(parsed: Parsed) -> dict:
    """Imported libraries and functions (ordinals as ``ord<N>``), EMBER v2's imports, plus imphash.

    Duplicate library entries are merged (EMBER). Caps: 4,096 libraries, 10,000 functions in all, the
    first 100,000 import entries read (``truncated`` says when cut), names cut at 1,024 chars.
    imphash: :func:`imphash` over every entry LIEF parsed (LIEF reads at most 65,536 per library).
    Version 2: the imphash is LIEF's; version 1 computed it here over the first 100,000 entries. The
    two differ for a file with more import entries than that, and for one that lists a library
    without any function next to libraries with functions (LIEF's list then holds an empty item).
    Version 3: ``is_ordinal`` says, per function, whether it is imported by ordinal (a function may
    really be named ``ord5``); the vector is unchanged.
    """
    merged: dict[str, list[str]] = {}
    ordinal: dict[str, list[bool]] = {}
    n_funcs = n_seen = 0
    truncated = False
    for lib in items(parsed.binary.imports):
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
                ordinal[lib_name] = []
        kept: list = []  # this entry's function names, cleaned together below
        flags: list[bool] = []
        for e in items(lib.entries):
            n_seen += 1
            if n_seen > MAX_IMPORT_SCAN:
                truncated = True
                break
            if funcs is None or n_funcs >= MAX_FUNCTIONS:
                truncated = True
                continue
            by_ordinal = bool(e.is_ordinal)
            kept.append(f"ord{int(e.ordinal)}" if by_ordinal else e.name)
            flags.append(by_ordinal)
            n_funcs += 1
        if kept:
            funcs.extend(clean_all(kept, IMPORT_NAME_CAP))
            ordinal[lib_name].extend(flags)
    return {"libraries": [{"name": k, "functions": v, "is_ordinal": ordinal[k]} for k, v in merged.items()],
            "imphash": imphash(parsed.binary), "truncated": truncated}


# ---------------------------------------------------------------------------------------------
# pe_exports (128 dims)

EXPORTS_TYPE = pa.struct([("functions", pa.list_(pa.string())), ("truncated", pa.bool_())])


def _fill_exports(raws: list[dict], out: np.ndarray) -> None:
    bins = TokenBins(out)
    for i, raw in enumerate(raws):
        bins.add(i, 0, raw["functions"], 128)
    bins.write()


@declare(REGISTRY, name="pe_exports", version=1, formats=["pe"], stage="structure", raw_type=EXPORTS_TYPE,
         dim_names=hashed_dim_names("export_hash", 128), fill=_fill_exports)
def pe_exports(parsed: Parsed) -> dict:
    """Exported function names (EMBER v2). Caps: 10,000 names, each cut at 1,024 chars."""
    funcs = export_names(parsed)
    names = clean_all(funcs[:MAX_FUNCTIONS], IMPORT_NAME_CAP)
    return {"functions": names, "truncated": len(funcs) > MAX_FUNCTIONS}


# ---------------------------------------------------------------------------------------------
# pe_data_directories (30 dims)

DIRS_TYPE = pa.list_(pa.struct([("name", pa.string()), ("size", pa.int64()),
                                ("virtual_address", pa.int64()), ("listed", pa.bool_())]))
DIRS_DIMS = [f"{n}.{f}" for n in tok.DIR_NAMES[:NUM_DIRS] for f in ("size", "virtual_address")]
DIR_SLOTS = len(tok.DIR_NAMES)  # 16: the table's standard length
DIR_ENTRY = struct.Struct("<II")  # RVA, size


def _fill_dirs(raws: list[list], out: np.ndarray) -> None:
    """(size, RVA) of the first 15 directories the parser listed, in table order; others are 0."""
    for i, raw in enumerate(raws):
        values = []
        for entry in raw[:NUM_DIRS]:
            values += (entry["size"], entry["virtual_address"]) if entry["listed"] else (0, 0)
        if values:
            out[i, :len(values)] = values


@declare(REGISTRY, name="pe_data_directories", version=2, formats=["pe"], stage="structure",
         raw_type=DIRS_TYPE, dim_names=DIRS_DIMS, fill=_fill_dirs)
def pe_data_directories(parsed: Parsed) -> list:
    """Size and RVA of each data directory in table order (at most 16; the first 15 vectorised, as EMBER).

    The table starts right after the fixed part of the optional header (96 bytes for PE32, 112 for
    PE32+, whatever SizeOfOptionalHeader says). Version 2 reads the 16 standard slots from the bytes
    there (as many whole slots as the file holds) and says which ones the parser listed
    (``listed``: LIEF reads NumberOfRvaAndSizes entries); version 1 kept only the listed ones. The
    vector, from the listed ones, is unchanged; the ``ember2`` scheme reads 15 slots whatever
    NumberOfRvaAndSizes says, as EMBER's LIEF 0.9 did.
    """
    b, buf = parsed.binary, parsed.data
    listed = min(len(b.data_directories), DIR_SLOTS)
    (lfanew,) = struct.unpack_from("<I", buf, 0x3C)
    at = lfanew + 24 + (112 if _pe32_plus(buf, lfanew) else 96)
    whole = max(0, min(DIR_SLOTS, (len(buf) - at) // DIR_ENTRY.size))
    out = []
    for i in range(whole):
        rva, size = DIR_ENTRY.unpack_from(buf, at + DIR_ENTRY.size * i)
        out.append({"name": tok.DIR_NAMES[i], "size": size, "virtual_address": rva, "listed": i < listed})
    return out


def _pe32_plus(buf: bytes, lfanew: int) -> bool:
    """The optional header's layout as LIEF 1.0 decides it: by the magic (0x10B PE32, 0x20B PE32+),
    else by SizeOfOptionalHeader (240: PE32+; anything else LIEF parses is PE32)."""
    (size_opt,) = struct.unpack_from("<H", buf, lfanew + 20)
    magic = int.from_bytes(buf[lfanew + 24:lfanew + 26], "little")
    return magic == 0x20B or (magic != 0x10B and size_opt == 240)
