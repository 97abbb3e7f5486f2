"""Schemes and group selection in the extractor: the vector is the selection's, in layout order;
rows and the schema's metadata say what they carry; byte-level groups alone start no parser."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

import extract
from extract import schemes
from extract.extractor import ExtractOptions, Extractor
from extract.groups import LAYOUT, REGISTRY
from extract.schemes import SchemeError

BYTES_ONLY = ("byte_histogram", "byte_entropy_histogram", "strings")


def _batch(fixture_files, names, options):
    return Extractor(options).extract_batch(pa.record_batch({"path": [str(fixture_files[n]) for n in names]}))


def test_layout_is_one_declared_list():
    assert tuple(REGISTRY.names()) == LAYOUT and len(LAYOUT) == len(set(LAYOUT))
    assert [r["group"] for r in extract.vector_layout()] == list(LAYOUT)


def test_byte_level_groups_alone_start_no_parser(fixture_files):
    names = ["pe32plus_minimal", "elf64_le_minimal", "macho_fat_minimal", "text"]
    ex = Extractor(ExtractOptions(groups=BYTES_ONLY))
    batch = ex.extract_batch(pa.record_batch({"path": [str(fixture_files[n]) for n in names]}))
    assert ex._worker is None  # never started
    assert batch.schema.names[-4:] == [*BYTES_ONLY, "vector"] and "general" not in batch.schema.names
    assert batch.column("status").to_pylist() == ["ok"] * 4 and batch.column("error").to_pylist() == [None] * 4
    assert set(batch.column("groups").to_pylist()) == {",".join(BYTES_ONLY)}
    assert batch.schema.field("vector").type == pa.list_(pa.float32(), 616)
    meta = schemes.read_metadata(batch.schema.metadata)
    assert meta["groups"] == list(BYTES_ONLY) and meta["scheme"] == "binfeat" and len(meta["dim_names"]) == 616
    full = _batch(fixture_files, names, ExtractOptions())
    starts = {r["group"]: r["offset"] for r in extract.vector_layout()}
    for mine, everything in zip(batch.column("vector").to_pylist(), full.column("vector").to_pylist(), strict=True):
        expected = [everything[starts[g]:starts[g] + REGISTRY[g].dims] for g in BYTES_ONLY]
        assert mine == [x for part in expected for x in part]
    for g in BYTES_ONLY:
        assert batch.column(g).to_pylist() == full.column(g).to_pylist()


def test_a_pe_selection_on_other_formats(fixture_files):
    groups = ("strings", "general", "pe_header", "pe_imports")
    batch = _batch(fixture_files, ["pe32_minimal", "elf64_le_minimal"], ExtractOptions(groups=groups))
    pe, elf = batch.to_pylist()
    assert pe["pe_header"]["coff"]["machine"] == "I386" and elf["pe_header"] is None
    dims = [REGISTRY[g].dims for g in groups]
    header_at = sum(dims[:2])
    assert not any(elf["vector"][header_at:])  # PE groups on an ELF file: zeros
    assert elf["general"]["vsize"] > 0  # the ELF parse ran for the general group


def test_bad_selections_say_what_to_choose():
    with pytest.raises(SchemeError, match=r"unknown feature group.*nope.*choose from byte_histogram"):
        ExtractOptions(groups=("strings", "nope"))
    with pytest.raises(SchemeError, match=r"ember2 needs the group.*pe_section"):
        ExtractOptions(scheme="ember2", groups=("byte_histogram", "byte_entropy_histogram", "strings", "general",
                                                "pe_header", "pe_imports", "pe_exports", "pe_data_directories"))
    with pytest.raises(SchemeError, match="unknown vector scheme 'ember3': choose from binfeat, ember2"):
        ExtractOptions(scheme="ember3")


def test_the_binfeat_scheme_is_each_groups_own_vector(fixture_files):
    rows = [extract.extract_file(str(fixture_files[n])) for n in ("pe32plus_minimal", "macho64_minimal", "empty")]
    scheme = schemes.get("binfeat")
    offset = 0
    for g in REGISTRY:
        for row in rows:
            part = row["vector"][offset:offset + g.dims]
            if row["format"] not in g.formats:
                assert not part.any(), g.name
            elif row[g.name] is None:
                assert np.isnan(part).all(), g.name
            else:
                assert part.tobytes() == g.vector(row[g.name]).tobytes(), g.name
        offset += g.dims
    assert offset == scheme.dims


def test_error_rows_follow_the_options_schema():
    from extract.schemes.ember2 import GROUPS

    options = ExtractOptions(scheme="ember2", groups=(*GROUPS, "pe_rich"))
    rows = extract.error_rows(["a", "b"], ["gone", "gone"], options)
    assert rows.schema.equals(extract.output_schema(options), check_metadata=True)
    assert rows.column("vector").null_count == 2 and rows.column("groups")[0].as_py().endswith("pe_rich")


def test_a_scheme_is_built_once_per_name_and_selection():
    """Options are made per call (a Spark task's extract_batch without options makes the default):
    the scheme they check is the one already built, not 6,163 dimension names named again."""
    assert schemes.get() is schemes.get()
    assert schemes.get("ember2") is schemes.get("ember2")
    assert schemes.get("binfeat", ["general", "strings"]) is schemes.get("binfeat", ("general", "strings"))
    assert schemes.get("binfeat", ["general"]) is not schemes.get()
    assert schemes.get("binfeat", ["general"]).groups == ("general",)
    with pytest.raises(SchemeError, match="no_such_group"):  # refused each time, never remembered
        schemes.get("binfeat", ["no_such_group"])
    with pytest.raises(SchemeError, match="no_such_group"):
        schemes.get("binfeat", ["no_such_group"])
