"""ELF groups of the file's headers: elf_header, elf_segments (program headers), elf_sections."""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from extract.entropy import range_entropies
from extract.groups.elf.parse import sections, segments
from extract.groups.elf.spec import (
    PF_R,
    PF_W,
    PF_X,
    PT_GNU_STACK,
    PT_LOAD,
    SECTION_FLAG_NAMES,
    SHF_ALLOC,
    SHF_EXECINSTR,
    SHF_WRITE,
    SHT_NOBITS,
)
from extract.groups.shared import as_number, onehot, onehot_names
from extract.hashing import TokenBins, hashed_dim_names
from extract.parsed import Parsed
from extract.registry import REGISTRY, declare

MAX_SEGMENTS = 1024
MAX_SECTIONS = 4096

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

# Integer types by the field's width on disk (extract.raw_types): e_ident bytes and Elf_Half int32,
# Elf_Word int64, Elf64_Addr/Off/Xword (32-bit in ELF32) decimal128(20, 0).
_U64 = pa.decimal128(20, 0)
_HEADER_TYPE = pa.struct([
    ("ei_class", pa.int32()), ("ei_data", pa.int32()), ("ei_version", pa.int32()),
    ("os_abi", pa.int32()), ("abi_version", pa.int32()), ("type", pa.int32()),
    ("machine", pa.int32()), ("version", pa.int64()), ("entry", _U64),
    ("phoff", _U64), ("shoff", _U64), ("flags", pa.int64()),
    ("ehsize", pa.int32()), ("phentsize", pa.int32()), ("phnum", pa.int32()),
    ("shentsize", pa.int32()), ("shnum", pa.int32()), ("shstrndx", pa.int32()),
])
_HEADER_KEYS = tuple(_HEADER_TYPE.names)
_HEADER_DIMS = (
    onehot_names("class", ELF_CLASSES, "{}") + onehot_names("data", ELF_DATA, "{}")
    + onehot_names("os_abi", OS_ABIS, "{}") + onehot_names("machine", MACHINES)
    + onehot_names("type", ELF_TYPES, "{}") + list(_HEADER_NUMS)
)


def _fill_header(raws: list[dict], out: np.ndarray) -> None:
    out[:] = np.array([
        onehot(raw["ei_class"], ELF_CLASSES) + onehot(raw["ei_data"], ELF_DATA) + onehot(raw["os_abi"], OS_ABIS)
        + onehot(raw["machine"], MACHINES) + onehot(raw["type"], ELF_TYPES) + [as_number(raw[k]) for k in _HEADER_NUMS]
        for raw in raws], dtype=np.float32)


@declare(REGISTRY, name="elf_header", version=1, formats=["elf"], stage="structure",
         raw_type=_HEADER_TYPE, dim_names=_HEADER_DIMS, fill=_fill_header)
def elf_header(parsed: Parsed) -> dict:
    """ELF header fields as the file states them.

    Vector: one-hot class (32/64), byte order, OS/ABI, machine and e_type over the documented common
    values plus "other"; the numeric fields as numbers.
    """
    h = parsed.extra["ehdr"]
    return {k: h[k] for k in _HEADER_KEYS}


# ---------------------------------------------------------------------------------------------
# elf_segments

# NULL, LOAD, DYNAMIC, INTERP, NOTE, SHLIB, PHDR, TLS, GNU_EH_FRAME, GNU_STACK, GNU_RELRO,
# GNU_PROPERTY, ARM_EXIDX, MIPS_ABIFLAGS, RISCV_ATTRIBUTES
SEGMENT_TYPES = (0, 1, 2, 3, 4, 5, 6, 7, 0x6474E550, 0x6474E551, 0x6474E552, 0x6474E553, 0x70000001,
                 0x70000003)
_SEG_ITEM = pa.struct([
    ("type", pa.int64()), ("flags", pa.int64()), ("offset", _U64), ("vaddr", _U64),
    ("filesz", _U64), ("memsz", _U64), ("align", _U64),
])
_SEG_TYPE = pa.struct([("count", pa.int64()), ("segments", pa.list_(_SEG_ITEM))])
_SEG_NUMS = ("count", "load_filesz", "load_memsz", "r", "w", "x", "wx", "load_x", "load_wx",
             "stack_exec", "filesz_total", "memsz_total")
_SEG_DIMS = onehot_names("type_count", SEGMENT_TYPES) + list(_SEG_NUMS)


_SEG_INDEX = {t: i for i, t in enumerate(SEGMENT_TYPES)}


def _fill_segments(raws: list[dict], out: np.ndarray) -> None:
    other = len(SEGMENT_TYPES)
    rows = []
    for raw in raws:
        counts = [0.0] * (other + 1)
        r = w = x = wx = load_x = load_wx = stack_exec = 0.0
        filesz = memsz = load_filesz = load_memsz = 0.0
        for s in raw["segments"]:
            t, f = s["type"], s["flags"]
            counts[_SEG_INDEX.get(t, other)] += 1
            fx = f & PF_X
            fwx = f & PF_W and fx
            r += bool(f & PF_R)
            w += bool(f & PF_W)
            x += bool(fx)
            wx += bool(fwx)
            filesz += s["filesz"]
            memsz += s["memsz"]
            if t == PT_LOAD:
                load_filesz += s["filesz"]
                load_memsz += s["memsz"]
                load_x += bool(fx)
                load_wx += bool(fwx)
            if t == PT_GNU_STACK:
                stack_exec = 1.0 if fx else 0.0
        counts += [float(raw["count"]), load_filesz, load_memsz, r, w, x, wx, load_x, load_wx, stack_exec, filesz,
                   memsz]
        rows.append(counts)
    out[:] = np.array(rows, dtype=np.float32)


@declare(REGISTRY, name="elf_segments", version=1, formats=["elf"], stage="structure",
         raw_type=_SEG_TYPE, dim_names=_SEG_DIMS, fill=_fill_segments)
def elf_segments(parsed: Parsed) -> dict:
    """Program headers (at most 1,024 kept; ``count`` is LIEF's total).

    Vector: count per segment type (documented list plus "other"), total and PT_LOAD sizes, counts
    of readable/writable/executable and writable-and-executable segments, executable GNU_STACK.
    """
    segs = segments(parsed)
    return {"count": len(segs), "segments": segs[:MAX_SEGMENTS]}


# ---------------------------------------------------------------------------------------------
# elf_sections

_SEC_HASH = 50
_SEC_ITEM = pa.struct([
    ("name", pa.string()), ("type", pa.int64()), ("flags", _U64), ("offset", _U64),
    ("addr", _U64), ("size", _U64), ("entropy", pa.float64()),
])
_SEC_TYPE = pa.struct([("count", pa.int64()), ("entry", pa.string()), ("sections", pa.list_(_SEC_ITEM))])
_SEC_NUMS = ("count", "zero_size", "empty_name", "exec", "write", "alloc", "wx", "nobits",
             "max_entropy", "mean_entropy")
_SEC_DIMS = (list(_SEC_NUMS) + hashed_dim_names("name_size", _SEC_HASH)
             + hashed_dim_names("name_entropy", _SEC_HASH) + hashed_dim_names("name_type", _SEC_HASH)
             + hashed_dim_names("entry_name", _SEC_HASH) + hashed_dim_names("entry_flags", _SEC_HASH))


def _flag_tokens(flags: int) -> list[str]:
    return [name for bit, name in SECTION_FLAG_NAMES.items() if flags & bit]


def _fill_sections(raws: list[dict], out: np.ndarray) -> None:
    n = len(_SEC_NUMS)
    bins = TokenBins(out)
    rows = []
    for i, raw in enumerate(raws):
        secs = raw["sections"]
        ents = [s["entropy"] for s in secs]
        names = [s["name"] for s in secs]
        zero = unnamed = ex = wr = alloc = wx = nobits = 0
        for s in secs:
            flags = s["flags"]
            zero += s["size"] == 0
            unnamed += s["name"] == ""
            ex += bool(flags & SHF_EXECINSTR)
            wr += bool(flags & SHF_WRITE)
            alloc += bool(flags & SHF_ALLOC)
            wx += bool(flags & SHF_WRITE and flags & SHF_EXECINSTR)
            nobits += s["type"] == SHT_NOBITS
        rows.append([float(raw["count"]), zero, unnamed, ex, wr, alloc, wx, nobits, max(ents, default=0.0),
                     (sum(ents) / len(ents)) if ents else 0.0])
        bins.add(i, n, names, _SEC_HASH, [float(s["size"]) for s in secs])
        bins.add(i, n + _SEC_HASH, names, _SEC_HASH, [float(e) for e in ents])
        bins.add(i, n + 2 * _SEC_HASH, [f"{s['name']}:{s['type']:#x}" for s in secs], _SEC_HASH)
        entry = raw["entry"]
        if entry:
            entry_flags = next((s["flags"] for s in secs if s["name"] == entry), 0)
            bins.add(i, n + 3 * _SEC_HASH, [entry], _SEC_HASH)
            bins.add(i, n + 4 * _SEC_HASH, _flag_tokens(entry_flags), _SEC_HASH)
    out[:, :n] = np.array(rows, dtype=np.float32)
    bins.write()


@declare(REGISTRY, name="elf_sections", version=1, formats=["elf"], stage="structure",
         raw_type=_SEC_TYPE, dim_names=_SEC_DIMS, fill=_fill_sections)
def elf_sections(parsed: Parsed) -> dict:
    """Section headers with the entropy of each section's file bytes (NOBITS: 0), EMBER-style.

    At most 4,096 sections kept (``count`` is the total); names cut at 256 characters. ``entry`` is
    the name of the section holding the entry point ("" if none). Vector: general counts, then
    hashed (name → size), (name → entropy), name:type tokens, entry section name and its flag names.
    """
    entry_va = parsed.extra["ehdr"]["entry"]
    secs = sections(parsed)
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
    return {"count": len(secs), "entry": entry_name, "sections": rows}
