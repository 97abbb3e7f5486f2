"""Atomic publication of a Parquet dataset and its run summary.

The job writes into a hidden folder next to OUTPUT (:mod:`jobs.staging`); only a complete write is
moved into place. When OUTPUT already exists the two directories are exchanged with one ``renameat2(RENAME_EXCHANGE)``
call (Linux), so a reader opening OUTPUT sees either the whole previous dataset or the whole new
one; where that call is unavailable, two renames leave a window of microseconds without OUTPUT but
never a partial dataset.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import json
import os
import tempfile
import uuid
from pathlib import Path

SUMMARY_IN_DATASET = "_binfeat_summary.json"  # "_" prefix: Parquet readers skip it
_AT_FDCWD = -100
_RENAME_EXCHANGE = 2


class OutputError(ValueError):
    """OUTPUT cannot be written or replaced; one line why."""


def summary_path(output: str | os.PathLike) -> Path:
    """The run summary's place next to OUTPUT: ``OUTPUT.summary.json``."""
    out = Path(output)
    return out.with_name(out.name + ".summary.json")


def check_output(output: str) -> None:
    """Refuse an OUTPUT we could not publish, or would replace without it being ours (before Spark)."""
    if not output:
        raise OutputError("OUTPUT is empty")
    if "://" in output and not output.startswith("file://"):
        raise OutputError(f"OUTPUT must be a local or shared-filesystem path, got {output!r}")
    out = Path(output.removeprefix("file://")).absolute()
    if not out.parent.is_dir():
        raise OutputError(f"OUTPUT's parent directory does not exist: {out.parent}")
    if not os.access(out.parent, os.W_OK | os.X_OK):
        raise OutputError(f"OUTPUT's parent directory is not writable: {out.parent}")
    try:  # what the run will do there first (os.access says yes to root, even under /proc)
        os.rmdir(tempfile.mkdtemp(prefix=f".{out.name}.binfeat-probe-", dir=out.parent))
    except OSError as exc:
        raise OutputError(
            f"cannot create folders next to OUTPUT ({exc.strerror or exc}): choose an OUTPUT on a writable "
            f"filesystem: {out}"
        ) from None
    if out.exists() or out.is_symlink():
        if not out.is_dir() or out.is_symlink():
            raise OutputError(f"OUTPUT exists and is not a directory: {out}")
        if not (out / SUMMARY_IN_DATASET).exists() and any(out.iterdir()):
            raise OutputError(f"OUTPUT exists and is not a binfeat output, refusing to replace it: {out}")


def _rename_exchange(a: Path, b: Path) -> bool:
    libc_name = ctypes.util.find_library("c")
    if not libc_name:
        return False
    try:
        libc = ctypes.CDLL(libc_name, use_errno=True)
        fn = libc.renameat2
    except (OSError, AttributeError):
        return False
    fn.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    rc = fn(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE)
    return rc == 0


def publish(dataset: str | os.PathLike, output: str | os.PathLike, previous: str | os.PathLike) -> None:
    """Move a completely written ``dataset`` to ``output``; an old output ends up at ``previous``.

    ``previous`` (a path that does not exist yet, on the same filesystem: inside the run's own
    folder) is the caller's to delete; where ``renameat2`` works, ``dataset`` itself holds the old
    output afterwards and ``previous`` is not used.
    """
    src, out = Path(dataset), Path(output).absolute()
    if not out.exists():
        os.rename(src, out)
        return
    if _rename_exchange(src, out):
        return
    os.rename(out, previous)
    os.rename(src, out)


def write_json_atomic(path: str | os.PathLike, data: dict, *, tmp_dir: str | os.PathLike | None = None) -> None:
    """Write JSON via a temporary file and rename, so a reader never sees half a summary.

    ``tmp_dir`` (same filesystem) holds the temporary file, so a kill in between leaves nothing
    next to ``path``; by default it is ``path``'s own folder.
    """
    path = Path(path)
    tmp = Path(tmp_dir or path.parent) / f".{path.name}.tmp-{uuid.uuid4().hex[:8]}"
    tmp.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    os.replace(tmp, path)
