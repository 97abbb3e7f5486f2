"""Expected raw values of the Mach-O groups, read with macholib (load commands, segments, sections,
dylibs, symbol table, fat header) and LIEF (entry point, virtual size, relocations: the values binfeat
computes by LIEF's rules), with the rules the groups document written here, not taken from binfeat."""

from __future__ import annotations

import os
import tempfile
from typing import Any

import lief
from macholib import mach_o
from macholib.MachO import MachO
from macholib.SymbolTable import SymbolTable

from tests.extract.elf_reference import shannon
from tests.extract.vector_reference import hashed, onehot

NAME_CAP, PATH_CAP, MAX_SYMBOLS = 256, 1024, 10_000
CPU_X86_64, CPU_ARM64 = 0x01000007, 0x0100000C
LC_SEGMENT, LC_SEGMENT_64, LC_SYMTAB, LC_ID_DYLIB, LC_RPATH = 0x1, 0x19, 0x2, 0xD, 0x8000001C
DYLIB_CMDS = (0xC, 0x80000018, 0x8000001F, 0x20, 0x80000023)  # LOAD, WEAK, REEXPORT, LAZY, UPWARD
LC_CODE_SIGNATURE, LC_ENCRYPTION = 0x1D, (0x21, 0x2C)
LC_BUILD_VERSION, LC_DYLD_ENVIRONMENT = 0x32, 0x27
LC_VERSION_MIN = {0x24: 1, 0x25: 2, 0x2F: 3, 0x30: 4}
ZEROFILL = (0x1, 0xC, 0x12)


def _name(raw: bytes) -> str:
    return raw.split(b"\0", 1)[0].decode("utf-8", "backslashreplace")[:NAME_CAP]


def _cstr(data: bytes, start: int, cap: int) -> str:
    return data[start:].split(b"\0", 1)[0].decode("utf-8", "backslashreplace")[:cap]


def fat_archs(data: bytes) -> list[dict]:
    """The fat header's table, read with macholib's fat_header / fat_arch(64) structures."""
    fh = mach_o.fat_header.from_str(data[:8])
    is64 = fh.magic == mach_o.FAT_MAGIC_64
    arch = mach_o.fat_arch64 if is64 else mach_o.fat_arch
    size = arch._size_
    out = []
    for i in range(fh.nfat_arch):
        a = arch.from_str(data[8 + i * size:8 + (i + 1) * size])
        out.append({"cputype": a.cputype & 0xFFFFFFFF, "cpusubtype": a.cpusubtype & 0xFFFFFFFF,
                    "offset": a.offset, "size": a.size, "align": a.align})
    return out


def chosen_slice(archs: list[dict]) -> int:
    """binfeat's documented choice: first x86_64, else first arm64, else file order (all parse here)."""
    for cpu in (CPU_X86_64, CPU_ARM64):
        for i, a in enumerate(archs):
            if a["cputype"] == cpu:
                return i
    return 0


def lief_values(image: bytes) -> tuple[int | None, int, bool]:
    """(entry point or None, virtual size, any section with relocations) as LIEF 1.0 gives them."""
    lief.logging.disable()
    fat = lief.MachO.parse(image)
    b = fat.at(0)
    return ((int(b.entrypoint) if b.has_entrypoint else None), int(b.virtual_size),
            any(s.numberof_relocations for s in b.sections))


def expected(data: bytes) -> dict[str, Any]:
    """Raw values of every macho_* group and the general fields, for a file macholib can read."""
    fat = data[:4] in (b"\xca\xfe\xba\xbe", b"\xca\xfe\xba\xbf")
    archs = fat_archs(data) if fat else []
    chosen = chosen_slice(archs) if fat else -1
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "image")
        with open(path, "wb") as f:
            f.write(data)
        m = MachO(path)
        base = archs[chosen]["offset"] if fat else 0
        h = next(x for x in m.headers if x.offset == base)
        symtab = SymbolTable(m, h) if any(lc.cmd == LC_SYMTAB for lc, _, _ in h.commands) else None
    size = archs[chosen]["size"] if fat else len(data)
    image = data[base:base + size]
    hd = h.header
    is64 = hd.magic == mach_o.MH_MAGIC_64
    header = {"magic": hd.magic, "is64": is64, "big_endian": h.endian == ">",
              "cputype": hd.cputype & 0xFFFFFFFF, "cpusubtype": hd.cpusubtype & 0xFFFFFFFF,
              "filetype": hd.filetype, "ncmds": hd.ncmds, "sizeofcmds": hd.sizeofcmds, "flags": hd.flags}
    cmds = [(lc.cmd, lc.cmdsize, cmd, blob) for lc, cmd, blob in h.commands]

    segs, secs = [], []
    for c, _, cmd, blob in cmds:
        if c != (LC_SEGMENT_64 if is64 else LC_SEGMENT):
            continue
        segs.append({"name": _name(cmd.segname), "vmaddr": cmd.vmaddr, "vmsize": cmd.vmsize,
                     "fileoff": cmd.fileoff, "filesize": cmd.filesize, "maxprot": cmd.maxprot & 0xFFFFFFFF,
                     "initprot": cmd.initprot & 0xFFFFFFFF, "nsects": cmd.nsects, "flags": cmd.flags})
        for s in blob:
            inside = s.flags & 0xFF not in ZEROFILL and s.offset and s.offset < size
            secs.append({"segment": _name(s.segname), "name": _name(s.sectname), "addr": s.addr,
                         "size": s.size, "offset": s.offset, "flags": s.flags,
                         "entropy": shannon(image[s.offset:s.offset + s.size]) if inside else 0.0})
    entry_va, vsize, relocations = lief_values(image)
    entry = next((f"{s['segment']},{s['name']}" for s in secs
                  if entry_va and s["addr"] <= entry_va < s["addr"] + s["size"]), "")

    dylibs, rpaths, ident = [], [], ""
    for c, _, cmd, blob in cmds:
        if c in DYLIB_CMDS or c == LC_ID_DYLIB:
            name = _cstr(blob, cmd.name - 8 - cmd._size_, PATH_CAP)
            if c == LC_ID_DYLIB:
                ident = ident or name
            else:
                dylibs.append({"name": name, "cmd": c})
        elif c == LC_RPATH:
            rpaths.append(_cstr(blob, cmd.path - 8 - cmd._size_, PATH_CAP))

    imports, exports, nsyms = [], [], 0
    if symtab is not None:
        nsyms = next(cmd.nsyms for c, _, cmd, _ in cmds if c == LC_SYMTAB)
        for n, name in symtab.nlists:
            t = n.n_type
            if t & 0xE0 or not t & 1 or not n.n_un:
                continue
            if t & 0x0E == 0 and n.n_value == 0:
                imports.append((name.decode("utf-8", "backslashreplace")[:NAME_CAP], bool(n.n_desc & 0x40)))
            elif t & 0x0E == 0x0E and not t & 0x10:
                exports.append((name.decode("utf-8", "backslashreplace")[:NAME_CAP], bool(n.n_desc & 0x80)))

    def syms(items: list) -> dict:
        kept = items[:MAX_SYMBOLS]
        return {"count": len(items), "weak": sum(w for _, w in kept), "names": [n for n, _ in kept]}

    security = {"pie": bool(hd.flags & 0x200000), "allow_stack_execution": bool(hd.flags & 0x20000),
                "no_heap_execution": bool(hd.flags & 0x1000000), "has_code_signature": False,
                "code_signature_offset": 0, "code_signature_size": 0, "code_signature_in_file": False,
                "encrypted": False, "cryptid": 0, "cryptoff": 0, "cryptsize": 0,
                "has_pagezero": any(s["name"] == "__PAGEZERO" for s in segs),
                "has_restrict": any(s["name"] == "__RESTRICT" for s in segs),
                "has_dyld_environment": any(c == LC_DYLD_ENVIRONMENT for c, *_ in cmds)}
    sig = next((cmd for c, _, cmd, _ in cmds if c == LC_CODE_SIGNATURE), None)
    if sig is not None:
        security |= {"has_code_signature": True, "code_signature_offset": sig.dataoff,
                     "code_signature_size": sig.datasize, "code_signature_in_file": sig.dataoff + sig.datasize <= size}
    for c, _, cmd, _ in cmds:  # the first encryption command, or a later one after one with cryptid 0
        if c in LC_ENCRYPTION and not security["encrypted"]:
            security |= {"encrypted": cmd.cryptid != 0, "cryptid": cmd.cryptid, "cryptoff": cmd.cryptoff,
                         "cryptsize": cmd.cryptsize}

    platform = {"source": 0, "platform": 0, "minos": 0, "sdk": 0}
    build = next(((c, cmd) for c, _, cmd, _ in cmds if c == LC_BUILD_VERSION), None)
    vmin = next(((c, cmd) for c, _, cmd, _ in cmds if c in LC_VERSION_MIN), None)
    if build:
        platform = {"source": build[0], "platform": build[1].platform, "minos": build[1].minos, "sdk": build[1].sdk}
    elif vmin:
        platform = {"source": vmin[0], "platform": LC_VERSION_MIN[vmin[0]], "minos": vmin[1].version,
                    "sdk": vmin[1].sdk}

    return {
        "macho_header": header,
        "macho_load_commands": {"count": hd.ncmds, "commands": [{"cmd": c, "size": n} for c, n, _, _ in cmds]},
        "macho_sections": {"segments": segs, "sections": secs, "entry": entry},
        "macho_dylibs": {"count": len(dylibs), "id": ident, "dylibs": dylibs, "rpaths": rpaths},
        "macho_imports": syms(imports),
        "macho_exports": syms(exports),
        "macho_security": security,
        "macho_platform": platform,
        "macho_fat": {"fat": fat, "count": len(archs), "chosen": chosen, "chosen_cputype": header["cputype"],
                      "archs": archs},
        "general": {
            "vsize": vsize, "has_debug": int(any(s["name"] == "__DWARF" for s in segs)
                                             or any(s["segment"] == "__DWARF" for s in secs)),
            "exports": len(exports), "imports": len(imports), "has_relocations": int(relocations),
            "has_resources": 0, "has_signature": int(sig is not None),
            "has_tls": int(any(s["flags"] & 0xFF in (0x11, 0x12, 0x13) for s in secs)), "symbols": nsyms},
    }


def assert_raw_equal(got: dict, want: dict) -> None:
    """Equal group by group; section entropies to 1e-9."""
    import pytest

    for name, value in want.items():
        if name == "macho_sections":
            secs = [dict(s, entropy=pytest.approx(s["entropy"], abs=1e-9)) for s in value["sections"]]
            assert got[name] == dict(value, sections=secs), name
        else:
            assert got[name] == value, name


# ---------------------------------------------------------------------------------------------
# Vectors, from docs/vector_layout.md's rules

CPU_TYPES = (7, 0x01000007, 12, 0x0100000C, 0x0200000C, 18, 0x01000012)
FILE_TYPES = tuple(range(1, 13))
COMMAND_TYPES = (
    0x1, 0x2, 0x4, 0x5, 0xB, 0xC, 0xD, 0xE, 0xF, 0x19, 0x1A, 0x1B, 0x1D, 0x1E, 0x20, 0x21, 0x24, 0x25,
    0x26, 0x27, 0x29, 0x2A, 0x2B, 0x2C, 0x2F, 0x30, 0x31, 0x32, 0x80000018, 0x8000001C, 0x8000001F,
    0x80000022, 0x80000023, 0x80000028, 0x80000033, 0x80000034,
)
PLATFORMS = tuple(range(1, 13))


def _version(v: int) -> float:
    return (v >> 16) + ((v >> 8) & 0xFF) / 100


def expected_vector(group: str, raw: dict) -> dict[str, float]:
    v: dict[str, float] = {}
    if group == "macho_header":
        v |= onehot("cputype", raw["cputype"], CPU_TYPES) | onehot("filetype", raw["filetype"], FILE_TYPES, "{}")
        v |= {f"flag[{i}]": 1.0 for i in range(32) if raw["flags"] >> i & 1}
        v |= {"cpusubtype": raw["cpusubtype"] & 0xFFFFFF, "cpusubtype_caps": raw["cpusubtype"] >> 24,
              "ncmds": raw["ncmds"], "sizeofcmds": raw["sizeofcmds"], "is64": raw["is64"],
              "big_endian": raw["big_endian"]}
    elif group == "macho_load_commands":
        for c in raw["commands"]:
            key = next(iter(onehot("cmd_count", c["cmd"], COMMAND_TYPES)))
            v[key] = v.get(key, 0) + 1
        v |= {"count": raw["count"], "total_size": sum(c["size"] for c in raw["commands"]),
              "unparsed": raw["count"] - len(raw["commands"])}
    elif group == "macho_sections":
        segs, secs = raw["segments"], raw["sections"]
        full = [f"{s['segment']},{s['name']}" for s in secs]
        ents = [s["entropy"] for s in secs]
        v |= {"segments": len(segs), "sections": len(secs), "zero_size": sum(s["size"] == 0 for s in secs),
              "empty_name": sum(s["name"] == "" for s in secs),
              "exec_sections": sum(bool(s["flags"] & 0x80000400) for s in secs),
              "zerofill": sum(s["flags"] & 0xFF in ZEROFILL for s in secs),
              "seg_w": sum(bool(s["initprot"] & 2) for s in segs),
              "seg_x": sum(bool(s["initprot"] & 4) for s in segs),
              "seg_wx": sum(s["initprot"] & 6 == 6 for s in segs),
              "seg_max_wx": sum(s["maxprot"] & 6 == 6 for s in segs),
              "max_entropy": max(ents, default=0.0), "mean_entropy": sum(ents) / len(ents) if ents else 0.0}
        v |= hashed("name_size", full, 50, [s["size"] for s in secs]) | hashed("name_entropy", full, 50, ents)
        v |= hashed("name_type", [f"{n}:{s['flags'] & 0xFF:#x}" for n, s in zip(full, secs, strict=True)], 50)
        if raw["entry"]:
            flags = next(s["flags"] for n, s in zip(full, secs, strict=True) if n == raw["entry"])
            tokens = [f"type={flags & 0xFF:#x}"] + [f"attr={1 << b:#x}" for b in range(8, 32) if flags >> b & 1]
            v |= hashed("entry_name", [raw["entry"]], 50) | hashed("entry_flags", tokens, 50)
    elif group == "macho_dylibs":
        kinds = [d["cmd"] for d in raw["dylibs"]]
        v |= dict(zip(("load", "weak", "reexport", "lazy", "upward"), (kinds.count(c) for c in DYLIB_CMDS),
                      strict=True))
        v |= {"count": raw["count"], "rpaths": len(raw["rpaths"]), "has_id": bool(raw["id"])}
        v |= hashed("dylib", [d["name"] for d in raw["dylibs"]], 256)
    elif group in ("macho_imports", "macho_exports"):
        v |= {"count": raw["count"], "weak": raw["weak"]}
        v |= hashed("import", raw["names"], 1024) if group == "macho_imports" else hashed("export", raw["names"], 128)
    elif group == "macho_security":
        v |= {k: float(x) for k, x in raw.items()}
    elif group == "macho_platform":
        if raw["source"]:
            v |= {"present": 1.0, "minos": _version(raw["minos"]), "sdk": _version(raw["sdk"]),
                  "from_build_version": float(raw["source"] == LC_BUILD_VERSION)}
            v |= onehot("platform", raw["platform"], PLATFORMS, "{}")
    elif group == "macho_fat":
        archs = raw["archs"]
        v |= {"fat": raw["fat"], "count": raw["count"], "total_size": sum(a["size"] for a in archs),
              "max_align": max((a["align"] for a in archs), default=0)}
        for a in archs:
            v |= onehot("has_cputype", a["cputype"], CPU_TYPES)
        if raw["fat"]:
            v |= onehot("chosen_cputype", raw["chosen_cputype"], CPU_TYPES)
    return {k: float(x) for k, x in v.items()}
