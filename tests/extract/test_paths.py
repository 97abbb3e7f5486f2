"""File names that are not UTF-8: the text form of extract.paths, and extraction under such names.

The oracle for the text form is written here from the rule (docs/spark_job.md, "Paths"): a byte-by-
byte UTF-8 validator from RFC 3629's table, not Python's codec that the code under test uses.
"""

from __future__ import annotations

import hashlib
import os
import random
import shutil

import pyarrow as pa
import pytest

import extract
from extract.paths import canonical_path, path_bytes, path_text

ELF = "/bin/ls"


def _utf8_length(data: bytes, i: int) -> int:
    """Length of the valid UTF-8 sequence starting at data[i] (RFC 3629, section 4), 0 if none."""
    b = data[i]
    if b < 0x80:
        return 1
    table = [  # (lead range, range of the 2nd byte, total length)
        ((0xC2, 0xDF), (0x80, 0xBF), 2),
        ((0xE0, 0xE0), (0xA0, 0xBF), 3),
        ((0xE1, 0xEC), (0x80, 0xBF), 3),
        ((0xED, 0xED), (0x80, 0x9F), 3),  # no surrogates
        ((0xEE, 0xEF), (0x80, 0xBF), 3),
        ((0xF0, 0xF0), (0x90, 0xBF), 4),
        ((0xF1, 0xF3), (0x80, 0xBF), 4),
        ((0xF4, 0xF4), (0x80, 0x8F), 4),  # up to U+10FFFF
    ]
    for (lo, hi), (lo2, hi2), n in table:
        if lo <= b <= hi:
            if i + n > len(data) or not lo2 <= data[i + 1] <= hi2:
                return 0
            return n if all(0x80 <= c <= 0xBF for c in data[i + 2 : i + n]) else 0
    return 0


def reference_text(data: bytes) -> str:
    out, i = [], 0
    while i < len(data):
        n = _utf8_length(data, i)
        if n == 0:
            out.append(f"\\x{data[i]:02x}")
            i += 1
        else:
            ch = data[i : i + n].decode("utf-8")
            out.append("\\\\" if ch == "\\" else ch)
            i += n
    return "".join(out)


def _samples() -> list[bytes]:
    rng = random.Random(20261201)
    fixed = [b"", b"plain.exe", b"bad\xff.bin", b"a\\b", b"a\\x41", b"\\\\", b"caf\xc3\xa9", b"\xc3", b"\xc3(",
             b"\xed\xa0\x80", b"\xef\xbf\xbf", b"\xf4\x8f\xbf\xbf", b"\xf4\x90\x80\x80", b"\xc0\xaf", b"\xe2\x82",
             b"\xf0\x9f\x98\x80x", bytes(range(1, 256))]
    alphabet = [b"a", b"\\", b"x", b"4", b"\xc3", b"\xa9", b"\xff", b"\xe2\x82\xac", b"\xed", b"\xf0", b"\x9f", b"/"]
    randoms = [b"".join(rng.choice(alphabet) for _ in range(rng.randrange(1, 12))) for _ in range(3000)]
    return fixed + randoms + [bytes(rng.randrange(256) for _ in range(20)) for _ in range(1000)]


@pytest.mark.parametrize("chunk", range(4))
def test_text_form_follows_the_rule_and_round_trips(chunk):
    samples = _samples()[chunk::4]
    for raw in samples:
        text = path_text(raw)
        assert text == reference_text(raw), raw
        assert path_bytes(text) == raw, raw
        # the surrogate-escaped str that os.listdir() gives for the same name has the same text form
        assert path_text(raw.decode("utf-8", "surrogateescape")) == text
        text.encode("utf-8")  # always valid text (Arrow, JSON, Parquet take it)


def test_unambiguous_and_exact():
    assert path_text(b"bad\xff.bin") == "bad\\xff.bin"
    assert path_text(b"bad\\xff.bin") == "bad\\\\xff.bin"  # a name that LOOKS like an escape stays apart
    assert path_bytes("bad\\xff.bin") == b"bad\xff.bin" and path_bytes("bad\\\\xff.bin") == b"bad\\xff.bin"
    assert path_text(b"/corpus/ab/plain.dll") == "/corpus/ab/plain.dll"  # ordinary names are their own form
    assert path_bytes("A\\x41\\xFF") == b"AA\xff"  # either case of hex digits; a non-canonical form reads fine
    assert canonical_path("A\\x41") == "AA" and canonical_path(b"\xff") == "\\xff"
    assert path_bytes(b"raw\xff") == b"raw\xff"  # bytes are already a real name
    assert path_bytes("bad\udcff.bin") == b"bad\xff.bin"  # Python's surrogate escapes are understood


@pytest.mark.parametrize("text", ["a\\b", "trailing\\", "\\x4", "\\X41", "\ud800", "\udc41"])
def test_malformed_text_is_an_error(text):
    with pytest.raises(ValueError, match="malformed path text"):
        path_bytes(text)
    canonical_path(text).encode("utf-8")  # kept for an error row, and still valid text


@pytest.fixture
def odd_names(tmp_path):
    """Real files whose names are not UTF-8, hold a backslash, or are plain; name bytes -> content."""
    base = os.fsencode(tmp_path)
    files = {
        b"good.bin": open(ELF, "rb").read(),
        b"bad\xff.bin": open(ELF, "rb").read(),
        b"caf\xe9-latin1.exe": b"MZ" + bytes(300),
        b"back\\slash.bin": b"\x7fELF" + bytes(100),
        b"looks\\x41like.bin": b"plain text, not an escape\n",
    }
    for name, data in files.items():
        with open(os.path.join(base, name), "wb") as f:
            f.write(data)
    return {os.path.join(base, n): d for n, d in files.items()}


def test_extract_file_and_batch_open_the_right_bytes(odd_names):
    names = sorted(odd_names)
    texts = [path_text(n) for n in names]
    assert len(set(texts)) == len(texts)
    by_content = extract.extract_batch(
        pa.record_batch({"path": pa.array(texts), "content": pa.array([odd_names[n] for n in names], pa.binary())})
    ).to_pylist()
    batch = extract.extract_batch(pa.record_batch({"path": pa.array(texts)})).to_pylist()
    for name, text, from_bytes, row in zip(names, texts, by_content, batch, strict=True):
        one = extract.extract_file(text)
        raw = extract.extract_file(name)  # the name's bytes work too
        assert row["path"] == one["path"] == raw["path"] == text
        assert row["status"] != "error" and row["sha256"] == hashlib.sha256(odd_names[name]).hexdigest(), text
        # the same row as extracting the same bytes given in memory: the file was the one meant
        for key in ("sha256", "md5", "size", "format", "status", "general"):
            assert row[key] == from_bytes[key] == one[key] == raw[key], (text, key)
    assert {r["format"] for r in batch} == {"elf", "pe", "unknown"}


def test_a_streamed_file_under_an_odd_name_is_parsed_by_the_worker(odd_names):
    """Above whole_read_bytes the parser worker reads the file itself: by the name's bytes."""
    streamed = extract.ExtractOptions(whole_read_bytes=4096, chunk_bytes=4096)
    for name in odd_names:
        row = extract.extract_file(path_text(name), streamed)
        held = extract.extract_file(path_text(name))
        assert row["sha256"] == hashlib.sha256(odd_names[name]).hexdigest()
        for key in ("status", "error", "format", "general", "elf_header"):
            assert row[key] == held[key], (name, key)


def test_a_malformed_text_gets_an_error_row_not_another_file(tmp_path):
    shutil.copyfile(ELF, tmp_path / "a\\b")  # exists under the raw name "a\b", whose text form is "a\\b"
    row = extract.extract_file(f"{tmp_path}/a\\b")  # one backslash: not a text form
    assert row["status"] == "error" and row["error"].startswith("path: malformed path text")
    assert extract.extract_file(f"{tmp_path}/a\\\\b")["status"] == "ok"


def test_error_rows_equal_the_extractors_own(tmp_path):
    missing = os.fsencode(tmp_path) + b"/gone\xfe.bin"
    from_extractor = extract.extract_batch(pa.record_batch({"path": pa.array([path_text(missing)])}))
    built = extract.error_rows([missing], ["read: file not found (deleted or moved after listing?)"])
    assert built.schema.equals(extract.output_schema())
    assert built.to_pylist() == from_extractor.to_pylist()
    assert built.column("path").to_pylist() == [f"{tmp_path}/gone\\xfe.bin"]
    assert extract.error_rows([], []).num_rows == 0
    with pytest.raises(ValueError, match="2 paths but 1 messages"):
        extract.error_rows(["a", "b"], ["x"])
