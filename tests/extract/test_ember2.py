"""The ember2 scheme: EMBER v2's published layout, each token rule on crafted PE files, the sample
corpus against an independent implementation (tests/extract/ember2_reference.py: pefile's parse and
scikit-learn's FeatureHasher), and golden vector digests of the corpus."""

from __future__ import annotations

import hashlib
import json
import struct
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
from sklearn.feature_extraction import FeatureHasher

import extract
from extract import schemes
from extract.schemes import RowBatch
from tests.extract import ember2_reference as ref
from tests.fixtures import all_fixtures
from tests.fixtures import pe_builder as fx

EMBER = extract.ExtractOptions(scheme="ember2")
GOLDEN = Path(__file__).with_name("golden_ember2.json")


def ember2(*blobs: bytes, options: extract.ExtractOptions = EMBER) -> list[np.ndarray]:
    paths = [f"mem{i}" for i in range(len(blobs))]
    batch = extract.extract_batch(pa.record_batch({"path": paths, "content": list(blobs)}), options)
    return [np.asarray(v, np.float32) for v in batch.column("vector").to_pylist()]


def block(vector: np.ndarray, name: str) -> np.ndarray:
    offset, length = ref.LAYOUT[name]
    return vector[offset:offset + length]


def hashed(n: int, tokens: list, kind: str = "string") -> np.ndarray:
    return FeatureHasher(n, input_type=kind).transform([tokens]).toarray()[0].astype(np.float32)


def same(a: np.ndarray, b: np.ndarray) -> bool:
    return a.shape == b.shape and bool(np.all((a == b) | (np.isnan(a) & np.isnan(b))))


# ---------------------------------------------------------------------------------------------
# the layout


def test_layout_is_embers_published_one():
    scheme = schemes.get("ember2")
    assert scheme.dims == ref.DIM == 2381
    assert [(b["block"], b["offset"], b["length"]) for b in scheme.layout()] == [
        (name, o, n) for name, (o, n) in ref.LAYOUT.items()
    ]
    names = scheme.names
    assert names[0] == "histogram__0x00" and names[616] == "general__size" and names[626] == "header__timestamp"
    assert names[688:693] == ["section__count", "section__zero_size", "section__empty_name", "section__rx",
                              "section__w"]
    assert names[943] == "imports__library_hash_0" and names[1199] == "imports__function_hash_0"
    assert names[2351:2353] == ["datadirectories__EXPORT_TABLE_size", "datadirectories__EXPORT_TABLE_virtual_address"]
    assert names[-1] == "datadirectories__CLR_RUNTIME_HEADER_virtual_address"


# ---------------------------------------------------------------------------------------------
# crafted files, one rule each

def _lfanew(data: bytes) -> int:
    return struct.unpack_from("<I", data, 0x3C)[0]


def patch(data: bytes, at: int, fmt: str, value: int) -> bytes:
    buf = bytearray(data)
    struct.pack_into(fmt, buf, at, value)
    return bytes(buf)


def opt(data: bytes) -> int:
    """File offset of the optional header."""
    return _lfanew(data) + 24


def raw_pointer(data: bytes, index: int) -> int:
    (size_opt,) = struct.unpack_from("<H", data, _lfanew(data) + 20)
    return struct.unpack_from("<I", data, opt(data) + size_opt + 40 * index + 20)[0]


def with_sections(*sections: fx.Section, plus: bool = False, entry: int = 0x1000, **kw) -> bytes:
    return fx.build_pe(machine=0x8664 if plus else 0x14C, plus=plus, sections=list(sections), entry_rva=entry, **kw)


TEXT = fx.Section(b".text", 0x1000, b"\xc3" * 16, fx.SCN_CODE)
DATA = fx.Section(b".data", 0x2000, b"\x01" * 16, fx.SCN_DATA)


def test_ordinal_imports_are_spelled_ordinal_n():
    data = fx.pe32_minimal()
    v = ember2(data)[0]
    assert same(v, ref.vector(data))
    libraries = ["kernel32.dll", "oleaut32.dll", "msvcrt.dll"]
    functions = ["kernel32.dll:ExitProcess", "kernel32.dll:GetModuleHandleW", "oleaut32.dll:ordinal2",
                 "msvcrt.dll:printf"]
    assert same(block(v, "imports"), np.concatenate([hashed(256, libraries), hashed(1024, functions)]))


def test_entry_section_is_lief09s_section_from_offset_of_the_entry_va():
    """ImageBase + AddressOfEntryPoint compared with raw file ranges: with ImageBase 0 and the entry
    point at .data's raw offset, the entry section is .data (LIEF 1.0's RVA rule would say .text)."""
    data = with_sections(TEXT, DATA)
    data = patch(data, opt(data) + 28, "<I", 0)  # ImageBase
    data = patch(data, opt(data) + 16, "<I", raw_pointer(data, 1) + 4)  # AddressOfEntryPoint
    v = ember2(data)[0]
    assert same(v, ref.vector(data))
    section = block(v, "section")
    assert same(section[155:205], hashed(50, list(".data")))  # the name, one token per character
    assert same(section[205:255], hashed(50, ["CNT_INITIALIZED_DATA", "MEM_READ", "MEM_WRITE"]))


def test_entry_falls_back_to_the_first_executable_section_then_to_nothing():
    data = with_sections(fx.Section(b".data", 0x1000, b"\x01" * 16, fx.SCN_DATA),
                         fx.Section(b".text", 0x2000, b"\xc3" * 16, fx.SCN_CODE), entry=0x2000)
    v = ember2(data)[0]
    assert same(v, ref.vector(data))
    assert same(block(v, "section")[155:205], hashed(50, list(".text")))
    none = with_sections(fx.Section(b".data", 0x1000, b"\x01" * 16, fx.SCN_DATA), entry=0x1000)
    w = ember2(none)[0]
    assert same(w, ref.vector(none))
    assert not block(w, "section")[155:255].any()  # entry "": no token at all


def test_section_characteristics_are_lief09s_list():
    """Alignment 16 (0x500000) tested value by value with &, and 0x20000 spelled MEM_16BIT."""
    chars = 0x60520020
    data = with_sections(fx.Section(b"code", 0x1000, b"\xc3" * 16, chars))
    v = ember2(data)[0]
    assert same(v, ref.vector(data))
    expected = ["CNT_CODE", "MEM_16BIT", "ALIGN_1BYTES", "ALIGN_4BYTES", "ALIGN_8BYTES", "ALIGN_16BYTES",
                "ALIGN_32BYTES", "ALIGN_64BYTES", "ALIGN_256BYTES", "ALIGN_1024BYTES", "ALIGN_2048BYTES",
                "ALIGN_4096BYTES", "ALIGN_8192BYTES", "MEM_EXECUTE", "MEM_READ"]
    section = block(v, "section")
    assert same(section[205:255], hashed(50, expected))
    assert section[3] == 1 and section[4] == 0  # one RX section, no W


@pytest.mark.parametrize(("machine", "token"), [(0x14C, "I386"), (0xAA64, "???"), (0x1D3, "???"), (0x13, "AM33"),
                                                 (0x166, "R4000"), (0x5064, "???")])
def test_machine_spellings(machine, token):
    base = with_sections(TEXT)
    data = patch(base, _lfanew(base) + 4, "<H", machine)
    v = ember2(data)[0]
    assert same(v, ref.vector(data))
    assert same(block(v, "header")[1:11], hashed(10, [token]))


def test_flags_subsystem_and_magic_spellings():
    data = with_sections(TEXT, plus=True, characteristics=0x0062, subsystem=6)
    data = patch(data, opt(data) + 70, "<H", 0x0163)  # DllCharacteristics: two reserved bits set
    v = ember2(data)[0]
    assert same(v, ref.vector(data))
    header = block(v, "header")
    assert same(header[11:21], hashed(10, ["EXECUTABLE_IMAGE", "LARGE_ADDRESS_AWARE"]))  # 0x40 has no name
    assert same(header[21:31], hashed(10, ["???"]))  # subsystem 6 is not one LIEF 0.9 registered
    assert same(header[31:41], hashed(10, ["HIGH_ENTROPY_VA", "DYNAMIC_BASE", "NX_COMPAT"]))
    assert same(header[41:51], hashed(10, ["PE32_PLUS"]))
    coff32 = block(ember2(fx.pe32_minimal())[0], "header")[11:21]
    assert same(coff32, hashed(10, ["EXECUTABLE_IMAGE", "CHARA_32BIT_MACHINE"]))


def test_fifteen_directory_slots_whatever_number_of_rva_and_sizes_says():
    data = with_sections(TEXT, dirs={12: (0x2000, 0x40), 13: (0x3000, 0x10)})
    data = patch(data, opt(data) + 92, "<I", 10)  # NumberOfRvaAndSizes: slots 10-15 not listed
    v, plain = ember2(data)[0], ember2(data, options=extract.ExtractOptions())[0]
    assert same(v, ref.vector(data))
    directories = block(v, "datadirectories")
    assert directories[24:28].tolist() == [0x40, 0x2000, 0x10, 0x3000]
    binfeat = extract.vector_layout()
    start = next(r["offset"] for r in binfeat if r["group"] == "pe_data_directories")
    assert not plain[start + 24:start + 28].any()  # binfeat's own group: only the listed slots


def test_named_exports_only():
    blob = fx._Blob(0x2000)
    exp = fx.add_exports(blob, "x.dll", ["Alpha", "Beta"], 0x1000, unnamed=1)
    data = with_sections(TEXT, fx.Section(b".rdata", 0x2000, bytes(blob.buf), fx.SCN_RDATA), dirs={0: exp},
                         characteristics=0x2102)
    row = extract.extract_file(_written(data))
    assert row["general"]["exports"] == 3 and row["pe_exports"]["functions"].count("") == 1
    v = ember2(data)[0]
    assert same(v, ref.vector(data))
    assert same(block(v, "exports"), hashed(128, ["Alpha", "Beta"]))
    assert block(v, "general")[3] == 2


def _written(data: bytes) -> bytes:
    import tempfile

    f = tempfile.NamedTemporaryFile(delete=False)
    f.write(data)
    f.close()
    return f.name.encode()


def test_what_lief09_does_not_parse_gets_embers_no_binary_values():
    """Another magic, another format, an empty file: EMBER's values for "no binary"."""
    rom = patch(with_sections(TEXT), opt(with_sections(TEXT)), "<H", 0x107)
    elf = all_fixtures()["elf64_le_minimal"]
    empty = b""
    for data, v in zip((rom, elf, empty), ember2(rom, elf, empty), strict=True):
        assert same(v, ref.vector(data))
        assert block(v, "general").tolist() == [len(data)] + [0.0] * 9
        header = block(v, "header")
        assert same(header[1:11], hashed(10, [""])) and same(header[41:51], hashed(10, [""]))
        assert not v[688:].any()
    assert np.isnan(block(ember2(empty)[0], "histogram")).all()  # EMBER divides 0 by 0


def test_skipped_structure_is_unknown_not_zero():
    data = fx.pe32plus_minimal()
    v = ember2(data, options=extract.ExtractOptions(scheme="ember2", max_structural_bytes=100))[0]
    assert block(v, "general")[0] == len(data) and np.isnan(block(v, "general")[1:]).all()
    assert np.isnan(v[626:]).all()
    assert same(v[:616], ref.vector(data)[:616])


def test_a_failed_group_is_nan_in_its_block_only():
    rows = [extract.extract_file(_written(fx.pe32plus_minimal()))]
    rows[0]["pe_imports"] = None
    scheme = schemes.get("ember2")
    matrix, valid, errors = scheme.vectorize(RowBatch.from_rows(rows, scheme.reads))
    assert valid.tolist() == [True] and errors == [[]]
    assert np.isnan(block(matrix[0], "imports")).all()
    assert not np.isnan(np.delete(matrix[0], np.arange(943, 2223))).any()


# ---------------------------------------------------------------------------------------------
# the sample corpus

# A bit-flipped file whose .text VirtualSize covers every later section: pefile cuts the section at
# the next one and finds 10 imports and 5 exports; LIEF (1.0 here, 0.9 in EMBER: both map the RVA
# into .text) finds none. Only the blocks that come from those tables differ.
PEFILE_NOT_LIEF = {
    "d8ba37847d06931da1eee8ec2aa2dc3ea8abb3467717b3f41d8a1c21dc78d800": {"general", "imports", "exports"},
}


@pytest.fixture(scope="module")
def corpus_rows(small_corpus):
    manifest = [json.loads(line) for line in (small_corpus / "manifest.jsonl").read_text().splitlines() if line]
    paths = [str(small_corpus / m["sha256"][:2] / m["sha256"]) for m in manifest]
    batch = extract.extract_batch(pa.record_batch({"path": paths}), EMBER)
    return batch.to_pylist()


def test_every_parseable_pe_of_the_corpus_equals_the_independent_implementation(corpus_rows):
    equal = {name: 0 for name in ref.LAYOUT}
    total = dict.fromkeys(ref.LAYOUT, 0)
    compared = refused = 0
    for row in corpus_rows:
        if row["format"] != "pe":
            continue
        data = Path(row["path"]).read_bytes()
        v, r = np.asarray(row["vector"], np.float32), ref.vector(data)
        if row["pe_header"] is None and ref.lief09_parses(data):
            # binfeat refuses a PE with more than 4,096 sections, which LIEF 0.9 would have read (the
            # difference docs/ember2.md lists): ember2 gives EMBER's values for an unparsed file
            refused += 1
            assert "NumberOfSections" in row["error"]
            assert block(v, "general").tolist() == [len(data)] + [0.0] * 9 and not v[688:].any()
            continue
        compared += 1
        for name in ref.LAYOUT:
            ok = same(block(v, name), block(r, name))
            equal[name] += ok
            total[name] += 1
            assert ok or name in PEFILE_NOT_LIEF.get(row["sha256"], ()), (row["sha256"], name)
    assert compared >= 110 and refused == 3
    print({name: f"{equal[name]}/{total[name]}" for name in ref.LAYOUT})


def corpus_digests(rows: list[dict]) -> dict[str, str]:
    return {r["sha256"]: hashlib.sha256(np.asarray(r["vector"], np.float32).tobytes()).hexdigest()
            for r in rows if r["vector"] is not None}


def test_golden_ember2_vectors_of_the_corpus(corpus_rows):
    golden = json.loads(GOLDEN.read_text())
    assert golden["scheme_version"] == schemes.get("ember2").version
    assert corpus_digests(corpus_rows) == golden["vectors"], (
        "ember2 vectors moved: check why, bump the scheme's VERSION, then run `python -m tests.extract.test_ember2`")


if __name__ == "__main__":  # re-record the golden digests from the corpus in $BINFEAT_CORPUS
    from tests.conftest import corpus_dir

    root = corpus_dir()
    manifest = [json.loads(line) for line in (root / "manifest.jsonl").read_text().splitlines() if line]
    batch = extract.extract_batch(pa.record_batch({"path": [str(root / m["sha256"][:2] / m["sha256"])
                                                            for m in manifest]}), EMBER)
    doc = {"scheme_version": schemes.get("ember2").version, "vectors": corpus_digests(batch.to_pylist())}
    GOLDEN.write_text(json.dumps(doc, indent=1, sort_keys=True) + "\n", encoding="utf-8")
