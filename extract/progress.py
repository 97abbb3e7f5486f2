"""How far the parser worker is, shared with the extractor through 16 bytes of shared memory.

The worker answers a few files per message (:mod:`extract.worker`), so when it crashes or hangs the
extractor cannot tell from the replies alone which file did it. Before and after each file the
worker writes its state and the time here; the extractor reads them while it waits. That blames a
crash or a hang on the one file that caused it, and counts a file's time limit from the moment the
worker started it.

State: ``2n + 1`` while the worker parses its file ``n`` (0-based, counted since the process started),
``2n`` once it has finished ``n`` files (sending replies, or reading the next message). The time is
CLOCK_MONOTONIC in nanoseconds, the same clock in both processes. Each field is one aligned 8-byte
store (native ``struct``: a single ``memcpy`` of 8 bytes), and the reader reads the state around the
time until both reads agree, so it never takes one file's state with another's time.
"""

from __future__ import annotations

import contextlib
import mmap
import os
import struct
import time

SIZE = 16
_FIELD = struct.Struct("@q")  # native: one 8-byte store
_STATE_AT, _STAMP_AT = 0, 8


def create() -> int | None:
    """A file descriptor for the channel (a memfd, else an unlinked temporary file), or None."""
    try:
        if hasattr(os, "memfd_create"):
            fd = os.memfd_create("binfeat-parser-progress", os.MFD_CLOEXEC)
        else:  # pragma: no cover - systems without memfd
            import tempfile

            with tempfile.TemporaryFile() as f:
                fd = os.dup(f.fileno())
            os.set_inheritable(fd, False)
        os.ftruncate(fd, SIZE)
        return fd
    except OSError:
        return None


class Progress:
    """One side's view of the channel (the worker writes, the extractor reads and resets)."""

    def __init__(self, fd: int) -> None:
        self._map = mmap.mmap(fd, SIZE)

    def working(self, n: int) -> None:
        """The worker starts its file ``n``."""
        _FIELD.pack_into(self._map, _STAMP_AT, time.monotonic_ns())
        _FIELD.pack_into(self._map, _STATE_AT, 2 * n + 1)

    def finished(self, n: int) -> None:
        """The worker has finished ``n`` files."""
        _FIELD.pack_into(self._map, _STAMP_AT, time.monotonic_ns())
        _FIELD.pack_into(self._map, _STATE_AT, 2 * n)

    def read(self) -> tuple[int, float]:
        """(state, the time it was entered in ``time.monotonic()`` seconds; 0.0 before any)."""
        while True:
            state = _FIELD.unpack_from(self._map, _STATE_AT)[0]
            stamp = _FIELD.unpack_from(self._map, _STAMP_AT)[0]
            if _FIELD.unpack_from(self._map, _STATE_AT)[0] == state:
                return state, stamp / 1e9

    def reset(self) -> None:
        """Before a fresh worker starts: no file started yet."""
        _FIELD.pack_into(self._map, _STATE_AT, 0)
        _FIELD.pack_into(self._map, _STAMP_AT, 0)

    def close(self) -> None:
        with contextlib.suppress(BufferError, ValueError):
            self._map.close()


def working_on(state: int) -> int | None:
    """The file the worker is parsing in this state, or None when it is between files."""
    return (state - 1) // 2 if state % 2 else None
