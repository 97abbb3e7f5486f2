"""ELF structural feature groups (all named ``elf_*``) and the ELF parse step.

One LIEF parse per file, configured to skip what no group uses: symbols (both tables),
relocations, notes, symbol versions and the overlay. Dynamic symbols are read directly with numpy
from the table LIEF's section headers (or dynamic entries) locate, which is several times cheaper
than LIEF's per-symbol objects; stripped-or-not and the ``.symtab`` entry count come from the
section headers. The ELF header is read with ``struct`` so raw header values are exactly the file's.

Raw type numbers (segment types, section types, dynamic tags) are the file's 32-bit values: LIEF
encodes processor-specific values with extra high bits, which are masked off here.

Section entropy (shared with the Mach-O module) uses a small numba histogram over all of a file's
byte ranges in one call, compiled on first use (or by ``warm_up()``) and cached on disk by numba;
without numba it falls back to chunked ``np.bincount``.
"""

from __future__ import annotations

import math
import struct
import warnings
from typing import Any

import numpy as np
import pyarrow as pa

from extract.entropy import range_entropies
from extract.hashing import add_hashed, hash_tokens, hashed_dim_names
from extract.parsed import Parsed, ParseError, load_lief, register_general, register_parser
from extract.registry import REGISTRY, declare
from extract.text import clean

# ---------------------------------------------------------------------------------------------
# Caps on variable-length raw values (hostile files carry absurd counts).
MAX_SEGMENTS = 1024
MAX_SECTIONS = 4096
MAX_SYMBOLS = 10_000
MAX_LIBRARIES = 1024
NAME_CAP = 256
PATH_CAP = 1024

_M32 = 0xFFFFFFFF

# ---------------------------------------------------------------------------------------------
# Shared helpers (also used by the Mach-O module); byte-range entropy lives in extract.entropy.


def byte_entropy(buf: bytes | memoryview) -> float:
    """Shannon entropy in bits per byte of a buffer (0 for empty input)."""
    return range_entropies(buf, [(0, len(buf))])[0]


def onehot(value: Any, choices: tuple, other: bool = True) -> list[float]:
    """One-hot over ``choices`` plus a trailing "other" slot (unless ``other`` is False)."""
    out = [0.0] * (len(choices) + (1 if other else 0))
    try:
        out[choices.index(value)] = 1.0
    except ValueError:
        if other:
            out[-1] = 1.0
    return out


def onehot_names(prefix: str, choices: tuple, fmt: str = "{:#x}", other: bool = True) -> list[str]:
    names = [f"{prefix}={fmt.format(c) if not isinstance(c, str) else c}" for c in choices]
    return [*names, f"{prefix}=other"] if other else names


def _num(x: Any) -> float:
    """A raw number as float32-safe value (None → NaN)."""
    return float("nan") if x is None else float(x)


# ---------------------------------------------------------------------------------------------
# Parse step.

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


register_parser("elf", parse_elf)


# ---------------------------------------------------------------------------------------------
# Cached views of the parse shared by several groups.


def _cached(parsed: Parsed, key: str, fn):
    """Compute once per parse; LIEF warns when it meets an enum value it does not know: silenced."""
    if key not in parsed.extra:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            parsed.extra[key] = fn(parsed)
    return parsed.extra[key]


def _val(x: Any) -> int:
    """A LIEF enum's number; LIEF hands back a plain int for values its enum does not list."""
    return x if isinstance(x, int) else x.value


def _segments(parsed: Parsed) -> list[dict[str, int]]:
    def build(p: Parsed) -> list[dict[str, int]]:
        out = []
        for seg in p.binary.segments:
            out.append({
                "type": _val(seg.type) & _M32, "flags": _val(seg.flags) & _M32,
                "offset": seg.file_offset, "vaddr": seg.virtual_address, "filesz": seg.physical_size,
                "memsz": seg.virtual_size, "align": seg.alignment,
            })
        return out
    return _cached(parsed, "segments", build)


def _sections(parsed: Parsed) -> list[dict[str, Any]]:
    """Section headers as plain values (cleaned name; type as the file's 32-bit number).

    LIEF hands back bytes for a name that is not UTF-8: clean() makes it an escaped str.
    """

    def build(p: Parsed) -> list[dict[str, Any]]:
        return [{"name": clean(s.name, NAME_CAP), "type": _val(s.type) & _M32, "flags": s.flags,
                 "offset": s.offset, "size": s.size, "addr": s.virtual_address, "link": s.link,
                 "entsize": s.entry_size} for s in p.binary.sections]

    return _cached(parsed, "sections", build)


def _dynamic(parsed: Parsed) -> list[tuple[int, Any]]:
    """(raw tag, LIEF entry) for each dynamic entry."""
    return _cached(parsed, "dynamic", lambda p: [(_val(e.tag) & _M32, e) for e in p.binary.dynamic_entries])


# Dynamic symbol binding/type/visibility raw values (ELF gABI).
STB_GLOBAL, STB_WEAK, STB_GNU_UNIQUE = 1, 2, 10
STT_OBJECT, STT_FUNC, STT_COMMON, STT_TLS, STT_GNU_IFUNC = 1, 2, 5, 6, 10
STV_DEFAULT, STV_PROTECTED = 0, 3


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
SHT_DYNSYM = 11
DT_HASH, DT_STRTAB, DT_SYMTAB, DT_STRSZ = 4, 5, 6, 10
# Hard cap on dynamic symbols read at all (hostile counts); kept lists are capped at MAX_SYMBOLS.
MAX_DYNSYM_READ = 1_000_000


def _dynsym_location(parsed: Parsed) -> tuple[int, int, int, int] | None:
    """(symtab offset, symbol count, strtab offset, strtab size) of the dynamic symbol table.

    From the SHT_DYNSYM section and its linked string table when present, else from DT_SYMTAB /
    DT_STRTAB / DT_STRSZ, with the count from DT_HASH's nchain or, failing that, the distance from
    the symbol table to the string table (the usual layout). None when neither is found.
    """
    h = parsed.extra["ehdr"]
    ent = 24 if h["ei_class"] == 2 else 16
    size = parsed.size
    secs = _sections(parsed)
    for sec in secs:
        if sec["type"] == SHT_DYNSYM and 0 < sec["offset"] < size:
            link = sec["link"]
            if 0 < link < len(secs):
                strsec = secs[link]
                return sec["offset"], sec["size"] // ent, strsec["offset"], strsec["size"]
    dyn = {}
    for tag, e in _dynamic(parsed):
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


def _symbol_name(strtab: bytes, o: int) -> str:
    if o >= len(strtab):
        return ""
    e = strtab.find(b"\0", o, o + 4 * NAME_CAP)
    raw = strtab[o:e] if e >= 0 else strtab[o:o + 4 * NAME_CAP]
    if raw.isascii():
        return raw.decode("ascii")[:NAME_CAP]
    return clean(raw, NAME_CAP)


def symbol_names(strtab: bytes, offsets: list[int]) -> list[str]:
    """Names at string-table offsets (cut at 256 characters).

    When the names wanted are a good share of the table and it is all ASCII, the table is decoded
    and split once; otherwise each name is found on its own.
    """
    if not offsets:
        return []
    nuls = np.flatnonzero(np.frombuffer(strtab, dtype=np.uint8) == 0)
    if 3 * len(offsets) < nuls.size or not strtab.isascii():
        return [_symbol_name(strtab, o) for o in offsets]
    parts = strtab.decode("ascii").split("\0")
    starts = [0, *(nuls + 1).tolist()]
    get = dict(zip(starts, parts, strict=False)).get
    out = [get(o) for o in offsets]
    if None in out:  # offsets into the middle of a string (shared suffixes) or out of range
        out = [_symbol_name(strtab, o) if n is None else n for n, o in zip(out, offsets, strict=True)]
    if max(map(len, out)) > NAME_CAP:
        out = [n[:NAME_CAP] for n in out]
    return out


def _dynsyms(parsed: Parsed) -> dict[str, Any]:
    """Read the dynamic symbols with numpy and split them into imports and exports once.

    Reading the table directly is ~3x cheaper than LIEF's symbol objects (which the parse skips).
    """

    def build(p: Parsed) -> dict[str, Any]:
        out: dict[str, Any] = {"imports": [], "exports": [], "n_imports": 0, "n_exports": 0, "total": 0,
                               "c_imports": (0, 0, 0), "c_exports": (0, 0, 0)}
        loc = _dynsym_location(p)
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

    return _cached(parsed, "dynsyms", build)


# ---------------------------------------------------------------------------------------------
# elf_header

ELF_CLASSES = (1, 2)
ELF_DATA = (1, 2)
# OS/ABI: SYSV, HP-UX, NetBSD, GNU/Linux, Solaris, AIX, IRIX, FreeBSD, OpenBSD, ARM EABI, ARM, standalone
OS_ABIS = (0, 1, 2, 3, 6, 7, 8, 9, 12, 64, 97, 255)
# e_machine: none, SPARC, x86, m68k, MIPS, PowerPC, PPC64, S390, ARM, SuperH, SPARCv9, IA-64, x86-64,
# AArch64, RISC-V, BPF, LoongArch, MIPS RS3 LE, Alpha(0x9026), Xtensa, AVR, MSP430, TI C6000, Tilera
MACHINES = (0, 2, 3, 4, 8, 20, 21, 22, 40, 42, 43, 50, 62, 183, 243, 247, 258, 10, 0x9026, 94, 83,
            105, 140, 191)
# e_type: NONE, REL, EXEC, DYN, CORE
ELF_TYPES = (0, 1, 2, 3, 4)
_HEADER_NUMS = ("entry", "flags", "ehsize", "phentsize", "phnum", "shentsize", "shnum", "shstrndx",
                "phoff", "shoff", "abi_version", "version")

_HEADER_TYPE = pa.struct([
    ("ei_class", pa.uint8()), ("ei_data", pa.uint8()), ("ei_version", pa.uint8()),
    ("os_abi", pa.uint8()), ("abi_version", pa.uint8()), ("type", pa.uint16()),
    ("machine", pa.uint16()), ("version", pa.uint32()), ("entry", pa.uint64()),
    ("phoff", pa.uint64()), ("shoff", pa.uint64()), ("flags", pa.uint32()),
    ("ehsize", pa.uint16()), ("phentsize", pa.uint16()), ("phnum", pa.uint16()),
    ("shentsize", pa.uint16()), ("shnum", pa.uint16()), ("shstrndx", pa.uint16()),
])
_HEADER_KEYS = tuple(_HEADER_TYPE.names)
_HEADER_DIMS = (
    onehot_names("class", ELF_CLASSES, "{}") + onehot_names("data", ELF_DATA, "{}")
    + onehot_names("os_abi", OS_ABIS, "{}") + onehot_names("machine", MACHINES)
    + onehot_names("type", ELF_TYPES, "{}") + list(_HEADER_NUMS)
)


def _vec_header(raw: dict) -> np.ndarray:
    v = (onehot(raw["ei_class"], ELF_CLASSES) + onehot(raw["ei_data"], ELF_DATA)
         + onehot(raw["os_abi"], OS_ABIS) + onehot(raw["machine"], MACHINES)
         + onehot(raw["type"], ELF_TYPES) + [_num(raw[k]) for k in _HEADER_NUMS])
    return np.asarray(v, dtype=np.float32)


@declare(REGISTRY, name="elf_header", version=1, formats=["elf"], stage="structure",
         raw_type=_HEADER_TYPE, dim_names=_HEADER_DIMS, vectorize=_vec_header)
def elf_header(parsed: Parsed) -> dict:
    """ELF header fields as the file states them.

    Vector: one-hot class (32/64), byte order, OS/ABI, machine and e_type over the documented common
    values plus "other"; the numeric fields as numbers.
    """
    h = parsed.extra["ehdr"]
    return {k: h[k] for k in _HEADER_KEYS}


# ---------------------------------------------------------------------------------------------
# elf_segments

PT_LOAD, PT_DYNAMIC, PT_INTERP, PT_TLS = 1, 2, 3, 7
PT_GNU_STACK, PT_GNU_RELRO = 0x6474E551, 0x6474E552
PF_X, PF_W, PF_R = 1, 2, 4
# NULL, LOAD, DYNAMIC, INTERP, NOTE, SHLIB, PHDR, TLS, GNU_EH_FRAME, GNU_STACK, GNU_RELRO,
# GNU_PROPERTY, ARM_EXIDX, MIPS_ABIFLAGS, RISCV_ATTRIBUTES
SEGMENT_TYPES = (0, 1, 2, 3, 4, 5, 6, 7, 0x6474E550, 0x6474E551, 0x6474E552, 0x6474E553, 0x70000001,
                 0x70000003)
_SEG_ITEM = pa.struct([
    ("type", pa.uint32()), ("flags", pa.uint32()), ("offset", pa.uint64()), ("vaddr", pa.uint64()),
    ("filesz", pa.uint64()), ("memsz", pa.uint64()), ("align", pa.uint64()),
])
_SEG_TYPE = pa.struct([("count", pa.int64()), ("segments", pa.list_(_SEG_ITEM))])
_SEG_NUMS = ("count", "load_filesz", "load_memsz", "r", "w", "x", "wx", "load_x", "load_wx",
             "stack_exec", "filesz_total", "memsz_total")
_SEG_DIMS = onehot_names("type_count", SEGMENT_TYPES) + list(_SEG_NUMS)


def _vec_segments(raw: dict) -> np.ndarray:
    counts = [0.0] * (len(SEGMENT_TYPES) + 1)
    n = dict.fromkeys(_SEG_NUMS, 0.0)
    n["count"] = float(raw["count"])
    for s in raw["segments"]:
        t, f = s["type"], s["flags"]
        try:
            counts[SEGMENT_TYPES.index(t)] += 1
        except ValueError:
            counts[-1] += 1
        n["r"] += bool(f & PF_R)
        n["w"] += bool(f & PF_W)
        n["x"] += bool(f & PF_X)
        n["wx"] += bool(f & PF_W and f & PF_X)
        n["filesz_total"] += s["filesz"]
        n["memsz_total"] += s["memsz"]
        if t == PT_LOAD:
            n["load_filesz"] += s["filesz"]
            n["load_memsz"] += s["memsz"]
            n["load_x"] += bool(f & PF_X)
            n["load_wx"] += bool(f & PF_W and f & PF_X)
        if t == PT_GNU_STACK:
            n["stack_exec"] = 1.0 if f & PF_X else 0.0
    return np.asarray(counts + [n[k] for k in _SEG_NUMS], dtype=np.float32)


@declare(REGISTRY, name="elf_segments", version=1, formats=["elf"], stage="structure",
         raw_type=_SEG_TYPE, dim_names=_SEG_DIMS, vectorize=_vec_segments)
def elf_segments(parsed: Parsed) -> dict:
    """Program headers (at most 1,024 kept; ``count`` is LIEF's total).

    Vector: count per segment type (documented list plus "other"), total and PT_LOAD sizes, counts
    of readable/writable/executable and writable-and-executable segments, executable GNU_STACK.
    """
    segs = _segments(parsed)
    return {"count": len(segs), "segments": segs[:MAX_SEGMENTS]}


# ---------------------------------------------------------------------------------------------
# elf_sections

SHT_NOBITS, SHT_SYMTAB, SHT_RELA, SHT_REL = 8, 2, 4, 9
SHF_WRITE, SHF_ALLOC, SHF_EXECINSTR = 1, 2, 4
_SEC_HASH = 50
_SEC_FLAG_NAMES = {0x1: "WRITE", 0x2: "ALLOC", 0x4: "EXECINSTR", 0x10: "MERGE", 0x20: "STRINGS",
                   0x40: "INFO_LINK", 0x80: "LINK_ORDER", 0x100: "OS_NONCONFORMING", 0x200: "GROUP",
                   0x400: "TLS", 0x800: "COMPRESSED"}
_SEC_ITEM = pa.struct([
    ("name", pa.string()), ("type", pa.uint32()), ("flags", pa.uint64()), ("offset", pa.uint64()),
    ("addr", pa.uint64()), ("size", pa.uint64()), ("entropy", pa.float64()),
])
_SEC_TYPE = pa.struct([("count", pa.int64()), ("entry", pa.string()), ("sections", pa.list_(_SEC_ITEM))])
_SEC_NUMS = ("count", "zero_size", "empty_name", "exec", "write", "alloc", "wx", "nobits",
             "max_entropy", "mean_entropy")
_SEC_DIMS = (list(_SEC_NUMS) + hashed_dim_names("name_size", _SEC_HASH)
             + hashed_dim_names("name_entropy", _SEC_HASH) + hashed_dim_names("name_type", _SEC_HASH)
             + hashed_dim_names("entry_name", _SEC_HASH) + hashed_dim_names("entry_flags", _SEC_HASH))


def _flag_tokens(flags: int) -> list[str]:
    return [name for bit, name in _SEC_FLAG_NAMES.items() if flags & bit]


def _vec_sections(raw: dict) -> np.ndarray:
    secs = raw["sections"]
    ents = [s["entropy"] for s in secs]
    general = [
        float(raw["count"]),
        sum(s["size"] == 0 for s in secs),
        sum(s["name"] == "" for s in secs),
        sum(bool(s["flags"] & SHF_EXECINSTR) for s in secs),
        sum(bool(s["flags"] & SHF_WRITE) for s in secs),
        sum(bool(s["flags"] & SHF_ALLOC) for s in secs),
        sum(bool(s["flags"] & SHF_WRITE and s["flags"] & SHF_EXECINSTR) for s in secs),
        sum(s["type"] == SHT_NOBITS for s in secs),
        max(ents, default=0.0),
        (sum(ents) / len(ents)) if ents else 0.0,
    ]
    entry = raw["entry"]
    entry_flags = next((s["flags"] for s in secs if s["name"] == entry), 0) if entry else 0
    out = np.zeros(len(_SEC_DIMS), dtype=np.float32)
    n = len(_SEC_NUMS)
    out[:n] = np.asarray(general, dtype=np.float32)
    names = [s["name"] for s in secs]
    add_hashed(out, n, names, _SEC_HASH, [float(s["size"]) for s in secs])
    add_hashed(out, n + _SEC_HASH, names, _SEC_HASH, [float(s["entropy"]) for s in secs])
    add_hashed(out, n + 2 * _SEC_HASH, [f"{s['name']}:{s['type']:#x}" for s in secs], _SEC_HASH)
    if entry:
        add_hashed(out, n + 3 * _SEC_HASH, [entry], _SEC_HASH)
        add_hashed(out, n + 4 * _SEC_HASH, _flag_tokens(entry_flags), _SEC_HASH)
    return out


@declare(REGISTRY, name="elf_sections", version=1, formats=["elf"], stage="structure",
         raw_type=_SEC_TYPE, dim_names=_SEC_DIMS, vectorize=_vec_sections)
def elf_sections(parsed: Parsed) -> dict:
    """Section headers with the entropy of each section's file bytes (NOBITS: 0), EMBER-style.

    At most 4,096 sections kept (``count`` is the total); names cut at 256 characters. ``entry`` is
    the name of the section holding the entry point ("" if none). Vector: general counts, then
    hashed (name → size), (name → entropy), name:type tokens, entry section name and its flag names.
    """
    entry_va = parsed.extra["ehdr"]["entry"]
    secs = _sections(parsed)
    rows = []
    entry_name = ""
    for sec in secs[:MAX_SECTIONS]:
        typ, off, sz, addr, flags = sec["type"], sec["offset"], sec["size"], sec["addr"], sec["flags"]
        name = sec["name"]
        if (not entry_name and entry_va and flags & SHF_ALLOC and typ != SHT_NOBITS
                and addr <= entry_va < addr + sz):
            entry_name = name
        rows.append({"name": name, "type": typ, "flags": flags & 0xFFFFFFFFFFFFFFFF, "offset": off,
                     "addr": addr, "size": sz, "entropy": 0.0})
    ents = range_entropies(parsed.data, [(r["offset"], 0 if r["type"] == SHT_NOBITS else r["size"])
                                         for r in rows])
    for r, e in zip(rows, ents, strict=True):
        r["entropy"] = e
    out = rows
    return {"count": len(secs), "entry": entry_name, "sections": out}


# ---------------------------------------------------------------------------------------------
# elf_libraries

DT_NEEDED, DT_SONAME, DT_RPATH, DT_RUNPATH = 1, 14, 15, 29
DT_TEXTREL, DT_BIND_NOW, DT_FLAGS, DT_FLAGS_1 = 22, 24, 30, 0x6FFFFFFB
DF_TEXTREL, DF_BIND_NOW, DF_1_NOW, DF_1_PIE = 0x4, 0x8, 0x1, 0x08000000
_LIB_HASH = 256
_LIB_TYPE = pa.struct([
    ("count", pa.int64()), ("needed", pa.list_(pa.string())), ("soname", pa.string()),
    ("rpath", pa.string()), ("runpath", pa.string()), ("dynamic_entries", pa.int64()),
])
_LIB_NUMS = ("count", "has_soname", "has_rpath", "has_runpath", "dynamic_entries")
_LIB_DIMS = list(_LIB_NUMS) + hashed_dim_names("needed", _LIB_HASH)


def _vec_libraries(raw: dict) -> np.ndarray:
    head = [float(raw["count"]), float(bool(raw["soname"])), float(bool(raw["rpath"])),
            float(bool(raw["runpath"])), float(raw["dynamic_entries"])]
    return np.concatenate([np.asarray(head, dtype=np.float32), hash_tokens(raw["needed"], _LIB_HASH)])


def _dyn_string(entry: Any, attr: str) -> str:
    return clean(getattr(entry, attr, "") or "", PATH_CAP)


@declare(REGISTRY, name="elf_libraries", version=1, formats=["elf"], stage="structure",
         raw_type=_LIB_TYPE, dim_names=_LIB_DIMS, vectorize=_vec_libraries)
def elf_libraries(parsed: Parsed) -> dict:
    """DT_NEEDED libraries in order (at most 1,024; ``count`` is the total), DT_SONAME, DT_RPATH,
    DT_RUNPATH (cut at 1,024 characters) and the number of dynamic entries.

    Vector: counts and presence flags, then the needed names hashed into 256 bins.
    """
    needed: list[str] = []
    count = 0
    soname = rpath = runpath = ""
    dyn = _dynamic(parsed)
    for tag, e in dyn:
        if tag == DT_NEEDED:
            count += 1
            if len(needed) < MAX_LIBRARIES:
                needed.append(_dyn_string(e, "name"))
        elif tag == DT_SONAME and not soname:
            soname = _dyn_string(e, "name")
        elif tag == DT_RPATH and not rpath:
            rpath = _dyn_string(e, "rpath") or _dyn_string(e, "paths")
        elif tag == DT_RUNPATH and not runpath:
            runpath = _dyn_string(e, "runpath") or _dyn_string(e, "paths")
    return {"count": count, "needed": needed, "soname": soname, "rpath": rpath, "runpath": runpath,
            "dynamic_entries": len(dyn)}


# ---------------------------------------------------------------------------------------------
# elf_imports / elf_exports

_IMP_HASH = 1024
_EXP_HASH = 128
_SYM_TYPE = pa.struct([
    ("count", pa.int64()), ("functions", pa.int64()), ("objects", pa.int64()), ("weak", pa.int64()),
    ("names", pa.list_(pa.string())),
])
_SYM_NUMS = ("count", "functions", "objects", "weak")


def _sym_raw(d: dict, key: str) -> dict:
    functions, objects, weak = d["c_" + key]
    return {"count": d["n_" + key], "functions": functions, "objects": objects, "weak": weak,
            "names": d[key]}


def _vec_syms(dims: int):
    def vec(raw: dict) -> np.ndarray:
        head = np.asarray([float(raw[k]) for k in _SYM_NUMS], dtype=np.float32)
        return np.concatenate([head, hash_tokens(raw["names"], dims)])
    return vec


@declare(REGISTRY, name="elf_imports", version=1, formats=["elf"], stage="structure",
         raw_type=_SYM_TYPE, dim_names=list(_SYM_NUMS) + hashed_dim_names("import", _IMP_HASH),
         vectorize=_vec_syms(_IMP_HASH))
def elf_imports(parsed: Parsed) -> dict:
    """Imported dynamic symbols: undefined (SHN_UNDEF), named, GLOBAL/WEAK/GNU_UNIQUE binding.

    At most 10,000 names (cut at 256 characters) in .dynsym order; ``count`` is the total, the
    function/object/weak counts are over the kept names. Names are without version suffixes.
    Vector: counts, then names hashed into 1,024 bins.
    """
    d = _dynsyms(parsed)
    return _sym_raw(d, "imports")


@declare(REGISTRY, name="elf_exports", version=1, formats=["elf"], stage="structure",
         raw_type=_SYM_TYPE, dim_names=list(_SYM_NUMS) + hashed_dim_names("export", _EXP_HASH),
         vectorize=_vec_syms(_EXP_HASH))
def elf_exports(parsed: Parsed) -> dict:
    """Exported dynamic symbols: defined, GLOBAL/WEAK/GNU_UNIQUE, DEFAULT/PROTECTED visibility, of
    type FUNC, GNU_IFUNC, OBJECT, COMMON or TLS.

    Same caps and vector layout as elf_imports, names hashed into 128 bins.
    """
    d = _dynsyms(parsed)
    return _sym_raw(d, "exports")


# ---------------------------------------------------------------------------------------------
# elf_interpreter

INTERPRETERS = (
    "/lib64/ld-linux-x86-64.so.2", "/lib/ld-linux.so.2", "/lib/ld-linux-aarch64.so.1",
    "/lib/ld-linux-armhf.so.3", "/lib/ld-linux.so.3", "/lib64/ld64.so.1", "/lib64/ld64.so.2",
    "/lib/ld64.so.1", "/lib/ld.so.1", "/lib/ld-linux-riscv64-lp64d.so.1",
    "/lib64/ld-linux-loongarch-lp64d.so.1", "/lib/ld-musl-x86_64.so.1", "/lib/ld-musl-aarch64.so.1",
    "/lib/ld-musl-i386.so.1", "/lib/ld-musl-armhf.so.1", "/system/bin/linker",
    "/system/bin/linker64", "/libexec/ld-elf.so.1", "/usr/libexec/ld.so", "/usr/libexec/ld.elf_so",
    "/usr/lib/ld.so.1", "/lib/ld-uClibc.so.0",
)
_INTERP_TYPE = pa.struct([("present", pa.bool_()), ("interpreter", pa.string())])
_INTERP_DIMS = ["present", *[f"interpreter={s}" for s in INTERPRETERS], "interpreter=other", "musl"]


def _vec_interp(raw: dict) -> np.ndarray:
    if not raw["present"]:
        return np.zeros(len(_INTERP_DIMS), dtype=np.float32)
    s = raw["interpreter"]
    return np.asarray([1.0, *onehot(s, INTERPRETERS), float("musl" in s)], dtype=np.float32)


@declare(REGISTRY, name="elf_interpreter", version=1, formats=["elf"], stage="structure",
         raw_type=_INTERP_TYPE, dim_names=_INTERP_DIMS, vectorize=_vec_interp)
def elf_interpreter(parsed: Parsed) -> dict:
    """The PT_INTERP path (cut at 1,024 characters).

    Vector: presence, one-hot over common dynamic loaders (glibc, musl, Android, BSD, Solaris) plus
    "other", and whether the path names musl.
    """
    seg = next((s for s in _segments(parsed) if s["type"] == PT_INTERP), None)
    if seg is None:
        return {"present": False, "interpreter": ""}
    # Read from the file: LIEF's interpreter property raises on bytes that are not UTF-8.
    off = seg["offset"]
    raw = bytes(parsed.data[off:off + min(seg["filesz"], 4 * PATH_CAP)]) if off < parsed.size else b""
    return {"present": True, "interpreter": clean(raw.split(b"\0", 1)[0], PATH_CAP)}


# ---------------------------------------------------------------------------------------------
# elf_security

_SEC_FLAGS = pa.struct([
    ("stripped", pa.bool_()), ("symtab_entries", pa.int64()), ("pie", pa.bool_()),
    ("nx_stack", pa.bool_()), ("relro", pa.uint8()), ("bind_now", pa.bool_()),
    ("textrel", pa.bool_()), ("has_dynamic", pa.bool_()), ("has_interp", pa.bool_()),
    ("stack_protector", pa.bool_()), ("fortify", pa.bool_()), ("debug_sections", pa.int64()),
])
_SECURITY_DIMS = ["stripped", "symtab_entries", "pie", "nx_stack", "relro=partial", "relro=full",
                  "bind_now", "textrel", "has_dynamic", "has_interp", "stack_protector", "fortify",
                  "debug_sections"]


def _vec_security(raw: dict) -> np.ndarray:
    return np.asarray([
        raw["stripped"], raw["symtab_entries"], raw["pie"], raw["nx_stack"], raw["relro"] == 1,
        raw["relro"] == 2, raw["bind_now"], raw["textrel"], raw["has_dynamic"], raw["has_interp"],
        raw["stack_protector"], raw["fortify"], raw["debug_sections"],
    ], dtype=np.float32)


def _symtab_entries(parsed: Parsed) -> int:
    n = 0
    for sec in _sections(parsed):
        if sec["type"] == SHT_SYMTAB:
            ent = sec["entsize"] or (24 if parsed.extra["ehdr"]["ei_class"] == 2 else 16)
            n += sec["size"] // ent
    return n


def _debug_sections(parsed: Parsed) -> int:
    return sum(s["name"].startswith((".debug_", ".zdebug_")) for s in _sections(parsed))


@declare(REGISTRY, name="elf_security", version=1, formats=["elf"], stage="structure",
         raw_type=_SEC_FLAGS, dim_names=_SECURITY_DIMS, vectorize=_vec_security)
def elf_security(parsed: Parsed) -> dict:
    """Hardening and stripping: computed from headers, program headers and dynamic entries.

    stripped: no SHT_SYMTAB section; symtab_entries: its size / entsize. pie: ET_DYN with a
    PT_INTERP or DF_1_PIE. nx_stack: a PT_GNU_STACK without PF_X. relro: 0 none, 1 PT_GNU_RELRO,
    2 PT_GNU_RELRO and bind-now. bind_now: DT_BIND_NOW, DF_BIND_NOW or DF_1_NOW. textrel: DT_TEXTREL
    or DF_TEXTREL. stack_protector / fortify: imports __stack_chk_fail / any ``__*_chk``.
    debug_sections: number of .debug_* / .zdebug_* sections.
    """
    segs = _segments(parsed)
    types = {s["type"] for s in segs}
    flags = flags1 = 0
    tags = set()
    for tag, e in _dynamic(parsed):
        tags.add(tag)
        if tag == DT_FLAGS:
            flags |= e.value
        elif tag == DT_FLAGS_1:
            flags1 |= e.value
    bind_now = DT_BIND_NOW in tags or bool(flags & DF_BIND_NOW) or bool(flags1 & DF_1_NOW)
    relro = (2 if bind_now else 1) if PT_GNU_RELRO in types else 0
    stack = [s for s in segs if s["type"] == PT_GNU_STACK]
    imports = _dynsyms(parsed)["imports"]
    symtab = _symtab_entries(parsed)
    has_symtab = any(s["type"] == SHT_SYMTAB for s in _sections(parsed))
    return {
        "stripped": not has_symtab,
        "symtab_entries": symtab,
        "pie": parsed.extra["ehdr"]["type"] == 3 and (PT_INTERP in types or bool(flags1 & DF_1_PIE)),
        "nx_stack": bool(stack) and not stack[0]["flags"] & PF_X,
        "relro": relro,
        "bind_now": bind_now,
        "textrel": DT_TEXTREL in tags or bool(flags & DF_TEXTREL),
        "has_dynamic": PT_DYNAMIC in types,
        "has_interp": PT_INTERP in types,
        "stack_protector": "__stack_chk_fail" in imports,
        "fortify": any(n.startswith("__") and n.endswith("_chk") and n != "__stack_chk_fail"
                       for n in imports),
        "debug_sections": _debug_sections(parsed),
    }


# ---------------------------------------------------------------------------------------------
# General fields


def elf_general(parsed: Parsed) -> dict[str, int]:
    """EMBER's general fields for ELF.

    vsize: LIEF's virtual_size (span of PT_LOAD segments, page-aligned); has_debug: any .debug_* /
    .zdebug_* section; exports / imports: counts as in elf_exports / elf_imports; has_relocations:
    a SHT_REL/SHT_RELA section or a DT_REL/DT_RELA/DT_JMPREL entry; has_resources, has_signature: 0
    (ELF has neither); has_tls: a PT_TLS segment; symbols: dynamic symbols plus .symtab entries.
    """
    b = parsed.binary
    d = _dynsyms(parsed)
    rel_tags = {7, 17, 23}  # DT_RELA, DT_REL, DT_JMPREL
    has_rel = any(s["type"] in (SHT_REL, SHT_RELA) for s in _sections(parsed)) or any(
        t in rel_tags for t, _ in _dynamic(parsed))
    try:
        vsize = int(b.virtual_size)
    except Exception:
        vsize = 0
    return {
        "vsize": vsize if 0 <= vsize < 2**63 and not math.isnan(vsize) else 0,
        "has_debug": int(_debug_sections(parsed) > 0),
        "exports": int(d["n_exports"]),
        "imports": int(d["n_imports"]),
        "has_relocations": int(has_rel),
        "has_resources": 0,
        "has_signature": 0,
        "has_tls": int(any(s["type"] == PT_TLS for s in _segments(parsed))),
        "symbols": int(d["total"] + _symtab_entries(parsed)),
    }


register_general("elf", elf_general)
