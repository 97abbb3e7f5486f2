"""``--dedupe``: one row per sha256, the one with the smallest path; rows without a sha256 all stay.

The rule (:func:`keep_one_per_sha256`) is applied twice: to a manifest's sha256 column before
anything is read (no need to extract a file twice), and to the rows written, whose sha256 is the
content's own.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import pyarrow as pa

from jobs.inputs import InputFile


def keep_one_per_sha256(items: Sequence[tuple[str | None, tuple]]) -> list[bool]:
    """For each (sha256, rank): whether it stays. Per sha256 the smallest rank stays (the first on a
    tie); every item without a sha256 stays."""
    best: dict[str, int] = {}
    for i, (sha, rank) in enumerate(items):
        if sha is not None and (sha not in best or rank < items[best[sha]][1]):
            best[sha] = i
    chosen = set(best.values())
    return [sha is None or i in chosen for i, (sha, _) in enumerate(items)]


def dedupe_inputs(inputs: Sequence[InputFile]) -> list[InputFile]:
    """Inputs whose manifest sha256 an input with a smaller path already has are dropped."""
    keep = keep_one_per_sha256([(f.sha256.lower() if f.sha256 else None, (f.path,)) for f in inputs])
    return [f for f, k in zip(inputs, keep, strict=True) if k]


def dedupe_written(
    dataset_dir: Path, scratch_dir: Path, written: pa.Table, part_file, schema: pa.Schema | None = None
) -> pa.Table:
    """Drop duplicate rows from the written part files; returns the status rows that remain.

    ``written`` holds the status rows (part, row, path, sha256, status, ...); ``part_file(part)``
    names a part's file. Ties on path are broken by status, then position. Only the part files
    holding a dropped row are rewritten, each through a file in ``scratch_dir`` and a rename, with
    ``schema`` (the one the part files were written with): Parquet reads lists back with their
    items named ``element``, and a rewritten file would otherwise record that Arrow schema, not the
    contract's ``item``, unlike its sibling files.
    """
    import pyarrow.parquet as pq

    from jobs.part_writer import parquet_options

    rows = written.select(["part", "row", "path", "sha256", "status"]).to_pylist()
    keep = keep_one_per_sha256([(r["sha256"], (r["path"], r["status"], r["part"], r["row"])) for r in rows])
    dropped: dict[int, set[int]] = {}
    for r, k in zip(rows, keep, strict=True):
        if not k:
            dropped.setdefault(r["part"], set()).add(r["row"])
    for part, gone in dropped.items():
        path = Path(dataset_dir) / part_file(part)
        table = pq.read_table(path)
        mask = pa.array([i not in gone for i in range(table.num_rows)])
        tmp = Path(scratch_dir) / f"dedupe-{part:05d}.parquet"
        kept = table.filter(mask)
        if schema is not None:
            kept = kept.cast(schema)
        pq.write_table(kept, tmp, **parquet_options(kept.schema))
        os.replace(tmp, path)
    return written.filter(pa.array(keep)) if dropped else written
