"""The store's types: every contract value is held exactly, extremes included, and evolution is by name."""

from __future__ import annotations

import hashlib
import json

import pyarrow as pa
import pytest

from jobs.corpus.schema import (
    SchemaEvolutionError,
    check_evolution,
    conform,
    features_schema,
    stored_type,
    vector_properties,
)
from tests.jobs.corpus_support import contract, open_store, rows, sha, synthetic_night


def test_the_store_keeps_the_contracts_types_but_the_vectors_fixed_size():
    schema = features_schema(contract())
    assert schema.names == [*contract().names, "ingest_date", "run_id"]
    for f in contract():
        if f.name == "vector":
            assert schema.field(f.name).type == pa.list_(pa.field("element", pa.float32()))
        else:
            assert schema.field(f.name).type == f.type, f.name
    assert stored_type("vector", pa.list_(pa.float32(), 4)) == pa.list_(pa.float32())
    assert stored_type("other", pa.list_(pa.float32(), 4)) == pa.list_(pa.float32(), 4)  # refused later


@pytest.mark.parametrize(("column", "message"), [
    (pa.field("probe", pa.uint32()), "uint32 at probe: declare int64"),
    (pa.field("probe", pa.struct([("n", pa.int16())])), r"int16 at probe\.n: declare int32"),
    (pa.field("probe", pa.list_(pa.int64(), 3)), "declare pa.list_"),
])
def test_a_contract_with_types_iceberg_would_convert_is_refused(column, message):
    with pytest.raises(SchemaEvolutionError, match=message) as err:
        features_schema(contract().append(column))
    assert "\n" not in str(err.value)


# pyiceberg 0.12 reads these back as their large variants: same values, another Arrow spelling.
_LARGE = {pa.string(): pa.large_string(), pa.binary(): pa.large_binary()}


def _as_pyiceberg_reads(t: pa.DataType) -> pa.DataType:
    if t in _LARGE:
        return _LARGE[t]
    if pa.types.is_struct(t):
        return pa.struct([pa.field(f.name, _as_pyiceberg_reads(f.type)) for f in t])
    if pa.types.is_list(t) or pa.types.is_large_list(t):
        return pa.large_list(pa.field("element", _as_pyiceberg_reads(t.value_type)))
    if pa.types.is_map(t):
        return pa.map_(_as_pyiceberg_reads(t.key_type), _as_pyiceberg_reads(t.item_type))
    return t


@pytest.fixture(scope="module")
def catalog(tmp_path_factory):
    from pyiceberg.catalog.sql import SqlCatalog

    root = tmp_path_factory.mktemp("types")
    cat = SqlCatalog("types", uri=f"sqlite:///{root}/catalog.db", warehouse=f"file://{root}/warehouse")
    cat.create_namespace("t")
    return cat


@pytest.mark.parametrize("t", [
    pa.bool_(), pa.int8(), pa.int16(), pa.int32(), pa.int64(), pa.uint8(), pa.uint16(), pa.uint32(), pa.uint64(),
    pa.float16(), pa.float32(), pa.float64(), pa.decimal128(20, 0), pa.decimal128(38, 3), pa.string(),
    pa.large_string(), pa.binary(), pa.binary(8), pa.date32(), pa.timestamp("us"), pa.timestamp("ms"),
    pa.timestamp("us", tz="UTC"), pa.list_(pa.int32()), pa.list_(pa.int32(), 2), pa.large_list(pa.int64()),
    pa.map_(pa.string(), pa.int64()), pa.struct([("a", pa.int32()), ("b", pa.list_(pa.uint16()))]),
    pa.dictionary(pa.int32(), pa.string()), pa.duration("us"),
])
def test_the_registrys_rule_agrees_with_pyicebergs_own_conversion(catalog, t):
    """A type passes extract.raw_types.inexact exactly when a pyiceberg table created with it reads
    it back as itself (up to pyiceberg's large spellings): pyiceberg is the oracle, not binfeat's rule.
    The one intended difference: the large variants are held exactly but refused (one spelling per
    type, so that extract's schema and the store's compare equal)."""
    from extract.raw_types import inexact

    name = f"c{abs(hash(str(t)))}"
    try:
        table = catalog.create_table(("t", name), schema=pa.schema([pa.field("c", t)]))
        kept = table.schema().as_arrow().field("c").type == _as_pyiceberg_reads(t)
    except Exception:  # pyiceberg refuses the type: certainly not held exactly
        kept = False
    if t in (pa.large_string(), pa.large_binary(), pa.large_list(pa.int64())):
        assert kept and inexact(t), t
    else:
        assert (inexact(t) == []) == kept, (t, inexact(t))


def test_extremes_round_trip_through_the_table(tmp_path):
    """ELF header values at their types' maxima, written as the executors write them and read back."""
    tables = open_store(tmp_path / "store")
    header = {f.name: None for f in contract().field("elf_header").type}
    header.update(ei_class=255, machine=65535, version=2**32 - 1, entry=2**64 - 1, phoff=2**63, flags=2**31)
    src = pa.array([header], contract().field("elf_header").type)  # the contract's own types
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
