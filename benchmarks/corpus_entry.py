"""One file of the sample corpus in the making, and the collection that keeps each content once.

An :class:`Entry` holds a file's bytes and where they came from; its manifest record adds what an
independent sniff of the bytes says (:mod:`benchmarks.corpus_sniff`).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from benchmarks.corpus_sniff import sniff

GENERATED = "binfeat-generated"  # the source of files the builder makes itself (no package)


@dataclass
class Entry:
    data: bytes
    kind: str
    source: str
    version: str
    origin: str
    mutation: str | None = None
    parent: str | None = None
    warning: str | None = None

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()

    def record(self) -> dict:
        s = sniff(self.data)
        return {
            "sha256": self.sha256, "size": len(self.data), "format": s.format, "kind": self.kind,
            "arch": s.arch, "endian": s.endian, "source": self.source, "version": self.version,
            "origin": self.origin, "mutation": self.mutation, "parent": self.parent, "warning": self.warning,
        }


class Collection:
    """Entries deduplicated by content: the first one to claim a sha256 keeps it."""

    def __init__(self) -> None:
        self.entries: dict[str, Entry] = {}

    def add(self, entry: Entry) -> bool:
        sha = entry.sha256
        if sha in self.entries:
            return False
        self.entries[sha] = entry
        return True
