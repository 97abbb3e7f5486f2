"""The ``ember2`` scheme: EMBER v2's ``feature_vector`` (2,381 float32), from binfeat's raw features.

EMBER v2 is ``PEFeatureExtractor(feature_version=2)`` of elastic/ember, computed with LIEF 0.9.0 and
scikit-learn's ``FeatureHasher``. Its groups, in order (offset, dims): histogram (0, 256),
byteentropy (256, 256), strings (512, 104), general (616, 10), header (626, 62), section (688, 255),
imports (943, 1280), exports (2223, 128), datadirectories (2351, 30). Hashed parts use
FeatureHasher's rule (:func:`extract.hashing.add_feature_hashed`); tokens are spelled as LIEF 0.9
spelled them (:mod:`extract.schemes.lief09`). The rules, where they differ from binfeat's groups:

- **parse**: EMBER's LIEF 0.9 parses a PE whose magic is PE32 or PE32+; anything else (another
  format, a PE binfeat's parse refused, another magic) gets EMBER's values for "no binary": general
  is (size, 0, ...), header hashes the empty machine, subsystem and magic tokens (one signed 1 in
  each of those three hash blocks), everything else structural is 0. A PE whose structure binfeat
  skipped (larger than ``max_structural_bytes``) gets NaN there: its values are unknown;
- **histogram, byteentropy**: EMBER divides by the total, so an empty file gives NaN (binfeat: 0);
- **general**: binfeat's general fields, except ``exports``, which counts named exports only;
- **header**: machine, COFF characteristics, subsystem, DLL characteristics and magic from the raw
  numbers, spelled by LIEF 0.9;
- **section**: when the section table the COFF header declares runs past the file's end, LIEF 0.9
  read no section at all. The entry section is LIEF 0.9's ``section_from_offset(entrypoint)`` with
  ``entrypoint`` = ImageBase + AddressOfEntryPoint (a virtual address, compared with raw file
  offsets: PointerToRawData <= it < PointerToRawData + SizeOfRawData, the sum in 32 bits), else the
  first section with MEM_EXECUTE, else "". Its name is hashed character by character (EMBER hands
  FeatureHasher a bare string); a section's characteristics are LIEF 0.9's list (multi-bit
  alignment values tested with ``&``);
- **imports**: ordinal imports spelled ``ordinal<N>``;
- **exports**: named exports only (LIEF 0.9 lists no unnamed export);
- **datadirectories**: 15 slots (size, RVA) read from the bytes after the fixed optional header,
  whatever NumberOfRvaAndSizes says; all 0 when those 120 bytes are not all in the file.

Differences that remain (LIEF 1.0's parse against 0.9's, binfeat's caps) are listed in
docs/ember2.md.
"""

from __future__ import annotations

import numpy as np

from extract.groups.bytelevel import count_shares, strings_rows
from extract.hashing import TokenBins
from extract.schemes import lief09
from extract.schemes.base import Block, RowBatch, Scheme
from extract.worker import one_line

NAME = "ember2"
VERSION = 1
PARSED, UNPARSED, UNKNOWN = "parsed", "unparsed", "unknown"
GENERAL = ("size", "vsize", "has_debug", "exports", "imports", "has_relocations", "has_resources",
           "has_signature", "has_tls", "symbols")
HEADER_HASHED = (("machine", 10), ("characteristics", 10), ("subsystem", 10), ("dll_characteristics", 10),
                 ("magic", 10))
HEADER_INTS = ("major_image_version", "minor_image_version", "major_linker_version", "minor_linker_version",
               "major_operating_system_version", "minor_operating_system_version", "major_subsystem_version",
               "minor_subsystem_version", "sizeof_code", "sizeof_headers", "sizeof_heap_commit")
SECTION_HASH = 50
DIRECTORIES = ("EXPORT_TABLE", "IMPORT_TABLE", "RESOURCE_TABLE", "EXCEPTION_TABLE", "CERTIFICATE_TABLE",
               "BASE_RELOCATION_TABLE", "DEBUG", "ARCHITECTURE", "GLOBAL_PTR", "TLS_TABLE", "LOAD_CONFIG_TABLE",
               "BOUND_IMPORT", "IAT", "DELAY_IMPORT_DESCRIPTOR", "CLR_RUNTIME_HEADER")
NAME_CUT = 10_000  # EMBER clips import and export names to this many characters
PE_GROUPS = ("pe_header", "pe_section", "pe_imports", "pe_exports", "pe_data_directories")


def parse_states(rows: RowBatch) -> list[str]:
    """Per row: whether LIEF 0.9 parsed the file (PARSED), refused it (UNPARSED), or binfeat cannot
    tell because it skipped the structure (UNKNOWN)."""
    states = []
    for i in range(rows.n):
        header, general = rows.raw["pe_header"][i], rows.raw["general"][i]
        if rows.format[i] != "pe":
            states.append(UNPARSED)
        elif header is not None:
            states.append(PARSED if lief09.parses(header["optional"]["magic_number"]) else UNPARSED)
        elif general is not None and general.get("vsize") is None:
            skipped = "structure: skipped" in (rows.error[i] or "")
            states.append(UNKNOWN if skipped else UNPARSED)
        else:
            states.append(PARSED)  # the header group alone failed: its block is NaN
    return states


def _block(name: str, labels: list[str], reads: tuple[str, ...], row_fill, doc: str, window_fill=None) -> Block:
    """A block filled row by row (zeros beforehand): ``row_fill(rows, i, out_row, state, bins)`` with
    the row's parse state (:func:`parse_states`) and the window's hashed parts (``bins``, a
    :class:`TokenBins` over the block, written once the rows are done). ``window_fill(rows, present,
    out)``, when given, fills the rows ``present`` (not errors, raw value there) at once; the rows
    whose raw value is missing are NaN, and a failure falls back to the rows one by one."""

    def fill(rows: RowBatch, states: list[str], out: np.ndarray, errors: list[list[str]]) -> None:
        out[:] = 0.0
        todo = [i for i in range(rows.n) if rows.status[i] != "error"]
        if window_fill is not None:
            column = rows.raw[reads[0]]
            present = [i for i in todo if column[i] is not None]
            if len(present) < len(todo):
                out[[i for i in todo if column[i] is None]] = np.nan
            try:
                if present:
                    window_fill(rows, present, out)
                return
            except Exception:  # find the rows it fails on
                out[present] = 0.0
                todo = present
        bins = TokenBins(out)
        for i in todo:
            try:
                row_fill(rows, i, out[i], states[i], bins)
            except Exception as exc:
                bins.discard_row(i)
                out[i] = np.nan
                errors[i].append(f"{NAME}.{name}: vectorise: {one_line(exc)}")
        bins.write()

    return Block(name=name, labels=tuple(labels), reads=reads, fill=fill, doc=doc)


def _raw_or_missing(rows: RowBatch, column: str, i: int, out_row: np.ndarray):
    """Row i's raw value; when the group failed on a parsed file: the block is NaN (None returned)."""
    raw = rows.raw[column][i]
    if raw is None:
        out_row[:] = np.nan
    return raw


# ---------------------------------------------------------------------------------------------
# byte-level blocks: binfeat's raw values are EMBER's

def _shares_rows(column: str):
    def fill(rows: RowBatch, present: list[int], out: np.ndarray) -> None:
        counts, totals = count_shares([rows.raw[column][i] for i in present])
        with np.errstate(invalid="ignore", divide="ignore"):
            out[present] = counts / totals[:, None]  # EMBER: 0/0 is NaN for an empty file

    return fill


def _shares_row(column: str):
    def fill(rows: RowBatch, i: int, out_row: np.ndarray, _state: str, _bins: TokenBins) -> None:
        counts, totals = count_shares([rows.raw[column][i]])
        with np.errstate(invalid="ignore", divide="ignore"):
            out_row[:] = counts[0] / totals[0]

    return fill


def _strings_rows(rows: RowBatch, present: list[int], out: np.ndarray) -> None:
    block = np.zeros((len(present), out.shape[1]), np.float32)
    strings_rows([rows.raw["strings"][i] for i in present], block)
    out[present] = block


def _strings(rows, i, out_row, _state, _bins):
    block = np.zeros((1, out_row.size), np.float32)
    strings_rows([rows.raw["strings"][i]], block)
    out_row[:] = block[0]


# ---------------------------------------------------------------------------------------------
# structural blocks

def _general(rows, i, out_row, state, _bins):
    general = rows.raw["general"][i]
    if general is None:
        out_row[:] = np.nan
        return
    if state != PARSED:
        out_row[0] = general["size"]
        if state == UNKNOWN:
            out_row[1:] = np.nan
        return
    values = dict(general)
    exports = rows.raw["pe_exports"][i]
    if exports is not None and values.get("exports") is not None:
        values["exports"] -= sum(1 for f in exports["functions"] if not f)
    out_row[:] = [np.nan if values.get(k) is None else float(values[k]) for k in GENERAL]


def _header(rows, i, out_row, state, bins):
    if state == UNKNOWN:
        out_row[:] = np.nan
        return
    tokens = {"machine": [""], "characteristics": [], "subsystem": [""], "dll_characteristics": [], "magic": [""]}
    ints = [0.0] * len(HEADER_INTS)
    timestamp = 0.0
    if state == PARSED:
        raw = _raw_or_missing(rows, "pe_header", i, out_row)
        if raw is None:
            return
        coff, opt = raw["coff"], raw["optional"]
        timestamp = float(coff["timestamp"])
        tokens = {"machine": [lief09.machine(coff["machine_number"])],
                  "characteristics": lief09.header_flags(coff["characteristics_bits"]),
                  "subsystem": [lief09.subsystem(opt["subsystem_number"])],
                  "dll_characteristics": lief09.dll_flags(opt["dll_characteristics_bits"]),
                  "magic": [lief09.magic(opt["magic_number"])]}
        ints = [float(opt[k]) for k in HEADER_INTS]
    out_row[0] = timestamp
    pos = 1
    for key, dims in HEADER_HASHED:
        bins.add_feature_hashed(i, pos, tokens[key], dims)
        pos += dims
    out_row[pos:] = ints


def entry_section(sections: list[dict], entrypoint: int) -> str:
    """LIEF 0.9's entry section as EMBER asked for it (see the module docstring)."""
    for s in sections:
        if s["offset"] <= entrypoint < (s["offset"] + s["size"]) & 0xFFFFFFFF:
            return s["name"]
    for s in sections:
        if s["characteristics"] & lief09.MEM_EXECUTE:
            return s["name"]
    return ""


def _structure(rows: RowBatch, column: str, i: int, out_row: np.ndarray, state: str):
    """Row i's raw value of a structural group when LIEF 0.9 parsed the file; None otherwise (the
    block stays 0, EMBER's value, or becomes NaN, unknown, when binfeat has no value)."""
    if state == PARSED:
        return _raw_or_missing(rows, column, i, out_row)
    if state == UNKNOWN:
        out_row[:] = np.nan
    return None


def _section(rows, i, out_row, state, bins):
    raw = _structure(rows, "pe_section", i, out_row, state)
    header = rows.raw["pe_header"][i]
    if raw is None or header is None:
        if state == PARSED:  # a group failed on a parsed file: unknown
            out_row[:] = np.nan
        return
    size = rows.raw["general"][i]["size"]
    sections = raw["sections"] if raw["table_end"] <= size else []
    opt = header["optional"]
    entry = entry_section(sections, opt["imagebase"] + opt["addressof_entrypoint"])
    props = [lief09.section_props(s["characteristics"]) for s in sections]
    names = [s["name"] for s in sections]
    out_row[0] = len(sections)
    out_row[1] = sum(1 for s in sections if s["size"] == 0)
    out_row[2] = sum(1 for s in sections if s["name"] == "")
    out_row[3] = sum(1 for p in props if "MEM_READ" in p and "MEM_EXECUTE" in p)
    out_row[4] = sum(1 for p in props if "MEM_WRITE" in p)
    parts = ((names, [s["size"] for s in sections]), (names, [s["entropy"] for s in sections]),
             (names, [s["vsize"] for s in sections]), (list(entry), None),
             ([t for s, p in zip(sections, props, strict=True) if s["name"] == entry for t in p], None))
    for k, (tokens, weights) in enumerate(parts):
        bins.add_feature_hashed(i, 5 + k * SECTION_HASH, tokens, SECTION_HASH, weights)


def _imports(rows, i, out_row, state, bins):
    raw = _structure(rows, "pe_imports", i, out_row, state)
    if raw is None:
        return
    libraries: set[str] = set()
    functions: list[str] = []
    for lib in raw["libraries"]:
        library = lib["name"].lower()
        libraries.add(library)
        for name, by_ordinal in zip(lib["functions"], lib["is_ordinal"], strict=True):
            functions.append(f"{library}:ordinal{name[3:]}" if by_ordinal else f"{library}:{name[:NAME_CUT]}")
    bins.add_feature_hashed(i, 0, sorted(libraries), 256)
    bins.add_feature_hashed(i, 256, functions, 1024)


def _exports(rows, i, out_row, state, bins):
    raw = _structure(rows, "pe_exports", i, out_row, state)
    if raw is not None:
        bins.add_feature_hashed(i, 0, [f[:NAME_CUT] for f in raw["functions"] if f], 128)


def _datadirectories(rows, i, out_row, state, _bins):
    raw = _structure(rows, "pe_data_directories", i, out_row, state)
    if raw is not None and len(raw) >= len(DIRECTORIES):
        for k, entry in enumerate(raw[:len(DIRECTORIES)]):
            out_row[2 * k] = entry["size"]
            out_row[2 * k + 1] = entry["virtual_address"]


def _hashed(prefix: str, dims: int) -> list[str]:
    return [f"{prefix}_{k}" for k in range(dims)]


BLOCKS = (
    ("histogram", [f"0x{b:02x}" for b in range(256)], ("byte_histogram",),
     _shares_row("byte_histogram"), "byte value counts / size (EMBER ByteHistogram)", _shares_rows("byte_histogram")),
    ("byteentropy", [f"entropy{r}_nibble0x{n:x}" for r in range(16) for n in range(16)], ("byte_entropy_histogram",),
     _shares_row("byte_entropy_histogram"), "byte-entropy histogram / total (EMBER ByteEntropyHistogram)",
     _shares_rows("byte_entropy_histogram")),
    ("strings", ["numstrings", "avlength", "printables", *[f"printabledist_0x{c:02x}" for c in range(0x20, 0x80)],
                 "entropy", "paths", "urls", "registry", "MZ"], ("strings",), _strings,
     "printable strings (EMBER StringExtractor)", _strings_rows),
    ("general", list(GENERAL), ("general", "pe_exports"), _general, "EMBER GeneralFileInfo"),
    ("header", ["timestamp", *[n for key, d in HEADER_HASHED for n in _hashed(f"{key}_hash", d)], *HEADER_INTS],
     ("pe_header",), _header, "EMBER HeaderFileInfo"),
    ("section", ["count", "zero_size", "empty_name", "rx", "w", *_hashed("size_hash", SECTION_HASH),
                 *_hashed("entropy_hash", SECTION_HASH), *_hashed("vsize_hash", SECTION_HASH),
                 *_hashed("entry_name_hash", SECTION_HASH), *_hashed("entry_characteristics_hash", SECTION_HASH)],
     ("pe_section", "pe_header", "general"), _section, "EMBER SectionInfo"),
    ("imports", [*_hashed("library_hash", 256), *_hashed("function_hash", 1024)], ("pe_imports",), _imports,
     "EMBER ImportsInfo"),
    ("exports", _hashed("hash", 128), ("pe_exports",), _exports, "EMBER ExportsInfo"),
    ("datadirectories", [f"{d}_{f}" for d in DIRECTORIES for f in ("size", "virtual_address")],
     ("pe_data_directories",), _datadirectories, "EMBER DataDirectories (15 slots)"),
)
GROUPS = ("byte_histogram", "byte_entropy_histogram", "strings", "general", *PE_GROUPS)


def ember2_scheme() -> Scheme:
    blocks = tuple(_block(*spec) for spec in BLOCKS)
    return Scheme(name=NAME, version=VERSION, blocks=blocks, groups=GROUPS, prepare=_prepare,
                  doc="EMBER v2's feature_vector (2,381 float32), from binfeat's raw features")


def _prepare(rows: RowBatch) -> list[str]:
    return parse_states(rows)
