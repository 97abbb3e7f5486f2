"""The tables' types: the extraction contract made Iceberg-exact, the labels, and their properties.

Iceberg has 32- and 64-bit signed integers only, and lists but no fixed-size lists. Each contract
type is stored as the narrowest Iceberg type that holds every one of its values exactly
(:func:`iceberg_exact_type`): 8/16-bit integers as int, uint32 as long, uint64 as decimal(20, 0)
(0 .. 2**64-1; a long would turn addresses of 2**63 and more negative). Once the contract
declares only such types the mapping is the identity and the two schemas are one.

A feature-version bump evolves the ``features`` schema by name (:func:`evolve_features`): new
columns are added, old rows are never rewritten (they read as null in the new columns).
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

import pyarrow as pa

# Columns the store adds to the contract's: the partition (the date a sample entered the corpus)
# and the run that wrote the row.
STORE_FIELDS = (pa.field("ingest_date", pa.date32()), pa.field("run_id", pa.string()))
PARTITION_COLUMN = "ingest_date"
ROW_GROUP_ROWS = 2048  # rows per Parquet row group in the store's files (~50 MB of vectors)
KEY_COLUMNS = ("sha256", "feature_version")

_EXACT: dict[pa.DataType, pa.DataType] = {
    pa.int8(): pa.int32(),
    pa.int16(): pa.int32(),
    pa.uint8(): pa.int32(),
    pa.uint16(): pa.int32(),
    pa.uint32(): pa.int64(),
    pa.uint64(): pa.decimal128(20, 0),
    pa.float16(): pa.float32(),
    pa.large_string(): pa.string(),
    pa.large_binary(): pa.binary(),
}

# Properties every binfeat table gets. Why each one:
# - commit.retry.num-retries=0: pyiceberg would retry a failed append blindly; binfeat re-checks
#   the anti-join against what the other writer committed before it retries (jobs.corpus.commit).
# - metrics: per-column bounds of ~300 nested columns would bloat every manifest; the store plans
#   by ingest_date (the partition), feature_version and run_id only, so only those keep bounds.
# - delete-after-commit: old metadata.json files are removed as commits go (the last 100 kept).
# - manifest merging keeps the manifest count bounded over a year of nightly appends.
_COMMON_PROPERTIES = {
    "format-version": "2",
    "commit.retry.num-retries": "0",
    "write.metadata.delete-after-commit.enabled": "true",
    "write.metadata.previous-versions-max": "100",
    "commit.manifest-merge.enabled": "true",
}
FEATURES_PROPERTIES = {
    **_COMMON_PROPERTIES,
    "write.metadata.metrics.default": "none",
    "write.metadata.metrics.column.ingest_date": "full",
    "write.metadata.metrics.column.feature_version": "full",
    "write.metadata.metrics.column.run_id": "full",
}
LABELS_PROPERTIES = dict(_COMMON_PROPERTIES)


class SchemaEvolutionError(ValueError):
    """The contract changed a column's type in a way Iceberg cannot evolve; one line why."""


def iceberg_exact_type(t: pa.DataType) -> pa.DataType:
    """The Arrow type, held exactly by an Iceberg type, that stores values of ``t``."""
    if t in _EXACT:
        return _EXACT[t]
    if pa.types.is_dictionary(t):
        return iceberg_exact_type(t.value_type)
    if pa.types.is_struct(t):
        return pa.struct([f.with_type(iceberg_exact_type(f.type)).with_nullable(True) for f in t])
    if pa.types.is_list(t) or pa.types.is_large_list(t) or pa.types.is_fixed_size_list(t):
        return pa.list_(t.value_field.with_type(iceberg_exact_type(t.value_type)).with_nullable(True))
    if pa.types.is_map(t):
        return pa.map_(iceberg_exact_type(t.key_type), iceberg_exact_type(t.item_type))
    return t


def differing_columns(contract: pa.Schema) -> list[str]:
    """Top-level contract columns whose type the store cannot hold as declared (mapped instead)."""
    return [f.name for f in contract if iceberg_exact_type(f.type) != f.type]


def features_schema(contract: pa.Schema) -> pa.Schema:
    """The ``features`` table's Arrow schema: the contract, Iceberg-exact and nullable, plus the store's columns."""
    missing = [c for c in KEY_COLUMNS if c not in contract.names]
    if missing:
        raise SchemaEvolutionError(f"the extraction contract lacks key column(s) {', '.join(missing)}")
    clash = [f.name for f in STORE_FIELDS if f.name in contract.names]
    if clash:
        raise SchemaEvolutionError(f"the extraction contract uses the store's column name(s) {', '.join(clash)}")
    fields = [pa.field(f.name, iceberg_exact_type(f.type)) for f in contract]
    return pa.schema([*fields, *STORE_FIELDS])


def labels_schema() -> pa.Schema:
    """One row per sha256: the latest known label (``updated_at`` is the date of the feed that set it)."""
    return pa.schema(
        [
            pa.field("sha256", pa.string(), nullable=False),
            pa.field("label", pa.string()),
            pa.field("family", pa.string()),
            pa.field("source", pa.string()),
            pa.field("first_seen", pa.string()),
            pa.field("updated_at", pa.date32()),
        ]
    )


def vector_properties(feature_version: str, layout: list[dict[str, Any]]) -> dict[str, str]:
    """Table properties describing the fixed-width vector of one feature version (stored as a list).

    ``layout`` is :func:`extract.vector_layout`'s list (offset, length, group, version, dim_names).
    The properties keep the groups' spans and a digest of the dimension names, not the names
    themselves (table properties must stay small: every metadata.json carries them).
    """
    spans = [[g["group"], g["version"], g["offset"], g["length"]] for g in layout]
    names = [n for g in layout for n in g.get("dim_names", [])]
    prefix = f"binfeat.vector.{feature_version}"
    return {
        f"{prefix}.width": str(sum(g["length"] for g in layout)),
        f"{prefix}.layout": json.dumps(spans, separators=(",", ":")),
        f"{prefix}.dim-names-sha256": hashlib.sha256("\n".join(names).encode()).hexdigest(),
    }


def evolve_features(tx, schema: pa.Schema) -> list[str]:
    """Stage, in transaction ``tx``, the columns of ``schema`` its table lacks (by name).

    Returns the added column names. Never rewrites a row: old files read as null in the new
    columns. A column whose type changed incompatibly (Iceberg promotes only int to long, float to
    double and widens decimals) is refused with one line naming it; :func:`check_evolution` runs
    the same check before a night extracts anything.
    """
    from pyiceberg.exceptions import ValidationError

    current = tx.table_metadata.schema().as_arrow()
    added = [n for n in schema.names if n not in current.names]
    changed = [
        n for n in schema.names if n in current.names and not _same_type(current.field(n).type, schema.field(n).type)
    ]
    if not added and not changed:
        return []
    try:
        with tx.update_schema() as update:
            update.union_by_name(schema)
    except (ValidationError, ValueError, TypeError) as exc:
        raise SchemaEvolutionError(
            f"cannot evolve the features table to the new contract (changed: {', '.join(changed) or 'none'}): "
            f"{' '.join(str(exc).split())[:300]}; Iceberg cannot change these types in place: "
            "write the new feature version to another --namespace"
        ) from None
    return added


def check_evolution(table, schema: pa.Schema) -> list[str]:
    """The columns a night would add; raises SchemaEvolutionError now, before any extraction."""
    return evolve_features(table.transaction(), schema)  # staged in a transaction never committed


def _same_type(stored: pa.DataType, wanted: pa.DataType) -> bool:
    """Equal up to what Iceberg cannot express (list field names, large variants)."""
    return _normalise(stored) == _normalise(wanted)


def _normalise(t: pa.DataType) -> pa.DataType:
    if pa.types.is_large_string(t):
        return pa.string()
    if pa.types.is_large_binary(t):
        return pa.binary()
    if pa.types.is_struct(t):
        return pa.struct([pa.field(f.name, _normalise(f.type)) for f in t])
    if pa.types.is_list(t) or pa.types.is_large_list(t):
        return pa.list_(_normalise(t.value_type))
    if pa.types.is_map(t):
        return pa.map_(_normalise(t.key_type), _normalise(t.item_type))
    return t


def conform(table: pa.Table | pa.RecordBatch, schema: pa.Schema) -> pa.Table:
    """``table`` with exactly ``schema``'s columns and types: missing columns null, casts exact.

    Used on both sides of the store: writing (contract types to Iceberg-exact ones; every cast
    widens, so none can fail or lose a value) and reading (pyiceberg's large types and list field
    names back to the store's Arrow types).
    """
    if isinstance(table, pa.RecordBatch):
        table = pa.Table.from_batches([table])
    cols = []
    for f in schema:
        if f.name in table.column_names:
            col = table.column(f.name)
            cols.append(col if col.type == f.type else col.cast(f.type, safe=True))
        else:
            cols.append(pa.nulls(table.num_rows, f.type))
    return pa.Table.from_arrays(cols, schema=schema)


def parquet_options(schema: pa.Schema) -> dict[str, Any]:
    """pyarrow writer options: snappy; no dictionary and no statistics for the ``vector`` list.

    Why: the vectors are most of the bytes and nobody filters on them; dictionary-encoding them
    and keeping their min/max statistics cost CPU for little size (the extraction job's choice).
    The other columns keep statistics: add_files reads the partition value (ingest_date) and the
    bounds of feature_version and run_id from them.
    """
    others = [n for n in schema.names if n != "vector"]
    return {"compression": "snappy", "use_dictionary": others, "write_statistics": others}
