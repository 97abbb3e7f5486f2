"""Read a day's labels feed (JSONL, CSV or Parquet; a file, a folder of them, or S3) into Arrow.

Labels feeds are small next to the binaries, so they are read on the driver with pyarrow (and
boto3 for ``s3://``) and merged into the ``labels`` table there (jobs.corpus.labels).
Every column becomes a string: feeds disagree on types (a CSV ``first_seen`` is text, a Parquet
one a timestamp), and a label is a name, not a number.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pyarrow as pa

LABEL_COLUMNS = ("sha256", "label", "family", "source", "first_seen")
_SUFFIXES = {".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "jsonl", ".csv": "csv", ".parquet": "parquet"}
_SHA256_RE = re.compile(r"^[0-9a-f]{64}$")


class LabelsError(ValueError):
    """The labels feed is unreadable or lacks a required column; one line why."""


def labels_schema() -> pa.Schema:
    return pa.schema([pa.field(c, pa.string()) for c in LABEL_COLUMNS])


def _kind(name: str) -> str | None:
    return _SUFFIXES.get(Path(name).suffix.lower())


def _parse(data: bytes | str, kind: str, where: str) -> pa.Table:
    import pyarrow.csv as pacsv
    import pyarrow.json as pajson
    import pyarrow.parquet as pq

    source = pa.BufferReader(data) if isinstance(data, bytes) else data
    try:
        if kind == "jsonl":
            return pajson.read_json(source)
        if kind == "csv":
            # Every column as text: sha256 values that look numeric must not become numbers.
            opts = pacsv.ConvertOptions(column_types={c: pa.string() for c in LABEL_COLUMNS})
            return pacsv.read_csv(source, convert_options=opts)
        return pq.read_table(source)
    except (pa.ArrowInvalid, OSError) as exc:
        raise LabelsError(f"labels feed {where}: cannot read {kind}: {' '.join(str(exc).split())}") from None


def _normalise(table: pa.Table, where: str) -> pa.Table:
    missing = [c for c in ("sha256", "label") if c not in table.column_names]
    if missing:
        raise LabelsError(f"labels feed {where}: missing column(s) {', '.join(missing)}")
    cols = []
    for name in LABEL_COLUMNS:
        if name in table.column_names:
            col = table.column(name)
            cols.append(col if col.type == pa.string() else col.cast(pa.string()))
        else:
            cols.append(pa.nulls(table.num_rows, pa.string()))
    return pa.Table.from_arrays(cols, schema=labels_schema())


def _local_files(spec: str) -> list[str]:
    if os.path.isdir(spec):
        found = []
        for dirpath, dirnames, filenames in os.walk(spec):
            dirnames[:] = sorted(d for d in dirnames if not d.startswith((".", "_")))
            found += [os.path.join(dirpath, f) for f in sorted(filenames) if _kind(f)]
        return sorted(found)
    if os.path.isfile(spec):
        if not _kind(spec):
            raise LabelsError(f"labels feed {spec}: unknown format (use .jsonl, .csv or .parquet)")
        return [spec]
    return []


def _s3_objects(spec: str, endpoint_url: str | None) -> list[tuple[str, bytes]]:
    """(uri, bytes) of every feed file under the prefix; bodies read with jobs.s3's resuming reader."""
    from jobs.s3 import list_objects, read_object, s3_client

    try:
        client = s3_client(endpoint_url)
        return [(uri, read_object(uri, client)) for uri, _ in list_objects(spec, client) if _kind(uri)]
    except Exception as exc:  # S3ReadError's one line, or botocore's many error types
        raise LabelsError(f"labels feed {spec}: {' '.join(str(exc).split())}") from None


def read_labels(spec: str, *, s3_endpoint_url: str | None = None, allow_missing: bool = False) -> pa.Table:
    """All label rows of the feed at ``spec`` with the five string columns.

    ``sha256`` is lower-cased; rows whose sha256 is not 64 hex digits or whose label is empty are
    dropped (see :func:`split_valid`). A missing feed is an error unless ``allow_missing``
    (a day without labels is normal for a nightly feed), in which case the table is empty.
    """
    if spec.startswith("s3://"):
        objects = _s3_objects(spec, s3_endpoint_url)
        tables = [_normalise(_parse(body, _kind(uri) or "", uri), uri) for uri, body in objects]
        found = bool(objects)
    else:
        files = _local_files(spec)
        tables = [_normalise(_parse(f, _kind(f) or "", f), f) for f in files]
        found = bool(files)
    if not found:
        if allow_missing:
            return labels_schema().empty_table()
        raise LabelsError(f"labels feed not found: {spec}")
    table = pa.concat_tables(tables) if tables else labels_schema().empty_table()
    import pyarrow.compute as pc

    sha = pc.ascii_lower(pc.utf8_trim_whitespace(table.column("sha256")))
    table = table.set_column(0, "sha256", sha)
    return table


def valid_mask(table: pa.Table) -> pa.ChunkedArray:
    """Rows with a 64-hex-digit sha256 and a non-empty label."""
    import pyarrow.compute as pc

    ok_sha = pc.fill_null(pc.match_substring_regex(table.column("sha256"), _SHA256_RE.pattern), False)
    ok_label = pc.fill_null(pc.greater(pc.utf8_length(table.column("label")), 0), False)
    return pc.and_(ok_sha, ok_label)


def split_valid(table: pa.Table) -> tuple[pa.Table, int]:
    """(valid rows, number of invalid rows dropped)."""
    mask = valid_mask(table)
    valid = table.filter(mask)
    return valid, table.num_rows - valid.num_rows
