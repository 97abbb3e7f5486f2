"""PE groups: exact values on the crafted fixtures (from the builder's specification)."""

from __future__ import annotations

import hashlib
import math
import struct
from collections import Counter

import numpy as np
import pefile
import pytest

import extract.groups  # noqa: F401  (declares every group)
from extract.groups import pe_ember
from extract.hashing import hash_tokens, hash_weighted
from extract.parsed import general_for
from extract.registry import REGISTRY
from tests.extract.pe_support import (
    FIXTURES,
    parse,
    raws,
)
from tests.fixtures import pe_builder as fx

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


