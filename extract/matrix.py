"""Training matrices from stored feature rows: X (float32), y, the dimensions' names and the ids.

The rows are read batch by batch and vectorised straight into X (or into a ``.npy`` file on disk), in
the source's order, so the memory a set needs is the matrix itself plus one batch. A stored
``vector`` column is used as it is when its metadata says it is the scheme asked for; otherwise the
vectors are computed again from the raw columns (no binary is read).

Labels follow EMBER's convention: 1 malicious, 0 benign, -1 unlabelled. A numeric label column is
kept as it is (nulls become -1); a text one may hold numbers ("1", "0", "-1") or the words in
:data:`LABEL_WORDS`; a label missing from the source means every row is unlabelled. ``label="folder"``
(when the rows have no ``folder`` column) takes each row's label from the nearest folder of its
``path`` named by one of those words (``data/malicious/2020/a.exe``: 1).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from extract.schemes import RowBatch, Scheme, read_metadata
from extract.schemes import get as get_scheme
from extract.sources import open_source

LABEL_WORDS = {"malicious": 1, "malware": 1, "benign": 0, "clean": 0, "goodware": 0,
               "unlabelled": -1, "unlabeled": -1, "unknown": -1, "": -1}
ERRORS = ("drop", "nan")
IDENTITY = ("format", "status", "error", "sha256")


class MatrixError(ValueError):
    """The rows cannot give the matrix asked for (one line: what is wrong and what to do)."""


@dataclass
class Plan:
    """How a source's rows become vectors: the scheme, and whether its stored vector is that scheme's."""

    scheme: Scheme
    stored: bool  # the ``vector`` column already holds this scheme's vectors
    feature_versions: str  # of the rows (from the metadata when known)

    def columns(self, label: str | None) -> list[str]:
        cols = [*IDENTITY, *(["vector"] if self.stored else self.scheme.reads)]
        return cols + (["path"] if label == _FROM_PATH else [label] if label else [])


def plan_vectors(schema: pa.Schema, scheme: str) -> Plan:
    """The scheme to vectorise ``schema``'s rows with: for ``binfeat``, the feature groups the rows
    carry; the stored vector when it is already that scheme's; else the raw columns, which must have
    this binfeat's raw types (rows of another feature version must be extracted again)."""
    from extract.groups import REGISTRY

    meta = read_metadata(schema.metadata)
    carried = [name for name in REGISTRY.names() if name in schema.names]
    try:
        chosen = get_scheme(scheme, carried if scheme == "binfeat" else meta.get("groups") or carried)
    except ValueError as exc:
        raise MatrixError(f"{exc} (the rows carry: {', '.join(carried) or 'no feature group'})") from None
    versions = meta.get("feature_version", "")
    stored = ("vector" in schema.names and meta.get("scheme") == chosen.name
              and meta.get("scheme_version") == str(chosen.version) and meta.get("dim_names") == chosen.names)
    if not stored:
        missing = [c for c in chosen.reads if c not in schema.names]
        if missing:
            raise MatrixError(f"the rows lack the column(s) {', '.join(missing)} that scheme {scheme} reads: extract "
                              "them (binfeat extract --groups) or choose the scheme the rows were vectorised with")
        stale = [c for c in chosen.reads if schema.field(c).type != REGISTRY[c].raw_type]
        if stale:
            raise MatrixError(
                f"the rows' {', '.join(stale)} columns come from another feature version ({versions or 'unknown'}) "
                f"than this binfeat's: extract them again to vectorise them with {scheme}")
    return Plan(chosen, stored, versions)


FOLDER = "folder"
_FROM_PATH = "\0folder of path"  # the label comes from the path column (no column has this name)


def folder_label(path: str | None) -> str | None:
    """The name of the nearest folder of ``path`` that is a label word (None when there is none)."""
    parts = (path or "").replace("\\", "/").split("/")[:-1]
    return next((p for p in reversed(parts) if p.lower() in LABEL_WORDS and p), None)


def _labels(batch: pa.RecordBatch, label: str | None) -> np.ndarray:
    if label == _FROM_PATH:
        return label_values(pa.array([folder_label(p) for p in batch.column("path").to_pylist()], pa.string()),
                            batch.num_rows)
    return label_values(batch.column(label) if label else None, batch.num_rows)


def label_values(column: pa.Array | pa.ChunkedArray | None, n: int) -> np.ndarray:
    """Numbers for a label column (see the module docstring); float64, -1 where unlabelled."""
    if column is None:
        return np.full(n, -1.0)
    t = column.type
    if pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_boolean(t):
        return np.array([-1.0 if v is None else float(v) for v in column.to_pylist()])
    out = np.empty(n)
    for i, v in enumerate(column.to_pylist()):
        text = "" if v is None else str(v).strip()
        if text.lower() in LABEL_WORDS:
            out[i] = LABEL_WORDS[text.lower()]
            continue
        try:
            out[i] = float(text)
        except ValueError:
            words = ", ".join(sorted(k for k in LABEL_WORDS if k))
            raise MatrixError(f"label {v!r} is neither a number nor one of {words}: map your labels to "
                              "1 (malicious), 0 (benign) or -1 (unlabelled)") from None
    return out


def _kept(batch: pa.RecordBatch, errors: str) -> pa.RecordBatch:
    if errors == "nan" or "status" not in batch.schema.names:
        return batch
    import pyarrow.compute as pc

    return batch.filter(pc.fill_null(pc.not_equal(batch.column("status"), "error"), True))


def _fill(batch: pa.RecordBatch, plan: Plan, out: np.ndarray) -> None:
    """The vectors of ``batch``'s rows into ``out`` (rows x dims float32); NaN for an error row."""
    if plan.stored:
        column = batch.column("vector")
        flat = column.flatten().to_numpy(zero_copy_only=False)  # null rows' values are left out
        valid = column.is_valid().to_numpy(zero_copy_only=False)
        out[valid] = flat.reshape(-1, plan.scheme.dims)
        out[~valid] = np.nan
        return
    plan.scheme.fill(RowBatch.from_arrow(batch, plan.scheme.reads), out)


def _batches(source: Any, scheme: str, label: str | None, errors: str, as_of: Any):
    if errors not in ERRORS:
        raise MatrixError(f"errors must be one of {', '.join(ERRORS)}, got {errors!r}")
    src = open_source(source, as_of)
    plan = plan_vectors(src.schema, scheme)
    if label == FOLDER and FOLDER not in src.schema.names:
        label = _FROM_PATH if "path" in src.schema.names else None
    else:
        label = label if label and label in src.schema.names else None
    rows = src.count_where_not_error() if errors == "drop" else src.rows
    kept = (_kept(b, errors) for b in src.batches(plan.columns(label)))
    return plan, label, rows, kept


def training_matrix(
    source: Any,
    *,
    scheme: str = "binfeat",
    label: str | None = "label",
    errors: str = "drop",
    as_of: Any = None,
    out: str | os.PathLike | None = None,
) -> tuple[np.ndarray, np.ndarray, list[str], list[str | None]]:
    """(X float32 (n, d), y, names, sha256s) of the feature rows in ``source``, in its order.

    ``source``: a Parquet file or dataset folder (e.g. ``binfeat extract``'s OUTPUT), a pyarrow
    Table, RecordBatch, Dataset or RecordBatchReader, or a feature store (see
    :mod:`extract.sources`; ``as_of`` picks the store's date). ``scheme``: ``binfeat`` or
    ``ember2``. ``errors``: ``drop`` leaves out rows with status ``error`` (no features), ``nan``
    keeps them as rows of NaN. ``y`` is int64 when every label is whole (float64 otherwise).
    ``names`` are the scheme's ML-safe dimension names. With ``out`` (a path), X is written there
    as a ``.npy`` file as it is computed and returned as a read-only memory map.
    """
    plan, label, rows, batches = _batches(source, scheme, label, errors, as_of)
    if out is not None:
        _, y, ids = _write_npy(Path(out), plan, label, rows, batches)
        return np.load(out, mmap_mode="r"), _whole(y), plan.scheme.names, ids
    x, y, ids = _in_memory(plan, label, rows, batches)
    return x, _whole(y), plan.scheme.names, ids


def _whole(y: np.ndarray) -> np.ndarray:
    return y.astype(np.int64) if np.all(np.isfinite(y)) and np.all(y == np.round(y)) else y


def _in_memory(plan: Plan, label: str | None, rows: int | None, batches: Iterator[pa.RecordBatch]):
    d = plan.scheme.dims
    ys: list[np.ndarray] = []
    ids: list[str | None] = []
    if rows is not None:
        x = np.empty((rows, d), dtype=np.float32)
        pos = 0
        for b in batches:
            if pos + b.num_rows > rows:
                raise MatrixError(f"the source gave more rows than it counted ({rows})")
            _fill(b, plan, x[pos:pos + b.num_rows])
            pos += b.num_rows
            ys.append(_labels(b, label))
            ids += b.column("sha256").to_pylist() if "sha256" in b.schema.names else [None] * b.num_rows
        x = x[:pos]
    else:  # an unknown number of rows: blocks, then one matrix (a block's memory goes back as it is copied)
        blocks = []
        for b in batches:
            block = np.empty((b.num_rows, d), dtype=np.float32)
            _fill(b, plan, block)
            blocks.append(block)
            ys.append(_labels(b, label))
            ids += b.column("sha256").to_pylist() if "sha256" in b.schema.names else [None] * b.num_rows
        x = np.empty((sum(len(b) for b in blocks), d), dtype=np.float32)
        pos = 0
        blocks.reverse()
        while blocks:
            block = blocks.pop()
            x[pos:pos + len(block)] = block
            pos += len(block)
            del block
    return x, np.concatenate(ys) if ys else np.zeros(0), ids


_HEADER_BYTES = 128  # a .npy v1.0 header with room for any shape: rewritten once the rows are counted


def _npy_header(rows: int, dims: int) -> bytes:
    text = f"{{'descr': '<f4', 'fortran_order': False, 'shape': ({rows}, {dims}), }}"
    body = text.ljust(_HEADER_BYTES - 10 - 1) + "\n"
    return b"\x93NUMPY\x01\x00" + len(body).to_bytes(2, "little") + body.encode("latin1")


def _write_npy(path: Path, plan: Plan, label: str | None, rows: int | None, batches: Iterator[pa.RecordBatch]):
    """Stream X into ``path`` batch by batch (memory: one batch); returns (rows, y, ids)."""
    d = plan.scheme.dims
    ys: list[np.ndarray] = []
    ids: list[str | None] = []
    n = 0
    with open(path, "wb") as f:
        f.write(_npy_header(0, d))
        for b in batches:
            block = np.empty((b.num_rows, d), dtype=np.float32)
            _fill(b, plan, block)
            block.tofile(f)
            n += b.num_rows
            ys.append(_labels(b, label))
            ids += b.column("sha256").to_pylist() if "sha256" in b.schema.names else [None] * b.num_rows
        f.seek(0)
        f.write(_npy_header(n, d))
    return n, np.concatenate(ys) if ys else np.zeros(0), ids


def write_matrix(
    source: Any,
    out_dir: str | os.PathLike,
    *,
    scheme: str = "binfeat",
    label: str | None = "label",
    errors: str = "drop",
    as_of: Any = None,
) -> dict:
    """``binfeat matrix``: X.npy (written as it is computed; load it with ``mmap_mode="r"``), y.npy,
    names.txt (one dimension name per line), ids.txt (one sha256 per line, empty when unknown) and
    matrix.json (what they hold) in ``out_dir``; returns matrix.json's content."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    plan, label, _, batches = _batches(source, scheme, label, errors, as_of)
    n, y, ids = _write_npy(out / "X.npy", plan, label, None, batches)
    y = _whole(y)
    np.save(out / "y.npy", y)
    (out / "names.txt").write_text("\n".join(plan.scheme.names) + "\n", encoding="utf-8")
    (out / "ids.txt").write_text("".join(f"{i or ''}\n" for i in ids), encoding="utf-8")
    info = {"rows": n, "dims": plan.scheme.dims, "scheme": plan.scheme.name, "scheme_version": plan.scheme.version,
            "feature_version": plan.feature_versions, "label": FOLDER if label == _FROM_PATH else label,
            "errors": errors,
            "vectors": "stored" if plan.stored else "computed from the raw columns",
            "labels": {str(k): int(v) for k, v in zip(*np.unique(y, return_counts=True), strict=True)}}
    (out / "matrix.json").write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")
    return info


def names(scheme: str = "binfeat", groups: Sequence[str] | None = None) -> list[str]:
    """The ML-safe dimension names of a scheme (a group selection's, for ``binfeat``)."""
    return get_scheme(scheme, groups).names
