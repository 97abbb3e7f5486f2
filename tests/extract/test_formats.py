"""Format detection from magic bytes, against crafted headers and the sample corpus's manifest."""

from __future__ import annotations

import struct

import pytest

from extract.formats import detect_format
from tests.conftest import corpus_manifest


@pytest.mark.parametrize(("head", "fmt"), [
    (b"MZ", "pe"),
    (b"MZ\x90\x00" + bytes(60), "pe"),
    (b"\x7fELF\x02\x01\x01", "elf"),
    (b"\x7fELF", "elf"),
    (b"\xfe\xed\xfa\xce" + bytes(24), "macho"),  # 32-bit big-endian
    (b"\xce\xfa\xed\xfe" + bytes(24), "macho"),  # 32-bit little-endian
    (b"\xfe\xed\xfa\xcf" + bytes(28), "macho"),  # 64-bit big-endian
    (b"\xcf\xfa\xed\xfe" + bytes(28), "macho"),  # 64-bit little-endian
    (b"\xca\xfe\xba\xbe" + struct.pack(">I", 2) + bytes(40), "macho"),  # fat, 2 slices
    (b"\xca\xfe\xba\xbf" + struct.pack(">I", 3) + bytes(40), "macho"),  # fat64
    (b"\xca\xfe\xba\xbe\x00\x00\x00\x34", "unknown"),  # Java 8 class file (major 52)
    (b"\xca\xfe\xba\xbe\x00\x00\x00\x41", "unknown"),  # Java 21 class file
    (b"\xca\xfe\xba\xbe\x00\x00\x00\x00", "unknown"),  # zero slices
    (b"\xca\xfe\xba\xbe", "unknown"),  # too short to tell
    (b"%PDF-1.7", "unknown"),
    (b"PK\x03\x04", "unknown"),
    (b"", "unknown"),
    (b"M", "unknown"),
    (b"\x7fEL", "unknown"),
])
def test_magic(head, fmt):
    assert detect_format(head) == fmt


@pytest.mark.corpus
def test_detection_matches_the_corpus_manifest(small_corpus):
    """The corpus builder sniffs formats with its own code; the two must agree on every file."""
    records = corpus_manifest()
    assert len(records) > 100
    disagreements = []
    for rec in records:
        path = small_corpus / rec["sha256"][:2] / rec["sha256"]
        with open(path, "rb") as f:
            got = detect_format(f.read(64))
        if got != rec["format"]:
            disagreements.append((rec["sha256"], rec.get("kind"), rec["format"], got))
    assert disagreements == []
