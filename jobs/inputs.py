"""Turn an INPUT spec into the list of files to extract: one entry per file, each counted once.

Listing happens on the driver and only collects (path, size); the bytes are read later by the
executors. Supported specs: a directory (walked recursively), a single file, a glob, a manifest
(``.jsonl``/``.ndjson``, ``.csv`` or ``.parquet`` with a ``path`` column and optional ``sha256``,
``label`` and ``size`` columns) and ``s3://bucket/prefix`` (listed with boto3, paginated).

Entries that cannot be extracted are kept, so every input still yields exactly one output row
saying why: dangling symlinks and symlinks that are not followed get ``error`` set here; FIFOs,
devices and sockets are listed as they are (``extract`` opens without blocking and reports them).
"""

from __future__ import annotations

import csv
import glob
import json
import os
import stat
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from jobs.s3 import S3UriError, is_s3, list_objects, s3_client, split_s3

MANIFEST_SUFFIXES = {".jsonl": "jsonl", ".ndjson": "jsonl", ".csv": "csv", ".parquet": "parquet"}
_GLOB_CHARS = set("*?[")


class InputError(ValueError):
    """The INPUT spec itself is unusable (missing, empty glob, bad manifest); one line why."""


@dataclass(frozen=True, slots=True)
class InputFile:
    """One input: where it is, how big the listing said it was, and what a manifest said about it.

    ``error`` is set when the listing already knows the file cannot be read as a regular file; the
    job then emits an error row with that message without opening anything.
    """

    path: str
    size: int
    sha256: str | None = None
    label: str | None = None
    error: str | None = None


def manifest_kind(spec: str) -> str | None:
    """The manifest format a file name implies, or None for an ordinary input file."""
    return MANIFEST_SUFFIXES.get(Path(spec).suffix.lower())


def check_spec(spec: str, *, input_type: str = "auto") -> None:
    """Cheap checks of INPUT before Spark starts; raises InputError with one line why."""
    if not spec:
        raise InputError("INPUT is empty")
    if is_s3(spec):
        _check_s3_uri(spec)
        return
    if input_type == "manifest" or (input_type == "auto" and manifest_kind(spec) and os.path.isfile(spec)):
        if not os.path.isfile(spec):
            raise InputError(f"manifest not found: {spec}")
        if not manifest_kind(spec):
            raise InputError(f"unknown manifest format {spec!r}: use .jsonl, .ndjson, .csv or .parquet")
        return
    if os.path.lexists(spec):
        return
    if _GLOB_CHARS & set(spec):
        if not glob.glob(spec, recursive=True):
            raise InputError(f"no files match {spec!r}")
        return
    raise InputError(f"input not found: {spec}")


def list_inputs(
    spec: str,
    *,
    follow_symlinks: bool = True,
    s3_endpoint_url: str | None = None,
    input_type: str = "auto",
) -> list[InputFile]:
    """List the files INPUT names, in a deterministic order (sorted by path).

    ``input_type`` is "auto" (manifests recognised by suffix), "files" (never a manifest) or
    "manifest". With ``follow_symlinks`` a symlinked file or directory is followed and a file
    reached by several names (symlinks, hard links) is listed once, under its plain name when it
    has one, else its smallest name; without it every symlink becomes an error entry.
    """
    check_spec(spec, input_type=input_type)
    if is_s3(spec):
        return list_s3(spec, endpoint_url=s3_endpoint_url)
    if input_type == "manifest" or (input_type == "auto" and manifest_kind(spec) and os.path.isfile(spec)):
        return read_manifest(spec)
    roots = [spec] if os.path.lexists(spec) else sorted(glob.glob(spec, recursive=True))
    return _list_local(roots, follow_symlinks=follow_symlinks)


# --- local files ---------------------------------------------------------------------------------


def _walk(root: str, follow: bool, seen_dirs: set[tuple[int, int]]) -> Iterator[tuple[str, bool]]:
    """Yield (path, via_symlink) for every non-directory entry under root, sorted per directory.

    Directory cycles through symlinks are cut by remembering (device, inode) of visited dirs.
    """
    try:
        st = os.stat(root)
        seen_dirs.add((st.st_dev, st.st_ino))
        with os.scandir(root) as it:
            entries = sorted(it, key=lambda e: e.name)
    except OSError:
        yield root, False  # unreadable directory: becomes an error row
        return
    for entry in entries:
        is_link = entry.is_symlink()
        try:
            is_dir = entry.is_dir(follow_symlinks=follow)
        except OSError:
            is_dir = False
        if is_dir:
            try:
                st = entry.stat(follow_symlinks=follow)
            except OSError:
                yield entry.path, is_link
                continue
            if (st.st_dev, st.st_ino) in seen_dirs:
                continue
            yield from _walk(entry.path, follow, seen_dirs)
        else:
            yield entry.path, is_link


def _list_local(roots: Iterable[str], *, follow_symlinks: bool) -> list[InputFile]:
    seen_dirs: set[tuple[int, int]] = set()
    # (dev, ino) -> (via_symlink, path) of the name we keep for that file
    by_inode: dict[tuple[int, int], tuple[bool, str, int]] = {}
    others: list[InputFile] = []
    for root in roots:
        root = os.path.abspath(root)
        root_is_link = os.path.islink(root)
        if os.path.isdir(root) and (follow_symlinks or not root_is_link):
            found: Iterable[tuple[str, bool]] = _walk(root, follow_symlinks, seen_dirs)
        else:
            found = [(root, root_is_link)]
        for path, is_link in found:
            if is_link and not follow_symlinks:
                others.append(InputFile(path, 0, error="symbolic link not followed (--no-follow-symlinks)"))
                continue
            try:
                st = os.stat(path)
            except FileNotFoundError:
                msg = "dangling symbolic link" if os.path.islink(path) else "file vanished during listing"
                others.append(InputFile(path, 0, error=msg))
                continue
            except OSError as exc:
                others.append(InputFile(path, 0, error=f"cannot stat: {exc.strerror or exc}"))
                continue
            if stat.S_ISDIR(st.st_mode):
                others.append(InputFile(path, 0, error="cannot list directory"))
                continue
            if not stat.S_ISREG(st.st_mode):
                # FIFOs, devices, sockets: extract opens without blocking and writes the error row.
                others.append(InputFile(path, 0))
                continue
            key = (st.st_dev, st.st_ino)
            cand = (is_link, path, st.st_size)
            if key not in by_inode or cand < by_inode[key]:
                by_inode[key] = cand
    files = [InputFile(path, size) for _, path, size in by_inode.values()]
    out = {f.path: f for f in [*files, *others]}  # a path listed twice (overlapping globs) once
    return [out[p] for p in sorted(out)]


# --- manifests -------------------------------------------------------------------------------------


def _rows_jsonl(path: str) -> Iterator[dict]:
    with open(path, encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise InputError(f"manifest {path} line {lineno}: invalid JSON ({exc.msg})") from None
            if not isinstance(row, dict):
                raise InputError(f"manifest {path} line {lineno}: expected a JSON object")
            yield row


def _rows_csv(path: str) -> Iterator[dict]:
    with open(path, encoding="utf-8", newline="") as fh:
        reader = csv.DictReader(fh)
        if not {"path", "sha256"} & set(reader.fieldnames or []):
            raise InputError(f"manifest {path} has no 'path' column")
        yield from reader


def _rows_parquet(path: str) -> Iterator[dict]:
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(path)
    except Exception as exc:
        raise InputError(f"manifest {path}: cannot read Parquet ({exc})") from None
    if not {"path", "sha256"} & set(table.column_names):
        raise InputError(f"manifest {path} has no 'path' column")
    cols = [c for c in ("path", "sha256", "label", "size") if c in table.column_names]
    yield from table.select(cols).to_pylist()


def _opt_str(value: object) -> str | None:
    if value is None or value == "":
        return None
    return str(value)


def read_manifest(path: str) -> list[InputFile]:
    """Read a manifest; relative paths are resolved against the manifest's directory.

    An entry without ``path`` but with ``sha256`` names the content-addressed file
    ``<sha256[:2]>/<sha256>`` next to the manifest (the layout of binfeat's sample corpora).

    Sizes come from a ``size`` column when present (no stat per file, which matters on a network
    filesystem), otherwise from a stat on the driver. A missing file keeps size 0 and becomes an
    error row when the executor tries it. Entries keep the manifest's order.
    """
    kind = manifest_kind(path)
    reader = {"jsonl": _rows_jsonl, "csv": _rows_csv, "parquet": _rows_parquet}.get(kind or "")
    if reader is None:
        raise InputError(f"unknown manifest format {path!r}: use .jsonl, .ndjson, .csv or .parquet")
    base = os.path.dirname(os.path.abspath(path))
    out: list[InputFile] = []
    for n, row in enumerate(reader(path), 1):
        p = row.get("path")
        if not p and row.get("sha256"):
            # binfeat's sample corpora are content-addressed: <manifest dir>/<sha256[:2]>/<sha256>
            sha = str(row["sha256"]).lower()
            p = os.path.join(sha[:2], sha)
        if not p:
            raise InputError(f"manifest {path}: entry {n} has no 'path' (nor 'sha256')")
        p = str(p)
        if not is_s3(p) and not os.path.isabs(p):
            p = os.path.normpath(os.path.join(base, p))
        size = row.get("size")
        if size in (None, ""):
            size = 0
            if not is_s3(p):
                try:
                    size = os.stat(p).st_size
                except OSError:
                    size = 0
        out.append(
            InputFile(p, int(size), sha256=_opt_str(row.get("sha256")), label=_opt_str(row.get("label")))
        )
    if not out:
        raise InputError(f"manifest {path} lists no files")
    return out


# --- S3 ------------------------------------------------------------------------------------------------


def list_s3(uri: str, *, endpoint_url: str | None = None, page_size: int | None = None) -> list[InputFile]:
    """Every object under ``s3://bucket/prefix`` (paginated, "folder" markers skipped), sorted."""
    _check_s3_uri(uri)
    try:
        objects = list_objects(uri, s3_client(endpoint_url), page_size=page_size)
    except Exception as exc:  # botocore raises many types; one line is what the user needs
        raise InputError(f"cannot list {uri}: {_one_line(exc)}") from None
    if not objects:
        raise InputError(f"no objects under {uri}")
    return [InputFile(path, size) for path, size in objects]


def _check_s3_uri(uri: str) -> None:
    try:
        split_s3(uri)
    except S3UriError as exc:
        raise InputError(str(exc)) from None


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__
