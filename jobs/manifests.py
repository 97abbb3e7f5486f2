"""Manifests: a list of inputs in JSON Lines, CSV or Parquet, read with pyarrow's readers.

Columns: ``path`` (a text form, :mod:`extract.paths`; in Parquet also binary, the raw names), and
optionally ``sha256``, ``label`` and ``size``; other columns are ignored. A JSON column keeps one
type on every line (a ``label`` that is a number on one line and a string on another is refused:
quote them all). A bad line is reported with the manifest's name and the line's number.
:func:`jobs.inputs.read_manifest` turns the columns into inputs.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pyarrow as pa

from jobs.input_file import InputError

MANIFEST_SUFFIXES = {".jsonl": "jsonl", ".ndjson": "jsonl", ".csv": "csv", ".parquet": "parquet"}
COLUMNS = ("path", "sha256", "label", "size")
_ROW = re.compile(r"\s+in row (\d+)\s*$")
_TYPE_CHANGE = re.compile(r"Column\((/?[^)]*)\) changed from (\w+) to (\w+)")


def manifest_kind(spec: str) -> str | None:
    """The manifest format a file name implies, or None for an ordinary input file."""
    return MANIFEST_SUFFIXES.get(Path(spec).suffix.lower())


def read_manifest_columns(path: str) -> dict[str, list]:
    """The manifest's ``path``, ``sha256``, ``label`` (text or None) and ``size`` (int or None) columns,
    each a list in the manifest's order (a column the manifest lacks is all None)."""
    kind = manifest_kind(path)
    reader = {"jsonl": _read_jsonl, "csv": _read_csv, "parquet": _read_parquet}.get(kind or "")
    if reader is None:
        raise InputError(f"unknown manifest format {path!r}: use .jsonl, .ndjson, .csv or .parquet")
    table = reader(path)
    # (JSON Lines has no header: there, each entry without a path is reported as such below)
    if kind != "jsonl" and table.column_names and not {"path", "sha256"} & set(table.column_names):
        raise InputError(f"manifest {path} has no 'path' column")
    if table.num_rows == 0:
        raise InputError(f"manifest {path} lists no files")
    return {name: _column(table, name, path) for name in COLUMNS}


def _column(table: pa.Table, name: str, where: str) -> list:
    """A column as Python values: text for path/sha256/label (empty text -> None), int for size."""
    if name not in table.column_names:
        return [None] * table.num_rows
    col = table.column(name)
    if name == "size":
        values = col.to_pylist()
        for n, v in enumerate(values, 1):
            if v is None or v == "":
                values[n - 1] = None
                continue
            try:
                values[n - 1] = int(v)
                if values[n - 1] < 0:
                    raise ValueError(v)
            except (TypeError, ValueError):
                raise InputError(f"manifest {where}: entry {n} has size {v!r}, not a number of bytes") from None
        return values
    if name == "path" and (pa.types.is_binary(col.type) or pa.types.is_large_binary(col.type)):
        from extract.paths import path_text  # raw names (Parquet can hold bytes): their text forms

        return [path_text(v) if v else None for v in col.to_pylist()]
    if col.type != pa.string():
        try:
            col = col.cast(pa.string())
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            raise InputError(f"manifest {where}: column {name!r} must hold text (or numbers), not {col.type}") from None
    return [v if v else None for v in col.to_pylist()]


def _read_jsonl(path: str) -> pa.Table:
    import pyarrow.json as pajson

    try:
        return pajson.read_json(path)
    except pa.ArrowInvalid as exc:
        message = str(exc)
    except (UnicodeDecodeError, OSError) as exc:
        raise InputError(f"manifest {path}: cannot read it as UTF-8 JSON Lines ({_one_line(exc)})") from None
    if message.strip() == "Empty JSON file":
        raise InputError(f"manifest {path} lists no files")
    # pyarrow counts rows within a block: read it again as one block for the row in the whole file
    try:
        pajson.read_json(path, read_options=pajson.ReadOptions(block_size=os.path.getsize(path) + 1))
    except pa.ArrowInvalid as exc:
        message = str(exc)
    found = _ROW.search(message)
    detail = _ROW.sub("", message).removeprefix("JSON parse error: ").strip()
    change = _TYPE_CHANGE.search(detail)
    if change and change.group(1) in ("", "/"):
        detail = "expected a JSON object"
    elif change:
        column, old, new = change.group(1).lstrip("/"), change.group(2), change.group(3)
        detail = f"{column!r} is a {new} here but a {old} on an earlier line: give it one type on every line"
    else:
        detail = f"invalid JSON ({detail})"
    where = f"line {_line_of_row(path, int(found.group(1)))}" if found else "(line unknown)"
    raise InputError(f"manifest {path} {where}: {detail}")


def _line_of_row(path: str, row: int) -> int:
    """The 1-based line of the ``row``-th (0-based) non-blank line: pyarrow skips blank lines."""
    seen, lineno = -1, 0
    with open(path, "rb") as fh:
        for lineno, line in enumerate(fh, 1):
            if line.strip():
                seen += 1
                if seen == row:
                    return lineno
    return lineno + 1


def _read_csv(path: str) -> pa.Table:
    import pyarrow.csv as pacsv

    # every column of ours as text: a sha256 or label that looks numeric must stay as written
    convert = pacsv.ConvertOptions(column_types={c: pa.string() for c in COLUMNS}, strings_can_be_null=True)
    try:
        return pacsv.read_csv(path, convert_options=convert)
    except pa.ArrowInvalid as exc:
        message = str(exc)
    except OSError as exc:
        raise InputError(f"manifest {path}: cannot read it ({_one_line(exc)})") from None
    if message.strip() == "Empty CSV file":
        raise InputError(f"manifest {path} has no 'path' column")
    try:  # single-threaded, pyarrow numbers the bad row ("Row #N")
        pacsv.read_csv(path, convert_options=convert, read_options=pacsv.ReadOptions(use_threads=False))
    except pa.ArrowInvalid as exc:
        message = str(exc)
    raise InputError(f"manifest {path}: {_one_line(message)}")


def _read_parquet(path: str) -> pa.Table:
    import pyarrow.parquet as pq

    try:
        schema = pq.read_schema(path)
        return pq.read_table(path, columns=[c for c in COLUMNS if c in schema.names])
    except Exception as exc:  # pyarrow raises several types for a file that is not Parquet
        raise InputError(f"manifest {path}: cannot read Parquet ({_one_line(exc)})") from None


def _one_line(exc: BaseException | str) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__
