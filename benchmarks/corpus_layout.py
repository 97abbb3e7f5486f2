"""The sample corpus on disk: OUT/<sha256[:2]>/<sha256> per file and OUT/manifest.jsonl.

The manifest holds one JSON object a line, keys sorted, lines sorted by sha256, no timestamps: the
same pins give byte-identical manifests. Rebuilding into a populated OUT removes files no longer
listed; files are written through a temporary name, the manifest last.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from benchmarks.corpus_entry import Entry

MANIFEST = "manifest.jsonl"
MANIFEST_KEYS = ("arch", "endian", "format", "kind", "mutation", "origin", "parent", "sha256", "size",
                 "source", "version", "warning")
_SHARDED = re.compile(r"^[0-9a-f]{2}$")
_SHA = re.compile(r"^[0-9a-f]{64}$")


def manifest_text(records: list[dict]) -> str:
    """One JSON object a line, keys sorted, lines sorted by sha256: stable bytes for equal input."""
    lines = sorted((r["sha256"], json.dumps(r, sort_keys=True, separators=(",", ":"))) for r in records)
    return "".join(line + "\n" for _, line in lines)


def write_out(out: Path, entries: list[Entry], manifest: str) -> None:
    """Store files by sha256, drop files of an older corpus, then (atomically) the manifest."""
    out.mkdir(parents=True, exist_ok=True)
    keep = set()
    for e in entries:
        sha = e.sha256
        keep.add(sha)
        path = out / sha[:2] / sha
        if path.exists() and path.stat().st_size == len(e.data):
            continue
        path.parent.mkdir(exist_ok=True)
        tmp = path.with_name(sha + ".tmp")
        tmp.write_bytes(e.data)
        tmp.replace(path)
    for sub in out.iterdir():
        if sub.is_dir() and _SHARDED.match(sub.name):
            for f in sub.iterdir():
                if f.name not in keep and (_SHA.match(f.name) or f.name.endswith(".tmp")):
                    f.unlink()
            if not any(sub.iterdir()):
                sub.rmdir()
    path = out / MANIFEST
    if not path.exists() or path.read_text() != manifest:
        tmp = path.with_name(MANIFEST + ".tmp")
        tmp.write_text(manifest)
        tmp.replace(path)
