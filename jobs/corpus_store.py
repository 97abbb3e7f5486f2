"""The corpus store on a shared filesystem: snapshot manifests, atomic publishing and retention.

Layout under ``STORE``::

    snapshots/<date>.json                      the manifest: the commit point readers start from
    data/<date>/<publish_id>/corpus/ingest_date=<d>/part-*.parquet   corpus rows with labels
    data/<date>/<publish_id>/labels/part-*.parquet                   every label known on <date>
    _staging/<publish_id>/                     work area of a running (or killed) job

A job writes everything under ``_staging``; publishing renames the staged folder into ``data/``
(one rename on one filesystem) and then replaces the manifest with ``os.replace``. A reader that
opens ``snapshots/<date>.json`` therefore sees either the previous complete snapshot or the new
complete one, never a half-written folder; a killed job leaves only ``_staging`` litter, which
:func:`apply_retention` removes later. No Spark in this module: the maintenance DAG imports it.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import time
import uuid
from pathlib import Path
from typing import Any

MANIFEST_FORMAT = "binfeat-corpus-snapshot/1"
_DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
# Manifest keys that differ between two runs of the same date even when the data is identical.
VOLATILE_KEYS = ("publish_id", "run_id", "created_at", "corpus_path", "labels_path", "summary", "partitions")


class StoreError(RuntimeError):
    """The store is unusable or a snapshot cannot be published; one line why."""


def check_date(date: str) -> str:
    """Validate an ISO date (YYYY-MM-DD): it becomes a file name and a partition value."""
    if not _DATE_RE.match(date):
        raise StoreError(f"bad date {date!r}: expected YYYY-MM-DD")
    return date


def new_publish_id() -> str:
    """A unique, sortable id for one attempt to publish (time first, then randomness)."""
    return time.strftime("%Y%m%dT%H%M%SZ", time.gmtime()) + "-" + uuid.uuid4().hex[:12]


class CorpusStore:
    """Paths and operations of one store directory (local or a shared mount; not S3)."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        root = str(root)
        if "://" in root:
            raise StoreError(f"store {root!r}: only a local or mounted filesystem path is supported")
        self.root = Path(root).absolute()

    # --- paths ----------------------------------------------------------------------------------
    @property
    def snapshots_dir(self) -> Path:
        return self.root / "snapshots"

    @property
    def data_dir(self) -> Path:
        return self.root / "data"

    @property
    def staging_dir(self) -> Path:
        return self.root / "_staging"

    def manifest_path(self, date: str) -> Path:
        return self.snapshots_dir / f"{check_date(date)}.json"

    def new_staging(self, publish_id: str) -> Path:
        path = self.staging_dir / publish_id
        path.mkdir(parents=True, exist_ok=False)
        return path

    # --- reading --------------------------------------------------------------------------------
    def snapshot_dates(self) -> list[str]:
        """Dates with a published manifest, oldest first."""
        if not self.snapshots_dir.is_dir():
            return []
        return sorted(p.stem for p in self.snapshots_dir.glob("*.json") if _DATE_RE.match(p.stem))

    def read_manifest(self, date: str) -> dict[str, Any] | None:
        path = self.manifest_path(date)
        try:
            with open(path, encoding="utf-8") as fh:
                manifest = json.load(fh)
        except FileNotFoundError:
            return None
        except (OSError, json.JSONDecodeError) as exc:
            raise StoreError(f"cannot read manifest {path}: {exc}") from None
        if manifest.get("format") != MANIFEST_FORMAT:
            raise StoreError(f"manifest {path}: unknown format {manifest.get('format')!r}")
        return manifest

    def latest_before(self, date: str) -> dict[str, Any] | None:
        """The newest published snapshot strictly older than ``date``: the base of an update."""
        check_date(date)
        earlier = [d for d in self.snapshot_dates() if d < date]
        return self.read_manifest(earlier[-1]) if earlier else None

    def resolve(self, manifest: dict[str, Any], key: str) -> Path:
        """Absolute path of a manifest's relative ``corpus_path``/``labels_path``."""
        return self.root / manifest[key]

    # --- publishing -----------------------------------------------------------------------------
    def publish(self, date: str, staged: Path, manifest: dict[str, Any]) -> Path:
        """Move a staged snapshot into place and commit it by replacing the manifest atomically.

        ``staged`` must contain ``corpus/`` and ``labels/``; ``manifest`` gets the final relative
        paths filled in. Returns the manifest path. The previous data folder of the same date is
        removed only after the new manifest is in place.
        """
        check_date(date)
        publish_id = manifest["publish_id"]
        for part in ("corpus", "labels"):
            if not (staged / part).is_dir():
                raise StoreError(f"staged snapshot {staged} has no {part}/ folder")
        target = self.data_dir / date / publish_id
        target.parent.mkdir(parents=True, exist_ok=True)
        os.rename(staged, target)  # same filesystem: atomic, and the data is invisible until the manifest
        rel = target.relative_to(self.root)
        manifest = {**manifest, "corpus_path": str(rel / "corpus"), "labels_path": str(rel / "labels")}
        self.snapshots_dir.mkdir(parents=True, exist_ok=True)
        final = self.manifest_path(date)
        tmp = self.snapshots_dir / f".{date}.json.{publish_id}.tmp"
        with open(tmp, "w", encoding="utf-8") as fh:
            json.dump(manifest, fh, indent=2, sort_keys=True)
            fh.write("\n")
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, final)
        _fsync_dir(self.snapshots_dir)
        for old in (self.data_dir / date).iterdir():  # earlier publishes of the same date
            if old.name != publish_id:
                shutil.rmtree(old, ignore_errors=True)
        return final

    # --- retention ------------------------------------------------------------------------------
    def apply_retention(self, keep: int, *, staging_max_age_s: float = 24 * 3600) -> dict[str, list[str]]:
        """Keep the newest ``keep`` snapshots; drop older ones, orphaned data and stale staging.

        Manifests go first (readers stop seeing a snapshot), then the data they referenced. A
        staging folder is removed only when older than ``staging_max_age_s`` so that a job running
        right now keeps its work area. Returns what was removed, for the log.
        """
        if keep < 1:
            raise StoreError(f"keep must be at least 1, got {keep}")
        removed: dict[str, list[str]] = {"snapshots": [], "data": [], "staging": []}
        dates = self.snapshot_dates()
        for date in dates[:-keep]:
            self.manifest_path(date).unlink(missing_ok=True)
            removed["snapshots"].append(date)
        referenced: set[Path] = set()
        for date in self.snapshot_dates():
            manifest = self.read_manifest(date)
            if manifest:
                referenced.add((self.root / manifest["corpus_path"]).parent)
        if self.data_dir.is_dir():
            for date_dir in sorted(self.data_dir.iterdir()):
                for pub in sorted(date_dir.iterdir()) if date_dir.is_dir() else []:
                    if pub not in referenced and _age_s(pub) > 60:
                        shutil.rmtree(pub, ignore_errors=True)
                        removed["data"].append(str(pub.relative_to(self.root)))
                if date_dir.is_dir() and not any(date_dir.iterdir()):
                    date_dir.rmdir()
        if self.staging_dir.is_dir():
            for stale in sorted(self.staging_dir.iterdir()):
                if _age_s(stale) > staging_max_age_s:
                    shutil.rmtree(stale, ignore_errors=True)
                    removed["staging"].append(stale.name)
        return removed


def manifest_identity(manifest: dict[str, Any]) -> dict[str, Any]:
    """The part of a manifest that must be equal when the same date is published twice."""
    out = {k: v for k, v in manifest.items() if k not in VOLATILE_KEYS}
    out["partitions"] = [{k: v for k, v in p.items() if k != "path"} for p in manifest.get("partitions", [])]
    return out


def _age_s(path: Path) -> float:
    try:
        return time.time() - path.stat().st_mtime
    except OSError:
        return 0.0


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def main(argv: list[str] | None = None) -> int:
    """``python -m jobs.corpus_store retain --store DIR --keep N``: retention without Spark."""
    import argparse
    import logging

    parser = argparse.ArgumentParser(prog="python -m jobs.corpus_store")
    sub = parser.add_subparsers(dest="cmd", required=True)
    ret = sub.add_parser("retain", help="keep the newest N snapshots")
    ret.add_argument("--store", required=True)
    ret.add_argument("--keep", type=int, required=True)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    removed = CorpusStore(args.store).apply_retention(args.keep)
    logging.getLogger("binfeat.corpus_store").info("retention removed %s", json.dumps(removed))
    return 0


if __name__ == "__main__":
    import sys

    sys.exit(main(sys.argv[1:]))
