"""Mach-O groups: exact values on crafted fixtures; on real macOS wheel binaries, equality with
LIEF's own reading of the same structures (the groups read them with struct/numpy)."""

from __future__ import annotations

import glob
import math
import os
import struct
from collections import Counter
from pathlib import Path

import lief
import numpy as np
import pyarrow as pa
import pytest

from extract.groups import REGISTRY
from extract.groups.macho import linking, spec
from extract.groups.macho import parse as M
from extract.parsed import GENERAL_FIELDS, ParseError, general_for, parser_for
from tests.conftest import corpus_dir, corpus_manifest
from tests.fixtures import macho_builder as B

MACHO_GROUPS = [g for g in REGISTRY if g.name.startswith("macho_")]
FIXTURES = B.fixtures()
SPECS = B.valid_specs()
UNPARSABLE = {"macho_magic_only", "java_class"}


def _entropy(b: bytes) -> float:
    n = len(b)
    return -sum(c / n * math.log2(c / n) for c in Counter(b).values()) if n else 0.0


def _raw(data: bytes) -> dict:
    p = M.parse_macho(data)
    return {g.name: g.compute(p) for g in MACHO_GROUPS}


def _vec(group: str, raw: dict) -> dict[str, float]:
    g = REGISTRY[group]
    return dict(zip(g.dim_names, g.vector(raw).tolist(), strict=True))


def test_registered() -> None:
    assert parser_for("macho") is M.parse_macho
    assert {g.name for g in MACHO_GROUPS} == {
        "macho_header", "macho_load_commands", "macho_sections", "macho_dylibs", "macho_imports",
        "macho_exports", "macho_security", "macho_platform", "macho_fat"}


@pytest.mark.parametrize("name", sorted(FIXTURES))
def test_every_group_on_every_fixture(name: str) -> None:
    try:
        p = parser_for("macho")(FIXTURES[name])
    except ParseError:
        assert name in UNPARSABLE, f"{name} should parse"
        return
    assert name not in UNPARSABLE
    for g in MACHO_GROUPS:
        raw = g.compute(p)
        pa.array([raw], type=g.raw_type)
        v = g.vector(raw)
        assert v.shape == (g.dims,) and v.dtype == np.float32
    gen = general_for("macho")(p)
    assert tuple(gen) == GENERAL_FIELDS and all(type(x) is int for x in gen.values())


def test_fixtures_parse_with_lief() -> None:
    for name in [*SPECS, "macho_fat_minimal"]:
        fat = lief.MachO.parse(FIXTURES[name])
        assert fat is not None and fat.size == (2 if name == "macho_fat_minimal" else 1)


@pytest.mark.parametrize("name", list(SPECS))
def test_minimal_exact(name: str) -> None:
    data, spec = SPECS[name]
    raw = _raw(data)
    h = raw["macho_header"]
    assert h == {"magic": 0xFEEDFACF if spec.is64 else 0xFEEDFACE, "is64": spec.is64,
                 "big_endian": not spec.little, "cputype": spec.cputype,
                 "cpusubtype": 3 if spec.cputype in (B.CPU_X86, B.CPU_X86_64) else 0, "filetype": 2,
                 "ncmds": spec.ncmds, "sizeofcmds": spec.sizeofcmds, "flags": spec.flags}
    lc = raw["macho_load_commands"]
    assert lc["count"] == spec.ncmds
    assert [(c["cmd"], c["size"]) for c in lc["commands"]] == list(spec.commands)

    s = raw["macho_sections"]
    assert [(g["name"], g["vmaddr"], g["vmsize"], g["fileoff"], g["filesize"], g["maxprot"],
             g["initprot"], g["nsects"]) for g in s["segments"]] == list(spec.segments)
    assert [(x["segment"], x["name"], x["addr"], x["size"], x["offset"], x["flags"])
            for x in s["sections"]] == list(spec.sections)
    ents = {x["name"]: x["entropy"] for x in s["sections"]}
    assert ents["__text"] == pytest.approx(_entropy(B.TEXT), abs=1e-9)
    assert ents["__cstring"] == pytest.approx(_entropy(B.CSTRING), abs=1e-9)
    assert ents["__data"] == pytest.approx(_entropy(B.DATA), abs=1e-9) and ents["__bss"] == 0.0
    assert s["entry"] == "__TEXT,__text"

    assert raw["macho_dylibs"] == {"count": 2, "id": "", "rpaths": [B.RPATH],
                                   "dylibs": [{"name": n, "cmd": c} for n, c in B.DYLIBS]}
    assert raw["macho_imports"] == {"count": 2, "weak": 1, "names": B.IMPORTS}
    assert raw["macho_exports"] == {"count": 2, "weak": 0, "names": B.EXPORTS}
    sec = raw["macho_security"]
    assert sec["pie"] and not sec["allow_stack_execution"] and sec["has_pagezero"]
    assert sec["has_code_signature"] and sec["code_signature_in_file"]
    assert (sec["code_signature_offset"], sec["code_signature_size"]) == spec.signature
    assert not sec["encrypted"] and sec["cryptid"] == 0
    plat = raw["macho_platform"]
    src = B.LC_BUILD_VERSION if spec.cputype in (B.CPU_X86_64, B.CPU_ARM64) else B.LC_VERSION_MIN_MACOSX
    assert plat == {"source": src, "platform": 1, "minos": B.MINOS, "sdk": B.SDK}
    assert raw["macho_fat"] == {"fat": False, "count": 0, "chosen": -1, "chosen_cputype": spec.cputype,
                                "archs": []}
    gen = general_for("macho")(M.parse_macho(data))
    assert gen == {"vsize": 16384, "has_debug": 0, "exports": 2, "imports": 2, "has_relocations": 0,
                   "has_resources": 0, "has_signature": 1, "has_tls": 0, "symbols": 6}


def test_minimal_vectors() -> None:
    raw = _raw(FIXTURES["macho64_minimal"])
    v = _vec("macho_header", raw["macho_header"])
    assert v["cputype=0x1000007"] == 1 and v["filetype=2"] == 1 and v["flag[21]"] == 1  # MH_PIE
    assert v["flag[0]"] == 0 and v["flag[2]"] == 1 and v["ncmds"] == 11 and v["is64"] == 1
    v = _vec("macho_load_commands", raw["macho_load_commands"])
    assert v["cmd_count=0x19"] == 4 and v["cmd_count=0x1d"] == 1 and v["cmd_count=other"] == 0
    assert v["count"] == 11 and v["unparsed"] == 0
    v = _vec("macho_sections", raw["macho_sections"])
    assert (v["segments"], v["sections"], v["exec_sections"], v["zerofill"]) == (4, 4, 1, 1)
    assert (v["seg_w"], v["seg_x"], v["seg_wx"]) == (1, 1, 0)
    v = _vec("macho_dylibs", raw["macho_dylibs"])
    assert (v["count"], v["load"], v["weak"], v["reexport"], v["rpaths"]) == (2, 1, 1, 0, 1)
    v = _vec("macho_platform", raw["macho_platform"])
    assert v["platform=1"] == 1 and v["minos"] == 11.0 and v["sdk"] == pytest.approx(14.05)
    v = _vec("macho_security", raw["macho_security"])
    assert v["has_code_signature"] == 1 and v["code_signature_size"] == 64


def test_fat_chooses_x86_64() -> None:
    data = FIXTURES["macho_fat_minimal"]
    raw = _raw(data)
    x64, arm = FIXTURES["macho64_minimal"], FIXTURES["macho_arm64_minimal"]
    arm_off = 0x1000
    x64_off = arm_off + len(arm) + (-(arm_off + len(arm)) % 0x1000)
    assert raw["macho_fat"] == {
        "fat": True, "count": 2, "chosen": 1, "chosen_cputype": B.CPU_X86_64,
        "archs": [{"cputype": B.CPU_ARM64, "cpusubtype": 0, "offset": arm_off, "size": len(arm), "align": 12},
                  {"cputype": B.CPU_X86_64, "cpusubtype": 3, "offset": x64_off, "size": len(x64),
                   "align": 12}]}
    thin = _raw(x64)
    for g in MACHO_GROUPS:
        if g.name != "macho_fat":
            assert raw[g.name] == thin[g.name], g.name  # slice offsets are slice-relative
    v = _vec("macho_fat", raw["macho_fat"])
    assert v["fat"] == 1 and v["count"] == 2 and v["chosen_cputype=0x1000007"] == 1
    assert v["has_cputype=0x100000c"] == 1 and v["has_cputype=0x1000007"] == 1
    assert v["total_size"] == len(x64) + len(arm)


def test_fat_falls_back_when_preferred_slice_is_broken() -> None:
    x64, arm = FIXTURES["macho64_minimal"], FIXTURES["macho_arm64_minimal"]
    data = B.build_fat([(B.CPU_ARM64, 0, arm), (B.CPU_X86_64, 3, b"\0" * 64)])
    raw = _raw(data)
    assert raw["macho_fat"]["chosen"] == 0 and raw["macho_header"]["cputype"] == B.CPU_ARM64
    assert raw["macho_imports"]["names"] == B.IMPORTS
    with pytest.raises(ParseError):
        M.parse_macho(B.build_fat([(B.CPU_X86_64, 3, b"\0" * 64)]))
    assert x64  # the x86_64 image itself is fine (used above)


def test_damaged() -> None:
    with pytest.raises(ParseError, match="Java class"):
        M.parse_macho(FIXTURES["java_class"])
    with pytest.raises(ParseError):
        M.parse_macho(FIXTURES["macho_magic_only"])
    with pytest.raises(ParseError):
        M.parse_macho(b"\xca\xfe\xba\xbe\x00\x00\x00\x02" + b"\0" * 8)  # arch table truncated
    raw = _raw(FIXTURES["macho_absurd_ncmds"])
    assert raw["macho_load_commands"]["count"] == 0xFFFFFFFF
    assert len(raw["macho_load_commands"]["commands"]) == 11
    assert _vec("macho_load_commands", raw["macho_load_commands"])["unparsed"] == np.float32(0xFFFFFFFF - 11)
    raw = _raw(FIXTURES["macho_lc_past_end"])
    assert raw["macho_load_commands"]["commands"] == [] and raw["macho_sections"]["sections"] == []
    raw = _raw(FIXTURES["macho_truncated"])
    assert raw["macho_imports"]["count"] == 0  # symbol table lies past the cut
    assert raw["macho_security"]["has_code_signature"] and not raw["macho_security"]["code_signature_in_file"]


# ---------------------------------------------------------------------------------------------
# Real binaries from macOS wheels, compared with LIEF's reading

def _real_files() -> list[str]:
    """Undamaged Mach-O files of the sample corpus (from macOS wheels), or BINFEAT_MACHO_DIR's."""
    env = os.environ.get("BINFEAT_MACHO_DIR")
    if env and Path(env).is_dir():
        files = sorted(glob.glob(str(Path(env) / "**" / "*.so"), recursive=True)
                       + glob.glob(str(Path(env) / "**" / "*.dylib"), recursive=True))
    else:
        root = corpus_dir()
        if root is None:
            return []
        files = [str(root / r["sha256"][:2] / r["sha256"]) for r in corpus_manifest()
                 if r["format"] == "macho" and r["mutation"] is None and r["kind"] != "malformed"]
    fat = [f for f in files if Path(f).read_bytes()[:4] == b"\xca\xfe\xba\xbe"]
    return fat[:4] + [f for f in files[::max(1, len(files) // 16)][:16] if f not in fat]


@pytest.fixture(scope="module")
def real_files() -> list[str]:
    files = _real_files()
    if not files:
        pytest.skip("no real Mach-O files: the small sample corpus is not built")
    return files


def _lief_image(fat: object, raw: dict) -> tuple[object, int]:
    """The chosen slice in LIEF's parse (the caller keeps ``fat`` alive: it owns its binaries)."""
    for i in range(fat.size):
        b = fat.at(i)
        if b.header.cpu_type.value & 0xFFFFFFFF == raw["macho_header"]["cputype"]:
            return b, (b.fat_offset if raw["macho_fat"]["fat"] else 0)
    raise AssertionError("chosen slice not found by LIEF")


def test_real_against_lief(real_files: list[str]) -> None:
    n_fat = 0
    for path in real_files:
        data = Path(path).read_bytes()
        raw = _raw(data)
        for g in MACHO_GROUPS:
            pa.array([raw[g.name]], type=g.raw_type)
            assert len(g.vector(raw[g.name])) == g.dims
        container = lief.MachO.parse(data)
        b, base = _lief_image(container, raw)
        h = b.header
        assert (raw["macho_header"]["ncmds"], raw["macho_header"]["sizeofcmds"],
                raw["macho_header"]["flags"], raw["macho_header"]["filetype"]) == (
            h.nb_cmds, h.sizeof_cmds, h.flags, h.file_type.value)
        assert [(c["cmd"], c["size"]) for c in raw["macho_load_commands"]["commands"]] == [
            (c.command.value & 0xFFFFFFFF, c.size) for c in b.commands]
        segs = raw["macho_sections"]["segments"]
        assert [(s["name"], s["vmaddr"], s["vmsize"], s["fileoff"], s["filesize"], s["maxprot"],
                 s["initprot"], s["nsects"]) for s in segs] == [
            (s.name, s.virtual_address, s.virtual_size, s.file_offset, s.file_size, s.max_protection,
             s.init_protection, s.numberof_sections) for s in b.segments]
        secs = raw["macho_sections"]["sections"]
        assert [(s["segment"], s["name"], s["addr"], s["size"], s["offset"], s["flags"] & 0xFF)
                for s in secs] == [
            (s.segment_name, s.name, s.virtual_address, s.size, s.offset, s.type.value) for s in b.sections]
        for s in secs:
            if s["flags"] & 0xFF not in (1, 0xC, 0x12) and s["offset"] and s["size"]:
                blob = data[base + s["offset"]:base + s["offset"] + s["size"]]
                assert s["entropy"] == pytest.approx(_entropy(blob), abs=1e-9)
        libs = [(lib.name, lib.command.value & 0xFFFFFFFF) for lib in b.libraries
                if lib.command.value != spec.LC_ID_DYLIB]
        assert [(d["name"], d["cmd"]) for d in raw["macho_dylibs"]["dylibs"]] == libs
        ids = [lib.name for lib in b.libraries if lib.command.value == spec.LC_ID_DYLIB]
        assert raw["macho_dylibs"]["id"] == (ids[0] if ids else "")
        imports, exports = [], []
        for s in b.symbols:
            t = s.raw_type
            if t & 0xE0 or not t & 1 or not s.name:
                continue
            if t & 0x0E == 0 and s.value == 0:
                imports.append(s.name[:256])
            elif t & 0x0E == 0x0E and not t & 0x10:
                exports.append(s.name[:256])
        assert raw["macho_imports"]["names"] == imports[:linking.MAX_SYMBOLS]
        assert raw["macho_exports"]["names"] == exports[:linking.MAX_SYMBOLS]
        sec = raw["macho_security"]
        assert sec["has_code_signature"] == b.has_code_signature
        if b.has_code_signature:
            assert (sec["code_signature_offset"], sec["code_signature_size"]) == (
                b.code_signature.data_offset, b.code_signature.data_size)
        plat = raw["macho_platform"]
        if b.has_build_version:
            bv = b.build_version
            assert plat["platform"] == bv.platform.value
            assert [plat["minos"] >> 16, (plat["minos"] >> 8) & 0xFF, plat["minos"] & 0xFF] == list(bv.minos)
        if raw["macho_fat"]["fat"]:
            n_fat += 1
            assert raw["macho_fat"]["count"] == container.size
            assert sorted(a["offset"] for a in raw["macho_fat"]["archs"]) == sorted(
                container.at(i).fat_offset for i in range(container.size))
            if any(a["cputype"] == B.CPU_X86_64 for a in raw["macho_fat"]["archs"]):
                assert raw["macho_fat"]["chosen_cputype"] == B.CPU_X86_64
    assert n_fat == sum(Path(f).read_bytes()[:4] == b"\xca\xfe\xba\xbe" for f in real_files)


def test_mutated_fixtures_never_crash() -> None:
    """Seeded byte mutations of the valid fixtures: the parse raises ParseError or every group works."""
    import random

    rng = random.Random(20261123)
    seeds = [*SPECS, "macho_fat_minimal"]
    for _ in range(300):
        buf = bytearray(FIXTURES[rng.choice(seeds)])
        for _ in range(rng.choice([1, 4, 16])):
            i = rng.randrange(4, min(len(buf), 1100)) if rng.random() < 0.7 else rng.randrange(4, len(buf))
            buf[i] = rng.choice([0, 0xFF, 0x80, rng.randrange(256)])
        data = bytes(buf[: rng.randrange(16, len(buf))] if rng.random() < 0.2 else buf)
        try:
            p = M.parse_macho(data)
        except ParseError:
            continue
        for g in MACHO_GROUPS:
            raw = g.compute(p)
            pa.array([raw], type=g.raw_type)
            assert g.vector(raw).shape == (g.dims,)
        general_for("macho")(p)


@pytest.mark.parametrize("name", ["macho64_minimal", "macho32_minimal", "macho_fat_minimal"])
def test_symbol_table_hidden_from_lief_gives_the_same_groups(name, monkeypatch) -> None:
    data = FIXTURES[name]
    monkeypatch.setattr(M, "BYTES_PER_SYMBOL_TO_HIDE", 0)  # LIEF sees the symbol table
    shown = _raw(data), general_for("macho")(M.parse_macho(data))
    monkeypatch.setattr(M, "BYTES_PER_SYMBOL_TO_HIDE", 10**12)  # always hidden
    p = M.parse_macho(data)
    image, info = p.extra["image"], p.extra
    seen = M.without_symbols(image, info)
    cmd = next(off for c, off, _ in info["cmds"] if c == spec.LC_SYMTAB)
    end = info["end"]
    assert struct.unpack_from(end + "I", image, cmd + 12)[0] == 6  # 2 imports, 2 exports, 2 neither
    assert struct.unpack_from(end + "I", seen, cmd + 12)[0] == 0
    assert seen[:cmd + 12] == image[:cmd + 12] and seen[cmd + 16:] == image[cmd + 16:]
    assert len(lief.MachO.parse(image).at(0).symbols) > 0 == len(lief.MachO.parse(seen).at(0).symbols)
    assert (_raw(data), general_for("macho")(p)) == shown
    assert shown[0]["macho_imports"]["count"] == 2
