"""The window buffer the extractor and its parser worker both map: contents in and out exactly, the
memory of a larger window given back, and a window that does not fit sent inline with the same rows."""

from __future__ import annotations

import errno
import os

import pyarrow as pa
import pytest

from extract import shared_window
from extract.extractor import ExtractOptions, Extractor
from extract.shared_window import SharedWindow, WindowReader
from tests.rows import canonical_rows


def _allocated(fd: int) -> int:
    return os.fstat(fd).st_blocks * 512


def _write(window: SharedWindow, contents: list) -> list:
    """A whole window at once, as the extractor writes one: each content's span, or None."""
    window.start()
    spans = [window.append(c) for c in contents]
    window.finish()
    return spans


@pytest.fixture
def window():
    w = SharedWindow()
    yield w
    w.close()


def test_contents_come_out_as_written(window):
    contents = [b"", b"MZ" * 3000, bytearray(range(256)) * 17, memoryview(b"\x7fELF" + bytes(9000))]
    spans = _write(window, contents)
    assert spans == [(0, 0), (0, 6000), (6000, 4352), (10352, 9004)]
    reader = WindowReader(window.fd)
    assert [reader.read(*s) for s in spans] == [bytes(c) for c in contents]
    # the next window overwrites the first: the reader sees the new bytes at the same place
    assert _write(window, [b"x" * 10]) == [(0, 10)]
    assert reader.read(0, 10) == b"x" * 10


def test_a_span_outside_the_buffer_is_refused(window):
    reader = WindowReader(window.fd)
    for offset, length in ((shared_window.SIZE - 4, 5), (-1, 2), (0, -1)):
        with pytest.raises(ValueError, match="outside the shared buffer"):
            reader.read(offset, length)


def test_a_much_smaller_window_gives_back_the_pages_of_a_larger_one(window):
    _write(window, [b"\x01" * (8 << 20)])
    assert _allocated(window.fd) >= 8 << 20
    _write(window, [b"\x02" * (5 << 20)])  # more than half: the pages stay for the next window
    assert _allocated(window.fd) >= 8 << 20
    _write(window, [b"\x03" * 5000])  # less than half: the pages past its end are freed
    assert _allocated(window.fd) <= 64 << 10
    assert WindowReader(window.fd).read(0, 5000) == b"\x03" * 5000


def test_a_content_that_does_not_fit_is_refused_alone(window, monkeypatch):
    half = b"h" * (shared_window.SIZE // 2)
    assert _write(window, [half, half + b"!", b"small"]) == [(0, len(half)), None, (len(half), 5)]

    def no_memory(fd, offset, length):
        raise OSError(errno.ENOMEM, "Cannot allocate memory")

    monkeypatch.setattr(os, "posix_fallocate", no_memory)  # a machine out of memory (not caused here)
    assert _write(window, [b"abc"]) == [(0, 3)]  # pages held since the last window: nothing to allocate
    fresh = SharedWindow()
    try:
        assert _write(fresh, [b"abc"]) == [None]
    finally:
        fresh.close()


def test_windows_sent_inline_give_the_same_rows(fixture_files, monkeypatch):
    """With no room in the buffer every file's bytes travel inline, with the rows of the shared path."""
    paths = [str(p) for p in sorted(fixture_files.values())]
    ex = Extractor(ExtractOptions(fuzzy_hashes=()))
    try:
        shared = canonical_rows(ex.extract_batch(pa.record_batch({"path": paths})))
        monkeypatch.setattr(SharedWindow, "append", lambda self, content: None)
        inline = canonical_rows(ex.extract_batch(pa.record_batch({"path": paths})))
    finally:
        ex.close()
    assert sum(r["format"] != "unknown" and r["status"] == "ok" for r in shared) >= 10
    assert inline == shared


def test_the_buffer_holds_the_largest_file_read_whole(monkeypatch):
    """A file larger than the default buffer, read whole because the options allow it, still goes
    through the buffer: the extractor sizes it by whole_read_bytes (address space only)."""
    from extract import isolation

    big = ExtractOptions(whole_read_bytes=shared_window.SIZE + (16 << 20), fuzzy_hashes=())
    ex = Extractor(big)
    try:
        assert ex._parser_worker().window_bytes == big.whole_read_bytes
        assert ex._parser_worker()._window.size == big.whole_read_bytes
    finally:
        ex.close()
    default = Extractor(ExtractOptions())
    try:
        assert default._parser_worker().window_bytes == shared_window.SIZE
    finally:
        default.close()
    # a prestarted worker whose buffer is too small is not taken
    isolation.prestart()
    assert isolation.take_prestarted(timeout_s=30, memory_limit_mb=1024,
                                     window_bytes=shared_window.SIZE + 1) is None
    isolation.prestart()
    taken = isolation.take_prestarted(timeout_s=30, memory_limit_mb=1024, window_bytes=shared_window.SIZE)
    assert taken is not None
    taken.shutdown()


def test_a_window_larger_than_the_default_is_shared(window):
    large = SharedWindow(shared_window.SIZE + 4096)
    try:
        content = b"\x7fELF" + bytes(shared_window.SIZE)
        assert _write(large, [content]) == [(0, len(content))]
        assert WindowReader(large.fd).read(0, 8) == content[:8]
    finally:
        large.close()
    assert _write(window, [b"\x7fELF" + bytes(shared_window.SIZE)]) == [None]
