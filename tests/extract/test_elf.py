"""ELF groups on the code-built fixtures: every group's raw value and vector asserted, from what the
builder put in, pyelftools' reading (tests/extract/elf_reference.py) or readelf's."""

from __future__ import annotations

import random
import struct

import numpy as np
import pyarrow as pa
import pytest

import extract.entropy as ENT
from extract.groups import REGISTRY
from extract.groups.elf import headers
from extract.groups.elf import parse as E
from extract.parsed import GENERAL_FIELDS, ParseError, general_for, parser_for
from tests.extract import elf_reference as R
from tests.extract.vector_reference import assert_vector
from tests.fixtures import elf_builder as B

ELF_GROUPS = [g for g in REGISTRY if g.name.startswith("elf_")]
FIXTURES = B.fixtures()
SPECS = B.valid_specs()
BASE = "elf64_le_minimal"


def _raw(data: bytes | memoryview) -> dict:
    p = E.parse_elf(data)
    out = {g.name: g.compute(p) for g in ELF_GROUPS}
    out["general"] = general_for("elf")(p)
    return out


def _clamped(phdrs: list[tuple], size: int) -> list[dict]:
    """Program headers as LIEF reports them for a file of ``size`` bytes: a PT_LOAD that starts inside
    the file and runs past its end has its filesz cut at the end (LIEF reads PT_LOAD contents); all
    other fields as written."""
    out = []
    for t, f, off, va, fs, ms, al in phdrs:
        out.append({"type": t, "flags": f, "offset": off, "vaddr": va,
                    "filesz": size - off if t == 1 and off < size < off + fs else fs, "memsz": ms, "align": al})
    return out


def _expected_damaged(name: str) -> dict:
    """Every group's raw value for a damaged fixture, from the valid file it was made from."""
    base_data, spec = SPECS[BASE]
    base = R.expected(base_data)
    data = FIXTURES[name]
    if name == "elf_shoff_past_end":  # e_shoff moved past the end: no sections, all else found
        return {**base, "elf_header": dict(base["elf_header"], shoff=len(base_data) * 4),
                "elf_sections": {"count": 0, "entry": "", "sections": []}}
    if name == "elf_truncated":  # cut at 1,172 bytes: inside .text; .dynamic and the section table lost
        assert len(data) < spec.sections[B.SECTION_NAMES.index(".dynamic")][3] < spec.size
        none = {"count": 0, "functions": 0, "objects": 0, "weak": 0, "names": []}
        return {**base, "elf_segments": {"count": 6, "segments": _clamped(spec.phdrs, len(data))},
                "elf_sections": {"count": 0, "entry": "", "sections": []},
                "elf_libraries": {"count": 0, "needed": [], "soname": "", "rpath": "", "runpath": "",
                                  "dynamic_entries": 0},
                "elf_imports": none, "elf_exports": none,
                "elf_security": dict(base["elf_security"], bind_now=False, stack_protector=False),
                "general": dict(base["general"], exports=0, imports=0, symbols=0)}
    if name == "elf_absurd_phnum":  # e_phnum 0xFFFF: the table runs past the end (see _absurd_phnum)
        return {**{k: v for k, v in base.items() if k != "elf_segments"},
                "elf_header": dict(base["elf_header"], phnum=0xFFFF)}
    raise KeyError(name)


def _assert_absurd_phnum_segments(segments: dict, data: bytes) -> None:
    """e_phnum 0xFFFF: the table runs past the end of the file, and LIEF reads the whole entries that
    fit, the first 6 being the real ones. The other 34 are section bytes: LIEF keeps their offsets,
    addresses and sizes as written (a filesz running past the end cut there) and only the R/W/X bits
    of their flags; their type is not asserted (LIEF turns some unknown values into 0xFFFFFFFF)."""
    _, spec = SPECS[BASE]
    n = (len(data) - 64) // 56
    table = [struct.unpack_from("<IIQQQQQQ", data, 64 + 56 * i) for i in range(n)]
    phdrs = [(t, f & 7, o, v, fs, ms, al) for t, f, o, v, _pa, fs, ms, al in table]
    assert phdrs[:6] == list(spec.phdrs) and segments["count"] == n == 40
    want = _clamped(phdrs, len(data))
    assert segments["segments"][:6] == want[:6]
    assert [dict(s, type=0) for s in segments["segments"][6:]] == [dict(s, type=0) for s in want[6:]]
    # none of them is a PT_LOAD, PT_TLS or PT_GNU_RELRO, and the real PT_DYNAMIC, PT_INTERP and
    # PT_GNU_STACK come first: every other group sees the base file
    assert not {t for t, *_ in phdrs[6:]} & {1, 7, 0x6474E552}


def test_registered() -> None:
    assert parser_for("elf") is E.parse_elf
    assert [g.name for g in ELF_GROUPS] == [
        "elf_header", "elf_segments", "elf_sections", "elf_libraries", "elf_imports", "elf_exports",
        "elf_interpreter", "elf_security"]
    for g in ELF_GROUPS:
        assert g.formats == frozenset({"elf"}) and g.stage == "structure"


@pytest.mark.parametrize("name", sorted(FIXTURES))
def test_every_group_on_every_fixture(name: str) -> None:
    """Every group's raw value equals its expectation, and its vector equals the documented encoding."""
    data = FIXTURES[name]
    if name == "elf_magic_only":
        with pytest.raises(ParseError, match="not an ELF file"):
            parser_for("elf")(data)
        return
    raw = _raw(data)
    if name in ("elf_truncated", "elf_absurd_phnum", "elf_shoff_past_end"):
        R.assert_raw_equal(raw, _expected_damaged(name))
        if name == "elf_absurd_phnum":
            _assert_absurd_phnum_segments(raw["elf_segments"], data)
    else:  # the valid files, and 64 bit flips (e_phoff now past the end, section fields garbled)
        R.assert_raw_equal(raw, R.expected(data))
    for g in ELF_GROUPS:
        pa.array([raw[g.name]], type=g.raw_type)
        assert_vector(g, raw[g.name], R.expected_vector(g.name, raw[g.name]))
    assert tuple(raw["general"]) == GENERAL_FIELDS and all(type(x) is int for x in raw["general"].values())


@pytest.mark.parametrize("name", list(SPECS))
def test_minimal_exact(name: str) -> None:
    """The values the builder put in (its Spec and constants), independently of any ELF reader."""
    data, spec = SPECS[name]
    raw = _raw(data)
    h = raw["elf_header"]
    assert (h["ei_class"], h["ei_data"], h["machine"], h["type"]) == (
        spec.ei_class, spec.ei_data, spec.machine, spec.e_type)
    assert h["entry"] == spec.entry and h["phnum"] == 6 and h["shnum"] == len(B.SECTION_NAMES)
    assert h["shstrndx"] == len(B.SECTION_NAMES) - 1
    assert h["ehsize"] == (64 if spec.ei_class == 2 else 52)
    assert raw["elf_segments"] == {"count": 6, "segments": _clamped(spec.phdrs, spec.size)}
    secs = raw["elf_sections"]
    assert secs["count"] == len(B.SECTION_NAMES) and secs["entry"] == ".text"
    got = [(s["name"], s["type"], s["flags"], s["offset"], s["addr"], s["size"]) for s in secs["sections"]]
    assert got == [tuple(s) for s in spec.sections]
    by_name = {s["name"]: s for s in secs["sections"]}
    assert by_name[".text"]["entropy"] == pytest.approx(R.shannon(B.TEXT), abs=1e-9)
    assert by_name[".data"]["entropy"] == pytest.approx(R.shannon(B.DATA), abs=1e-9)
    assert by_name[".bss"]["entropy"] == 0.0
    assert by_name[".interp"]["entropy"] == pytest.approx(R.shannon(spec.interp.encode() + b"\0"))
    assert raw["elf_libraries"] == {"count": 2, "needed": list(B.NEEDED), "soname": "", "rpath": "",
                                    "runpath": "", "dynamic_entries": 9}
    assert raw["elf_imports"] == {"count": 4, "functions": 2, "objects": 1, "weak": 1, "names": B.IMPORTS}
    assert raw["elf_exports"] == {"count": 3, "functions": 2, "objects": 1, "weak": 1, "names": B.EXPORTS}
    assert raw["elf_interpreter"] == {"present": True, "interpreter": spec.interp}
    assert raw["elf_security"] == {
        "stripped": True, "symtab_entries": 0, "pie": spec.e_type == B.ET_DYN, "nx_stack": True, "relro": 0,
        "bind_now": True, "textrel": False, "has_dynamic": True, "has_interp": True, "stack_protector": True,
        "fortify": False, "debug_sections": 0}
    assert raw["general"] == {"vsize": 4096, "has_debug": 0, "exports": 3, "imports": 4, "has_relocations": 0,
                              "has_resources": 0, "has_signature": 0, "has_tls": 0, "symbols": 10}


def test_minimal_vectors() -> None:
    """A few dimensions by name, as a reader of docs/vector_layout.md would look them up."""
    data, spec = SPECS[BASE]
    raw = _raw(data)

    def vec(group: str) -> dict[str, float]:
        g = REGISTRY[group]
        return dict(zip(g.dim_names, g.vector(raw[group]).tolist(), strict=True))

    v = vec("elf_header")
    assert v["class=2"] == 1 and v["class=1"] == 0 and v["data=1"] == 1 and v["machine=0x3e"] == 1
    assert v["type=3"] == 1 and v["os_abi=0"] == 1 and v["entry"] == spec.entry and v["phnum"] == 6
    v = vec("elf_segments")
    assert v["type_count=0x1"] == 2 and v["type_count=0x6474e551"] == 1 and v["type_count=other"] == 0
    assert v["x"] == 1 and v["w"] == 3 and v["wx"] == 0 and v["stack_exec"] == 0 and v["count"] == 6
    v = vec("elf_sections")
    assert v["count"] == 10 and v["exec"] == 1 and v["write"] == 3 and v["nobits"] == 1
    assert v["empty_name"] == 1 and v["zero_size"] == 1
    v = vec("elf_interpreter")
    assert v["present"] == 1 and v["interpreter=/lib64/ld-linux-x86-64.so.2"] == 1
    v = vec("elf_security")
    assert v["pie"] == 1 and v["bind_now"] == 1 and v["relro=full"] == 0


def test_interpreter_vector_absent_and_other() -> None:
    g = REGISTRY["elf_interpreter"]
    assert not g.vector({"present": False, "interpreter": ""}).any()
    v = dict(zip(g.dim_names, g.vector({"present": True, "interpreter": "/odd/ld-musl.so"}), strict=True))
    assert v["interpreter=other"] == 1 and v["musl"] == 1 and sum(v.values()) == 3


def test_memoryview_input() -> None:
    data = FIXTURES[BASE]
    assert _raw(memoryview(data)) == _raw(data)


def test_no_section_headers_uses_dynamic_entries() -> None:
    """An sstrip-ed file (no section headers) still yields its dynamic symbols via DT_SYMTAB/DT_HASH."""
    buf = bytearray(FIXTURES[BASE])
    struct.pack_into("<QIHHHHHH", buf, 0x28, 0, 0, 64, 56, 6, 64, 0, 0)
    raw = _raw(bytes(buf))
    assert raw["elf_sections"]["count"] == 0
    assert raw["elf_imports"]["names"] == B.IMPORTS and raw["elf_exports"]["names"] == B.EXPORTS
    assert raw["elf_libraries"]["needed"] == list(B.NEEDED)
    assert raw["elf_security"]["stack_protector"] and raw["general"]["symbols"] == 10


def test_bad_ident() -> None:
    with pytest.raises(ParseError, match="class 3"):
        E.parse_elf(b"\x7fELF\x03\x01\x01" + b"\0" * 60)
    with pytest.raises(ParseError, match="truncated"):
        E.parse_elf(b"\x7fELF\x02\x01\x01" + b"\0" * 20)
    assert len(_raw(FIXTURES["elf_absurd_phnum"])["elf_segments"]["segments"]) <= headers.MAX_SEGMENTS


def test_entropy_helpers() -> None:
    rng = np.random.default_rng(0)
    blob = rng.integers(0, 256, 300_000, dtype=np.uint8).tobytes() + b"\0" * 1001
    ranges = [(0, 10), (5, 200_000), (1, 300_999), (299_990, 5000), (10**9, 4), (7, 0)]
    want = [R.shannon(blob[o:o + n]) for o, n in ranges]
    assert ENT.range_entropies(blob, ranges) == pytest.approx(want, abs=1e-9)


def test_mutated_fixtures_never_crash() -> None:
    """Seeded byte mutations of the valid fixtures: the parse raises ParseError or every group works."""
    rng = random.Random(20261123)
    parsed = 0
    for _ in range(300):
        buf = bytearray(FIXTURES[rng.choice(list(SPECS))])
        for _ in range(rng.choice([1, 4, 16])):
            i = rng.randrange(4, min(len(buf), 1100)) if rng.random() < 0.7 else rng.randrange(4, len(buf))
            buf[i] = rng.choice([0, 0xFF, 0x80, rng.randrange(256)])
        data = bytes(buf[: rng.randrange(16, len(buf))] if rng.random() < 0.2 else buf)
        try:
            p = E.parse_elf(data)
        except ParseError:
            continue
        parsed += 1
        for g in ELF_GROUPS:
            raw = g.compute(p)
            pa.array([raw], type=g.raw_type)
            assert g.vector(raw).shape == (g.dims,)
        general_for("elf")(p)
    assert parsed > 250
