"""The Arrow schemas the job produces: extract's contract, and its Spark-safe twin.

The job's own Parquet writer keeps the contract's exact types. A DataFrame keeps them too (the
contract declares only types Iceberg, and so Spark, holds: int32, int64, decimal(20, 0) for 64-bit
unsigned fields; see :mod:`extract.raw_types`), except that Spark has no fixed-size list (its
ArrayType has no length): the ``vector`` column travels as a plain list there (its length is in the
schema metadata, which the DataFrame does not keep).
"""

from __future__ import annotations

import pyarrow as pa


def spark_safe_type(t: pa.DataType) -> pa.DataType:
    """The Arrow type Spark can hold for ``t``: a fixed-size list becomes a list, nested types recurse."""
    if pa.types.is_fixed_size_list(t) or pa.types.is_list(t):
        return pa.list_(t.value_field.with_type(spark_safe_type(t.value_type)))
    if pa.types.is_struct(t):
        return pa.struct([f.with_type(spark_safe_type(f.type)) for f in t])
    if pa.types.is_large_list(t):
        return pa.large_list(t.value_field.with_type(spark_safe_type(t.value_type)))
    if pa.types.is_map(t):
        return pa.map_(spark_safe_type(t.key_type), spark_safe_type(t.item_type))
    return t


def contract_schema(with_label: bool, options=None) -> pa.Schema:
    """extract's output schema for ``options`` (exact types, the scheme's metadata), plus ``label``
    when labels are carried."""
    import extract

    schema = extract.output_schema(options)
    if with_label and "label" not in schema.names:
        schema = schema.append(pa.field("label", pa.string()))
    return schema


def output_arrow_schema(with_label: bool, options=None) -> pa.Schema:
    """:func:`contract_schema` with types Spark can carry (see :func:`spark_safe_type`)."""
    schema = contract_schema(with_label, options)
    return pa.schema([f.with_type(spark_safe_type(f.type)) for f in schema], metadata=schema.metadata)


def spark_schema(schema: pa.Schema):
    """The Spark StructType of an Arrow schema (for ``mapInArrow``)."""
    from pyspark.sql.pandas.types import from_arrow_schema

    return from_arrow_schema(schema)
