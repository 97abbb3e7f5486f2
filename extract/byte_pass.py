"""Everything computed from a file's bytes while they stream past once: the byte kernels' scan,
sha256, md5 (unless the window's multi-buffer kernel already computed it) and the opt-in fuzzy
hashes."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any

from extract.kernels import ByteScanner
from extract.options import ExtractOptions


class FuzzyHashers:
    """The opt-in fuzzy hashers (TLSH, ssdeep), fed the same chunks."""

    def __init__(self, names: Sequence[str]) -> None:
        self._hashers: dict[str, Any] = {}
        if names:
            from extract import fuzzy

            for name in names:
                self._hashers[name] = fuzzy.TlshHasher() if name == "tlsh" else fuzzy.SsdeepHasher()

    def update(self, chunk: Any) -> None:
        for h in self._hashers.values():
            h.update(chunk)

    def digests(self) -> dict[str, str | None]:
        return {name: h.hexdigest() for name, h in self._hashers.items()}


class ByteState:
    """The byte-level consumers of one file, fed chunk by chunk."""

    def __init__(self, options: ExtractOptions, md5: bool = True) -> None:
        self.scanner = ByteScanner()
        self.sha256 = hashlib.sha256()
        self.md5 = hashlib.md5() if md5 else None
        self.fuzzy = FuzzyHashers(options.fuzzy_hashes)

    def update(self, chunk: bytes | bytearray | memoryview, last: bool = False) -> None:
        self.scanner.update(chunk, last)
        self.sha256.update(chunk)
        if self.md5 is not None:
            self.md5.update(chunk)
        self.fuzzy.update(chunk)
