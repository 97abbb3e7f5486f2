"""PE groups: declarations, the imphash against pefile, and every group on every crafted fixture."""

from __future__ import annotations

import hashlib
import struct

import lief
import pefile
import pytest

import extract.groups  # noqa: F401  (declares every group)
from extract.parsed import ParseError, general_for
from extract.registry import REGISTRY
from tests.extract import pe_expect
from tests.extract.pe_support import (
    EMBER_DIMS,
    FIXTURES,
    MUST_FAIL,
    PE_GROUPS,
    VALID,
    check_raw,
    parse,
    raws,
)
from tests.fixtures import pe_builder as fx

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


