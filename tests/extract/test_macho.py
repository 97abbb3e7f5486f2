"""Mach-O groups on the code-built fixtures: every group's raw value and vector asserted, from what the
builder put in, macholib's and LIEF's readings (tests/extract/macho_reference.py); the fat slice
choice and its failure message; the entry point, virtual size and relocation flag against LIEF."""

from __future__ import annotations

import random
import struct

import pyarrow as pa
import pytest

from extract import ExtractOptions, extract_file
from extract.groups import REGISTRY
from extract.groups.macho import loader_view as L
from extract.groups.macho import parse as M
from extract.parsed import GENERAL_FIELDS, ParseError, general_for, parser_for
from tests.extract import macho_reference as R
from tests.extract.elf_reference import shannon
from tests.extract.vector_reference import assert_vector
from tests.fixtures import macho_builder as B

MACHO_GROUPS = [g for g in REGISTRY if g.name.startswith("macho_")]
FIXTURES = B.fixtures()
SPECS = {**B.valid_specs(), **B.thread_specs()}
UNPARSABLE = {"macho_magic_only": "file too short", "java_class": "Java class"}
DAMAGED = ("macho_truncated", "macho_lc_past_end", "macho_absurd_ncmds")


def _raw(data: bytes) -> dict:
    p = M.parse_macho(data)
    out = {g.name: g.compute(p) for g in MACHO_GROUPS}
    out["general"] = general_for("macho")(p)
    return out


def _expected_damaged(name: str) -> dict:
    """Every group's raw value for a damaged fixture, from the valid image it was made from (macholib
    cannot read these) and LIEF's entry point, virtual size and relocations of the damaged bytes."""
    base = R.expected(FIXTURES["macho64_minimal"])
    data = FIXTURES[name]
    entry_va, vsize, relocations = R.lief_values(data)
    general = dict(base["general"], vsize=vsize, has_relocations=int(relocations))
    if name == "macho_absurd_ncmds":  # ncmds 0xFFFFFFFF: the walk still ends at sizeofcmds
        assert entry_va == B.build_macho()[1].entry_va
        return {**base, "macho_header": dict(base["macho_header"], ncmds=0xFFFFFFFF),
                "macho_load_commands": dict(base["macho_load_commands"], count=0xFFFFFFFF), "general": general}
    if name == "macho_truncated":  # cut at 3/5: commands whole; __data, symbols and signature lost
        secs = [dict(s, entropy=shannon(data[s["offset"]:s["offset"] + s["size"]])
                     if s["entropy"] and s["offset"] < len(data) else 0.0)
                for s in base["macho_sections"]["sections"]]
        none = {"count": 0, "weak": 0, "names": []}
        return {**base, "macho_sections": dict(base["macho_sections"], sections=secs),
                "macho_imports": none, "macho_exports": none,
                "macho_security": dict(base["macho_security"], code_signature_in_file=False),
                "general": dict(general, imports=0, exports=0)}
    if name == "macho_lc_past_end":  # sizeofcmds and the first cmdsize past the end: no command walked
        assert (entry_va, vsize, relocations) == (None, 0, False)
        return {**base, "macho_header": dict(base["macho_header"], sizeofcmds=len(data) * 4),
                "macho_load_commands": dict(base["macho_load_commands"], commands=[]),
                "macho_sections": {"segments": [], "sections": [], "entry": ""},
                "macho_dylibs": {"count": 0, "id": "", "dylibs": [], "rpaths": []},
                "macho_imports": {"count": 0, "weak": 0, "names": []},
                "macho_exports": {"count": 0, "weak": 0, "names": []},
                "macho_security": {**base["macho_security"], "has_code_signature": False,
                                   "code_signature_offset": 0, "code_signature_size": 0,
                                   "code_signature_in_file": False, "has_pagezero": False},
                "macho_platform": {"source": 0, "platform": 0, "minos": 0, "sdk": 0},
                "general": dict(general, exports=0, imports=0, has_signature=0, symbols=0)}
    raise KeyError(name)


def test_registered() -> None:
    assert parser_for("macho") is M.parse_macho
    assert [g.name for g in MACHO_GROUPS] == [
        "macho_header", "macho_load_commands", "macho_sections", "macho_dylibs", "macho_imports",
        "macho_exports", "macho_security", "macho_platform", "macho_fat"]


@pytest.mark.parametrize("name", sorted(FIXTURES))
def test_every_group_on_every_fixture(name: str) -> None:
    """Every group's raw value equals its expectation, and its vector equals the documented encoding."""
    data = FIXTURES[name]
    if name in UNPARSABLE:
        with pytest.raises(ParseError, match=UNPARSABLE[name]):
            parser_for("macho")(data)
        return
    raw = _raw(data)
    R.assert_raw_equal(raw, _expected_damaged(name) if name in DAMAGED else R.expected(data))
    for g in MACHO_GROUPS:
        pa.array([raw[g.name]], type=g.raw_type)
        assert_vector(g, raw[g.name], R.expected_vector(g.name, raw[g.name]))
    assert tuple(raw["general"]) == GENERAL_FIELDS and all(type(x) is int for x in raw["general"].values())


@pytest.mark.parametrize("name", list(SPECS))
def test_builder_values(name: str) -> None:
    """The values the builder put in (its Spec and constants), independently of any Mach-O reader."""
    data, spec = SPECS[name]
    raw = _raw(data)
    assert raw["macho_header"] == {
        "magic": 0xFEEDFACF if spec.is64 else 0xFEEDFACE, "is64": spec.is64, "big_endian": not spec.little,
        "cputype": spec.cputype, "cpusubtype": spec.cpusubtype, "filetype": 2,
        "ncmds": spec.ncmds, "sizeofcmds": spec.sizeofcmds, "flags": spec.flags}
    assert raw["macho_load_commands"] == {"count": spec.ncmds,
                                          "commands": [{"cmd": c, "size": s} for c, s in spec.commands]}
    s = raw["macho_sections"]
    assert [(g["name"], g["vmaddr"], g["vmsize"], g["fileoff"], g["filesize"], g["maxprot"],
             g["initprot"], g["nsects"]) for g in s["segments"]] == list(spec.segments)
    assert [(x["segment"], x["name"], x["addr"], x["size"], x["offset"], x["flags"])
            for x in s["sections"]] == list(spec.sections)
    ents = {x["name"]: x["entropy"] for x in s["sections"]}
    assert ents["__text"] == pytest.approx(shannon(B.TEXT), abs=1e-9)
    assert ents["__cstring"] == pytest.approx(shannon(B.CSTRING), abs=1e-9)
    assert ents["__data"] == pytest.approx(shannon(B.DATA), abs=1e-9) and ents["__bss"] == 0.0
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
    build = B.LC_BUILD_VERSION in {c for c, _ in spec.commands}
    assert raw["macho_platform"] == {"source": B.LC_BUILD_VERSION if build else B.LC_VERSION_MIN_MACOSX,
                                     "platform": 1, "minos": B.MINOS, "sdk": B.SDK}
    assert raw["macho_fat"] == {"fat": False, "count": 0, "chosen": -1, "chosen_cputype": spec.cputype,
                                "archs": []}
    page = 0x4000 if spec.cputype in (B.CPU_ARM, B.CPU_ARM64) else 0x1000
    span = spec.vm_end - spec.vm_start
    assert raw["general"] == {"vsize": span + -span % page, "has_debug": 0, "exports": 2, "imports": 2,
                              "has_relocations": int(spec.relocations > 0), "has_resources": 0,
                              "has_signature": 1, "has_tls": 0, "symbols": 6}
    assert L.entry_point(M.parse_macho(data)) == spec.entry_va


def test_thread_fixtures_cover_the_rules() -> None:
    """Each CPU type's thread state, a pc given as an offset from __TEXT, 4 and 16 KiB pages."""
    specs = B.thread_specs()
    assert {s.cputype for _, s in specs.values()} == set(L.THREAD_PC)
    assert {_raw(d)["general"]["vsize"] for d, _ in specs.values()} == {0x5000, 0x8000}
    for name, (data, spec) in specs.items():
        assert B.LC_UNIXTHREAD in {c for c, _ in spec.commands} and B.LC_MAIN not in {c for c, _ in spec.commands}
        p = M.parse_macho(data)
        assert (L.entry_point(p), L.virtual_size(p), L.has_relocations(p)) == R.lief_values(data), name


def test_minimal_vectors() -> None:
    """A few dimensions by name, as a reader of docs/vector_layout.md would look them up."""
    raw = _raw(FIXTURES["macho64_minimal"])

    def vec(group: str) -> dict[str, float]:
        g = REGISTRY[group]
        return dict(zip(g.dim_names, g.vector(raw[group]).tolist(), strict=True))

    v = vec("macho_header")
    assert v["cputype=0x1000007"] == 1 and v["filetype=2"] == 1 and v["flag[21]"] == 1  # MH_PIE
    assert v["flag[0]"] == 0 and v["flag[2]"] == 1 and v["ncmds"] == 11 and v["is64"] == 1
    v = vec("macho_load_commands")
    assert v["cmd_count=0x19"] == 4 and v["cmd_count=0x1d"] == 1 and v["cmd_count=other"] == 0
    assert v["count"] == 11 and v["unparsed"] == 0
    v = vec("macho_sections")
    assert (v["segments"], v["sections"], v["exec_sections"], v["zerofill"]) == (4, 4, 1, 1)
    assert (v["seg_w"], v["seg_x"], v["seg_wx"]) == (1, 1, 0)
    v = vec("macho_dylibs")
    assert (v["count"], v["load"], v["weak"], v["reexport"], v["rpaths"]) == (2, 1, 1, 0, 1)
    v = vec("macho_platform")
    assert v["platform=1"] == 1 and v["minos"] == 11.0 and v["sdk"] == pytest.approx(14.05)
    v = vec("macho_security")
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
    assert raw["general"] == thin["general"]


def test_fat_falls_back_when_preferred_slice_is_broken() -> None:
    arm = FIXTURES["macho_arm64_minimal"]
    raw = _raw(B.build_fat([(B.CPU_ARM64, 0, arm), (B.CPU_X86_64, 3, b"\0" * 64)]))
    assert raw["macho_fat"]["chosen"] == 0 and raw["macho_header"]["cputype"] == B.CPU_ARM64
    assert raw["macho_imports"]["names"] == B.IMPORTS
    with pytest.raises(ParseError, match=r"slice 0: not a thin Mach-O image \(magic 00000000\)$"):
        M.parse_macho(B.build_fat([(B.CPU_X86_64, 3, b"\0" * 64)]))


def test_slice_failures_keep_whole_reasons_and_say_how_many_are_left_out() -> None:
    assert M.slice_failures(["a b", "c"]) == "a b | c"
    assert M.slice_failures([]) == ""
    reasons = [f"slice {i}: reason number {i}" for i in range(10)]  # 26-27 characters each
    text = M.slice_failures(reasons, limit=100)
    kept = text.split(" … ")[0].split(" | ")
    assert kept == reasons[:len(kept)] and len(" | ".join(kept)) <= 100 < len(" | ".join(reasons[:len(kept) + 1]))
    assert text.endswith(f" … (+{10 - len(kept)} more)")
    assert M.slice_failures(["one very long reason"], limit=12) == "one very…"
    assert M.slice_failures(["x" * 30, "y"], limit=12) == "x" * 12 + "… … (+1 more)"


def test_fat_failure_message_in_the_row(tmp_path) -> None:
    """19 broken slices: one line in ``error``, reasons joined by " | " (not the groups' "; "), cut
    after the last whole reason that fits, the rest counted."""
    data = B.build_fat([(B.CPU_X86_64, 3, b"\0" * 64)] * 19)
    path = tmp_path / "broken_fat"
    path.write_bytes(data)
    row = extract_file(str(path), ExtractOptions(isolate=False))
    prefix = "parse(macho): no parsable slice in fat Mach-O: "
    assert row["format"] == "macho" and row["status"] != "ok"
    assert row["error"].startswith(prefix) and "; " not in row["error"]
    kept, more = row["error"][len(prefix):].split(" … ")
    reasons = kept.split(" | ")
    assert reasons == [f"slice {i}: not a thin Mach-O image (magic 00000000)" for i in range(len(reasons))]
    assert len(kept) <= M.MAX_FAILURE_TEXT and more == f"(+{19 - len(reasons)} more)"


def test_damaged_walk() -> None:
    with pytest.raises(ParseError, match="Java class"):
        M.parse_macho(FIXTURES["java_class"])
    with pytest.raises(ParseError, match="ends at 16"):
        M.parse_macho(b"\xca\xfe\xba\xbe\x00\x00\x00\x02" + b"\0" * 8)  # arch table truncated
    with pytest.raises(ParseError, match="header truncated"):
        M.parse_macho(FIXTURES["macho64_minimal"][:20])
    raw = _raw(FIXTURES["macho_absurd_ncmds"])
    assert len(raw["macho_load_commands"]["commands"]) == 11
    v = dict(zip(REGISTRY["macho_load_commands"].dim_names,
                 REGISTRY["macho_load_commands"].vector(raw["macho_load_commands"]), strict=True))
    assert v["unparsed"] == pytest.approx(0xFFFFFFFF - 11)


def _mutants(n: int, seed: int) -> list[bytes]:
    """Seeded overwrites (mostly in the header and load commands) and truncations of the thin fixtures."""
    rng = random.Random(seed)
    images = [d for d, _ in SPECS.values()]
    out = []
    for _ in range(n):
        buf = bytearray(rng.choice(images))
        top = 32 + struct.unpack_from("<I" if buf[0] in (0xCE, 0xCF) else ">I", buf, 20)[0] + 64
        for _ in range(rng.choice([1, 1, 2, 4, 8])):
            buf[rng.randrange(4, min(top, len(buf)))] = rng.choice([0, 0xFF, 0x80, 0x7F, 1, rng.randrange(256)])
        if rng.random() < 0.1:
            buf = buf[:rng.randrange(28, len(buf))]
        out.append(bytes(buf))
    return out


def test_loader_view_equals_lief_on_mutants() -> None:
    """Entry point, virtual size and relocation flag equal LIEF 1.0's on 400 mutants of the fixtures."""
    compared = 0
    for data in _mutants(400, 20261208):
        try:
            p = M.parse_macho(data)
        except ParseError:
            continue
        assert (L.entry_point(p), L.virtual_size(p), L.has_relocations(p)) == R.lief_values(data)
        compared += 1
    assert compared > 380


def test_mutated_fixtures_never_crash() -> None:
    """Seeded byte mutations of the valid fixtures: the parse raises ParseError or every group works."""
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
