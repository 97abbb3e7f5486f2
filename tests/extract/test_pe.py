"""PE groups: exact values on the crafted fixtures, equality with pefile on real PE files, and
robustness on damaged files (parse raises ParseError or every group returns a valid raw value)."""

from __future__ import annotations

import hashlib
import importlib.util
import math
import os
import random
import struct
import time
from collections import Counter
from pathlib import Path

import lief
import numpy as np
import pefile
import pyarrow as pa
import pytest

import extract.groups  # noqa: F401  (declares every group)
from extract.groups import pe_ember, pe_tokens
from extract.hashing import hash_tokens, hash_weighted
from extract.parsed import Parsed, ParseError, general_for, parser_for
from extract.registry import REGISTRY
from tests.conftest import corpus_dir, corpus_manifest
from tests.extract import pe_expect
from tests.fixtures import pe_builder as fx

PE_GROUPS = [g for g in REGISTRY if g.name.startswith("pe_")]
EMBER_DIMS = {
    "pe_header": 62,
    "pe_section": 255,
    "pe_imports": 1280,
    "pe_exports": 128,
    "pe_data_directories": 30,
}
FIXTURES = fx.fixtures()
VALID = ["pe32_minimal", "pe32plus_minimal", "pe_arm64_minimal", "dotnet_minimal"]
MUST_FAIL = ["pe_lfanew_past_end", "pe_magic_only"]


def parse(data: bytes | memoryview) -> Parsed:
    return parser_for("pe")(data)


def raws(data: bytes) -> dict:
    p = parse(data)
    return {g.name: g.compute(p) for g in PE_GROUPS}


def check_raw(group, raw) -> np.ndarray:
    pa.array([raw], type=group.raw_type)  # the stored type accepts the raw value
    vec = group.vector(raw)
    assert vec.shape == (group.dims,)
    assert np.isfinite(vec).all(), group.name
    return vec


def real_pe_files() -> list[Path]:
    """PE files always present (setuptools' and pip's launcher exes: i386, AMD64, ARM64), plus the
    sample corpus and directories named in BINFEAT_PE_DIRS (os.pathsep-separated), when there."""
    files = []
    for pkg, sub in (("setuptools", ""), ("pip", "_vendor/distlib")):
        spec = importlib.util.find_spec(pkg)  # locate without importing (setuptools patches distutils)
        if spec and spec.submodule_search_locations:
            files += sorted(Path(next(iter(spec.submodule_search_locations)), sub).glob("*.exe"))
    root = corpus_dir()
    if root is not None:  # the sample corpus's undamaged PE files (damaged ones are tested elsewhere)
        files += [root / r["sha256"][:2] / r["sha256"] for r in corpus_manifest()
                  if r["format"] == "pe" and r["mutation"] is None and r["kind"] != "malformed"][:300]
    roots = [Path(d) for d in os.environ.get("BINFEAT_PE_DIRS", "").split(os.pathsep) if d]
    for root in roots:
        if root.is_dir():
            extra = [f for f in sorted(root.rglob("*")) if f.is_file() and f.open("rb").read(2) == b"MZ"]
            files += extra[:300]
    return files


REAL = real_pe_files()


# ---------------------------------------------------------------------------------------------
# Declarations and fixtures


def test_groups_declared_with_ember_dims():
    names = [g.name for g in PE_GROUPS]
    assert names == [
        "pe_header",
        "pe_section",
        "pe_imports",
        "pe_exports",
        "pe_data_directories",
        "pe_dotnet",
        "pe_rich",
        "pe_authenticode",
        "pe_overlay",
    ]
    for name, dims in EMBER_DIMS.items():
        assert REGISTRY[name].dims == dims
    for g in PE_GROUPS:
        assert g.formats == frozenset({"pe"}) and g.stage == "structure"


def _with_imports(imports: list[tuple[str, list[str | int]]], plus: bool) -> bytes:
    """A PE whose only content is an import table (built by tests/fixtures/pe_builder.py)."""
    text = fx.Section(b".text", 0x1000, b"\xc3" * 16, fx.SCN_CODE)
    blob = fx._Blob(0x2000)
    imp = fx.add_imports(blob, imports, plus=plus)
    rdata = fx.Section(b".rdata", 0x2000, bytes(blob.buf), fx.SCN_RDATA)
    return fx.build_pe(machine=0x8664 if plus else 0x14C, plus=plus, sections=[text, rdata], entry_rva=0x1000,
                       dirs={1: imp})


IMPHASH_CASES = {
    # extensions dropped (.dll, .ocx, .sys in any case) or kept, dotted names
    "extensions": [("KERNEL32.DLL", ["GetProcAddress"]), ("foo.OCX", ["A"]), ("bar.Sys", ["B"]), ("baz.drv", ["C"]),
                   ("noext", ["D"]), ("a.b.dll", ["E"]), ("x.exe", ["F"]), ("lib.", ["f"]), ("lib.dll.", ["h"])],
    # ordinals named from pefile's tables (oleaut32, ws2_32, wsock32), unknown ones and others as ord<N>
    "ordinals": [("wsock32.dll", [1, 2, 9999]), ("OLEAUT32.dll", [2, 9999, 400]), ("ws2_32.dll", [23, 500]),
                 ("kernel32.dll", [7]), ("ws2_32", [3])],
    "repeated_and_case": [("k.dll", ["a", "GetPROCAddress"]), ("user32.dll", ["b"]), ("K.dll", ["c", ""])],
}


@pytest.mark.parametrize("plus", [False, True])
@pytest.mark.parametrize("case", sorted(IMPHASH_CASES))
def test_imphash_equals_pefile_on_crafted_imports(case, plus):
    data = _with_imports(IMPHASH_CASES[case], plus)
    imphash = raws(data)["pe_imports"]["imphash"]
    assert imphash == pefile.PE(data=data).get_imphash() != ""


def test_imphash_of_libraries_without_functions():
    # a library listed with no function: no imphash at all, as pefile says (LIEF: the md5 of "")
    data = _with_imports([("mscoree.dll", [])], plus=False)
    assert raws(data)["pe_imports"]["imphash"] == pefile.PE(data=data).get_imphash() == ""
    # next to a library with functions, LIEF's list keeps an empty item (a known difference from pefile)
    data = _with_imports([("mscoree.dll", []), ("k.dll", ["a"])], plus=False)
    assert raws(data)["pe_imports"]["imphash"] == hashlib.md5(b",k.a").hexdigest()
    assert pefile.PE(data=data).get_imphash() == hashlib.md5(b"k.a").hexdigest()


def test_fixtures_deterministic_and_valid_ones_parse_with_lief():
    assert fx.fixtures() == FIXTURES
    assert FIXTURES["pe_magic_only"] == b"MZ"
    for name in VALID:
        assert lief.PE.parse(FIXTURES[name]) is not None, name


def _with_certificate_table(data: bytes) -> bytes:
    """``data`` with a WIN_CERTIFICATE (PKCS#7 type, content not a valid signature) appended and the
    certificate-table directory entry pointing at it (a file offset, as the spec says)."""
    pad = bytes(-len(data) % 8)
    cert = struct.pack("<IHH", 8 + 24, 0x0200, 0x0002) + b"not a PKCS#7 signature!"[:24]
    out = bytearray(data + pad + cert)
    lfanew = struct.unpack_from("<I", out, 0x3C)[0]
    (magic,) = struct.unpack_from("<H", out, lfanew + 24)
    entry = lfanew + 24 + (96 if magic == 0x10B else 112) + 4 * 8
    struct.pack_into("<II", out, entry, len(data) + len(pad), len(cert))
    return bytes(out)


EVERY = {**FIXTURES, "pe32_certificate_table": _with_certificate_table(FIXTURES["pe32_minimal"])}
DOTNET_ABSENT = {**dict.fromkeys(REGISTRY["pe_dotnet"].raw_type.names), "present": False, "streams": []}
# ECMA-335 II.22 table numbers of the tables pe_dotnet counts
ECMA_TABLES = {"module": 0x00, "type_ref": 0x01, "type_def": 0x02, "field": 0x04, "method_def": 0x06,
               "param": 0x08, "member_ref": 0x0A, "assembly": 0x20, "assembly_ref": 0x23}


def _expected_dotnet(data: bytes) -> dict:
    """The CLR header and metadata root as dnfile reads them; row counts from the builder's table
    (dnfile cannot read the fixture's tables, which are row counts without rows)."""
    import logging

    import dnfile

    logging.disable(logging.WARNING)  # dnfile warns about the rows the fixture leaves out
    try:
        dn = dnfile.dnPE(data=data)
    finally:
        logging.disable(logging.NOTSET)
    if dn.net is None:
        return DOTNET_ABSENT
    c, md = dn.net.struct, dn.net.metadata
    return {"present": True, "cb": c.cb, "runtime_major": c.MajorRuntimeVersion,
            "runtime_minor": c.MinorRuntimeVersion, "flags": c.Flags, "entry_point_token": c.EntryPointTokenOrRva,
            "metadata_rva": c.MetaDataRva, "metadata_size": c.MetaDataSize, "resources_size": c.ResourcesSize,
            "strong_name_size": c.StrongNameSignatureSize, "vtable_fixups_size": c.VTableFixupsSize,
            "metadata_version": md.struct.Version.rstrip(b"\x00").decode(),
            "streams": [s.struct.Name.decode() for s in md.streams_list],
            "table_rows": {k: fx.DOTNET_ROWS.get(t, 0) for k, t in ECMA_TABLES.items()}}


# The bit flips hit KERNEL32's thunk list: pefile drops the whole library ("Invalid entries, aborting
# parsing"), LIEF (binfeat's parser, and EMBER's) keeps the one function still readable. By hand:
BITFLIP_IMPORTS = {
    "libraries": [{"name": "KERNEL32.dll", "functions": ["GetProcAddress"], "is_ordinal": [False]},
                  {"name": "WS2_32.dll", "functions": ["ord23", "ord3"], "is_ordinal": [True, True]},
                  {"name": "user32.dll", "functions": ["MessageBoxA"], "is_ordinal": [False]}],
    "imphash": hashlib.md5(b"kernel32.getprocaddress,ws2_32.socket,ws2_32.closesocket,user32.messageboxa").hexdigest(),
    "truncated": False,
}
# and its export directory: pefile gives up on it ("Error parsing export directory"), LIEF lists the
# two exports with the names it cannot read as ""
BITFLIP_EXPORTS = {"functions": ["", ""], "truncated": False}


@pytest.mark.parametrize("name", sorted(EVERY))
def test_every_group_on_every_fixture(name):
    """Each group's raw value equals what pefile (dnfile for .NET) and the bytes say, on every fixture
    that parses; the vector is finite and zero exactly where the raw value is empty."""
    data = EVERY[name]
    try:
        p = parse(data)
    except ParseError:
        # refused: pefile refuses it too, or finds 65,535 sections in it
        assert name in (*MUST_FAIL, "pe_absurd_sections")
        if name in MUST_FAIL:
            with pytest.raises(pefile.PEFormatError):
                pe_expect.load(data)
        else:
            assert pe_expect.load(data).FILE_HEADER.NumberOfSections == 0xFFFF
        return
    r = {g.name: g.compute(p) for g in PE_GROUPS}
    vectors = {g.name: check_raw(g, r[g.name]) for g in PE_GROUPS}
    pe = pe_expect.load(data)
    assert r["pe_header"] == pe_expect.header(pe)
    expected_sections = pe_expect.sections(pe)
    assert r["pe_section"]["entry"] == expected_sections["entry"]
    assert [s["entropy"] for s in r["pe_section"]["sections"]] == pytest.approx(
        [s["entropy"] for s in expected_sections["sections"]], abs=1e-9)
    assert [{**s, "entropy": 0} for s in r["pe_section"]["sections"]] == [
        {**s, "entropy": 0} for s in expected_sections["sections"]]
    expected_imports = BITFLIP_IMPORTS if name == "pe_bitflip" else pe_expect.imports(pe)
    expected_exports = BITFLIP_EXPORTS if name == "pe_bitflip" else pe_expect.exports(pe)
    assert r["pe_imports"] == expected_imports
    assert r["pe_exports"] == expected_exports
    assert r["pe_data_directories"] == pe_expect.directories(pe)
    assert r["pe_rich"] == pe_expect.rich(pe, data)
    auth = r["pe_authenticode"]
    assert {k: auth[k] for k in ("present", "dir_offset", "dir_size", "dir_in_file")} == \
        pe_expect.authenticode_directory(pe, len(data))
    assert (auth["signatures"], auth["certificates"], auth["signers"]) == (0, 0, 0)  # none parses as PKCS#7
    ov, expected_ov = r["pe_overlay"], pe_expect.overlay(pe, data)
    assert {**ov, "entropy": 0} == {**expected_ov, "entropy": 0}
    assert ov["entropy"] == pytest.approx(expected_ov["entropy"], abs=1e-12)
    dotnet = r["pe_dotnet"]
    expected_dotnet = _expected_dotnet(data)
    assert {k: dotnet[k] for k in expected_dotnet if k != "streams"} == \
        {k: v for k, v in expected_dotnet.items() if k != "streams"}
    assert [s["name"] for s in dotnet["streams"]] == expected_dotnet["streams"]
    assert general_for("pe")(p) == {
        **pe_expect.general(pe), "exports": len(expected_exports["functions"]),
        "imports": sum(len(lib["functions"]) for lib in expected_imports["libraries"])}
    # a vector is zero exactly where its raw value holds nothing
    assert vectors["pe_header"].any() and vectors["pe_section"].any()
    assert vectors["pe_data_directories"].any() == any(d["size"] or d["virtual_address"]
                                                       for d in r["pe_data_directories"][:15])
    assert vectors["pe_imports"].any() == bool(r["pe_imports"]["libraries"])
    assert vectors["pe_exports"].any() == bool(r["pe_exports"]["functions"])
    assert vectors["pe_rich"].any() == r["pe_rich"]["present"]
    assert vectors["pe_overlay"].any() == r["pe_overlay"]["present"]
    assert vectors["pe_authenticode"].any() == auth["present"]
    assert vectors["pe_dotnet"].any() == dotnet["present"]


def test_every_fixture_exercises_every_group():
    """Across the fixtures, each group sees a file where its raw value holds something, so a group
    that returned zeros or empty values would fail test_every_group_on_every_fixture."""
    seen = dict.fromkeys((g.name for g in PE_GROUPS), False)
    for data in EVERY.values():
        try:
            p = parse(data)
        except ParseError:
            continue
        for g in PE_GROUPS:
            seen[g.name] |= bool(g.vector(g.compute(p)).any())
    assert all(seen.values()), seen


@pytest.mark.parametrize("name", MUST_FAIL)
def test_hopeless_files_raise_parse_error(name):
    with pytest.raises(ParseError):
        parse(FIXTURES[name])


def test_memoryview_input_parses_like_bytes():
    data = FIXTURES["pe32plus_minimal"]
    assert raws(data) == {g.name: g.compute(parse(memoryview(data))) for g in PE_GROUPS}


# ---------------------------------------------------------------------------------------------
# Exact values on the crafted files


def test_pe32plus_header_sections_general():
    data = FIXTURES["pe32plus_minimal"]
    r = raws(data)
    coff, opt = r["pe_header"]["coff"], r["pe_header"]["optional"]
    assert coff == {
        "timestamp": fx.TIMESTAMP,
        "machine": "AMD64",
        "characteristics": ["EXECUTABLE_IMAGE", "LARGE_ADDRESS_AWARE", "DLL"],
        "machine_number": 0x8664, "characteristics_bits": 0x2022,
    }
    assert opt["magic"] == "PE32_PLUS" and opt["subsystem"] == "WINDOWS_GUI"
    assert opt["dll_characteristics"] == ["HIGH_ENTROPY_VA", "DYNAMIC_BASE", "NX_COMPAT"]
    assert (opt["major_linker_version"], opt["minor_linker_version"]) == (14, 29)
    assert (opt["major_image_version"], opt["minor_image_version"]) == (1, 2)
    assert (
        opt["sizeof_headers"] == 0x400 and opt["sizeof_code"] == 0x200 and opt["sizeof_heap_commit"] == 0x1000
    )
    vec = REGISTRY["pe_header"].vector(r["pe_header"])
    assert vec[0] == np.float32(fx.TIMESTAMP)
    assert np.array_equal(vec[1:11], hash_tokens(["AMD64"], 10))
    assert list(vec[51:]) == [1, 2, 14, 29, 6, 0, 6, 0, 0x200, 0x400, 0x1000]

    sec = r["pe_section"]
    assert sec["entry"] == ".text" and not sec["truncated"]
    assert [s["name"] for s in sec["sections"]] == [".text", ".rdata", ".data"]
    assert [s["size"] for s in sec["sections"]] == [0x200, 0x200, 0x200]
    assert sec["sections"][2]["vsize"] == 32
    assert sec["sections"][0]["props"] == ["CNT_CODE", "MEM_EXECUTE", "MEM_READ"]
    # LIEF (EMBER's source) takes a section's entropy over its content cut at the virtual size:
    # .data's 32 bytes are 01 02 03 04 repeated (2 bits); .text is c3 + 15 x cc
    assert sec["sections"][2]["entropy"] == pytest.approx(2.0)
    assert sec["sections"][0]["entropy"] == pytest.approx(
        -(1 / 16) * math.log2(1 / 16) - (15 / 16) * math.log2(15 / 16)
    )
    svec = REGISTRY["pe_section"].vector(sec)
    assert list(svec[:5]) == [3, 0, 0, 1, 1]
    assert np.allclose(svec[5:55], hash_weighted([(s["name"], s["size"]) for s in sec["sections"]], 50))
    assert np.array_equal(svec[205:255], hash_tokens(["CNT_CODE", "MEM_EXECUTE", "MEM_READ"], 50))

    gen = general_for("pe")(parse(data))
    assert gen == {
        "vsize": 0x4000,
        "has_debug": 0,
        "exports": 2,
        "imports": 6,
        "has_relocations": 0,
        "has_resources": 0,
        "has_signature": 0,
        "has_tls": 0,
        "symbols": 0,
    }


def test_pe32plus_imports_exports_imphash():
    data = FIXTURES["pe32plus_minimal"]
    r = raws(data)
    imp = r["pe_imports"]
    assert imp["libraries"] == [
        {"name": "KERNEL32.dll", "functions": ["GetProcAddress", "LoadLibraryA", "ExitProcess"],
         "is_ordinal": [False] * 3},
        {"name": "WS2_32.dll", "functions": ["ord23", "ord3"], "is_ordinal": [True, True]},
        {"name": "user32.dll", "functions": ["MessageBoxA"], "is_ordinal": [False]},
    ]
    by_hand = (
        "kernel32.getprocaddress,kernel32.loadlibrarya,kernel32.exitprocess,"
        "ws2_32.socket,ws2_32.closesocket,user32.messageboxa"
    )
    assert imp["imphash"] == hashlib.md5(by_hand.encode()).hexdigest()
    assert imp["imphash"] == pefile.PE(data=data).get_imphash()
    vec = REGISTRY["pe_imports"].vector(imp)
    assert np.array_equal(vec[:256], hash_tokens(["kernel32.dll", "user32.dll", "ws2_32.dll"], 256))
    assert np.array_equal(
        vec[256:],
        hash_tokens(
            [
                "kernel32.dll:GetProcAddress",
                "kernel32.dll:LoadLibraryA",
                "kernel32.dll:ExitProcess",
                "ws2_32.dll:ord23",
                "ws2_32.dll:ord3",
                "user32.dll:MessageBoxA",
            ],
            1024,
        ),
    )

    assert r["pe_exports"] == {"functions": sorted(fx.X64_EXPORTS), "truncated": False}
    assert np.array_equal(REGISTRY["pe_exports"].vector(r["pe_exports"]), hash_tokens(fx.X64_EXPORTS, 128))

    dirs = r["pe_data_directories"]
    assert [d["name"] for d in dirs][:15] == [
        n.replace(".size", "") for n in REGISTRY["pe_data_directories"].dim_names[::2]
    ]
    pe = pefile.PE(data=data, fast_load=True)
    assert [(d["virtual_address"], d["size"]) for d in dirs] == [
        (d.VirtualAddress, d.Size) for d in pe.OPTIONAL_HEADER.DATA_DIRECTORY
    ]
    assert dirs[0]["size"] > 0 and dirs[1]["size"] == 80
    dvec = REGISTRY["pe_data_directories"].vector(dirs)
    assert (dvec[0], dvec[1], dvec[2], dvec[3]) == (
        dirs[0]["size"],
        dirs[0]["virtual_address"],
        80,
        dirs[1]["virtual_address"],
    )


def test_pe32plus_rich_and_overlay():
    data = FIXTURES["pe32plus_minimal"]
    r = raws(data)
    rich = r["pe_rich"]
    assert rich["present"] and rich["offset"] == 0x80 and rich["checksum_valid"]
    assert [(e["product_id"], e["build_id"], e["count"]) for e in rich["entries"]] == fx.RICH_ENTRIES
    pr = pefile.PE(data=data).parse_rich_header()
    assert rich["key"] == int.from_bytes(pr["key"], "little")
    rvec = REGISTRY["pe_rich"].vector(rich)
    assert list(rvec[:5]) == pytest.approx([1, 3, np.float32(rich["key"]), 1, math.log1p(16)])

    ov = r["pe_overlay"]
    assert ov["offset"] == len(data) - len(fx.OVERLAY) == pefile.PE(data=data).get_overlay_data_start_offset()
    assert ov["size"] == len(fx.OVERLAY) == 512 and ov["file_size"] == len(data)
    counts = Counter(fx.OVERLAY).values()
    assert ov["entropy"] == pytest.approx(-sum(c / 512 * math.log2(c / 512) for c in counts))
    assert REGISTRY["pe_overlay"].vector(ov)[3] == pytest.approx(512 / len(data))
    assert r["pe_authenticode"]["present"] is False and r["pe_authenticode"]["signatures"] == 0
    assert r["pe_dotnet"]["present"] is False


def test_pe32_i386_ordinal_import_and_no_overlay():
    data = FIXTURES["pe32_minimal"]
    r = raws(data)
    assert r["pe_header"]["coff"]["machine"] == "I386" and r["pe_header"]["optional"]["magic"] == "PE32"
    assert r["pe_header"]["coff"]["characteristics"] == ["EXECUTABLE_IMAGE", "CHARA_32BIT_MACHINE"]
    assert r["pe_imports"]["libraries"][1] == {"name": "OLEAUT32.dll", "functions": ["ord2"], "is_ordinal": [True]}
    by_hand = "kernel32.exitprocess,kernel32.getmodulehandlew,oleaut32.sysallocstring,msvcrt.printf"
    assert r["pe_imports"]["imphash"] == hashlib.md5(by_hand.encode()).hexdigest()
    assert r["pe_imports"]["imphash"] == pefile.PE(data=data).get_imphash()
    assert r["pe_overlay"] == {
        "present": False,
        "offset": None,
        "size": 0,
        "file_size": len(data),
        "entropy": 0.0,
    }
    assert pefile.PE(data=data).get_overlay_data_start_offset() is None
    assert [(e["product_id"], e["build_id"], e["count"]) for e in r["pe_rich"]["entries"]] == fx.RICH_ENTRIES[
        :2
    ]


def test_arm64_minimal():
    r = raws(FIXTURES["pe_arm64_minimal"])
    assert r["pe_header"]["coff"]["machine"] == "ARM64"
    assert r["pe_imports"] == {"libraries": [], "imphash": "", "truncated": False}
    assert pefile.PE(data=FIXTURES["pe_arm64_minimal"]).get_imphash() == ""
    assert r["pe_rich"]["present"] is False and r["pe_exports"]["functions"] == []
    assert not REGISTRY["pe_imports"].vector(r["pe_imports"]).any()


def test_dotnet_minimal_exact():
    r = raws(FIXTURES["dotnet_minimal"])
    d = r["pe_dotnet"]
    assert d["present"] and d["problem"] is None
    assert (d["cb"], d["runtime_major"], d["runtime_minor"]) == (72, *fx.DOTNET_RUNTIME)
    assert d["flags"] == fx.DOTNET_FLAGS and d["entry_point_token"] == fx.DOTNET_ENTRY_TOKEN
    assert d["il_only"] and d["prefers_32bit"] and not d["requires_32bit"] and not d["strong_name_signed"]
    assert d["metadata_version"] == fx.DOTNET_VERSION and (d["metadata_major"], d["metadata_minor"]) == (1, 1)
    assert [s["name"] for s in d["streams"]] == fx.DOTNET_STREAMS
    assert d["tables_valid"] == sum(1 << t for t in fx.DOTNET_ROWS) and d["tables_present"] == 7
    assert d["table_rows"] == {
        "module": 1,
        "type_ref": 5,
        "type_def": 3,
        "field": 0,
        "method_def": 7,
        "param": 0,
        "member_ref": 9,
        "assembly": 1,
        "assembly_ref": 2,
    }
    g = REGISTRY["pe_dotnet"]
    vec = dict(zip(g.dim_names, g.vector(d), strict=True))
    assert (
        vec["present"] == 1
        and vec["stream=#~"] == 1
        and vec["stream=#Strings"] == 1
        and vec["stream=#US"] == 0
    )
    assert vec["entry_point_table"] == 6 and vec["rows_method_def"] == 7 and vec["streams"] == 2
    mscoree = {"name": "mscoree.dll", "functions": ["_CorExeMain"], "is_ordinal": [False]}
    assert r["pe_imports"]["libraries"] == [mscoree]


def test_dotnet_fixture_metadata_layout_by_hand():
    """Independent of the group: read the stream table where the fixture's builder put it."""
    data = FIXTURES["dotnet_minimal"]
    root = data.find(b"BSJB")
    (vlen,) = struct.unpack_from("<I", data, root + 12)
    assert data[root + 16 : root + 16 + vlen].rstrip(b"\x00") == b"v4.0.30319"
    (n,) = struct.unpack_from("<H", data, root + 16 + vlen + 2)
    assert n == 2 and b"#~\x00\x00" in data and b"#Strings\x00" in data


def test_caps_truncate(monkeypatch):
    monkeypatch.setattr(pe_ember, "MAX_FUNCTIONS", 2)
    monkeypatch.setattr(pe_ember, "MAX_SECTIONS", 1)
    r = raws(FIXTURES["pe32plus_minimal"])
    assert (
        r["pe_imports"]["truncated"]
        and sum(len(lib["functions"]) for lib in r["pe_imports"]["libraries"]) == 2
    )
    assert r["pe_imports"]["imphash"] == pefile.PE(data=FIXTURES["pe32plus_minimal"]).get_imphash()
    assert r["pe_exports"]["truncated"] is False  # exactly 2 exports
    assert r["pe_section"]["truncated"] and len(r["pe_section"]["sections"]) == 1


# ---------------------------------------------------------------------------------------------
# Damaged files


def test_damaged_fixtures_values():
    # 65,535 sections: refused before LIEF builds them all (it would cost ~0.7 s on a 5 MB file)
    with pytest.raises(ParseError, match="NumberOfSections 65535 is absurd"):
        raws(FIXTURES["pe_absurd_sections"])
    r = raws(FIXTURES["pe_truncated"])
    assert (
        r["pe_overlay"]["offset"] == pefile.PE(data=FIXTURES["pe_truncated"]).get_overlay_data_start_offset()
    )


def _overlay_variant(*edits: tuple) -> bytes:
    """pe32plus_minimal (sections .text/.rdata/.data at RVA 0x1000/0x2000/0x3000, raw data at
    0x400/0x600/0x800, 0x200 bytes each; overlay 0xA00-0xC00) with (field, value...) edits."""
    base = FIXTURES["pe32plus_minimal"]
    opt = struct.unpack_from("<I", base, 0x3C)[0] + 24
    at = {"section_alignment": (opt + 32, "<I"), "debug_dir": (opt + 112 + 6 * 8, "<II")}
    for i in range(3):
        for field, off in (("vsize", 8), ("rva", 12), ("raw_size", 16), ("raw_ptr", 20)):
            at[f"{field}{i}"] = (opt + 240 + 40 * i + off, "<I")
    buf = bytearray(base)
    for field, *values in edits:
        where, fmt = at[field]
        struct.pack_into(fmt, buf, where, *values)
    return bytes(buf)


# Each case turns on one rule of the overlay start (docs/architecture.md, "PE rules that are not
# EMBER's"); the expected offset is worked out by hand, and pefile must agree
OVERLAY_CASES = {
    # a debug directory at RVA 0x3010 (.data, raw 0x800): offset 0x810, ends at 0x810 + 0x250
    "directory_ends_in_the_overlay": ([("debug_dir", 0x3010, 0x250)], 0xA60),
    # .data's raw pointer 0x810 is read from 0x800 (rounded down to 512): the directory still at 0x810
    "raw_pointer_rounded_down_to_512": ([("raw_ptr2", 0x810), ("debug_dir", 0x3010, 0x250)], 0xA60),
    # .data claims 64 KiB of raw data past the file's end: it maps its VirtualSize (0x20) only, so
    # RVA 0x3030 is in no section (and past the file: not located); .data's claim is ignored, .rdata ends the image
    "raw_size_past_eof_maps_the_virtual_size": ([("raw_size2", 0x10000), ("debug_dir", 0x3030, 0x250)], 0x800),
    # .rdata's VirtualSize 0x5000 would cover .data's RVAs: it is cut where .data starts
    "section_cut_where_the_next_starts": ([("vsize1", 0x5000), ("debug_dir", 0x3010, 0x250)], 0xA60),
    # SectionAlignment 0x200 (below the page): RVAs rounded to the FileAlignment; .data's raw pointer
    # equals its RVA (0x810) and is read there unrounded: RVA 0x820 -> 0x810 + (0x820 - 0x800)
    "low_alignment_reads_at_the_rva": ([("section_alignment", 0x200), ("rva0", 0x400), ("rva1", 0x600),
                                        ("rva2", 0x810), ("raw_ptr2", 0x810), ("debug_dir", 0x820, 0x250)], 0xA80),
    # an RVA in no section but inside the file is its own offset: 0x300 + 0x900 reaches the file's end
    "rva_in_the_headers_is_its_offset": ([("debug_dir", 0x300, 0x900)], None),
    "none": ([], 0xA00),
}


@pytest.mark.parametrize("case", sorted(OVERLAY_CASES))
def test_overlay_start_rules(case):
    edits, expected = OVERLAY_CASES[case]
    data = _overlay_variant(*edits)
    assert raws(data)["pe_overlay"]["offset"] == expected
    assert pe_expect.load(data).get_overlay_data_start_offset() == expected


def _mutants(seed: int, n: int) -> list[bytes]:
    rng = random.Random(seed)
    bases = [FIXTURES[k] for k in VALID]
    out = []
    for i in range(n):
        buf = bytearray(bases[i % len(bases)])
        kind = i % 3
        if kind == 0:  # bit flips, mostly in the headers
            for _ in range(rng.randrange(1, 16)):
                pos = rng.randrange(min(len(buf), 0x400)) if rng.random() < 0.8 else rng.randrange(len(buf))
                buf[pos] ^= 1 << rng.randrange(8)
        elif kind == 1:  # truncation
            del buf[rng.randrange(2, len(buf)) :]
        else:  # absurd 32-bit values over random header fields
            for _ in range(rng.randrange(1, 6)):
                pos = rng.randrange(0, min(len(buf), 0x400) - 4)
                struct.pack_into(
                    "<I", buf, pos, rng.choice([0xFFFFFFFF, 0x7FFFFFFF, 0x80000000, 0xFFFF, 1 << 20])
                )
        out.append(bytes(buf))
    return out


def test_mutants_parse_or_raise_parse_error_and_groups_never_fail():
    failures = []
    t0 = time.perf_counter()
    for i, data in enumerate(_mutants(20261123, 300)):
        try:
            p = parse(data)
        except ParseError:
            continue
        general_for("pe")(p)
        for g in PE_GROUPS:
            try:
                check_raw(g, g.compute(p))
            except Exception as exc:
                failures.append(f"mutant {i} {g.name}: {type(exc).__name__}: {exc}")
    assert not failures, failures[:5]
    assert time.perf_counter() - t0 < 60


def test_mutants_overlay_equals_pefile():
    """Bit flips, truncations and absurd header values: where both parse, the overlay start is pefile's."""
    compared = 0
    for i, data in enumerate(_mutants(20261123, 300)):
        try:
            p = parse(data)
            pe = pe_expect.load(data)
        except (ParseError, pefile.PEFormatError):
            continue
        compared += 1
        assert REGISTRY["pe_overlay"].compute(p)["offset"] == pe.get_overlay_data_start_offset(), f"mutant {i}"
    assert compared >= 250


# ---------------------------------------------------------------------------------------------
# Real PE files against pefile


@pytest.mark.parametrize("path", REAL, ids=lambda p: p.name)
def test_real_files_match_pefile(path):
    data = path.read_bytes()
    p = parse(data)
    r = {g.name: g.compute(p) for g in PE_GROUPS}
    for g in PE_GROUPS:
        check_raw(g, r[g.name])
    pe = pefile.PE(data=data)
    assert r["pe_imports"]["imphash"] == pe.get_imphash()
    assert r["pe_overlay"]["offset"] == pe.get_overlay_data_start_offset()
    pr = pe.parse_rich_header()
    if pr is None:
        assert not r["pe_rich"]["present"]
    else:
        vals = pr["values"]
        assert [
            ((e["product_id"] << 16) | e["build_id"], e["count"]) for e in r["pe_rich"]["entries"]
        ] == list(zip(vals[::2], vals[1::2], strict=True))
        assert r["pe_rich"]["key"] == int.from_bytes(pr["key"], "little")
    coff = r["pe_header"]["coff"]
    assert coff["timestamp"] == pe.FILE_HEADER.TimeDateStamp
    assert coff["machine"] == pe_tokens.MACHINES.get(pe.FILE_HEADER.Machine, f"0x{pe.FILE_HEADER.Machine:x}")
    assert r["pe_header"]["optional"]["sizeof_code"] == pe.OPTIONAL_HEADER.SizeOfCode
    secs = r["pe_section"]["sections"]
    assert [(s["size"], s["vsize"]) for s in secs] == [
        (s.SizeOfRawData, s.Misc_VirtualSize) for s in pe.sections
    ] or len(secs) != len(pe.sections)
    # binfeat's section entropy is LIEF's (EMBER's source) up to float rounding, over the same bytes
    assert [s["entropy"] for s in secs] == pytest.approx([s.entropy for s in p.binary.sections], abs=1e-12)
    assert [(d["virtual_address"], d["size"]) for d in r["pe_data_directories"]] == [
        (d.VirtualAddress, d.Size) for d in pe.OPTIONAL_HEADER.DATA_DIRECTORY
    ]
    libs = [
        (e.dll.decode(), [i.name.decode() if i.name else f"ord{i.ordinal}" for i in e.imports])
        for e in getattr(pe, "DIRECTORY_ENTRY_IMPORT", [])
    ]
    assert [(lib["name"], lib["functions"]) for lib in r["pe_imports"]["libraries"]] == libs
    exports = (
        [s.name.decode() for s in getattr(pe, "DIRECTORY_ENTRY_EXPORT", None).symbols if s.name]
        if hasattr(pe, "DIRECTORY_ENTRY_EXPORT")
        else []
    )
    mine = sorted(f for f in r["pe_exports"]["functions"] if f)
    if len(exports) < pefile.MAX_SYMBOL_EXPORT_COUNT:
        assert mine == sorted(exports)
    else:  # pefile stops reading exports at its cap
        assert set(exports) <= set(mine)
    gen = general_for("pe")(p)
    assert gen["imports"] == len(p.binary.imported_functions)
    assert gen["exports"] == len(p.binary.exported_functions)
    assert gen["has_signature"] == int(r["pe_authenticode"]["signatures"] > 0)


def test_real_launchers_are_msvc_with_valid_rich_checksum():
    launchers = [f for f in REAL if f.parent.name in ("setuptools", "distlib")]
    if not launchers:
        pytest.skip("no launcher exes in this environment")
    machines = set()
    for f in launchers:
        r = raws(f.read_bytes())
        assert r["pe_rich"]["present"] and r["pe_rich"]["checksum_valid"], f.name
        machines.add(r["pe_header"]["coff"]["machine"])
    assert machines == {"I386", "AMD64", "ARM64"}


def _win_certificates(data: bytes, off: int, size: int) -> int:
    """WIN_CERTIFICATE entries (dwLength, wRevision, wCertificateType=2 PKCS#7), 8-byte aligned."""
    n, p = 0, off
    while p + 8 <= min(off + size, len(data)):
        length, _, ctype = struct.unpack_from("<IHH", data, p)
        if length < 8:
            break
        n += ctype == 2
        p += (length + 7) & ~7
    return n


def test_real_signed_files_signature_count_matches_certificate_table():
    signed = [f for f in REAL if raws(f.read_bytes())["pe_authenticode"]["present"]]
    if not signed:
        pytest.skip(
            "no signed PE here (set BINFEAT_PE_DIRS, e.g. to a dir with shim-signed's shimx64.efi.signed)"
        )
    for f in signed:
        data = f.read_bytes()
        a = raws(data)["pe_authenticode"]
        assert a["dir_in_file"]
        assert a["signatures"] == _win_certificates(data, a["dir_offset"], a["dir_size"]), f.name
        assert a["signers"] >= a["signatures"] and len(a["signer_issuers"]) == min(a["signers"], 16)


def test_real_dotnet_files_match_dnfile():
    dnfile = pytest.importorskip("dnfile")
    dotnet = [f for f in REAL if raws(f.read_bytes())["pe_dotnet"]["present"]]
    if not dotnet:
        pytest.skip("no .NET assembly here (set BINFEAT_PE_DIRS)")
    tables = {
        "module": "Module",
        "type_ref": "TypeRef",
        "type_def": "TypeDef",
        "field": "Field",
        "method_def": "MethodDef",
        "param": "Param",
        "member_ref": "MemberRef",
        "assembly": "Assembly",
        "assembly_ref": "AssemblyRef",
    }
    for f in dotnet:
        data = f.read_bytes()
        d = raws(data)["pe_dotnet"]
        dn = dnfile.dnPE(data=data)
        c = dn.net.struct
        assert (d["runtime_major"], d["runtime_minor"], d["flags"], d["entry_point_token"]) == (
            c.MajorRuntimeVersion,
            c.MinorRuntimeVersion,
            c.Flags,
            c.EntryPointTokenOrRva,
        )
        assert (d["resources_size"], d["strong_name_size"]) == (c.ResourcesSize, c.StrongNameSignatureSize)
        assert d["metadata_version"] == dn.net.metadata.struct.Version.rstrip(b"\x00").decode()
        assert [s["name"] for s in d["streams"]] == [
            s.struct.Name.decode() for s in dn.net.metadata.streams_list
        ]
        md = dn.net.mdtables
        assert d["table_rows"] == {
            k: (getattr(md, v).num_rows if getattr(md, v, None) else 0) for k, v in tables.items()
        }
