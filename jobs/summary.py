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
        vc = pc.value_counts(pc.fill_null(table.column(col), "null")).to_pylist()
        return {d["values"]: int(d["counts"]) for d in sorted(vc, key=lambda d: d["values"])}

    size = pc.sum(table.column("size")).as_py() or 0
    return {
        "rows": table.num_rows,
        "counts_by_status": counts("status"),
        "counts_by_format": counts("format"),
        "bytes": int(size),
    }


def versions() -> dict[str, str]:
    """Spark, binfeat, feature and Python versions (binfeat's from extract.version, its one place)."""
    import pyspark

    import extract

    return {
        "spark_version": pyspark.__version__,
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
        f"in {s['job_s']:.1f} s ({s['mb_per_s']:.1f} MB/s, Spark start excluded)\n"
        f"  by status: {counts(s['counts_by_status'])}\n"
        f"  by format: {counts(s['counts_by_format'])}\n"
        f"  output: {s['output']} (summary: {s['output']}.summary.json)\n"
    )
