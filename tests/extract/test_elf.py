"""ELF groups: exact values on crafted fixtures, equality with readelf on real system files."""

from __future__ import annotations

import glob
import math
import os
import re
import shutil
import struct
import subprocess
from collections import Counter

import numpy as np
import pyarrow as pa
import pytest

import extract.entropy as ENT
from extract.groups import REGISTRY
from extract.groups import elf as E
from extract.parsed import GENERAL_FIELDS, ParseError, general_for, parser_for
from tests.fixtures import elf_builder as B

ELF_GROUPS = [g for g in REGISTRY if g.name.startswith("elf_")]
FIXTURES = B.fixtures()
SPECS = B.valid_specs()
VALID = list(SPECS)


def _entropy(b: bytes) -> float:
    if not b:
        return 0.0
    n = len(b)
    return -sum(c / n * math.log2(c / n) for c in Counter(b).values())


def _raw(name: str, data: bytes) -> dict:
    p = E.parse_elf(data)
    return {g.name: g.compute(p) for g in ELF_GROUPS}


def _vec(group: str, raw: dict) -> dict[str, float]:
    g = REGISTRY[group]
    return dict(zip(g.dim_names, g.vector(raw).tolist(), strict=True))


def test_registered() -> None:
    assert parser_for("elf") is E.parse_elf
    assert {g.name for g in ELF_GROUPS} == {
        "elf_header", "elf_segments", "elf_sections", "elf_libraries", "elf_imports", "elf_exports",
        "elf_interpreter", "elf_security"}
    for g in ELF_GROUPS:
        assert g.formats == frozenset({"elf"}) and g.stage == "structure"


@pytest.mark.parametrize("name", sorted(FIXTURES))
def test_every_group_on_every_fixture(name: str) -> None:
    data = FIXTURES[name]
    try:
        p = parser_for("elf")(data)
    except ParseError:
        assert name in ("elf_magic_only",), f"{name} should parse"
        return
    for g in ELF_GROUPS:
        raw = g.compute(p)
        pa.array([raw], type=g.raw_type)
        v = g.vector(raw)
        assert v.shape == (g.dims,) and v.dtype == np.float32
    gen = general_for("elf")(p)
    assert tuple(gen) == GENERAL_FIELDS and all(type(x) is int for x in gen.values())


def test_memoryview_input() -> None:
    data = FIXTURES["elf64_le_minimal"]
    p = E.parse_elf(memoryview(data))
    assert REGISTRY["elf_imports"].compute(p)["names"] == B.IMPORTS


@pytest.mark.parametrize("name", VALID)
def test_minimal_exact(name: str) -> None:
    data, spec = SPECS[name]
    raw = _raw(name, data)
    h = raw["elf_header"]
    assert (h["ei_class"], h["ei_data"], h["machine"], h["type"]) == (
        spec.ei_class, spec.ei_data, spec.machine, spec.e_type)
    assert h["entry"] == spec.entry and h["phnum"] == 6 and h["shnum"] == len(B.SECTION_NAMES)
    assert h["shstrndx"] == len(B.SECTION_NAMES) - 1
    assert h["ehsize"] == (64 if spec.ei_class == 2 else 52)

    segs = raw["elf_segments"]
    assert segs["count"] == 6
    assert [tuple(s[k] for k in ("type", "flags", "offset", "vaddr", "filesz", "memsz", "align"))
            for s in segs["segments"]] == [tuple(p) for p in spec.phdrs]

    secs = raw["elf_sections"]
    assert secs["count"] == len(B.SECTION_NAMES) and secs["entry"] == ".text"
    got = [(s["name"], s["type"], s["flags"], s["offset"], s["addr"], s["size"]) for s in secs["sections"]]
    assert got == [tuple(s) for s in spec.sections]
    by_name = {s["name"]: s for s in secs["sections"]}
    assert by_name[".text"]["entropy"] == pytest.approx(_entropy(B.TEXT), abs=1e-9)
    assert by_name[".data"]["entropy"] == pytest.approx(_entropy(B.DATA), abs=1e-9)
    assert by_name[".bss"]["entropy"] == 0.0
    assert by_name[".interp"]["entropy"] == pytest.approx(_entropy(spec.interp.encode() + b"\0"))

    assert raw["elf_libraries"] == {"count": 2, "needed": list(B.NEEDED), "soname": "", "rpath": "",
                                    "runpath": "", "dynamic_entries": 9}
    assert raw["elf_imports"] == {"count": 4, "functions": 2, "objects": 1, "weak": 1, "names": B.IMPORTS}
    assert raw["elf_exports"] == {"count": 3, "functions": 2, "objects": 1, "weak": 1, "names": B.EXPORTS}
    assert raw["elf_interpreter"] == {"present": True, "interpreter": spec.interp}
    sec = raw["elf_security"]
    assert sec == {"stripped": True, "symtab_entries": 0, "pie": spec.e_type == B.ET_DYN,
                   "nx_stack": True, "relro": 0, "bind_now": True, "textrel": False,
                   "has_dynamic": True, "has_interp": True, "stack_protector": True, "fortify": False,
                   "debug_sections": 0}
    gen = general_for("elf")(E.parse_elf(data))
    assert gen == {"vsize": 4096, "has_debug": 0, "exports": 3, "imports": 4, "has_relocations": 0,
                   "has_resources": 0, "has_signature": 0, "has_tls": 0, "symbols": 10}


def test_minimal_vectors() -> None:
    data, spec = SPECS["elf64_le_minimal"]
    raw = _raw("elf64_le_minimal", data)
    v = _vec("elf_header", raw["elf_header"])
    assert v["class=2"] == 1 and v["class=1"] == 0 and v["data=1"] == 1 and v["machine=0x3e"] == 1
    assert v["type=3"] == 1 and v["os_abi=0"] == 1 and v["entry"] == spec.entry and v["phnum"] == 6
    assert sum(v[k] for k in v if k.startswith("machine=")) == 1
    v = _vec("elf_segments", raw["elf_segments"])
    assert v["type_count=0x1"] == 2 and v["type_count=0x6474e551"] == 1 and v["type_count=other"] == 0
    assert v["x"] == 1 and v["w"] == 3 and v["wx"] == 0 and v["stack_exec"] == 0 and v["count"] == 6
    v = _vec("elf_sections", raw["elf_sections"])
    assert v["count"] == 10 and v["exec"] == 1 and v["write"] == 3 and v["nobits"] == 1
    assert v["empty_name"] == 1 and v["zero_size"] == 1
    assert sum(abs(x) for k, x in v.items() if k.startswith("entry_name[")) == 1
    v = _vec("elf_imports", raw["elf_imports"])
    assert v["count"] == 4 and sum(abs(x) for k, x in v.items() if k.startswith("import[")) <= 4
    v = _vec("elf_interpreter", raw["elf_interpreter"])
    assert v["present"] == 1 and v["interpreter=/lib64/ld-linux-x86-64.so.2"] == 1
    v = _vec("elf_security", raw["elf_security"])
    assert v["pie"] == 1 and v["bind_now"] == 1 and v["relro=full"] == 0


def test_interpreter_vector_absent() -> None:
    g = REGISTRY["elf_interpreter"]
    assert not g.vector({"present": False, "interpreter": ""}).any()
    v = dict(zip(g.dim_names, g.vector({"present": True, "interpreter": "/odd/ld.so"}), strict=True))
    assert v["interpreter=other"] == 1


def test_no_section_headers_uses_dynamic_entries() -> None:
    """An sstrip-ed file (no section headers) still yields its dynamic symbols via DT_SYMTAB/DT_HASH."""
    buf = bytearray(FIXTURES["elf64_le_minimal"])
    struct.pack_into("<QIHHHHHH", buf, 0x28, 0, 0, 64, 56, 6, 64, 0, 0)
    raw = _raw("sstrip", bytes(buf))
    assert raw["elf_sections"]["count"] == 0
    assert raw["elf_imports"]["names"] == B.IMPORTS and raw["elf_exports"]["names"] == B.EXPORTS
    assert raw["elf_libraries"]["needed"] == list(B.NEEDED)


def test_damaged() -> None:
    with pytest.raises(ParseError):
        E.parse_elf(FIXTURES["elf_magic_only"])
    with pytest.raises(ParseError):
        E.parse_elf(b"\x7fELF\x03\x01\x01" + b"\0" * 60)  # bad class
    raw = _raw("t", FIXTURES["elf_truncated"])
    assert raw["elf_header"]["shoff"] > len(FIXTURES["elf_truncated"])
    assert raw["elf_sections"]["count"] == 0
    raw = _raw("s", FIXTURES["elf_shoff_past_end"])
    assert raw["elf_sections"]["count"] == 0 and raw["elf_header"]["phnum"] == 6
    raw = _raw("p", FIXTURES["elf_absurd_phnum"])
    assert raw["elf_header"]["phnum"] == 0xFFFF
    assert len(raw["elf_segments"]["segments"]) <= E.MAX_SEGMENTS


def test_entropy_helpers() -> None:
    rng = np.random.default_rng(0)
    blob = rng.integers(0, 256, 300_000, dtype=np.uint8).tobytes() + b"\0" * 1001
    ranges = [(0, 10), (5, 200_000), (1, 300_999), (299_990, 5000), (10**9, 4), (7, 0)]
    want = [_entropy(blob[o:o + n]) for o, n in ranges]
    assert ENT.range_entropies(blob, ranges) == pytest.approx(want, abs=1e-9)


# ---------------------------------------------------------------------------------------------
# Real files against readelf

def _real_files() -> list[str]:
    """A spread of system ELF files, plus BINFEAT_ELF_EXTRA (a glob, e.g. unpacked s390x coreutils)."""
    pats = ["/usr/lib/x86_64-linux-gnu/*.so*", "/usr/bin/*", "/usr/lib/aarch64-linux-gnu/*.so*"]
    extra = os.environ.get("BINFEAT_ELF_EXTRA")
    out = []
    for pat in pats:
        for f in sorted(glob.glob(pat)):
            if os.path.isfile(f) and not os.path.islink(f) and 0 < os.path.getsize(f) < 20_000_000:
                with open(f, "rb") as fh:
                    if fh.read(4) == b"\x7fELF":
                        out.append(f)
    out = out[::max(1, len(out) // 24)][:24]
    if extra:
        out += [f for f in sorted(glob.glob(extra))[:24] if os.path.isfile(f) and not os.path.islink(f)]
    return out


REAL = _real_files() if shutil.which("readelf") else []


def _readelf(args: list[str], path: str) -> str:
    return subprocess.run(["readelf", "-W", *args, path], capture_output=True, text=True,
                          check=False, env={**os.environ, "LC_ALL": "C"}).stdout


def _field(text: str, label: str) -> str:
    m = re.search(rf"^\s*{re.escape(label)}:\s*(.*)$", text, re.M)
    assert m, label
    return m.group(1).strip()


_PT = {"NULL": 0, "LOAD": 1, "DYNAMIC": 2, "INTERP": 3, "NOTE": 4, "SHLIB": 5, "PHDR": 6, "TLS": 7,
       "GNU_EH_FRAME": 0x6474E550, "GNU_STACK": 0x6474E551, "GNU_RELRO": 0x6474E552,
       "GNU_PROPERTY": 0x6474E553}


@pytest.mark.skipif(not REAL, reason="no readelf or no system ELF files")
@pytest.mark.parametrize("path", REAL, ids=os.path.basename)
def test_real_against_readelf(path: str) -> None:
    with open(path, "rb") as fh:
        data = fh.read()
    p = E.parse_elf(data)
    raw = {g.name: g.compute(p) for g in ELF_GROUPS}
    for g in ELF_GROUPS:
        pa.array([raw[g.name]], type=g.raw_type)
        assert len(g.vector(raw[g.name])) == g.dims

    # header
    hdr = _readelf(["-h"], path)
    h = raw["elf_header"]
    assert h["ei_class"] == {"ELF64": 2, "ELF32": 1}[_field(hdr, "Class")]
    assert h["type"] == {"EXEC": 2, "DYN": 3, "REL": 1, "CORE": 4}[_field(hdr, "Type").split()[0]]
    assert h["entry"] == int(_field(hdr, "Entry point address"), 16)
    assert h["phoff"] == int(_field(hdr, "Start of program headers").split()[0])
    assert h["shoff"] == int(_field(hdr, "Start of section headers").split()[0])
    assert h["flags"] == int(_field(hdr, "Flags").split()[0].rstrip(","), 16)
    assert h["phnum"] == int(_field(hdr, "Number of program headers").split()[0])
    assert h["shnum"] == int(_field(hdr, "Number of section headers").split()[0])
    assert h["shstrndx"] == int(_field(hdr, "Section header string table index").split()[0])

    # program headers
    text = _readelf(["-l"], path)
    rows = re.findall(r"^\s+([A-Z_]+|LOOS\+0x[0-9a-f]+|0x[0-9a-f]+)\s+0x([0-9a-f]+)\s+0x([0-9a-f]+)\s+"
                      r"0x[0-9a-f]+\s+0x([0-9a-f]+)\s+0x([0-9a-f]+)\s+([RWE ]{3})\s+0x([0-9a-f]+)$",
                      text, re.M)
    segs = raw["elf_segments"]["segments"]
    assert raw["elf_segments"]["count"] == len(rows)
    for s, (typ, off, va, fs, ms, flg, al) in zip(segs, rows, strict=True):
        assert (s["offset"], s["vaddr"], s["filesz"], s["memsz"], s["align"]) == (
            int(off, 16), int(va, 16), int(fs, 16), int(ms, 16), int(al, 16))
        assert s["flags"] & 7 == (4 * (flg[0] == "R")) | (2 * (flg[1] == "W")) | (flg[2] == "E")
        if typ in _PT:
            assert s["type"] == _PT[typ]
    m = re.search(r"\[Requesting program interpreter: (.*)\]", text)
    assert raw["elf_interpreter"] == {"present": bool(m), "interpreter": m.group(1) if m else ""}

    # section headers
    text = _readelf(["-S"], path)
    secs = raw["elf_sections"]["sections"]
    lines = [ln for ln in text.splitlines() if re.match(r"^\s*\[\s*\d+\]", ln)]
    assert raw["elf_sections"]["count"] == len(lines)
    for s, ln in zip(secs, lines, strict=True):
        f = ln.split("]", 1)[1].split()
        if len(f) == 8:  # index 0: no name, no flags
            f = ["", *f[:5], "", *f[5:]]
        elif len(f) == 9:  # no flags
            f = [*f[:6], "", *f[6:]]
        name, _typ, addr, off, size = f[0], f[1], int(f[2], 16), int(f[3], 16), int(f[4], 16)
        assert (s["name"], s["addr"], s["offset"], s["size"]) == (name[:256], addr, off, size)
        assert ("X" in f[6]) == bool(s["flags"] & 4) and ("W" in f[6]) == bool(s["flags"] & 1)
        if f[1] == "NOBITS":
            assert s["entropy"] == 0.0
        elif size and off + size <= len(data):
            assert s["entropy"] == pytest.approx(_entropy(data[off:off + size]), abs=1e-9)
    assert raw["elf_security"]["stripped"] == (" SYMTAB " not in text)

    # dynamic section
    text = _readelf(["-d"], path)
    needed = re.findall(r"\(NEEDED\)\s+Shared library: \[(.*)\]", text)
    assert raw["elf_libraries"]["needed"] == needed and raw["elf_libraries"]["count"] == len(needed)
    son = re.findall(r"\(SONAME\)\s+Library soname: \[(.*)\]", text)
    assert raw["elf_libraries"]["soname"] == (son[0] if son else "")

    # dynamic symbols
    text = _readelf(["--dyn-syms"], path)
    imports, exports = [], []
    for ln in text.splitlines():
        f = ln.split()
        if len(f) < 8 or not f[0].rstrip(":").isdigit():
            continue
        typ, bind, vis, ndx, name = f[3], f[4], f[5], f[6], f[7].split("@")[0]
        if bind not in ("GLOBAL", "WEAK", "UNIQUE") or not name:
            continue
        if ndx == "UND":
            imports.append(name[:256])
        elif typ in ("FUNC", "IFUNC", "OBJECT", "COMMON", "TLS") and vis in ("DEFAULT", "PROTECTED"):
            exports.append(name[:256])
    assert raw["elf_imports"]["names"] == imports[:E.MAX_SYMBOLS]
    assert raw["elf_exports"]["names"] == exports[:E.MAX_SYMBOLS]
    assert raw["elf_imports"]["count"] == len(imports) and raw["elf_exports"]["count"] == len(exports)


def test_mutated_fixtures_never_crash() -> None:
    """Seeded byte mutations of the valid fixtures: the parse raises ParseError or every group works."""
    import random

    rng = random.Random(20261123)
    for _ in range(300):
        buf = bytearray(FIXTURES[rng.choice(VALID)])
        for _ in range(rng.choice([1, 4, 16])):
            i = rng.randrange(4, min(len(buf), 1100)) if rng.random() < 0.7 else rng.randrange(4, len(buf))
            buf[i] = rng.choice([0, 0xFF, 0x80, rng.randrange(256)])
        data = bytes(buf[: rng.randrange(16, len(buf))] if rng.random() < 0.2 else buf)
        try:
            p = E.parse_elf(data)
        except ParseError:
            continue
        for g in ELF_GROUPS:
            raw = g.compute(p)
            pa.array([raw], type=g.raw_type)
            assert g.vector(raw).shape == (g.dims,)
        general_for("elf")(p)
