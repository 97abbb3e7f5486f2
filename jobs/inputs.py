"""Turn an INPUT spec into the list of files to extract: one entry per file, each counted once.

Listing happens on the driver and only collects (path, size); the bytes are read later by the
executors. Supported specs: a directory (walked recursively: every file, whatever it is, unless
``include``/``exclude`` globs choose), a single file, a glob, a manifest (:mod:`jobs.manifests`)
and ``s3://bucket/prefix`` (listed with boto3, paginated). Every path is in its text form
(:mod:`extract.paths`), so a name that is not UTF-8 is listed like any other.

Entries that cannot be extracted are kept, so every input still yields exactly one output row
saying why: dangling symlinks and symlinks that are not followed get ``error`` set here; FIFOs,
devices and sockets are listed as they are (``extract`` opens without blocking and reports them).
"""

from __future__ import annotations

import glob
import os
import stat
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from fnmatch import fnmatchcase

from jobs.input_file import InputError, InputFile
from jobs.s3 import S3UriError, is_s3, list_objects, s3_client, split_s3

_GLOB_CHARS = set("*?[")


def _is_manifest(spec: str, input_type: str) -> bool:
    from jobs.manifests import manifest_kind

    return input_type == "manifest" or (input_type == "auto" and bool(manifest_kind(spec)) and os.path.isfile(spec))


@dataclass(frozen=True)
class NameFilter:
    """``--include``/``--exclude``: shell globs (``*``, ``?``, ``[...]``; ``*`` also crosses ``/``)
    matched against a file's path relative to the folder or S3 prefix it was found under, and
    against its name. With includes, a file must match one; a file matching an exclude is dropped."""

    include: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.include or self.exclude)

    def keeps(self, relative: str) -> bool:
        name = relative.rsplit("/", 1)[-1]

        def hit(patterns: tuple[str, ...]) -> bool:
            return any(fnmatchcase(relative, p) or fnmatchcase(name, p) for p in patterns)

        return (not self.include or hit(self.include)) and not hit(self.exclude)


def check_spec(spec: str, *, input_type: str = "auto") -> None:
    """Cheap checks of INPUT before Spark starts; raises InputError with one line why."""
    if not spec:
        raise InputError("INPUT is empty")
    if is_s3(spec):
        _check_s3_uri(spec)
        return
    if _is_manifest(spec, input_type):
        from jobs.manifests import manifest_kind

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
    include: Sequence[str] = (),
    exclude: Sequence[str] = (),
) -> list[InputFile]:
    """List the files INPUT names, in a deterministic order (sorted by path; a manifest's own order).

    ``input_type`` is "auto" (manifests recognised by suffix), "files" (never a manifest) or
    "manifest". With ``follow_symlinks`` a symlinked file or directory is followed and a file
    reached by several names (symlinks, hard links) is listed once, under its plain name when it
    has one, else its smallest name; without it every symlink becomes an error entry.
    ``include``/``exclude`` select files by name (:class:`NameFilter`); not for a manifest. A local
    INPUT is a real name (as the shell passes it); the listed paths are text forms.
    """
    names = NameFilter(tuple(include), tuple(exclude))
    check_spec(spec, input_type=input_type)
    if is_s3(spec):
        return list_s3(spec, endpoint_url=s3_endpoint_url, names=names)
    if _is_manifest(spec, input_type):
        if names:
            raise InputError(
                "--include/--exclude choose among the files of a folder, glob or S3 prefix; a manifest lists "
                "exactly its inputs (use --input-type files to extract the manifest file itself)"
            )
        return read_manifest(spec)
    roots = [spec] if os.path.lexists(spec) else sorted(glob.glob(spec, recursive=True))
    return _list_local(roots, follow_symlinks=follow_symlinks, names=names)


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


def _list_local(roots: Iterable[str], *, follow_symlinks: bool, names: NameFilter = NameFilter()) -> list[InputFile]:
    """Walk the roots (names as the OS gives them) into InputFiles whose paths are text forms."""
    from extract.paths import path_text

    seen_dirs: set[tuple[int, int]] = set()
    # (dev, ino) -> (via_symlink, path) of the name we keep for that file
    by_inode: dict[tuple[int, int], tuple[bool, str, int]] = {}
    others: list[InputFile] = []
    for root in roots:
        root = os.path.abspath(root)
        root_is_link = os.path.islink(root)
        walked = os.path.isdir(root) and (follow_symlinks or not root_is_link)
        if walked:
            found: Iterable[tuple[str, bool]] = _walk(root, follow_symlinks, seen_dirs)
        else:
            found = [(root, root_is_link)]
        for path, is_link in found:
            if names and not names.keeps(os.path.relpath(path, root) if walked else os.path.basename(path)):
                continue
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
    # in text form; a path listed twice (overlapping globs) once
    out = {t.path: t for t in (InputFile(path_text(f.path), f.size, error=f.error) for f in [*files, *others])}
    return [out[p] for p in sorted(out)]


# --- manifests -------------------------------------------------------------------------------------


def read_manifest(path: str) -> list[InputFile]:
    """A manifest's entries (:mod:`jobs.manifests`) in its order, paths resolved, sizes known.

    Relative paths are relative to the manifest's folder; an entry with ``sha256`` and no ``path``
    is ``<sha256[:2]>/<sha256>`` there. Sizes come from a ``size`` column when present (no stat per
    file, which matters on a network filesystem), otherwise from a stat here; a missing file keeps
    size 0 and becomes an error row when an executor tries it.
    """
    from extract.paths import path_bytes, path_text
    from jobs.manifests import read_manifest_columns

    cols = read_manifest_columns(path)
    base = path_text(os.path.dirname(os.path.abspath(path)))
    out: list[InputFile] = []
    rows = zip(cols["path"], cols["sha256"], cols["label"], cols["size"], strict=True)
    for n, (p, sha, label, size) in enumerate(rows, 1):
        if not p and sha:
            sha = sha.lower()  # binfeat's sample corpora are content-addressed
            p = f"{sha[:2]}/{sha}"
        if not p:
            raise InputError(f"manifest {path}: entry {n} has no 'path' (nor 'sha256')")
        if not is_s3(p) and not os.path.isabs(p):
            p = os.path.normpath(os.path.join(base, p))  # text forms keep '/' and '.' as they are
        if size is None:
            size = 0
            if not is_s3(p):
                try:
                    size = os.stat(path_bytes(p)).st_size
                except (OSError, ValueError):
                    size = 0
        out.append(InputFile(p, size, sha256=sha, label=label))
    return out


# --- S3 ------------------------------------------------------------------------------------------------


def list_s3(
    uri: str, *, endpoint_url: str | None = None, page_size: int | None = None, names: NameFilter = NameFilter()
) -> list[InputFile]:
    """Every object under ``s3://bucket/prefix`` (paginated, "folder" markers skipped), sorted.

    ``names`` sees each key relative to the prefix (from its last ``/``).
    """
    from extract.paths import path_text

    _check_s3_uri(uri)
    try:
        objects = list_objects(uri, s3_client(endpoint_url), page_size=page_size)
    except Exception as exc:  # botocore raises many types; one line is what the user needs
        raise InputError(f"cannot list {uri}: {_one_line(exc)}") from None
    bucket, prefix = split_s3(uri)
    # a key is matched relative to the prefix's last "/"; it starts after "s3://bucket/"
    start = len(f"s3://{bucket}/") + len(prefix) - len(prefix.rpartition("/")[2])
    out = [InputFile(path_text(path), size) for path, size in objects if not names or names.keeps(path[start:])]
    if not out:
        raise InputError(f"no objects under {uri}" + (" match --include/--exclude" if names else ""))
    return sorted(out, key=lambda f: f.path)


def _check_s3_uri(uri: str) -> None:
    try:
        split_s3(uri)
    except S3UriError as exc:
        raise InputError(str(exc)) from None


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__
