"""binfeat's feature core: bytes in, Arrow out. No Spark, no Airflow.

Importing this package is cheap and has no side effects; the groups, the parser worker and the
compiled kernels are set up on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from extract.version import __version__

if TYPE_CHECKING:
    import pyarrow as pa

    from extract.extractor import ExtractOptions

__all__ = [
    "FEATURE_VERSION", "ExtractOptions", "__version__", "extract_batch", "extract_file", "output_schema",
    "vector_layout",
]


def extract_file(path: str, options: ExtractOptions | None = None) -> dict:
    """One row for one file (column name -> value; ``vector`` as a float32 numpy array, or None)."""
    from extract.extractor import extractor_for

    return extractor_for(options).extract(path)


def extract_batch(batch: pa.RecordBatch | pa.Table, options: ExtractOptions | None = None) -> pa.RecordBatch:
    """One output row per input row, same order: input columns ``path`` and optional ``content``."""
    from extract.extractor import extractor_for

    return extractor_for(options).extract_batch(batch)


def output_schema() -> pa.Schema:
    from extract.extractor import output_schema as schema

    return schema()


def vector_layout() -> list[dict]:
    from extract.layout import vector_layout as layout

    return layout()


def __getattr__(name: str) -> Any:
    if name == "FEATURE_VERSION":
        from extract.version import feature_version

        return feature_version()
    if name == "ExtractOptions":
        from extract.extractor import ExtractOptions

        return ExtractOptions
    raise AttributeError(f"module 'extract' has no attribute {name!r}")
