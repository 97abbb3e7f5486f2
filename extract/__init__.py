"""binfeat's feature core: bytes in, Arrow out. No Spark, no Airflow.

Importing this package is cheap and has no side effects; the groups, the parser worker and the
compiled kernels are set up on first use.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from extract.paths import path_bytes, path_text
from extract.version import __version__

if TYPE_CHECKING:
    import pyarrow as pa

    from extract.options import ExtractOptions

__all__ = [
    "FEATURE_VERSION", "ExtractOptions", "__version__", "error_rows", "extract_batch", "extract_file",
    "output_schema", "path_bytes", "path_text", "training_matrix", "vector_layout",
]


def extract_file(path: str | bytes, options: ExtractOptions | None = None) -> dict:
    """One row for one file (column name -> value; ``vector`` as a float32 numpy array, or None).

    ``path`` is a text form (:mod:`extract.paths`; an ordinary name is its own) or the name's bytes;
    the row's ``path`` is the text form.
    """
    from extract.extractor import extractor_for

    return extractor_for(options).extract(path)


def extract_batch(batch: pa.RecordBatch | pa.Table, options: ExtractOptions | None = None) -> pa.RecordBatch:
    """One output row per input row, same order: input columns ``path`` and optional ``content``.

    ``path`` holds text forms (:mod:`extract.paths`), as the output's ``path`` column does.
    """
    from extract.extractor import extractor_for

    return extractor_for(options).extract_batch(batch)


def error_rows(
    paths: Sequence[str | bytes], messages: Sequence[str], options: ExtractOptions | None = None
) -> pa.RecordBatch:
    """Rows with status ``error`` for inputs that were never extracted, in the contract schema.

    For a caller that knows a file cannot be read (a symlink it does not follow, a listing error):
    the rows equal what extraction gives an unreadable file (identity null, ``format`` unknown,
    no vector, the versions and the group selection filled in), with ``error`` set to each message.
    ``options`` only chooses the schema (the scheme's vector length, the selected groups).
    """
    import pyarrow as pa

    from extract.output_contract import scheme_of
    from extract.paths import canonical_path
    from extract.version import NO_PARSER, feature_version

    if len(paths) != len(messages):
        raise ValueError(f"{len(paths)} paths but {len(messages)} messages")
    n = len(paths)
    given = {
        "path": [canonical_path(p) for p in paths],
        "format": ["unknown"] * n,
        "status": ["error"] * n,
        "error": list(messages),
        "feature_version": [feature_version()] * n,
        "binfeat_version": [__version__] * n,
        "parser": [NO_PARSER] * n,
        "groups": [",".join(scheme_of(options).groups)] * n,
    }
    schema = output_schema(options)
    arrays = [pa.array(given[f.name], f.type) if f.name in given else pa.nulls(n, f.type) for f in schema]
    return pa.RecordBatch.from_arrays(arrays, schema=schema)


def training_matrix(source: Any, *, scheme: str = "binfeat", label: str | None = "label", errors: str = "drop",
                    as_of: Any = None, out: Any = None):
    """(X float32 (n, d), y, names, sha256s) from stored feature rows: see :mod:`extract.matrix`.

    ``source``: a Parquet path (``binfeat extract``'s OUTPUT), Arrow data, or a feature store
    (``as_of`` picks its date); ``scheme``: binfeat or ember2; ``errors``: drop or nan; ``label``: a
    column, or ``"folder"`` for labels from folder names (benign/, malicious/).
    """
    from extract.matrix import training_matrix as build

    return build(source, scheme=scheme, label=label, errors=errors, as_of=as_of, out=out)


def output_schema(options: ExtractOptions | None = None) -> pa.Schema:
    """The contract's Arrow schema for ``options`` (its scheme and group selection)."""
    from extract.output_contract import output_schema as schema

    return schema(options)


def vector_layout() -> list[dict]:
    from extract.layout import vector_layout as layout

    return layout()


def __getattr__(name: str) -> Any:
    if name == "FEATURE_VERSION":
        from extract.version import feature_version

        return feature_version()
    if name == "ExtractOptions":
        from extract.options import ExtractOptions

        return ExtractOptions
    raise AttributeError(f"module 'extract' has no attribute {name!r}")
