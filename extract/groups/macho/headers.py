"""Mach-O groups of the image's headers: macho_header, macho_load_commands, macho_sections."""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from extract.groups.macho.image import segments_sections
from extract.groups.macho.loader_view import entry_point
from extract.groups.macho.parse import MAX_COMMANDS
from extract.groups.macho.spec import (
    CPU_ARM,
    CPU_ARM64,
    CPU_ARM64_32,
    CPU_PPC,
    CPU_PPC64,
    CPU_X86,
    CPU_X86_64,
    S_ATTR_PURE_INSTRUCTIONS,
    S_ATTR_SOME_INSTRUCTIONS,
    VM_PROT_EXECUTE,
    VM_PROT_WRITE,
    ZEROFILL_TYPES,
)
from extract.groups.shared import onehot, onehot_names
from extract.hashing import TokenBins, hashed_dim_names
from extract.parsed import Parsed
from extract.registry import REGISTRY, declare

# ---------------------------------------------------------------------------------------------
# macho_header

# x86, x86_64, ARM, ARM64, ARM64_32, PowerPC, PowerPC64; i860/SPARC/MC680x0 fall in "other"
CPU_TYPES = (CPU_X86, CPU_X86_64, CPU_ARM, CPU_ARM64, CPU_ARM64_32, CPU_PPC, CPU_PPC64)
# OBJECT, EXECUTE, FVMLIB, CORE, PRELOAD, DYLIB, DYLINKER, BUNDLE, DYLIB_STUB, DSYM, KEXT_BUNDLE, FILESET
FILE_TYPES = tuple(range(1, 13))
FLAG_BITS = 32
# Integer types by the field's width on disk (extract.raw_types): 32-bit fields (read unsigned)
# int64, 64-bit addresses, offsets and sizes (32-bit in 32-bit images) decimal128(20, 0).
_U64 = pa.decimal128(20, 0)
_HDR_TYPE = pa.struct([
    ("magic", pa.int64()), ("is64", pa.bool_()), ("big_endian", pa.bool_()), ("cputype", pa.int64()),
    ("cpusubtype", pa.int64()), ("filetype", pa.int64()), ("ncmds", pa.int64()),
    ("sizeofcmds", pa.int64()), ("flags", pa.int64()),
])
_HDR_DIMS = (onehot_names("cputype", CPU_TYPES) + onehot_names("filetype", FILE_TYPES, "{}")
             + [f"flag[{i}]" for i in range(FLAG_BITS)]
             + ["cpusubtype", "cpusubtype_caps", "ncmds", "sizeofcmds", "is64", "big_endian"])


def _header_row(raw: dict) -> list:
    f = raw["flags"]
    return (onehot(raw["cputype"], CPU_TYPES) + onehot(raw["filetype"], FILE_TYPES)
            + [float((f >> i) & 1) for i in range(FLAG_BITS)]
            + [raw["cpusubtype"] & 0x00FFFFFF, raw["cpusubtype"] >> 24, raw["ncmds"], raw["sizeofcmds"],
               raw["is64"], raw["big_endian"]])


def _fill_header(raws: list[dict], out: np.ndarray) -> None:
    out[:] = np.array([_header_row(raw) for raw in raws], dtype=np.float32)


@declare(REGISTRY, name="macho_header", version=1, formats=["macho"], stage="structure",
         raw_type=_HDR_TYPE, dim_names=_HDR_DIMS, fill=_fill_header)
def macho_header(parsed: Parsed) -> dict:
    """The mach_header of the (chosen) image as the file states it.

    Vector: one-hot CPU type and file type over the documented values plus "other", each of the 32
    flag bits, subtype (low 24 bits) and capability bits, ncmds, sizeofcmds, 64-bit, big-endian.
    """
    x = parsed.extra
    return {"magic": x["magic"], "is64": x["is64"], "big_endian": x["end"] == ">",
            "cputype": x["cputype"], "cpusubtype": x["cpusubtype"], "filetype": x["filetype"],
            "ncmds": x["ncmds"], "sizeofcmds": x["sizeofcmds"], "flags": x["flags"]}


# ---------------------------------------------------------------------------------------------
# macho_load_commands

COMMAND_TYPES = (
    0x1, 0x2, 0x4, 0x5, 0xB, 0xC, 0xD, 0xE, 0xF, 0x19, 0x1A, 0x1B, 0x1D, 0x1E, 0x20, 0x21, 0x24, 0x25,
    0x26, 0x27, 0x29, 0x2A, 0x2B, 0x2C, 0x2F, 0x30, 0x31, 0x32, 0x80000018, 0x8000001C, 0x8000001F,
    0x80000022, 0x80000023, 0x80000028, 0x80000033, 0x80000034,
)
# SEGMENT, SYMTAB, THREAD, UNIXTHREAD, DYSYMTAB, LOAD_DYLIB, ID_DYLIB, LOAD_DYLINKER, ID_DYLINKER,
# SEGMENT_64, ROUTINES_64, UUID, CODE_SIGNATURE, SEGMENT_SPLIT_INFO, LAZY_LOAD_DYLIB,
# ENCRYPTION_INFO, VERSION_MIN_MACOSX, VERSION_MIN_IPHONEOS, FUNCTION_STARTS, DYLD_ENVIRONMENT,
# DATA_IN_CODE, SOURCE_VERSION, DYLIB_CODE_SIGN_DRS, ENCRYPTION_INFO_64, VERSION_MIN_TVOS,
# VERSION_MIN_WATCHOS, NOTE, BUILD_VERSION, LOAD_WEAK_DYLIB, RPATH, REEXPORT_DYLIB, DYLD_INFO_ONLY,
# LOAD_UPWARD_DYLIB, MAIN, DYLD_EXPORTS_TRIE, DYLD_CHAINED_FIXUPS
_LC_TYPE = pa.struct([
    ("count", pa.int64()),
    ("commands", pa.list_(pa.struct([("cmd", pa.int64()), ("size", pa.int64())]))),
])
_LC_DIMS = [*onehot_names("cmd_count", COMMAND_TYPES), "count", "total_size", "unparsed"]


_COMMAND_INDEX = {c: i for i, c in enumerate(COMMAND_TYPES)}


def _fill_commands(raws: list[dict], out: np.ndarray) -> None:
    other = len(COMMAND_TYPES)
    rows = []
    for raw in raws:
        counts = [0.0] * (other + 1)
        total = 0
        for c in raw["commands"]:
            counts[_COMMAND_INDEX.get(c["cmd"], other)] += 1
            total += c["size"]
        rows.append([*counts, raw["count"], total, raw["count"] - len(raw["commands"])])
    out[:] = np.array(rows, dtype=np.float32)


@declare(REGISTRY, name="macho_load_commands", version=1, formats=["macho"], stage="structure",
         raw_type=_LC_TYPE, dim_names=_LC_DIMS, fill=_fill_commands)
def macho_load_commands(parsed: Parsed) -> dict:
    """Load commands (cmd number, cmdsize) in file order, as walked until one leaves sizeofcmds.

    At most 4,096 kept; ``count`` is ncmds from the header. Vector: count per command type over the
    documented common types plus "other", ncmds, total size of the kept commands, and how many
    commands the header announces beyond those that could be walked (or kept).
    """
    x = parsed.extra
    return {"count": x["ncmds"],
            "commands": [{"cmd": c, "size": s} for c, _, s in x["cmds"][:MAX_COMMANDS]]}


# ---------------------------------------------------------------------------------------------
# macho_sections (segments and their sections)

_SEC_HASH = 50
_SEG_ITEM = pa.struct([
    ("name", pa.string()), ("vmaddr", _U64), ("vmsize", _U64), ("fileoff", _U64),
    ("filesize", _U64), ("maxprot", pa.int64()), ("initprot", pa.int64()),
    ("nsects", pa.int64()), ("flags", pa.int64()),
])
_SECT_ITEM = pa.struct([
    ("segment", pa.string()), ("name", pa.string()), ("addr", _U64), ("size", _U64),
    ("offset", pa.int64()), ("flags", pa.int64()), ("entropy", pa.float64()),
])
_SECTS_TYPE = pa.struct([
    ("segments", pa.list_(_SEG_ITEM)), ("sections", pa.list_(_SECT_ITEM)), ("entry", pa.string()),
])
_SECT_NUMS = ("segments", "sections", "zero_size", "empty_name", "exec_sections", "zerofill",
              "seg_w", "seg_x", "seg_wx", "seg_max_wx", "max_entropy", "mean_entropy")
_SECTS_DIMS = (list(_SECT_NUMS) + hashed_dim_names("name_size", _SEC_HASH)
               + hashed_dim_names("name_entropy", _SEC_HASH) + hashed_dim_names("name_type", _SEC_HASH)
               + hashed_dim_names("entry_name", _SEC_HASH) + hashed_dim_names("entry_flags", _SEC_HASH))
_WX = VM_PROT_WRITE | VM_PROT_EXECUTE


def _sect_flag_tokens(flags: int) -> list[str]:
    toks = [f"type={flags & 0xFF:#x}"]
    toks += [f"attr={1 << b:#x}" for b in range(8, 32) if flags & (1 << b)]
    return toks


def _fill_sections(raws: list[dict], out: np.ndarray) -> None:
    bins = TokenBins(out)
    rows = []
    n = 12
    for i, raw in enumerate(raws):
        segs, secs = raw["segments"], raw["sections"]
        ents = [s["entropy"] for s in secs]
        full = [f"{s['segment']},{s['name']}" for s in secs]
        rows.append([
            len(segs), len(secs), sum(s["size"] == 0 for s in secs), sum(s["name"] == "" for s in secs),
            sum(bool(s["flags"] & (S_ATTR_PURE_INSTRUCTIONS | S_ATTR_SOME_INSTRUCTIONS)) for s in secs),
            sum(s["flags"] & 0xFF in ZEROFILL_TYPES for s in secs),
            sum(bool(s["initprot"] & VM_PROT_WRITE) for s in segs),
            sum(bool(s["initprot"] & VM_PROT_EXECUTE) for s in segs),
            sum(s["initprot"] & _WX == _WX for s in segs), sum(s["maxprot"] & _WX == _WX for s in segs),
            max(ents, default=0.0), (sum(ents) / len(ents)) if ents else 0.0,
        ])
        entry = raw["entry"]
        entry_flags = next((s["flags"] for s, name in zip(secs, full, strict=True) if name == entry), None)
        bins.add(i, n, full, _SEC_HASH, [float(s["size"]) for s in secs])
        bins.add(i, n + _SEC_HASH, full, _SEC_HASH, [float(e) for e in ents])
        bins.add(i, n + 2 * _SEC_HASH, [f"{name}:{s['flags'] & 0xFF:#x}" for name, s in zip(full, secs, strict=True)],
                 _SEC_HASH)
        if entry:
            bins.add(i, n + 3 * _SEC_HASH, [entry], _SEC_HASH)
        if entry_flags is not None:
            bins.add(i, n + 4 * _SEC_HASH, _sect_flag_tokens(entry_flags), _SEC_HASH)
    out[:, :n] = np.array(rows, dtype=np.float32)
    bins.write()


@declare(REGISTRY, name="macho_sections", version=1, formats=["macho"], stage="structure",
         raw_type=_SECTS_TYPE, dim_names=_SECTS_DIMS, fill=_fill_sections)
def macho_sections(parsed: Parsed) -> dict:
    """Segments (LC_SEGMENT/LC_SEGMENT_64, at most 256) and their sections (at most 4,096) with the
    entropy of each section's file bytes (zero-fill sections and sections without file offset: 0).

    ``entry`` is "segment,section" of the section holding the entry point (LC_MAIN or thread
    state), "" if none. Vector: counts (including writable / executable / W+X segments), then
    hashed "segment,section" → size and → entropy, "segment,section:type" tokens, the entry
    section's name and its type/attribute tokens (50 bins each).
    """
    segs, secs = segments_sections(parsed)
    entry = ""
    va = entry_point(parsed)
    if va:
        for s in secs:
            if s["addr"] <= va < s["addr"] + s["size"]:
                entry = f"{s['segment']},{s['name']}"
                break
    return {"segments": segs, "sections": secs, "entry": entry}
