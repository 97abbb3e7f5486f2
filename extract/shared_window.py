"""The window buffer the extractor and its parser worker share: one memfd, mapped by both.

Why mapped: the extractor copies a window's bytes in once and the worker takes each file's slice
with one copy, both in user space: ~28 + 24 µs for a 307 KB file, against ~63 + 57 µs through
``pwrite``/``pread``, which copy through the kernel page by page (measured on the full sample
corpus). The memfd has a fixed size (``SIZE``, or the largest file an extractor reads whole when
that is larger; sparse: only the pages a window wrote hold memory), so each side maps it once.
Pages are allocated with ``fallocate`` before a content is copied into them (only pages no window
has held yet: it costs ~0.2 µs a page even for held ones): a machine out of memory is an error the
extractor turns into bytes sent inline, never a ``SIGBUS`` in the middle of a copy. Pages written
stay for the next window (writing into pages already there costs half as much as into fresh ones)
unless a window uses less than half of them: then the pages past its end are given back
(``MADV_REMOVE``), so the buffer holds at most about twice the last window.
"""

from __future__ import annotations

import contextlib
import mmap
import os

from extract.file_windows import WINDOW_BYTES

SIZE = WINDOW_BYTES  # the default size: a window holds at most this much read whole (or one larger file)


def _page_ceil(n: int) -> int:
    return -(-n // mmap.PAGESIZE) * mmap.PAGESIZE


class SharedWindow:
    """The extractor's side: writes a window's contents end to end, returns where each one is."""

    def __init__(self, size: int = SIZE) -> None:
        self.size = size  # address space only: pages hold memory once written
        self.fd = os.memfd_create("binfeat-parser-window", os.MFD_CLOEXEC)
        try:
            os.ftruncate(self.fd, size)
            self._map = mmap.mmap(self.fd, size)
        except BaseException:
            os.close(self.fd)
            raise
        self._held = 0  # bytes from the start whose pages are allocated
        self._at = 0  # where the window's next content goes

    def start(self) -> None:
        """Begin a window: the next content goes at the buffer's start."""
        self._at = 0

    def append(self, content: bytes | bytearray | memoryview) -> tuple[int, int] | None:
        """Copy one content after the window's others (best while it is still in the CPU's cache,
        just read); its (offset, length), or None when it does not fit (the buffer is full, or no
        memory for its pages): that one travels inline."""
        with memoryview(content) as view, view.cast("B") as flat:
            n = flat.nbytes
            at = self._at
            if at + n > self.size:
                return None
            if at + n > self._held:  # only pages not yet held (fallocate costs ~0.2 µs a page even then)
                try:
                    os.posix_fallocate(self.fd, self._held, at + n - self._held)
                except OSError:
                    return None
                self._held = at + n
            self._map[at : at + n] = flat
        self._at = at + n
        return at, n

    def finish(self) -> None:
        """End the window (the memory of an earlier, much larger one is given back)."""
        self._give_back(self._at)

    def _give_back(self, end: int) -> None:
        """Free the pages past ``end`` when this window used less than half of those held."""
        if 2 * end >= self._held:
            return
        start = _page_ceil(end)
        with contextlib.suppress(OSError, ValueError):
            self._map.madvise(mmap.MADV_REMOVE, start, _page_ceil(self._held) - start)
        self._held = end

    def close(self) -> None:
        with contextlib.suppress(BufferError, ValueError):
            self._map.close()
        with contextlib.suppress(OSError):
            os.close(self.fd)


class WindowReader:
    """The worker's side: a read-only map of the extractor's window buffer."""

    def __init__(self, fd: int) -> None:
        size = os.fstat(fd).st_size
        self._map = mmap.mmap(fd, size, prot=mmap.PROT_READ) if size else None

    def read(self, offset: int, length: int) -> bytes:
        """One file's bytes (a copy: the extractor overwrites the buffer with its next window)."""
        if self._map is None or offset < 0 or length < 0 or offset + length > len(self._map):
            raise ValueError(f"bytes {offset}..{offset + length} are outside the shared buffer")
        return self._map[offset : offset + length]
