"""The dynamic symbol table, read with numpy and split into imports and exports once per parse.

Reading the table directly is ~3x cheaper than LIEF's per-symbol objects (which the parse skips).
"""

from __future__ import annotations

import struct
from typing import Any

import numpy as np

from extract.groups.elf.parse import dynamic, sections
from extract.groups.elf.spec import (
    DT_HASH,
    DT_STRSZ,
    DT_STRTAB,
    DT_SYMTAB,
    SHT_DYNSYM,
    STB_GLOBAL,
    STB_GNU_UNIQUE,
    STB_WEAK,
    STT_COMMON,
    STT_FUNC,
    STT_GNU_IFUNC,
    STT_OBJECT,
    STT_TLS,
    STV_DEFAULT,
    STV_PROTECTED,
    symbol_size,
)
from extract.groups.shared import cached, symbol_names
from extract.parsed import Parsed

MAX_SYMBOLS = 10_000  # names kept per list
MAX_DYNSYM_READ = 1_000_000  # symbols read at all (hostile counts)

_SYM_DTYPES = {
    (2, "<"): np.dtype([("name", "<u4"), ("info", "u1"), ("other", "u1"), ("shndx", "<u2"),
                        ("value", "<u8"), ("size", "<u8")]),
    (2, ">"): np.dtype([("name", ">u4"), ("info", "u1"), ("other", "u1"), ("shndx", ">u2"),
                        ("value", ">u8"), ("size", ">u8")]),
    (1, "<"): np.dtype([("name", "<u4"), ("value", "<u4"), ("size", "<u4"), ("info", "u1"),
                        ("other", "u1"), ("shndx", "<u2")]),
    (1, ">"): np.dtype([("name", ">u4"), ("value", ">u4"), ("size", ">u4"), ("info", "u1"),
                        ("other", "u1"), ("shndx", ">u2")]),
}


def dynsym_location(parsed: Parsed) -> tuple[int, int, int, int] | None:
    """(symtab offset, symbol count, strtab offset, strtab size) of the dynamic symbol table.

    From the SHT_DYNSYM section and its linked string table when present, else from DT_SYMTAB /
    DT_STRTAB / DT_STRSZ, with the count from DT_HASH's nchain or, failing that, the distance from
    the symbol table to the string table (the usual layout). None when neither is found.
    """
    h = parsed.extra["ehdr"]
    ent = symbol_size(h["ei_class"])
    size = parsed.size
    secs = sections(parsed)
    for sec in secs:
        if sec["type"] == SHT_DYNSYM and 0 < sec["offset"] < size:
            link = sec["link"]
            if 0 < link < len(secs):
                strsec = secs[link]
                return sec["offset"], sec["size"] // ent, strsec["offset"], strsec["size"]
    dyn = {}
    for tag, e in dynamic(parsed):
        dyn.setdefault(tag, e.value)
    if DT_SYMTAB not in dyn or DT_STRTAB not in dyn:
        return None
    b = parsed.binary

    def off(va: int) -> int:
        try:
            o = b.virtual_address_to_offset(va)
        except Exception:
            return -1
        return o if isinstance(o, int) else -1

    sym_off, str_off = off(dyn[DT_SYMTAB]), off(dyn[DT_STRTAB])
    if not (0 < sym_off < size and 0 < str_off < size):
        return None
    count = 0
    if DT_HASH in dyn:
        hoff = off(dyn[DT_HASH])
        if hoff > 0 and hoff + 8 <= size:
            count = struct.unpack_from("<II" if h["ei_data"] == 1 else ">II", parsed.data, hoff)[1]
    if not count and str_off > sym_off:
        count = (str_off - sym_off) // ent
    return sym_off, count, str_off, dyn.get(DT_STRSZ, size - str_off)


def dynamic_symbols(parsed: Parsed) -> dict[str, Any]:
    """Imports and exports of the dynamic symbol table (rules in elf_imports / elf_exports).

    Keys: ``imports`` / ``exports`` (names, at most 10,000 each), ``n_imports`` / ``n_exports``
    (totals), ``c_imports`` / ``c_exports`` (functions, objects, weak among the kept), ``total``
    (symbols read).
    """

    def build(p: Parsed) -> dict[str, Any]:
        out: dict[str, Any] = {"imports": [], "exports": [], "n_imports": 0, "n_exports": 0, "total": 0,
                               "c_imports": (0, 0, 0), "c_exports": (0, 0, 0)}
        loc = dynsym_location(p)
        if loc is None:
            return out
        sym_off, count, str_off, str_size = loc
        h = p.extra["ehdr"]
        dt = _SYM_DTYPES[(h["ei_class"], "<" if h["ei_data"] == 1 else ">")]
        count = max(0, min(count, (p.size - sym_off) // dt.itemsize, MAX_DYNSYM_READ))
        if count == 0:
            return out
        syms = np.frombuffer(p.data, dtype=dt, count=count, offset=sym_off)
        str_size = max(0, min(str_size, p.size - str_off))
        strtab = bytes(p.data[str_off:str_off + str_size])
        info = syms["info"]
        bind = info >> 4
        typ = info & 0xF
        named = (syms["name"] != 0) & ((bind == STB_GLOBAL) | (bind == STB_WEAK) | (bind == STB_GNU_UNIQUE))
        undef = syms["shndx"] == 0
        vis = syms["other"] & 3
        imp = np.flatnonzero(named & undef)
        exportable = (typ == STT_OBJECT) | (typ == STT_FUNC) | (typ == STT_COMMON) | (typ == STT_TLS) | (
            typ == STT_GNU_IFUNC)
        exp = np.flatnonzero(named & ~undef & exportable & ((vis == STV_DEFAULT) | (vis == STV_PROTECTED)))
        is_func = (typ == STT_FUNC) | (typ == STT_GNU_IFUNC)
        is_obj = (typ == STT_OBJECT) | (typ == STT_COMMON) | (typ == STT_TLS)
        weak = bind == STB_WEAK
        for key, idx in (("imports", imp), ("exports", exp)):
            kept = idx[:MAX_SYMBOLS]
            out[key] = symbol_names(strtab, syms["name"][kept].tolist())
            out["n_" + key] = int(idx.size)
            out["c_" + key] = (int(is_func[kept].sum()), int(is_obj[kept].sum()), int(weak[kept].sum()))
        out["total"] = count
        return out

    return cached(parsed, "dynsyms", build)
