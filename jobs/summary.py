"""The run summary: counts from the rows written, versions, and the lines printed for people.

The JSON (next to OUTPUT, inside it, and on stdout) is the record; :func:`human_summary` is a few
lines for the terminal.
"""

from __future__ import annotations

import sys

import pyarrow as pa


def written_stats(table: pa.Table) -> dict:
    """Rows, counts by status and by format, and bytes, from the status rows that were written."""
    import pyarrow.compute as pc

    def counts(col: str) -> dict[str, int]:
        # nulls counted as "null" in Python: pc.fill_null's scalar from a str makes pyarrow import pandas
        out: dict[str, int] = {}
        for d in pc.value_counts(table.column(col)).to_pylist():
            key = "null" if d["values"] is None else d["values"]
            out[key] = out.get(key, 0) + int(d["counts"])
        return dict(sorted(out.items()))

    size = pc.sum(table.column("size")).as_py() or 0
    return {
        "rows": table.num_rows,
        "counts_by_status": counts("status"),
        "counts_by_format": counts("format"),
        "bytes": int(size),
    }


def versions(*, spark: bool = True) -> dict[str, str | None]:
    """Spark, binfeat, feature and Python versions (binfeat's from extract.version, its one place).

    ``spark=False`` (the local engine): no Spark ran, ``spark_version`` is null and pyspark is not imported.
    """
    import extract

    spark_version = None
    if spark:
        import pyspark

        spark_version = pyspark.__version__
    return {
        "spark_version": spark_version,
        "binfeat_version": extract.__version__,
        "feature_version": extract.FEATURE_VERSION,
        "python_version": sys.version.split()[0],
    }


def human_summary(s: dict) -> str:
    """A few lines for people, ending with a newline."""

    def counts(d: dict) -> str:
        return ", ".join(f"{k} {v}" for k, v in sorted(d.items()))

    return (
        f"binfeat extract: {s['rows']} rows from {s['inputs_listed']} files, {s['bytes'] / 1e6:.1f} MB "
        f"in {s['job_s']:.1f} s ({s['mb_per_s']:.1f} MB/s, {_engine_text(s)})\n"
        f"  by status: {counts(s['counts_by_status'])}\n"
        f"  by format: {counts(s['counts_by_format'])}\n"
        f"  output: {s['output']} (summary: {s['output']}.summary.json)\n"
    )


def _engine_text(s: dict) -> str:
    if s.get("engine") == "local":
        n = s.get("workers")
        return f"local engine, {n} worker process{'es' if n != 1 else ''}"
    return "Spark start excluded"
