"""Build the archive a Spark cluster without binfeat installed needs: ``--py-files binfeat.zip``.

The archive holds the ``extract`` and ``jobs`` packages (Python sources and their data files, no
caches). Third-party dependencies (pyarrow, numpy, lief, numba, boto3, ...) must already be in the
executors' Python environment; this ships only binfeat's own code.

    python -m jobs.package dist/binfeat.zip
"""

from __future__ import annotations

import sys
import zipfile
from pathlib import Path

PACKAGES = ("extract", "jobs")
_SKIP_DIRS = {"__pycache__"}
_SKIP_SUFFIXES = {".pyc", ".pyo", ".so.tmp"}


def build_pyfiles_zip(dest: str | Path, root: str | Path | None = None) -> Path:
    """Write the archive to ``dest`` (parents created) and return its path.

    Entries are sorted and stamped with a fixed date, so the same sources give the same bytes.
    """
    root = Path(root) if root is not None else Path(__file__).resolve().parent.parent
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    files: list[Path] = []
    for pkg in PACKAGES:
        base = root / pkg
        if not (base / "__init__.py").is_file():
            raise FileNotFoundError(f"{base} is not a package (no __init__.py)")
        for path in base.rglob("*"):
            rel = path.relative_to(root)
            if path.is_file() and not (_SKIP_DIRS & set(rel.parts)) and path.suffix not in _SKIP_SUFFIXES:
                files.append(path)
    tmp = dest.with_name(dest.name + ".tmp")
    with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for path in sorted(files):
            info = zipfile.ZipInfo(str(path.relative_to(root)), date_time=(2020, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            zf.writestr(info, path.read_bytes())
    tmp.replace(dest)
    return dest


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1 or argv[0].startswith("-"):
        print("usage: python -m jobs.package OUT.zip", file=sys.stderr)
        return 2
    print(build_pyfiles_zip(argv[0]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
