"""The benchmark's input files: a sample corpus (its manifest) or any folder, subsets, loading.

Every stage measures the same list of :class:`FileEntry`; the stages that hold files in memory
(kernels, structure, EMBER's code) take an evenly spread subset of it (:func:`subset`).
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

IN_MEMORY_BYTES = 1536 << 20  # what the in-memory stages hold at most
IN_MEMORY_BYTES_QUICK = 256 << 20


@dataclass(frozen=True)
class FileEntry:
    """One benchmark input file."""

    path: str
    size: int
    format: str
    kind: str = ""


def corpus_entries(root: Path) -> list[FileEntry]:
    """The files of a sample corpus (manifest.jsonl, files at ROOT/<sha[:2]>/<sha>) or of a plain folder."""
    from extract.formats import HEAD_BYTES, detect_format

    def head(path: Path) -> bytes:
        with open(path, "rb") as f:
            return f.read(HEAD_BYTES)

    manifest = root / "manifest.jsonl"
    out: list[FileEntry] = []
    if manifest.exists():
        for n, line in enumerate(manifest.read_text().splitlines(), 1):
            if not line.strip():
                continue
            rec = json.loads(line)
            sha = rec.get("sha256")
            if not sha:
                raise ValueError(f"{manifest}: line {n} has no sha256")
            path = root / sha[:2] / sha
            # the extractor's own detection decides which parser runs (the manifest's may differ)
            size = int(rec.get("size", path.stat().st_size))
            out.append(FileEntry(str(path), size, detect_format(head(path)), str(rec.get("kind") or "")))
        return out
    for dirpath, _, names in os.walk(root):
        for name in sorted(names):
            p = Path(dirpath) / name
            if not p.is_file() or p.is_symlink():
                continue
            out.append(FileEntry(str(p), p.stat().st_size, detect_format(head(p))))
    out.sort(key=lambda e: e.path)
    return out


def describe(entries: Sequence[FileEntry]) -> dict[str, Any]:
    """Files, bytes, the split by format and the largest file: the report's corpus line."""
    by_fmt: dict[str, dict[str, int]] = {}
    for e in entries:
        d = by_fmt.setdefault(e.format, {"files": 0, "bytes": 0})
        d["files"] += 1
        d["bytes"] += e.size
    return {
        "files": len(entries),
        "bytes": sum(e.size for e in entries),
        "by_format": by_fmt,
        "largest": max(e.size for e in entries),
    }


def subset(entries: Sequence[FileEntry], max_bytes: int) -> list[FileEntry]:
    """An evenly spread subset (every k-th file by size order) of at most ``max_bytes``."""
    if sum(e.size for e in entries) <= max_bytes:
        return list(entries)
    ordered = sorted(entries, key=lambda e: (e.size, e.path))
    for k in range(2, len(ordered) + 1):
        pick = ordered[::k]
        if sum(e.size for e in pick) <= max_bytes:
            return pick
    return ordered[:1]


def in_memory_subset(entries: Sequence[FileEntry], quick: bool) -> list[FileEntry]:
    """The files the in-memory stages (kernels, structure) measure: the same subset for both."""
    return subset(entries, IN_MEMORY_BYTES_QUICK if quick else IN_MEMORY_BYTES)


def load(entries: Sequence[FileEntry]) -> list[bytes]:
    """The files' bytes, in order."""
    out = []
    for e in entries:
        with open(e.path, "rb") as f:
            out.append(f.read())
    return out


def inputs_note(bufs: Sequence[bytes], **extra: Any) -> dict[str, Any]:
    """The ``_inputs`` entry of an in-memory stage's figures: how many files and bytes it held."""
    return {"files": len(bufs), "bytes": sum(len(b) for b in bufs), **extra}
