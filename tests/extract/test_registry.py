"""Feature group declarations are validated when declared, and the registry drives layout and version."""

from __future__ import annotations

import re

import numpy as np
import pyarrow as pa
import pytest

from extract.groups import REGISTRY
from extract.registry import DeclarationError, FeatureGroup, Registry, declare, ml_safe


def _group(**changes):
    spec = dict(name="demo", version=1, formats=frozenset({"pe"}), dims=2, raw_type=pa.int64(), stage="bytes",
                compute=lambda ctx: 1, vectorize=lambda raw: np.zeros(2), dim_names=("a", "b"))
    spec.update(changes)
    return FeatureGroup(**spec)


@pytest.mark.parametrize(("changes", "message"), [
    ({"name": "Bad-Name"}, "must be snake_case"),
    ({"name": "sha256"}, "reserved"),
    ({"version": 0}, "version must be an int >= 1"),
    ({"formats": frozenset({"apk"})}, "subset of"),
    ({"stage": "later"}, "stage must be one of"),
    ({"dim_names": ("a",)}, "1 dim_names for 2 dims"),
    ({"dim_names": ("a", "a")}, "dim_names must be unique"),
    ({"raw_type": int}, "raw_type must be a pyarrow DataType"),
])
def test_bad_declarations_fail_when_declared(changes, message):
    with pytest.raises(DeclarationError, match=message):
        _group(**changes)


def test_duplicate_names_fail():
    reg = Registry()
    reg.register(_group())
    with pytest.raises(DeclarationError, match="declared twice"):
        reg.register(_group())


def test_declare_decorator_and_vector_check():
    reg = Registry()

    @declare(reg, name="two", version=1, formats=["elf"], raw_type=pa.int64(), stage="structure",
             dim_names=["x", "y"], vectorize=lambda raw: np.zeros(3))
    def two(parsed):
        """Two numbers."""

    assert reg["two"] is two and two.doc == "Two numbers."
    with pytest.raises(ValueError, match="vectorised to shape"):
        two.vector(0)


def test_the_real_registry():
    names = REGISTRY.names()
    assert names[:5] == ["byte_histogram", "byte_entropy_histogram", "strings", "hashes", "general"]
    ember_dims = {"byte_histogram": 256, "byte_entropy_histogram": 256, "strings": 104, "general": 10,
                  "pe_header": 62, "pe_section": 255, "pe_imports": 1280, "pe_exports": 128,
                  "pe_data_directories": 30}
    assert {n: REGISTRY[n].dims for n in ember_dims} == ember_dims  # EMBER v2: 2381 in all
    assert sum(ember_dims.values()) == 2381
    for fmt in ("pe", "elf", "macho"):
        assert any(g.formats == frozenset({fmt}) for g in REGISTRY), fmt


def test_feature_version_follows_declarations():
    from extract import version

    before = version.feature_version()
    version.feature_version.cache_clear()
    object.__setattr__(REGISTRY["strings"], "version", 2)
    try:
        assert version.feature_version() != before
    finally:
        object.__setattr__(REGISTRY["strings"], "version", 1)
        version.feature_version.cache_clear()
    assert version.feature_version() == before


def test_declaring_the_groups_imports_no_parser():
    """Every Spark executor imports the groups; LIEF (~0.6 CPU-s) belongs to the parser worker only."""
    import subprocess
    import sys

    code = "import sys, extract, extract.groups, extract.extractor; assert 'lief' not in sys.modules, 'lief'"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-500:]


@pytest.mark.parametrize(("label", "group", "safe"), [
    ("byte_histogram[0x1f]", "byte_histogram", "0x1f"),
    ("strings.numstrings", "strings", "numstrings"),
    ("class=ELFCLASS64", "elf_header", "class_ELFCLASS64"),
    ("interpreter=/lib64/ld-linux-x86-64.so.2", "elf_interpreter", "interpreter_lib64_ld_linux_x86_64_so_2"),
    ("stream=#~", "pe_dotnet", "stream_x23_x7e"),
    ("stream=#-", "pe_dotnet", "stream_x23"),
    ("caf\u00e9", "g", "caf_xe9"),
])
def test_ml_safe_names(label, group, safe):
    assert ml_safe(label, group) == safe


def test_names_that_clash_as_ml_names_fail_when_declared():
    with pytest.raises(DeclarationError, match="unique and non-empty as ML-safe names"):
        _group(dim_names=("a.b", "a_b"))
    with pytest.raises(DeclarationError, match="no '__'"):
        _group(name="pe__x")


def test_the_layout_must_name_every_group_once():
    reg = Registry()
    reg.register(_group(name="one"))
    reg.register(_group(name="two"))
    reg.arrange(["two", "one"])
    assert reg.names() == ["two", "one"]
    for bad in (["two"], ["two", "one", "three"], ["two", "one", "one"]):
        with pytest.raises(DeclarationError, match="must list every declared group once"):
            reg.arrange(bad)
    assert all(re.fullmatch(r"[A-Za-z0-9_]+", n) for g in REGISTRY for n in g.ml_names)


@pytest.mark.parametrize(("raw_type", "message"), [
    (pa.uint8(), r"raw_type uint8: declare int32 \(Iceberg has no unsigned integers\)"),
    (pa.uint16(), r"raw_type uint16: declare int32"),
    (pa.uint32(), r"raw_type uint32: declare int64 .*2\*\*31"),
    (pa.uint64(), r"raw_type uint64: declare decimal128\(20, 0\)"),
    (pa.int8(), r"raw_type int8: declare int32 \(Iceberg has no 8-bit integers\)"),
    (pa.int16(), r"raw_type int16: declare int32"),
    (pa.float16(), r"raw_type halffloat: declare float32"),
    (pa.large_string(), r"declare string"),
    (pa.large_list(pa.int64()), r"declare pa.list_"),
    (pa.list_(pa.float32(), 4), r"declare pa.list_"),
    (pa.dictionary(pa.int32(), pa.string()), r"Iceberg has no dictionary type"),
    (pa.timestamp("ns"), r"microseconds"),
    (pa.duration("s"), r"Iceberg has no such type"),
    (pa.decimal256(40, 0), r"Iceberg has no such type"),
    (pa.struct([("ok", pa.int64()), ("items", pa.list_(pa.struct([("addr", pa.uint64())])))]),
     r"raw_type uint64 at items\[\]\.addr: declare decimal128\(20, 0\)"),
    (pa.map_(pa.string(), pa.uint32()), r"uint32 at \{value\}"),
])
def test_raw_types_iceberg_cannot_hold_exactly_fail_when_declared(raw_type, message):
    with pytest.raises(DeclarationError, match=message):
        _group(raw_type=raw_type)


@pytest.mark.parametrize("raw_type", [
    pa.bool_(), pa.int32(), pa.int64(), pa.float32(), pa.float64(), pa.string(), pa.binary(), pa.binary(16),
    pa.date32(), pa.timestamp("us"), pa.timestamp("us", tz="UTC"), pa.decimal128(20, 0), pa.decimal128(38, 4),
    pa.list_(pa.struct([("a", pa.int32()), ("b", pa.list_(pa.string()))])), pa.map_(pa.string(), pa.int64()),
])
def test_raw_types_iceberg_holds_exactly_are_accepted(raw_type):
    assert _group(raw_type=raw_type).raw_type == raw_type


def test_the_contract_declares_only_types_iceberg_holds_exactly():
    """Every column of extract's output but ``vector`` (a fixed-size list, which the store keeps as a
    list with its width in the table's properties)."""
    import extract
    from extract.raw_types import inexact

    for scheme in ("binfeat", "ember2"):
        schema = extract.output_schema(extract.ExtractOptions(scheme=scheme))
        assert {f.name: inexact(f.type) for f in schema if inexact(f.type)} == {"vector": [
            f"{schema.field('vector').type}: declare pa.list_(...) (Iceberg has one list type, without a fixed size)"]}
