"""The PE parse step (one LIEF parse, checked and wrapped), EMBER's general fields, shared helpers.

LIEF's ParserConfig skips the resource tree and base relocations (no group needs more than their
data-directory entries, which is also where ``has_resources``/``has_relocations`` come from) and
exception tables; Authenticode signatures are parsed (pe_authenticode counts them; the cost is paid
by signed files only). LIEF refuses a memoryview, so a memoryview is copied once into bytes.

LIEF cannot be told to skip the COFF symbol table, and only its size is used (EMBER's ``symbols``):
when it is large, LIEF gets a copy whose header says there is none, and the count comes from
:mod:`extract.coff_symbols`, which counts what LIEF would have read.
"""

from __future__ import annotations

import functools
import struct
from typing import Any, NamedTuple

from extract.coff_symbols import symbol_count
from extract.parsed import LIEF, Parsed, ParseError, items, load_lief, register_general, register_parser

MIN_PE = 0x40 + 4 + 20  # DOS header, PE signature, COFF header
SYMTAB_FIELDS = 4 + 8  # PointerToSymbolTable, NumberOfSymbols: 8 bytes this far past e_lfanew
# Hide the symbol table from LIEF when it has at least one symbol per this many bytes of file: LIEF
# spends ~0.37 us per symbol, the copy ~0.11 ns per byte (measured on the sample corpus).
BYTES_PER_SYMBOL_TO_HIDE = 4096
DIR_RESOURCE, DIR_SECURITY, DIR_BASERELOC, DIR_CLR = 2, 4, 5, 14
MAX_PARSED_SECTIONS = 4096  # the Windows loader's format limit is 65,535; real files have a few dozen


@functools.cache
def _config(signature: bool) -> Any:
    """Built on first parse (never at import).

    Signature parsing costs ~40% of the parse, so it is asked for only when the security directory
    is non-empty (see :func:`_has_security_dir`)."""
    cfg = load_lief().PE.ParserConfig()
    cfg.parse_rsrc = False
    cfg.parse_reloc = False
    cfg.parse_exceptions = False
    cfg.parse_arm64x_binary = False
    cfg.parse_signature = signature
    cfg.parse_imports = True
    cfg.parse_exports = True
    return cfg


def _check_headers(buf: bytes) -> None:
    """Cheap sanity checks LIEF would otherwise turn into a None or a partial object."""
    if len(buf) < MIN_PE or buf[:2] != b"MZ":
        raise ParseError(f"not a PE: {len(buf)} bytes, too short for DOS+COFF headers or no MZ")
    (lfanew,) = struct.unpack_from("<I", buf, 0x3C)
    if lfanew + 24 > len(buf):
        raise ParseError(f"e_lfanew 0x{lfanew:x} points past the end of the file ({len(buf)} bytes)")
    if buf[lfanew:lfanew + 4] != b"PE\x00\x00":
        raise ParseError(f"no PE signature at e_lfanew 0x{lfanew:x}")
    (nsections,) = struct.unpack_from("<H", buf, lfanew + 6)
    if nsections > MAX_PARSED_SECTIONS:
        # LIEF would build every one of them (0.7 s for 65,535 on a 5 MB file); no real PE has this many
        raise ParseError(f"NumberOfSections {nsections} is absurd (more than {MAX_PARSED_SECTIONS}): not parsed")


def _has_security_dir(buf: bytes) -> bool:
    """Whether the optional header's security (Authenticode) directory entry is non-empty."""
    (lfanew,) = struct.unpack_from("<I", buf, 0x3C)
    opt = lfanew + 24
    if opt + 2 > len(buf):
        return False
    (magic,) = struct.unpack_from("<H", buf, opt)
    count_at, dirs_at = (opt + 92, opt + 96) if magic == 0x10B else (opt + 108, opt + 112)
    entry = dirs_at + DIR_SECURITY * 8
    if entry + 8 > len(buf) or struct.unpack_from("<I", buf, count_at)[0] <= DIR_SECURITY:
        return False
    rva, size = struct.unpack_from("<II", buf, entry)
    return rva != 0 and size != 0


def _without_symbols(buf: bytes) -> tuple[bytes, int]:
    """(what LIEF parses, how many COFF symbols LIEF lists for ``buf``)."""
    (lfanew,) = struct.unpack_from("<I", buf, 0x3C)
    at = lfanew + SYMTAB_FIELDS
    ptr, nsym = struct.unpack_from("<II", buf, at)
    count = symbol_count(buf, ptr, nsym)
    if count * BYTES_PER_SYMBOL_TO_HIDE < len(buf):
        return buf, count
    return b"".join((buf[:at], bytes(8), buf[at + 8:])), count


def parse_pe(data: bytes | memoryview) -> Parsed:
    """LIEF-parse a PE once for every pe_* group; ParseError when it is not one LIEF can read."""
    buf = data if isinstance(data, bytes) else bytes(data)
    _check_headers(buf)
    seen, symbols = _without_symbols(buf)
    try:
        binary = load_lief().PE.parse(seen, _config(_has_security_dir(buf)))
    except Exception as exc:  # LIEF raises assorted types on hostile input
        raise ParseError(f"LIEF failed on the PE: {type(exc).__name__}: {exc}"[:300]) from exc
    if binary is None:
        raise ParseError("LIEF could not parse the PE (returned None)")
    return Parsed(format="pe", data=buf, size=len(buf), binary=binary, extra={"pe_coff_symbols": symbols})


register_parser("pe", parse_pe, library=LIEF)


# ---------------------------------------------------------------------------------------------
# Shared helpers for the pe_* groups.

class Section(NamedTuple):
    """One section as LIEF parsed it, its properties read once per parse (each LIEF property read
    costs a call into the binding; several groups read the same ones)."""

    section: Any  # LIEF's object (its content)
    name: Any  # LIEF's name: str, or bytes when not UTF-8
    virtual_address: int
    virtual_size: int
    sizeof_raw_data: int
    pointerto_raw_data: int
    characteristics: int
    offset: int
    size: int


def sections(parsed: Parsed) -> list[Section]:
    """LIEF's sections of the PE, in table order (read once per parse)."""
    table = parsed.extra.get("pe_sections")
    if table is None:
        table = parsed.extra["pe_sections"] = [
            Section(s, s.name, int(s.virtual_address), int(s.virtual_size), int(s.sizeof_raw_data),
                    int(s.pointerto_raw_data), int(s.characteristics), int(s.offset), int(s.size))
            for s in items(parsed.binary.sections)]
    return table


def data_directories(parsed: Parsed) -> list[tuple[int, int]]:
    """(rva, size) of each data directory LIEF listed, in table order (read once per parse; the
    security directory's "rva" is a file offset)."""
    table = parsed.extra.get("pe_directories")
    if table is None:
        table = parsed.extra["pe_directories"] = [
            (int(d.rva), int(d.size)) for d in items(parsed.binary.data_directories)]
    return table


def data_dir(parsed: Parsed, index: int) -> tuple[int, int]:
    """(rva, size) of data directory ``index`` (the security directory's "rva" is a file offset)."""
    dirs = data_directories(parsed)
    return dirs[index] if index < len(dirs) else (0, 0)


def rva_to_offset(binary, rva: int, size: int, file_size: int) -> int | None:
    """File offset of ``size`` bytes at ``rva`` when they lie wholly inside the file, else None.

    LIEF returns the RVA itself when no section holds it (like the loader for header RVAs), so the
    result is bounds-checked here.
    """
    if rva <= 0 or size < 0:
        return None
    try:
        off = int(binary.rva_to_offset(rva))
    except Exception:
        return None
    if off < 0 or off + size > file_size:
        return None
    return off


def export_names(parsed: Parsed) -> list[str]:
    """Names of the export table's entries, LIEF's exported_functions order (computed once per parse:
    pe_exports and the general fields both need it, and it costs ~1 us per export)."""
    names = parsed.extra.get("pe_export_names")
    if names is None:
        exp = parsed.binary.get_export()
        names = [e.name for e in items(exp.entries)] if exp is not None else []
        parsed.extra["pe_export_names"] = names
    return names


def _general(parsed: Parsed) -> dict[str, int]:
    """EMBER's general fields from the LIEF parse.

    vsize: LIEF's virtual_size (the furthest of the headers' end, e_lfanew + 24 + the fixed optional
    header, and every section's VirtualAddress + VirtualSize, rounded up to SectionAlignment); has_debug: a debug
    directory was parsed; exports / imports: number of exported / imported functions (delay imports
    excluded, as LIEF and EMBER), counted from the export / import tables, which is what LIEF's
    exported_functions / imported_functions list, without building those lists; has_relocations /
    has_resources: the base-relocation / resource data directory is non-empty (the trees are not
    parsed); has_signature: LIEF parsed at least one Authenticode signature; has_tls: TLS directory
    present; symbols: number of COFF symbols LIEF reads (counted by :mod:`extract.coff_symbols`).
    """
    b = parsed.binary
    reloc_rva, reloc_size = data_dir(parsed, DIR_BASERELOC)
    rsrc_rva, rsrc_size = data_dir(parsed, DIR_RESOURCE)
    return {
        "vsize": int(b.virtual_size),
        "has_debug": int(bool(b.has_debug)),
        "exports": len(export_names(parsed)),
        "imports": sum(len(lib.entries) for lib in items(b.imports)),
        "has_relocations": int(reloc_rva != 0 and reloc_size != 0),
        "has_resources": int(rsrc_rva != 0 and rsrc_size != 0),
        "has_signature": int(bool(b.has_signatures)),
        "has_tls": int(bool(b.has_tls)),
        "symbols": parsed.extra["pe_coff_symbols"],
    }


register_general("pe", _general)
