"""The store's types: every contract value is held exactly, extremes included, and evolution is by name."""

from __future__ import annotations

import decimal
import hashlib
import json

import pyarrow as pa
import pytest

from jobs.corpus.schema import (
    SchemaEvolutionError,
    check_evolution,
    conform,
    features_schema,
    iceberg_exact_type,
    vector_properties,
)
from tests.jobs.corpus_support import contract, open_store, rows, sha, synthetic_night


def test_mapping_of_each_type():
    assert iceberg_exact_type(pa.uint8()) == pa.int32()
    assert iceberg_exact_type(pa.int16()) == pa.int32()
    assert iceberg_exact_type(pa.uint32()) == pa.int64()
    assert iceberg_exact_type(pa.uint64()) == pa.decimal128(20, 0)
    assert iceberg_exact_type(pa.list_(pa.field("x", pa.float32()), 4)) == pa.list_(pa.float32())
    nested = pa.struct([("a", pa.uint16()), ("b", pa.list_(pa.struct([("c", pa.uint64())])))])
    assert iceberg_exact_type(nested) == pa.struct([("a", pa.int32()), ("b", pa.list_(pa.struct([
        ("c", pa.decimal128(20, 0))])))])  # fmt: skip
    for t in (pa.int32(), pa.int64(), pa.float64(), pa.string(), pa.bool_(), pa.date32()):
        assert iceberg_exact_type(t) == t


def test_extremes_survive_the_cast_exactly():
    src = pa.table({
        "u8": pa.array([0, 255], pa.uint8()), "u16": pa.array([0, 65535], pa.uint16()),
        "u32": pa.array([0, 2**32 - 1], pa.uint32()), "u64": pa.array([0, 2**64 - 1], pa.uint64()),
        "i8": pa.array([-128, 127], pa.int8()),
    })  # fmt: skip
    out = conform(src, pa.schema([pa.field(f.name, iceberg_exact_type(f.type)) for f in src.schema]))
    assert out.to_pylist() == [
        {"u8": 0, "u16": 0, "u32": 0, "u64": decimal.Decimal(0), "i8": -128},
        {"u8": 255, "u16": 65535, "u32": 2**32 - 1, "u64": decimal.Decimal(2**64 - 1), "i8": 127},
    ]


def test_extremes_round_trip_through_the_table(tmp_path):
    """ELF header values at their types' maxima, written as the executors write them and read back."""
    tables = open_store(tmp_path / "store")
    header = {f.name: None for f in contract().field("elf_header").type}
    header.update(ei_class=255, machine=65535, version=2**32 - 1, entry=2**64 - 1, phoff=2**63, flags=2**31)
    src = pa.array([header], contract().field("elf_header").type)  # the contract's own uint types
    sample = sha("extreme")
    table = rows([sample], "v1", "2026-11-20")
    i = table.schema.get_field_index("elf_header")
    stored = conform(pa.table({"elf_header": src}), pa.schema([table.schema.field(i)])).column(0)
    table = table.set_column(i, table.schema.field(i), stored)
    from jobs.corpus.commit import publish_features
    from jobs.corpus.labels import apply_labels
    from jobs.corpus.read import read_as_of
    from tests.jobs.corpus_support import feed, write_files

    files = write_files(tables, table)
    labels = apply_labels(tables, "2026-11-20", feed(), run_id="t")
    publish_features(tables, date="2026-11-20", version="v1", run_id="t", schema=features_schema(contract()),
                     properties={}, files=files, new_keys={sample}, base_snapshot_id=None,
                     labels_snapshot_id=labels.snapshot_id, label_keys=pa.array([], pa.string()),
                     complete=True)  # fmt: skip
    got = read_as_of("2026-11-20", tables=tables, columns=["elf_header"]).column("elf_header").to_pylist()[0]
    assert {k: got[k] for k in ("ei_class", "machine", "version", "entry", "phoff", "flags")} == {
        "ei_class": 255, "machine": 65535, "version": 2**32 - 1, "entry": 2**64 - 1, "phoff": 2**63, "flags": 2**31}


def test_store_columns_cannot_clash_with_the_contract():
    with pytest.raises(SchemaEvolutionError, match="ingest_date"):
        features_schema(pa.schema([("sha256", pa.string()), ("feature_version", pa.string()),
                                   ("ingest_date", pa.string())]))  # fmt: skip


def test_vector_properties():
    layout = [{"group": "g1", "version": 2, "offset": 0, "length": 3, "dim_names": ["a", "b", "c"]},
              {"group": "g2", "version": 1, "offset": 3, "length": 2, "dim_names": ["d", "e"]}]  # fmt: skip
    props = vector_properties("9.x", layout)
    assert props["binfeat.vector.9.x.width"] == "5"
    assert json.loads(props["binfeat.vector.9.x.layout"]) == [["g1", 2, 0, 3], ["g2", 1, 3, 2]]
    assert props["binfeat.vector.9.x.dim-names-sha256"] == hashlib.sha256(b"a\nb\nc\nd\ne").hexdigest()


def test_incompatible_type_change_is_refused_before_extraction(tmp_path):
    tables = open_store(tmp_path / "store")
    synthetic_night(tables, "2026-11-20", [sha("a")])
    changed = pa.schema([pa.field(f.name, pa.int64()) if f.name == "elf_header" else f
                         for f in features_schema(contract())])  # fmt: skip
    with pytest.raises(SchemaEvolutionError, match="changed: elf_header") as err:
        check_evolution(tables.features, changed)
    assert "\n" not in str(err.value) and "--namespace" in str(err.value)
    added = features_schema(contract()).append(pa.field("new_group", pa.struct([("n", pa.int64())])))
    assert check_evolution(tables.features, added) == ["new_group"]
    tables.refresh()
    assert tables.features.schema().find_column_name(1) == "sha256"  # nothing committed by the check
    assert "new_group" not in tables.features.schema().as_arrow().names
