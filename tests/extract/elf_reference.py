"""Expected raw values of the ELF groups, read with pyelftools (an independent ELF reader) and the
rules the groups document, written here from those rules, not from binfeat's code."""

from __future__ import annotations

import io
import math
import struct
from collections import Counter
from typing import Any

import elftools.elf.enums as EN
import pytest
from elftools.common.exceptions import ELFError, ELFParseError
from elftools.elf.dynamic import DynamicSegment
from elftools.elf.elffile import ELFFile
from elftools.elf.sections import SymbolTableSection

from extract.groups.elf.linking import INTERPRETERS  # the group's declared vocabulary (a constant)

NAME_CAP, PATH_CAP, MAX_SYMBOLS = 256, 1024, 10_000


def shannon(b: bytes) -> float:
    """Entropy in bits per byte (0 for no bytes)."""
    n = len(b)
    return -sum(c / n * math.log2(c / n) for c in Counter(b).values()) if n else 0.0


def _merged(*enums: dict) -> dict:
    out: dict = {}
    for e in enums:
        out.update(e)
    return out


_PT = _merged(EN.ENUM_P_TYPE_BASE, EN.ENUM_P_TYPE_ARM, EN.ENUM_P_TYPE_AARCH64, EN.ENUM_P_TYPE_MIPS,
              EN.ENUM_P_TYPE_RISCV)
_SHT = _merged(EN.ENUM_SH_TYPE_BASE, EN.ENUM_SH_TYPE_AMD64, EN.ENUM_SH_TYPE_ARM, EN.ENUM_SH_TYPE_MIPS,
               EN.ENUM_SH_TYPE_RISCV, EN.ENUM_SH_TYPE_AARCH64)
_DT = _merged(EN.ENUM_D_TAG_COMMON, EN.ENUM_D_TAG_SOLARIS, EN.ENUM_D_TAG_MIPS, EN.ENUM_D_TAG_AARCH64)


def num(value: Any, names: dict) -> int:
    """pyelftools gives a name for a known value and the number otherwise."""
    return value if isinstance(value, int) else names[value]


def _segments(elf: ELFFile) -> list:
    """The program headers; none when the table does not lie whole in the file."""
    try:
        return list(elf.iter_segments())
    except ELFParseError:
        return []


def _sections(elf: ELFFile, data: bytes, hdr: dict) -> tuple[list[dict], list]:
    """Section headers as dicts, and pyelftools' section objects ([] when pyelftools refuses the
    table: then the headers are read with struct from the gABI layout, names from the section
    e_shstrndx names, "" for a name offset outside it). No table when it does not lie in the file."""
    end = "<" if hdr["ei_data"] == 1 else ">"
    is64 = hdr["ei_class"] == 2
    if hdr["shoff"] + hdr["shnum"] * (64 if is64 else 40) > len(data):
        return [], []
    try:
        objs = list(elf.iter_sections())
        return [{"name": o.name, "type": num(o["sh_type"], _SHT), "flags": o["sh_flags"], "offset": o["sh_offset"],
                 "addr": o["sh_addr"], "size": o["sh_size"], "entsize": o["sh_entsize"]} for o in objs], objs
    except (ELFError, ELFParseError):
        pass
    fmt = end + ("IIQQQQIIQQ" if is64 else "IIIIIIIIII")
    table = [struct.unpack_from(fmt, data, hdr["shoff"] + i * struct.calcsize(fmt)) for i in range(hdr["shnum"])]
    _, _, _, _, str_off, str_size, *_ = table[hdr["shstrndx"]] if hdr["shstrndx"] < len(table) else (0,) * 10
    strtab = data[str_off:str_off + str_size]
    out = []
    for name, typ, flags, addr, off, size, _link, _info, _align, entsize in table:
        text = strtab[name:].split(b"\0", 1)[0].decode("utf-8", "backslashreplace") if name < len(strtab) else ""
        out.append({"name": text, "type": typ, "flags": flags, "offset": off, "addr": addr, "size": size,
                    "entsize": entsize})
    return out, []


def _text(raw: bytes, cap: int) -> str:
    return raw.split(b"\0", 1)[0].decode("utf-8", "backslashreplace")[:cap]


def expected(data: bytes) -> dict[str, Any]:
    """Raw values of every elf_* group and the general fields, for a file pyelftools can read."""
    elf = ELFFile(io.BytesIO(data))
    h = elf.header
    ident = h["e_ident"]
    hdr = {
        "ei_class": num(ident["EI_CLASS"], EN.ENUM_EI_CLASS), "ei_data": num(ident["EI_DATA"], EN.ENUM_EI_DATA),
        "ei_version": num(ident["EI_VERSION"], EN.ENUM_E_VERSION),
        "os_abi": num(ident["EI_OSABI"], EN.ENUM_EI_OSABI), "abi_version": ident["EI_ABIVERSION"],
        "type": num(h["e_type"], EN.ENUM_E_TYPE), "machine": num(h["e_machine"], EN.ENUM_E_MACHINE),
        "version": num(h["e_version"], EN.ENUM_E_VERSION), "entry": h["e_entry"], "phoff": h["e_phoff"],
        "shoff": h["e_shoff"], "flags": h["e_flags"], "ehsize": h["e_ehsize"],
        "phentsize": h["e_phentsize"], "phnum": h["e_phnum"], "shentsize": h["e_shentsize"],
        "shnum": h["e_shnum"], "shstrndx": h["e_shstrndx"],
    }
    segs = [{"type": num(s["p_type"], _PT), "flags": s["p_flags"], "offset": s["p_offset"],
             "vaddr": s["p_vaddr"], "filesz": s["p_filesz"], "memsz": s["p_memsz"], "align": s["p_align"]}
            for s in _segments(elf)]
    secs, pyelf_secs = _sections(elf, data, hdr)
    rows, entry_name = [], ""
    for s in secs[:4096]:
        nobits = s["type"] == 8
        rows.append({"name": s["name"][:NAME_CAP], "type": s["type"], "flags": s["flags"], "offset": s["offset"],
                     "addr": s["addr"], "size": s["size"],
                     "entropy": 0.0 if nobits else shannon(data[s["offset"]:s["offset"] + s["size"]])})
        if (not entry_name and h["e_entry"] and s["flags"] & 2 and not nobits
                and s["addr"] <= h["e_entry"] < s["addr"] + s["size"]):
            entry_name = s["name"][:NAME_CAP]

    # LIEF (the groups' parser) reads the dynamic entries of the PT_DYNAMIC segment only
    dyn = next((s for s in _segments(elf) if isinstance(s, DynamicSegment)), None)
    tags = list(dyn.iter_tags()) if dyn is not None else []
    tag_nums = [num(t.entry.d_tag, _DT) for t in tags]
    needed = [t.needed for t in tags if t.entry.d_tag == "DT_NEEDED"]
    first = {name: next((t for t in tags if t.entry.d_tag == name), None)
             for name in ("DT_SONAME", "DT_RPATH", "DT_RUNPATH")}
    flags = sum(t.entry.d_val for t in tags if t.entry.d_tag == "DT_FLAGS")
    flags1 = sum(t.entry.d_val for t in tags if t.entry.d_tag == "DT_FLAGS_1")

    imports, exports = [], []
    n_dynsym = 0
    if any(s["type"] == 11 for s in secs) and not pyelf_secs:
        raise NotImplementedError("a .dynsym in a section table pyelftools cannot read")
    dynsym = next((s for s in pyelf_secs if isinstance(s, SymbolTableSection) and s["sh_type"] == "SHT_DYNSYM"),
                  None)
    syms = list(dynsym.iter_symbols()) if dynsym is not None else (
        list(dyn.iter_symbols()) if isinstance(dyn, DynamicSegment) else [])
    n_dynsym = len(syms)
    for sym in syms:
        bind = num(sym["st_info"]["bind"], EN.ENUM_ST_INFO_BIND)
        typ = num(sym["st_info"]["type"], EN.ENUM_ST_INFO_TYPE)
        vis = num(sym["st_other"]["visibility"], EN.ENUM_ST_VISIBILITY)
        if not sym.name or bind not in (1, 2, 10):
            continue
        item = (sym.name[:NAME_CAP], typ, bind)
        if sym["st_shndx"] in ("SHN_UNDEF", 0):
            imports.append(item)
        elif typ in (1, 2, 5, 6, 10) and vis in (0, 3):
            exports.append(item)

    def sym_raw(items: list) -> dict:
        kept = items[:MAX_SYMBOLS]
        return {"count": len(items), "functions": sum(t in (2, 10) for _, t, _ in kept),
                "objects": sum(t in (1, 5, 6) for _, t, _ in kept), "weak": sum(b == 2 for _, _, b in kept),
                "names": [n for n, _, _ in kept]}

    interp = next((s for s in segs if s["type"] == 3), None)
    symtabs = [s for s in secs if s["type"] == 2]
    symtab_entries = sum(s["size"] // (s["entsize"] or (24 if hdr["ei_class"] == 2 else 16)) for s in symtabs)
    types = {s["type"] for s in segs}
    bind_now = "DT_BIND_NOW" in {t.entry.d_tag for t in tags} or bool(flags & 0x8) or bool(flags1 & 0x1)
    stack = [s for s in segs if s["type"] == 0x6474E551]
    import_names = [n for n, _, _ in imports[:MAX_SYMBOLS]]
    debug = sum(s["name"].startswith((".debug_", ".zdebug_")) for s in secs)
    loads = [s for s in segs if s["type"] == 1]
    return {
        "elf_header": hdr,
        "elf_segments": {"count": len(segs), "segments": segs[:1024]},
        "elf_sections": {"count": len(secs), "entry": entry_name, "sections": rows},
        "elf_libraries": {
            "count": len(needed), "needed": [n[:PATH_CAP] for n in needed[:1024]],
            "soname": first["DT_SONAME"].soname[:PATH_CAP] if first["DT_SONAME"] else "",
            "rpath": first["DT_RPATH"].rpath[:PATH_CAP] if first["DT_RPATH"] else "",
            "runpath": first["DT_RUNPATH"].runpath[:PATH_CAP] if first["DT_RUNPATH"] else "",
            "dynamic_entries": len(tags)},
        "elf_imports": sym_raw(imports),
        "elf_exports": sym_raw(exports),
        "elf_interpreter": {"present": interp is not None,
                            "interpreter": _text(data[interp["offset"]:interp["offset"] + interp["filesz"]],
                                                 PATH_CAP) if interp else ""},
        "elf_security": {
            "stripped": not symtabs, "symtab_entries": symtab_entries,
            "pie": hdr["type"] == 3 and (3 in types or bool(flags1 & 0x08000000)),
            "nx_stack": bool(stack) and not stack[0]["flags"] & 1,
            "relro": (2 if bind_now else 1) if 0x6474E552 in types else 0, "bind_now": bind_now,
            "textrel": 22 in tag_nums or bool(flags & 0x4), "has_dynamic": 2 in types, "has_interp": 3 in types,
            "stack_protector": "__stack_chk_fail" in import_names,
            "fortify": any(n.startswith("__") and n.endswith("_chk") and n != "__stack_chk_fail"
                           for n in import_names),
            "debug_sections": debug},
        "general": {
            "has_debug": int(debug > 0), "exports": len(exports), "imports": len(imports),
            "has_relocations": int(any(s["type"] in (4, 9) for s in secs)
                                   or any(t in (7, 17, 23) for t in tag_nums)),
            "has_resources": 0, "has_signature": 0, "has_tls": int(7 in types),
            "symbols": n_dynsym + symtab_entries,
            # LIEF's rule: highest PT_LOAD end rounded up to the page, minus the lowest vaddr - offset
            "vsize": _vsize(loads, hdr["machine"]),
        },
    }


def assert_raw_equal(got: dict, want: dict) -> None:
    """Equal group by group; section entropies to 1e-9 (the kernel and Python sum in another order)."""
    assert set(want) <= set(got)
    for name, value in want.items():
        if name == "elf_sections":
            secs = [dict(s, entropy=pytest.approx(s["entropy"], abs=1e-9)) for s in value["sections"]]
            assert got[name] == dict(value, sections=secs), name
        elif name == "general":
            assert got[name] == value, name
        else:
            assert got[name] == value, name


def _vsize(loads: list[dict], machine: int) -> int:
    if not loads:  # LIEF 1.0 then subtracts its "no image base" marker 2**64 - 1 from 0: 1 (a quirk)
        return 1
    page = {258: 0x4000, 43: 0x2000}.get(machine, 0x1000)  # LoongArch 16 KiB, SPARCv9 8 KiB
    end = max(s["vaddr"] + s["memsz"] for s in loads)
    end += -end % page
    return end - min(s["vaddr"] - s["offset"] for s in loads)


# ---------------------------------------------------------------------------------------------
# Vectors, from docs/vector_layout.md's rules (dimension name -> value; others 0)

CLASSES, DATAS = (1, 2), (1, 2)
OS_ABIS = (0, 1, 2, 3, 6, 7, 8, 9, 12, 64, 97, 255)
MACHINES = (0, 2, 3, 4, 8, 20, 21, 22, 40, 42, 43, 50, 62, 183, 243, 247, 258, 10, 0x9026, 94, 83, 105,
            140, 191)
E_TYPES = (0, 1, 2, 3, 4)
SEGMENT_TYPES = (0, 1, 2, 3, 4, 5, 6, 7, 0x6474E550, 0x6474E551, 0x6474E552, 0x6474E553, 0x70000001,
                 0x70000003)
SECTION_FLAGS = ((0x1, "WRITE"), (0x2, "ALLOC"), (0x4, "EXECINSTR"), (0x10, "MERGE"), (0x20, "STRINGS"),
                 (0x40, "INFO_LINK"), (0x80, "LINK_ORDER"), (0x100, "OS_NONCONFORMING"), (0x200, "GROUP"),
                 (0x400, "TLS"), (0x800, "COMPRESSED"))


def expected_vector(group: str, raw: dict) -> dict[str, float]:
    from tests.extract.vector_reference import hashed, onehot

    v: dict[str, float] = {}
    if group == "elf_header":
        v |= onehot("class", raw["ei_class"], CLASSES, "{}") | onehot("data", raw["ei_data"], DATAS, "{}")
        v |= onehot("os_abi", raw["os_abi"], OS_ABIS, "{}") | onehot("machine", raw["machine"], MACHINES)
        v |= onehot("type", raw["type"], E_TYPES, "{}")
        for k in ("entry", "flags", "ehsize", "phentsize", "phnum", "shentsize", "shnum", "shstrndx", "phoff",
                  "shoff", "abi_version", "version"):
            v[k] = raw[k]
    elif group == "elf_segments":
        segs = raw["segments"]
        for s in segs:
            key = next(iter(onehot("type_count", s["type"], SEGMENT_TYPES)))
            v[key] = v.get(key, 0) + 1
        loads = [s for s in segs if s["type"] == 1]
        stacks = [s for s in segs if s["type"] == 0x6474E551]
        v |= {"count": raw["count"], "load_filesz": sum(s["filesz"] for s in loads),
              "load_memsz": sum(s["memsz"] for s in loads), "r": sum(bool(s["flags"] & 4) for s in segs),
              "w": sum(bool(s["flags"] & 2) for s in segs), "x": sum(bool(s["flags"] & 1) for s in segs),
              "wx": sum(s["flags"] & 3 == 3 for s in segs), "load_x": sum(bool(s["flags"] & 1) for s in loads),
              "load_wx": sum(s["flags"] & 3 == 3 for s in loads),
              "stack_exec": float(bool(stacks[-1]["flags"] & 1)) if stacks else 0.0,
              "filesz_total": sum(s["filesz"] for s in segs), "memsz_total": sum(s["memsz"] for s in segs)}
    elif group == "elf_sections":
        secs = raw["sections"]
        ents = [s["entropy"] for s in secs]
        names = [s["name"] for s in secs]
        v |= {"count": raw["count"], "zero_size": sum(s["size"] == 0 for s in secs),
              "empty_name": names.count(""), "exec": sum(bool(s["flags"] & 4) for s in secs),
              "write": sum(bool(s["flags"] & 1) for s in secs), "alloc": sum(bool(s["flags"] & 2) for s in secs),
              "wx": sum(s["flags"] & 5 == 5 for s in secs), "nobits": sum(s["type"] == 8 for s in secs),
              "max_entropy": max(ents, default=0.0), "mean_entropy": sum(ents) / len(ents) if ents else 0.0}
        v |= hashed("name_size", names, 50, [s["size"] for s in secs])
        v |= hashed("name_entropy", names, 50, ents)
        v |= hashed("name_type", [f"{s['name']}:{s['type']:#x}" for s in secs], 50)
        if raw["entry"]:
            flags = next(s["flags"] for s in secs if s["name"] == raw["entry"])
            v |= hashed("entry_name", [raw["entry"]], 50)
            v |= hashed("entry_flags", [name for bit, name in SECTION_FLAGS if flags & bit], 50)
    elif group == "elf_libraries":
        v |= {"count": raw["count"], "has_soname": bool(raw["soname"]), "has_rpath": bool(raw["rpath"]),
              "has_runpath": bool(raw["runpath"]), "dynamic_entries": raw["dynamic_entries"]}
        v |= hashed("needed", raw["needed"], 256)
    elif group in ("elf_imports", "elf_exports"):
        v |= {k: raw[k] for k in ("count", "functions", "objects", "weak")}
        v |= hashed("import", raw["names"], 1024) if group == "elf_imports" else hashed("export", raw["names"], 128)
    elif group == "elf_interpreter":
        if raw["present"]:
            path = raw["interpreter"]
            v |= {"present": 1.0, "musl": float("musl" in path)}
            v[f"interpreter={path}" if path in INTERPRETERS else "interpreter=other"] = 1.0
    elif group == "elf_security":
        v |= {k: float(raw[k]) for k in ("stripped", "symtab_entries", "pie", "nx_stack", "bind_now", "textrel",
                                          "has_dynamic", "has_interp", "stack_protector", "fortify",
                                          "debug_sections")}
        v |= {"relro=partial": float(raw["relro"] == 1), "relro=full": float(raw["relro"] == 2)}
    return {k: float(x) for k, x in v.items()}
