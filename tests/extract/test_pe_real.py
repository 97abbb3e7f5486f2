"""PE groups on real PE files against pefile, dnfile and the certificate table."""

from __future__ import annotations

import struct

import pefile
import pytest

import extract.groups  # noqa: F401  (declares every group)
from extract.groups import pe_tokens
from extract.parsed import general_for
from tests.extract.pe_support import (
    PE_GROUPS,
    REAL,
    check_raw,
    parse,
    raws,
)

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
