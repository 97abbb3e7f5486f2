"""Mach-O structural feature groups (all named ``macho_*``) and the Mach-O parse step.

The parse step validates the file with LIEF (dyld bindings, exports trie and rebases skipped) and
walks the load commands once with ``struct`` (``Parsed.extra["cmds"]``), so raw values are exactly
what the file says; the symbol table is read with numpy. LIEF cannot be told to skip the symbol
table (its per-symbol objects were ~90% of its parse time on the sample corpus) and no group uses
them, so LIEF gets a copy whose LC_SYMTAB lists no symbols when that saves more than the copy costs.

Fat (universal) files: the fat header is read with ``struct`` (big-endian ``fat_arch`` or
``fat_arch_64``); ONE slice is chosen and parsed, by this deterministic rule: the first x86_64 slice,
else the first arm64 slice (any subtype, arm64e included), else the other slices in file order;
a candidate whose range lies outside the file or that LIEF cannot parse is passed over for the next.
Only the chosen slice is parsed (half the work of parsing every slice). ``Parsed.binary`` is that
slice's LIEF binary, ``Parsed.extra`` holds the architecture list (``archs``), the chosen index and
the slice's offset and size; every group but ``macho_fat`` describes the chosen slice. Offsets in
raw values are relative to the slice, as in the file.

A file starting with CAFEBABE whose count field reads 20 or more is a Java class file (minor/major
version), not Mach-O: the parse step raises ParseError.
"""

from __future__ import annotations

import struct
from typing import Any

import numpy as np
import pyarrow as pa

from extract.entropy import range_entropies
from extract.groups.elf import onehot, onehot_names, symbol_names
from extract.hashing import hash_tokens, hash_weighted, hashed_dim_names
from extract.parsed import Parsed, ParseError, load_lief, register_general, register_parser
from extract.registry import REGISTRY, declare
from extract.text import clean

# Caps on variable-length raw values.
MAX_COMMANDS = 4096
MAX_SEGMENTS = 256
MAX_SECTIONS = 4096
MAX_DYLIBS = 1024
MAX_RPATHS = 64
MAX_SYMBOLS = 10_000
MAX_FAT_ARCHS = 20  # as extract.formats: 20+ "architectures" is a Java class file
NAME_CAP = 256
PATH_CAP = 1024

CPU_X86, CPU_X86_64, CPU_ARM, CPU_ARM64 = 7, 0x01000007, 12, 0x0100000C
FAT_PREFERENCE = (CPU_X86_64, CPU_ARM64)

_THIN_MAGIC = {
    b"\xfe\xed\xfa\xce": (">", False), b"\xce\xfa\xed\xfe": ("<", False),
    b"\xfe\xed\xfa\xcf": (">", True), b"\xcf\xfa\xed\xfe": ("<", True),
}

# Load command numbers.
LC_SEGMENT, LC_SYMTAB, LC_SEGMENT_64 = 0x1, 0x2, 0x19
LC_LOAD_DYLIB, LC_ID_DYLIB, LC_LOAD_WEAK_DYLIB, LC_REEXPORT_DYLIB = 0xC, 0xD, 0x80000018, 0x8000001F
LC_LAZY_LOAD_DYLIB, LC_LOAD_UPWARD_DYLIB, LC_RPATH = 0x20, 0x80000023, 0x8000001C
LC_CODE_SIGNATURE, LC_ENCRYPTION_INFO, LC_ENCRYPTION_INFO_64 = 0x1D, 0x21, 0x2C
LC_BUILD_VERSION, LC_MAIN, LC_DYLD_ENVIRONMENT = 0x32, 0x80000028, 0x27
LC_VERSION_MIN = {0x24: 1, 0x25: 2, 0x2F: 3, 0x30: 4}  # MACOSX, IPHONEOS, TVOS, WATCHOS → platform
_DYLIB_CMDS = (LC_LOAD_DYLIB, LC_LOAD_WEAK_DYLIB, LC_REEXPORT_DYLIB, LC_LAZY_LOAD_DYLIB,
               LC_LOAD_UPWARD_DYLIB)

# ---------------------------------------------------------------------------------------------
# Parse step.

_CONFIG: Any = None
# Hide the symbol table from LIEF when it has at least one symbol per this many bytes of image (the
# same rule as for PE's COFF symbols, see extract.groups.pe_parse).
BYTES_PER_SYMBOL_TO_HIDE = 4096


def _config() -> Any:
    global _CONFIG
    if _CONFIG is None:
        cfg = load_lief().MachO.ParserConfig()
        cfg.parse_dyld_bindings = False
        cfg.parse_dyld_exports = False
        cfg.parse_dyld_rebases = False
        cfg.fix_from_memory = False
        _CONFIG = cfg
    return _CONFIG


def read_fat(data: bytes | memoryview) -> list[dict[str, int]]:
    """The fat header's architecture list; ParseError for a Java class file or a truncated table."""
    head = bytes(data[:8])
    is64 = head[:4] == b"\xca\xfe\xba\xbf"
    (nfat,) = struct.unpack(">I", head[4:8])
    if nfat == 0 or nfat >= MAX_FAT_ARCHS:
        raise ParseError(f"CAFEBABE with count {nfat}: a Java class file or not a fat Mach-O")
    fmt, step = (">iiQQII", 32) if is64 else (">iiIII", 20)
    if 8 + nfat * step > len(data):
        raise ParseError(f"fat header lists {nfat} architectures but the file ends at {len(data)}")
    archs = []
    for i in range(nfat):
        cpu, sub, off, size, align = struct.unpack_from(fmt, data, 8 + i * step)[:5]
        archs.append({"cputype": cpu & 0xFFFFFFFF, "cpusubtype": sub & 0xFFFFFFFF, "offset": off,
                      "size": size, "align": align})
    return archs


def _candidates(archs: list[dict[str, int]]) -> list[int]:
    order = [i for pref in FAT_PREFERENCE for i, a in enumerate(archs) if a["cputype"] == pref]
    return order + [i for i in range(len(archs)) if i not in order]


def without_symbols(buf: bytes, info: dict[str, Any]) -> bytes:
    """What LIEF parses: ``buf``, or a copy whose LC_SYMTAB says nsyms = 0 (see the module docstring)."""
    cmd = next((off for c, off, size in info["cmds"] if c == LC_SYMTAB and size >= 24), None)
    if cmd is None:
        return buf
    (nsyms,) = struct.unpack_from(info["end"] + "I", buf, cmd + 12)
    if nsyms == 0 or nsyms * BYTES_PER_SYMBOL_TO_HIDE < len(buf):
        return buf
    return b"".join((buf[:cmd + 12], bytes(4), buf[cmd + 16:]))


def _lief_parse(buf: bytes, info: dict[str, Any]) -> tuple[Any, Any]:
    """(FatBinary, its first Binary): the container must stay referenced while the binary is used
    (LIEF's binaries are owned by it; dropping it frees them)."""
    try:
        fat = load_lief().MachO.parse(without_symbols(buf, info), _config())
    except Exception as exc:  # LIEF raises assorted types on hostile input
        raise ParseError(f"LIEF Mach-O parser failed: {type(exc).__name__}: {exc}"[:300]) from exc
    if fat is None or fat.size < 1:
        raise ParseError("LIEF could not parse the Mach-O file")
    binary = fat.at(0)
    if binary is None:
        raise ParseError("LIEF could not parse the Mach-O file")
    return fat, binary


def read_commands(buf: bytes | memoryview) -> dict[str, Any]:
    """Mach-O header and load-command list (cmd, offset, size) of one thin image, via struct."""
    magic = bytes(buf[:4])
    if magic not in _THIN_MAGIC:
        raise ParseError(f"not a thin Mach-O image (magic {magic.hex()})")
    end, is64 = _THIN_MAGIC[magic]
    hsize = 32 if is64 else 28
    if len(buf) < hsize:
        raise ParseError(f"Mach-O header truncated: {len(buf)} bytes")
    cpu, sub, ftype, ncmds, sizeofcmds, flags = struct.unpack_from(end + "iiIIII", buf, 4)
    cmds = []
    off = hsize
    limit = min(len(buf), hsize + sizeofcmds)
    for _ in range(min(ncmds, MAX_COMMANDS * 16)):
        if off + 8 > limit:
            break
        cmd, size = struct.unpack_from(end + "II", buf, off)
        if size < 8 or off + size > limit:
            break
        cmds.append((cmd, off, size))
        off += size
    return {"end": end, "is64": is64, "cputype": cpu & 0xFFFFFFFF, "cpusubtype": sub & 0xFFFFFFFF,
            "filetype": ftype, "ncmds": ncmds, "sizeofcmds": sizeofcmds, "flags": flags,
            "magic": int.from_bytes(magic, "little" if end == "<" else "big"), "cmds": cmds}


def parse_macho(data: bytes | memoryview) -> Parsed:
    """Parse a thin Mach-O, or the chosen slice of a fat one (rule in the module docstring)."""
    head = bytes(data[:8])
    if len(head) < 8:
        raise ParseError(f"file too short for Mach-O: {len(head)} bytes")
    extra: dict[str, Any] = {"fat": False, "archs": [], "nfat": 0, "chosen": -1}
    if head[:4] in (b"\xca\xfe\xba\xbe", b"\xca\xfe\xba\xbf"):
        archs = read_fat(data)
        extra.update(fat=True, archs=archs, nfat=len(archs))
        failures = []
        for i in _candidates(archs):
            a = archs[i]
            off, size = a["offset"], a["size"]
            if size <= 0 or off + size > len(data) or off < 8:
                failures.append(f"slice {i} out of bounds")
                continue
            sl = bytes(data[off:off + size])
            try:
                info = read_commands(sl)
                container, binary = _lief_parse(sl, info)
            except ParseError as exc:
                failures.append(f"slice {i}: {exc}")
                continue
            extra.update(chosen=i, slice_offset=off, slice_size=size, image=sl, lief_fat=container,
                         **info)
            return Parsed(format="macho", data=data, size=len(data), binary=binary, extra=extra)
        raise ParseError("no parsable slice in fat Mach-O: " + "; ".join(failures)[:250])
    info = read_commands(data)
    raw = data if isinstance(data, bytes) else bytes(data)
    container, binary = _lief_parse(raw, info)
    extra.update(slice_offset=0, slice_size=len(data), image=raw, lief_fat=container, **info)
    return Parsed(format="macho", data=data, size=len(data), binary=binary, extra=extra)


register_parser("macho", parse_macho)


def _cached(parsed: Parsed, key: str, fn):
    if key not in parsed.extra:
        parsed.extra[key] = fn(parsed)
    return parsed.extra[key]


def _cmd_string(p: Parsed, off: int, size: int, rel: int, cap: int) -> str:
    """A NUL-terminated string at offset ``rel`` inside the load command at ``off``."""
    img = p.extra["image"]
    if rel < 8 or rel >= size:
        return ""
    chunk = bytes(img[off + rel:off + size])
    nul = chunk.find(b"\0")
    return clean(chunk if nul < 0 else chunk[:nul], cap)


def _unpack(p: Parsed, fmt: str, off: int) -> tuple:
    return struct.unpack_from(p.extra["end"] + fmt, p.extra["image"], off)


# ---------------------------------------------------------------------------------------------
# macho_header

# x86, x86_64, ARM, ARM64, ARM64_32, PowerPC, PowerPC64, i860/SPARC/MC680x0 fall in "other"
CPU_TYPES = (CPU_X86, CPU_X86_64, CPU_ARM, CPU_ARM64, 0x0200000C, 18, 0x01000012)
# OBJECT, EXECUTE, FVMLIB, CORE, PRELOAD, DYLIB, DYLINKER, BUNDLE, DYLIB_STUB, DSYM, KEXT_BUNDLE, FILESET
FILE_TYPES = tuple(range(1, 13))
FLAG_BITS = 32
_HDR_TYPE = pa.struct([
    ("magic", pa.uint32()), ("is64", pa.bool_()), ("big_endian", pa.bool_()), ("cputype", pa.uint32()),
    ("cpusubtype", pa.uint32()), ("filetype", pa.uint32()), ("ncmds", pa.uint32()),
    ("sizeofcmds", pa.uint32()), ("flags", pa.uint32()),
])
_HDR_DIMS = (onehot_names("cputype", CPU_TYPES) + onehot_names("filetype", FILE_TYPES, "{}")
             + [f"flag[{i}]" for i in range(FLAG_BITS)]
             + ["cpusubtype", "cpusubtype_caps", "ncmds", "sizeofcmds", "is64", "big_endian"])


def _vec_header(raw: dict) -> np.ndarray:
    f = raw["flags"]
    v = (onehot(raw["cputype"], CPU_TYPES) + onehot(raw["filetype"], FILE_TYPES)
         + [float((f >> i) & 1) for i in range(FLAG_BITS)]
         + [raw["cpusubtype"] & 0x00FFFFFF, raw["cpusubtype"] >> 24, raw["ncmds"], raw["sizeofcmds"],
            raw["is64"], raw["big_endian"]])
    return np.asarray(v, dtype=np.float32)


@declare(REGISTRY, name="macho_header", version=1, formats=["macho"], stage="structure",
         raw_type=_HDR_TYPE, dim_names=_HDR_DIMS, vectorize=_vec_header)
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
    ("commands", pa.list_(pa.struct([("cmd", pa.uint32()), ("size", pa.uint32())]))),
])
_LC_DIMS = [*onehot_names("cmd_count", COMMAND_TYPES), "count", "total_size", "unparsed"]


def _vec_commands(raw: dict) -> np.ndarray:
    counts = [0.0] * (len(COMMAND_TYPES) + 1)
    index = {c: i for i, c in enumerate(COMMAND_TYPES)}
    total = 0
    for c in raw["commands"]:
        counts[index.get(c["cmd"], len(COMMAND_TYPES))] += 1
        total += c["size"]
    return np.asarray([*counts, raw["count"], total, raw["count"] - len(raw["commands"])],
                      dtype=np.float32)


@declare(REGISTRY, name="macho_load_commands", version=1, formats=["macho"], stage="structure",
         raw_type=_LC_TYPE, dim_names=_LC_DIMS, vectorize=_vec_commands)
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

S_ZEROFILL, S_GB_ZEROFILL, S_THREAD_LOCAL_ZEROFILL = 0x1, 0xC, 0x12
_ZEROFILL = (S_ZEROFILL, S_GB_ZEROFILL, S_THREAD_LOCAL_ZEROFILL)
S_ATTR_PURE_INSTRUCTIONS, S_ATTR_SOME_INSTRUCTIONS = 0x80000000, 0x400
VM_PROT_READ, VM_PROT_WRITE, VM_PROT_EXECUTE = 1, 2, 4
_SEC_HASH = 50
_SEG_ITEM = pa.struct([
    ("name", pa.string()), ("vmaddr", pa.uint64()), ("vmsize", pa.uint64()), ("fileoff", pa.uint64()),
    ("filesize", pa.uint64()), ("maxprot", pa.uint32()), ("initprot", pa.uint32()),
    ("nsects", pa.uint32()), ("flags", pa.uint32()),
])
_SECT_ITEM = pa.struct([
    ("segment", pa.string()), ("name", pa.string()), ("addr", pa.uint64()), ("size", pa.uint64()),
    ("offset", pa.uint32()), ("flags", pa.uint32()), ("entropy", pa.float64()),
])
_SECTS_TYPE = pa.struct([
    ("segments", pa.list_(_SEG_ITEM)), ("sections", pa.list_(_SECT_ITEM)), ("entry", pa.string()),
])
_SECT_NUMS = ("segments", "sections", "zero_size", "empty_name", "exec_sections", "zerofill",
              "seg_w", "seg_x", "seg_wx", "seg_max_wx", "max_entropy", "mean_entropy")
_SECTS_DIMS = (list(_SECT_NUMS) + hashed_dim_names("name_size", _SEC_HASH)
               + hashed_dim_names("name_entropy", _SEC_HASH) + hashed_dim_names("name_type", _SEC_HASH)
               + hashed_dim_names("entry_name", _SEC_HASH) + hashed_dim_names("entry_flags", _SEC_HASH))


def _sect_flag_tokens(flags: int) -> list[str]:
    toks = [f"type={flags & 0xFF:#x}"]
    toks += [f"attr={1 << b:#x}" for b in range(8, 32) if flags & (1 << b)]
    return toks


def _vec_sections(raw: dict) -> np.ndarray:
    segs, secs = raw["segments"], raw["sections"]
    ents = [s["entropy"] for s in secs]
    full = [f"{s['segment']},{s['name']}" for s in secs]
    general = [
        len(segs), len(secs), sum(s["size"] == 0 for s in secs), sum(s["name"] == "" for s in secs),
        sum(bool(s["flags"] & (S_ATTR_PURE_INSTRUCTIONS | S_ATTR_SOME_INSTRUCTIONS)) for s in secs),
        sum(s["flags"] & 0xFF in _ZEROFILL for s in secs),
        sum(bool(s["initprot"] & VM_PROT_WRITE) for s in segs),
        sum(bool(s["initprot"] & VM_PROT_EXECUTE) for s in segs),
        sum(s["initprot"] & 6 == 6 for s in segs), sum(s["maxprot"] & 6 == 6 for s in segs),
        max(ents, default=0.0), (sum(ents) / len(ents)) if ents else 0.0,
    ]
    entry = raw["entry"]
    entry_flags = next((s["flags"] for s, n in zip(secs, full, strict=True) if n == entry), None)
    parts = [
        np.asarray(general, dtype=np.float32),
        hash_weighted(zip(full, (s["size"] for s in secs), strict=True), _SEC_HASH),
        hash_weighted(zip(full, ents, strict=True), _SEC_HASH),
        hash_tokens((f"{n}:{s['flags'] & 0xFF:#x}" for n, s in zip(full, secs, strict=True)), _SEC_HASH),
        hash_tokens([entry] if entry else [], _SEC_HASH),
        hash_tokens(_sect_flag_tokens(entry_flags) if entry_flags is not None else [], _SEC_HASH),
    ]
    return np.concatenate(parts).astype(np.float32)


def _name16(raw: bytes) -> str:
    return clean(raw.split(b"\0", 1)[0], NAME_CAP)


def _segments_sections(p: Parsed) -> tuple[list[dict], list[dict]]:
    def build(p: Parsed) -> tuple[list[dict], list[dict]]:
        segs: list[dict] = []
        secs: list[dict] = []
        is64 = p.extra["is64"]
        img = p.extra["image"]
        seg_fmt, seg_len = ("16sQQQQiiII", 72) if is64 else ("16sIIIIiiII", 56)
        sec_fmt, sec_len = ("16s16sQQIIIIIIII", 80) if is64 else ("16s16sIIIIIIIII", 68)
        want = LC_SEGMENT_64 if is64 else LC_SEGMENT
        for cmd, off, size in p.extra["cmds"]:
            if cmd != want or size < seg_len or len(segs) >= MAX_SEGMENTS:
                continue
            name, vmaddr, vmsize, fileoff, filesize, maxprot, initprot, nsects, flags = _unpack(
                p, seg_fmt, off + 8)
            segs.append({"name": _name16(name), "vmaddr": vmaddr, "vmsize": vmsize, "fileoff": fileoff,
                         "filesize": filesize, "maxprot": maxprot & 0xFFFFFFFF,
                         "initprot": initprot & 0xFFFFFFFF, "nsects": nsects, "flags": flags})
            room = (size - seg_len) // sec_len
            for k in range(min(nsects, room, MAX_SECTIONS - len(secs))):
                so = off + seg_len + k * sec_len
                sname, segname, addr, ssize, soff, _al, _ro, _nr, sflags = struct.unpack_from(
                    p.extra["end"] + sec_fmt, img, so)[:9]
                secs.append({"segment": _name16(segname), "name": _name16(sname), "addr": addr,
                             "size": ssize, "offset": soff, "flags": sflags, "entropy": 0.0})
        base, limit = p.extra["slice_offset"], p.extra["slice_size"]
        ranges = []
        for s in secs:
            zero = s["flags"] & 0xFF in _ZEROFILL or s["offset"] == 0 or s["offset"] >= limit
            n = 0 if zero else min(s["size"], limit - s["offset"])
            ranges.append((base + s["offset"], n))
        for s, e in zip(secs, range_entropies(p.data, ranges), strict=True):
            s["entropy"] = e
        return segs, secs

    return _cached(p, "segsecs", build)


def _entry_va(p: Parsed) -> int | None:
    b = p.binary
    try:
        if b.has_entrypoint:
            return int(b.entrypoint)
    except Exception:
        return None
    return None


@declare(REGISTRY, name="macho_sections", version=1, formats=["macho"], stage="structure",
         raw_type=_SECTS_TYPE, dim_names=_SECTS_DIMS, vectorize=_vec_sections)
def macho_sections(parsed: Parsed) -> dict:
    """Segments (LC_SEGMENT/LC_SEGMENT_64, at most 256) and their sections (at most 4,096) with the
    entropy of each section's file bytes (zero-fill sections and sections without file offset: 0).

    ``entry`` is "segment,section" of the section holding the entry point (LC_MAIN or thread
    state), "" if none. Vector: counts (including writable / executable / W+X segments), then
    hashed "segment,section" → size and → entropy, "segment,section:type" tokens, the entry
    section's name and its type/attribute tokens (50 bins each).
    """
    segs, secs = _segments_sections(parsed)
    entry = ""
    va = _entry_va(parsed)
    if va:
        for s in secs:
            if s["addr"] <= va < s["addr"] + s["size"]:
                entry = f"{s['segment']},{s['name']}"
                break
    return {"segments": segs, "sections": secs, "entry": entry}


# ---------------------------------------------------------------------------------------------
# macho_dylibs

_LIB_HASH = 256
_DYLIB_TYPE = pa.struct([
    ("count", pa.int64()), ("id", pa.string()),
    ("dylibs", pa.list_(pa.struct([("name", pa.string()), ("cmd", pa.uint32())]))),
    ("rpaths", pa.list_(pa.string())),
])
_DYLIB_NUMS = ("count", "load", "weak", "reexport", "lazy", "upward", "rpaths", "has_id")
_DYLIB_DIMS = list(_DYLIB_NUMS) + hashed_dim_names("dylib", _LIB_HASH)


def _vec_dylibs(raw: dict) -> np.ndarray:
    kinds = [d["cmd"] for d in raw["dylibs"]]
    head = [raw["count"]] + [kinds.count(c) for c in _DYLIB_CMDS] + [len(raw["rpaths"]), bool(raw["id"])]
    return np.concatenate([np.asarray(head, dtype=np.float32),
                           hash_tokens([d["name"] for d in raw["dylibs"]], _LIB_HASH)])


def _dylibs(p: Parsed) -> dict:
    def build(p: Parsed) -> dict:
        dylibs, rpaths, ident, count = [], [], "", 0
        for cmd, off, size in p.extra["cmds"]:
            if cmd in _DYLIB_CMDS:
                count += 1
                if len(dylibs) < MAX_DYLIBS and size >= 12:
                    (rel,) = _unpack(p, "I", off + 8)
                    dylibs.append({"name": _cmd_string(p, off, size, rel, PATH_CAP), "cmd": cmd})
            elif cmd == LC_ID_DYLIB and not ident and size >= 12:
                ident = _cmd_string(p, off, size, _unpack(p, "I", off + 8)[0], PATH_CAP)
            elif cmd == LC_RPATH and len(rpaths) < MAX_RPATHS and size >= 12:
                rpaths.append(_cmd_string(p, off, size, _unpack(p, "I", off + 8)[0], PATH_CAP))
        return {"count": count, "id": ident, "dylibs": dylibs, "rpaths": rpaths}

    return _cached(p, "dylibs", build)


@declare(REGISTRY, name="macho_dylibs", version=1, formats=["macho"], stage="structure",
         raw_type=_DYLIB_TYPE, dim_names=_DYLIB_DIMS, vectorize=_vec_dylibs)
def macho_dylibs(parsed: Parsed) -> dict:
    """Linked dylibs in load order with their command (LOAD, LOAD_WEAK, REEXPORT, LAZY_LOAD,
    LOAD_UPWARD), at most 1,024 (``count`` is the total); the LC_ID_DYLIB install name; LC_RPATH
    paths (at most 64). Paths cut at 1,024 characters.

    Vector: counts per kind, rpaths, has install name, then the dylib paths hashed into 256 bins.
    """
    return _dylibs(parsed)


# ---------------------------------------------------------------------------------------------
# macho_imports / macho_exports (from the LC_SYMTAB nlist table)

N_STAB, N_PEXT, N_TYPE, N_EXT = 0xE0, 0x10, 0x0E, 0x01
N_UNDF, N_SECT = 0x0, 0xE
N_WEAK_REF, N_WEAK_DEF = 0x40, 0x80
_IMP_HASH, _EXP_HASH = 1024, 128
_SYM_TYPE = pa.struct([("count", pa.int64()), ("weak", pa.int64()), ("names", pa.list_(pa.string()))])


def _nlist_dtype(end: str, is64: bool) -> np.dtype:
    val = "u8" if is64 else "u4"
    return np.dtype([("strx", end + "u4"), ("type", "u1"), ("sect", "u1"), ("desc", end + "u2"),
                     ("value", end + val)])


def _symbols(p: Parsed) -> dict:
    """Imports: external undefined non-stab symbols with value 0 (not common); exports: external,
    not private-extern, defined in a section. Names as in the string table (with the leading _)."""

    def build(p: Parsed) -> dict:

        out = {"imports": [], "exports": [], "n_imports": 0, "n_exports": 0, "w_imports": 0,
               "w_exports": 0, "nsyms": 0}
        cmd = next(((o, s) for c, o, s in p.extra["cmds"] if c == LC_SYMTAB and s >= 24), None)
        if cmd is None:
            return out
        symoff, nsyms, stroff, strsize = _unpack(p, "IIII", cmd[0] + 8)
        out["nsyms"] = nsyms
        img = p.extra["image"]
        dt = _nlist_dtype(p.extra["end"], p.extra["is64"])
        n = max(0, min(nsyms, (len(img) - symoff) // dt.itemsize)) if symoff < len(img) else 0
        if n == 0:
            return out
        syms = np.frombuffer(img, dtype=dt, count=n, offset=symoff)
        strtab = bytes(img[stroff:stroff + strsize]) if stroff < len(img) else b""
        t = syms["type"]
        ext = ((t & N_STAB) == 0) & ((t & N_EXT) != 0) & (syms["strx"] != 0)
        imp = np.flatnonzero(ext & ((t & N_TYPE) == N_UNDF) & (syms["value"] == 0))
        exp = np.flatnonzero(ext & ((t & N_TYPE) == N_SECT) & ((t & N_PEXT) == 0))
        desc = syms["desc"]
        for key, idx, wbit in (("imports", imp, N_WEAK_REF), ("exports", exp, N_WEAK_DEF)):
            kept = idx[:MAX_SYMBOLS]
            out[key] = symbol_names(strtab, syms["strx"][kept].tolist())
            out["n_" + key] = int(idx.size)
            out["w_" + key] = int(((desc[kept] & wbit) != 0).sum())
        return out

    return _cached(p, "symbols", build)


def _vec_syms(dims: int):
    def vec(raw: dict) -> np.ndarray:
        return np.concatenate([np.asarray([raw["count"], raw["weak"]], dtype=np.float32),
                               hash_tokens(raw["names"], dims)])
    return vec


@declare(REGISTRY, name="macho_imports", version=1, formats=["macho"], stage="structure",
         raw_type=_SYM_TYPE, dim_names=["count", "weak", *hashed_dim_names("import", _IMP_HASH)],
         vectorize=_vec_syms(_IMP_HASH))
def macho_imports(parsed: Parsed) -> dict:
    """Imported symbols from LC_SYMTAB: external, undefined, not stabs, value 0 (commons excluded).

    At most 10,000 names (cut at 256 characters) in table order; ``count`` is the total, ``weak``
    counts kept names marked N_WEAK_REF. Vector: count, weak, names hashed into 1,024 bins.
    """
    s = _symbols(parsed)
    return {"count": s["n_imports"], "weak": s["w_imports"], "names": s["imports"]}


@declare(REGISTRY, name="macho_exports", version=1, formats=["macho"], stage="structure",
         raw_type=_SYM_TYPE, dim_names=["count", "weak", *hashed_dim_names("export", _EXP_HASH)],
         vectorize=_vec_syms(_EXP_HASH))
def macho_exports(parsed: Parsed) -> dict:
    """Exported symbols from LC_SYMTAB: external, defined in a section, not private extern.

    Same caps as macho_imports; ``weak`` counts N_WEAK_DEF. Vector: count, weak, 128 hashed bins.
    """
    s = _symbols(parsed)
    return {"count": s["n_exports"], "weak": s["w_exports"], "names": s["exports"]}


# ---------------------------------------------------------------------------------------------
# macho_security

MH_ALLOW_STACK_EXECUTION, MH_PIE, MH_NO_HEAP_EXECUTION = 0x20000, 0x200000, 0x1000000
_SECU_TYPE = pa.struct([
    ("pie", pa.bool_()), ("allow_stack_execution", pa.bool_()), ("no_heap_execution", pa.bool_()),
    ("has_code_signature", pa.bool_()), ("code_signature_offset", pa.uint32()),
    ("code_signature_size", pa.uint32()), ("code_signature_in_file", pa.bool_()),
    ("encrypted", pa.bool_()), ("cryptid", pa.uint32()), ("cryptoff", pa.uint32()),
    ("cryptsize", pa.uint32()), ("has_pagezero", pa.bool_()), ("has_restrict", pa.bool_()),
    ("has_dyld_environment", pa.bool_()),
])
_SECU_NUMS = tuple(_SECU_TYPE.names)


def _vec_security(raw: dict) -> np.ndarray:
    return np.asarray([float(raw[k]) for k in _SECU_NUMS], dtype=np.float32)


@declare(REGISTRY, name="macho_security", version=1, formats=["macho"], stage="structure",
         raw_type=_SECU_TYPE, dim_names=list(_SECU_NUMS), vectorize=_vec_security)
def macho_security(parsed: Parsed) -> dict:
    """Code signature (LC_CODE_SIGNATURE offset/size, and whether it lies inside the image),
    encryption (LC_ENCRYPTION_INFO[_64]: cryptid, range), header flags PIE / stack-exec /
    no-heap-exec, a __PAGEZERO and a __RESTRICT segment, an LC_DYLD_ENVIRONMENT. Vector: each field.
    """
    x = parsed.extra
    out = dict.fromkeys(_SECU_NUMS, 0)
    for k in _SECU_NUMS:
        if _SECU_TYPE.field(k).type == pa.bool_():
            out[k] = False
    f = x["flags"]
    out.update(pie=bool(f & MH_PIE), allow_stack_execution=bool(f & MH_ALLOW_STACK_EXECUTION),
               no_heap_execution=bool(f & MH_NO_HEAP_EXECUTION))
    for cmd, off, size in x["cmds"]:
        if cmd == LC_CODE_SIGNATURE and size >= 16 and not out["has_code_signature"]:
            dataoff, datasize = _unpack(parsed, "II", off + 8)
            out.update(has_code_signature=True, code_signature_offset=dataoff,
                       code_signature_size=datasize,
                       code_signature_in_file=dataoff + datasize <= x["slice_size"])
        elif cmd in (LC_ENCRYPTION_INFO, LC_ENCRYPTION_INFO_64) and size >= 20 and not out["encrypted"]:
            cryptoff, cryptsize, cryptid = _unpack(parsed, "III", off + 8)
            out.update(encrypted=cryptid != 0, cryptid=cryptid, cryptoff=cryptoff, cryptsize=cryptsize)
        elif cmd == LC_DYLD_ENVIRONMENT:
            out["has_dyld_environment"] = True
    segs, _ = _segments_sections(parsed)
    names = {s["name"] for s in segs}
    out.update(has_pagezero="__PAGEZERO" in names, has_restrict="__RESTRICT" in names)
    return out


# ---------------------------------------------------------------------------------------------
# macho_platform

# LC_BUILD_VERSION platforms: macOS, iOS, tvOS, watchOS, bridgeOS, Mac Catalyst, iOS/tvOS/watchOS
# simulators, DriverKit, visionOS, visionOS simulator
PLATFORMS = tuple(range(1, 13))
_PLAT_TYPE = pa.struct([
    ("source", pa.uint32()), ("platform", pa.uint32()), ("minos", pa.uint32()), ("sdk", pa.uint32()),
])
_PLAT_DIMS = ["present", *onehot_names("platform", PLATFORMS, "{}"), "minos", "sdk",
              "from_build_version"]


def _version(v: int) -> float:
    """xxxx.yy.zz nibble-encoded version as major + minor/100 (patch dropped)."""
    return (v >> 16) + ((v >> 8) & 0xFF) / 100.0


def _vec_platform(raw: dict) -> np.ndarray:
    if not raw["source"]:
        return np.zeros(len(_PLAT_DIMS), dtype=np.float32)
    return np.asarray([1.0, *onehot(raw["platform"], PLATFORMS), _version(raw["minos"]),
                       _version(raw["sdk"]), float(raw["source"] == LC_BUILD_VERSION)], dtype=np.float32)


@declare(REGISTRY, name="macho_platform", version=1, formats=["macho"], stage="structure",
         raw_type=_PLAT_TYPE, dim_names=_PLAT_DIMS, vectorize=_vec_platform)
def macho_platform(parsed: Parsed) -> dict:
    """Target platform and versions from the first LC_BUILD_VERSION, else the first
    LC_VERSION_MIN_* (whose platform is implied by the command). ``source`` is that command's number
    (0: none); minos and sdk stay nibble-encoded (xxxx.yy.zz). Vector: presence, one-hot platform,
    minos and sdk as major + minor/100, whether it came from LC_BUILD_VERSION.
    """
    fallback = {"source": 0, "platform": 0, "minos": 0, "sdk": 0}
    for cmd, off, size in parsed.extra["cmds"]:
        if cmd == LC_BUILD_VERSION and size >= 24:
            platform, minos, sdk = _unpack(parsed, "III", off + 8)
            return {"source": cmd, "platform": platform, "minos": minos, "sdk": sdk}
        if cmd in LC_VERSION_MIN and size >= 16 and not fallback["source"]:
            minos, sdk = _unpack(parsed, "II", off + 8)
            fallback = {"source": cmd, "platform": LC_VERSION_MIN[cmd], "minos": minos, "sdk": sdk}
    return fallback


# ---------------------------------------------------------------------------------------------
# macho_fat

MAX_ARCH_KEPT = MAX_FAT_ARCHS
_FAT_TYPE = pa.struct([
    ("fat", pa.bool_()), ("count", pa.int64()), ("chosen", pa.int32()), ("chosen_cputype", pa.uint32()),
    ("archs", pa.list_(pa.struct([("cputype", pa.uint32()), ("cpusubtype", pa.uint32()),
                                  ("offset", pa.uint64()), ("size", pa.uint64()),
                                  ("align", pa.uint32())]))),
])
_FAT_DIMS = ["fat", "count", "total_size", "max_align", *onehot_names("has_cputype", CPU_TYPES),
             *onehot_names("chosen_cputype", CPU_TYPES)]


def _vec_fat(raw: dict) -> np.ndarray:
    archs = raw["archs"]
    has = [0.0] * (len(CPU_TYPES) + 1)
    for a in archs:
        has = [max(x, y) for x, y in zip(has, onehot(a["cputype"], CPU_TYPES), strict=True)]
    chosen = onehot(raw["chosen_cputype"], CPU_TYPES) if raw["fat"] else [0.0] * (len(CPU_TYPES) + 1)
    head = [float(raw["fat"]), raw["count"], sum(a["size"] for a in archs),
            max((a["align"] for a in archs), default=0)]
    return np.asarray(head + has + chosen, dtype=np.float32)


@declare(REGISTRY, name="macho_fat", version=1, formats=["macho"], stage="structure",
         raw_type=_FAT_TYPE, dim_names=_FAT_DIMS, vectorize=_vec_fat)
def macho_fat(parsed: Parsed) -> dict:
    """The fat (universal) architecture list and the slice the other groups describe.

    For a thin file: fat false, count 0, chosen -1, no archs, and chosen_cputype the image's CPU
    type. Slice choice (module docstring): first x86_64, else first arm64, else file order, skipping
    slices out of bounds or unparsable. Vector: fat, count, total slice size, max alignment, which
    CPU types are present (one-hot union) and the chosen one.
    """
    x = parsed.extra
    return {"fat": x["fat"], "count": x["nfat"], "chosen": x["chosen"], "chosen_cputype": x["cputype"],
            "archs": x["archs"][:MAX_ARCH_KEPT]}


# ---------------------------------------------------------------------------------------------
# General fields

S_THREAD_LOCAL_REGULAR, S_THREAD_LOCAL_VARIABLES = 0x11, 0x13


def macho_general(parsed: Parsed) -> dict[str, int]:
    """EMBER's general fields for (the chosen slice of) a Mach-O.

    vsize: LIEF's virtual_size; has_debug: a __DWARF segment or section; exports / imports: as
    macho_exports / macho_imports; has_relocations: a section with relocation entries (nreloc);
    has_resources: 0; has_signature: LC_CODE_SIGNATURE; has_tls: a thread-local section;
    symbols: nsyms of LC_SYMTAB.
    """
    segs, secs = _segments_sections(parsed)
    s = _symbols(parsed)
    try:
        vsize = int(parsed.binary.virtual_size)
    except Exception:
        vsize = 0
    has_rel = False
    try:
        has_rel = any(sec.numberof_relocations for sec in parsed.binary.sections)
    except Exception:
        has_rel = False
    return {
        "vsize": vsize if 0 <= vsize < 2**63 else 0,
        "has_debug": int(any(g["name"] == "__DWARF" for g in segs)
                         or any(c["segment"] == "__DWARF" for c in secs)),
        "exports": s["n_exports"],
        "imports": s["n_imports"],
        "has_relocations": int(has_rel),
        "has_resources": 0,
        "has_signature": int(any(c == LC_CODE_SIGNATURE for c, _, _ in parsed.extra["cmds"])),
        "has_tls": int(any(c["flags"] & 0xFF in (S_THREAD_LOCAL_REGULAR, S_THREAD_LOCAL_VARIABLES,
                                                  S_THREAD_LOCAL_ZEROFILL) for c in secs)),
        "symbols": int(s["nsyms"]),
    }


register_general("macho", macho_general)
