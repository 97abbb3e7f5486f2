"""The ELF parse step, and the views of it (segments, sections, dynamic entries) several groups read.

One LIEF parse per file, configured to skip what no group uses: symbols (both tables), relocations,
notes, symbol versions and the overlay. The ELF header is read with ``struct`` so raw header values
are exactly the file's. Raw type numbers (segment types, section types, dynamic tags) are the file's
32-bit values: LIEF encodes processor-specific values with extra high bits, which are masked off.
"""

from __future__ import annotations

import struct
from typing import Any

from extract.groups.elf import phdrs
from extract.groups.elf.spec import SHT_SYMTAB, symbol_size
from extract.groups.shared import NAME_CAP, cached
from extract.parsed import LIEF, Parsed, ParseError, items, load_lief, register_parser
from extract.text import clean

_M32 = 0xFFFFFFFF
_CONFIG: Any = None


def _config() -> Any:
    global _CONFIG
    if _CONFIG is None:
        cfg = load_lief().ELF.ParserConfig()
        cfg.parse_relocations = False
        cfg.parse_symtab_symbols = False
        cfg.parse_symbol_versions = False
        cfg.parse_notes = False
        cfg.parse_overlay = False
        cfg.parse_dyn_symbols = False
        _CONFIG = cfg
    return _CONFIG


_EHDR_FIELDS = ("type", "machine", "version", "entry", "phoff", "shoff", "flags", "ehsize",
                "phentsize", "phnum", "shentsize", "shnum", "shstrndx")


def read_ehdr(data: bytes | memoryview) -> dict[str, int]:
    """The ELF header as the file says it (struct, no LIEF); ParseError when too short or bad ident."""
    head = bytes(data[:64])
    if len(head) < 16 or head[:4] != b"\x7fELF":
        raise ParseError("not an ELF file (bad magic or shorter than e_ident)")
    ei_class, ei_data = head[4], head[5]
    if ei_class not in (1, 2) or ei_data not in (1, 2):
        raise ParseError(f"ELF ident with class {ei_class} / data {ei_data} is not 32/64-bit LE/BE")
    end = "<" if ei_data == 1 else ">"
    fmt = end + ("HHIIIIIHHHHHH" if ei_class == 1 else "HHIQQQIHHHHHH")
    need = struct.calcsize(fmt)
    if len(head) < 16 + need:
        raise ParseError(f"ELF header truncated: {len(head)} bytes")
    vals = struct.unpack_from(fmt, head, 16)
    out = dict(zip(_EHDR_FIELDS, vals, strict=True))
    out.update(ei_class=ei_class, ei_data=ei_data, os_abi=head[7], abi_version=head[8],
               ei_version=head[6])
    return out


def parse_elf(data: bytes | memoryview) -> Parsed:
    """Parse with LIEF (symbols, relocations, notes, versions, overlay skipped)."""
    ehdr = read_ehdr(data)
    raw = data if isinstance(data, bytes) else bytes(data)
    try:
        binary = load_lief().ELF.parse(raw, _config())
    except Exception as exc:  # LIEF raises assorted types on hostile input
        raise ParseError(f"LIEF ELF parser failed: {type(exc).__name__}: {exc}"[:300]) from exc
    if binary is None:
        raise ParseError("LIEF could not parse the ELF file")
    return Parsed(format="elf", data=data, size=len(data), binary=binary, extra={"ehdr": ehdr})


register_parser("elf", parse_elf, library=LIEF)


def _val(x: Any) -> int:
    """A LIEF enum's number; LIEF hands back a plain int for values its enum does not list."""
    return x if isinstance(x, int) else x.value


def segments(parsed: Parsed) -> list[dict[str, int]]:
    """Program headers as plain values (type and flags as the file's 32-bit numbers): LIEF's list,
    read from the bytes when they agree with LIEF's first two and last entries (:mod:`.phdrs`)."""

    def build(p: Parsed) -> list[dict[str, int]]:
        lief_segs = p.binary.segments
        n = len(lief_segs)
        table = phdrs.read_table(p.data, p.extra["ehdr"], n)
        if table is not None and all(table[i] == phdrs.lief_segment(lief_segs[i], _val) for i in {0, 1, n - 1}
                                     if 0 <= i < n):
            return table
        return [phdrs.lief_segment(seg, _val) for seg in items(lief_segs)]

    return cached(parsed, "segments", build)


def sections(parsed: Parsed) -> list[dict[str, Any]]:
    """Section headers as plain values (cleaned name; type as the file's 32-bit number).

    LIEF hands back bytes for a name that is not UTF-8: clean() makes it an escaped str.
    """

    def build(p: Parsed) -> list[dict[str, Any]]:
        return [{"name": clean(s.name, NAME_CAP), "type": _val(s.type) & _M32, "flags": s.flags,
                 "offset": s.offset, "size": s.size, "addr": s.virtual_address, "link": s.link,
                 "entsize": s.entry_size} for s in items(p.binary.sections)]

    return cached(parsed, "sections", build)


def dynamic(parsed: Parsed) -> list[tuple[int, Any]]:
    """(raw tag, LIEF entry) for each dynamic entry, in file order."""
    return cached(parsed, "dynamic", lambda p: [(_val(e.tag) & _M32, e) for e in items(p.binary.dynamic_entries)])


def symtab_entries(parsed: Parsed) -> int:
    """Entries of the SHT_SYMTAB sections: size / entsize (the class's symbol size when entsize is 0)."""
    n = 0
    for sec in sections(parsed):
        if sec["type"] == SHT_SYMTAB:
            n += sec["size"] // (sec["entsize"] or symbol_size(parsed.extra["ehdr"]["ei_class"]))
    return n


def debug_sections(parsed: Parsed) -> int:
    """Number of .debug_* / .zdebug_* sections."""
    return sum(s["name"].startswith((".debug_", ".zdebug_")) for s in sections(parsed))
