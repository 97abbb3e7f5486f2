"""One input file: its plan (size, format, whether to parse it) and its bytes, read whole or streamed.

A file is opened without blocking and only when it is a regular file (FIFOs, devices and
directories get an error row, never a read). Files up to ``whole_read_bytes`` are read in one go;
larger ones are streamed in chunks (constant memory). A file is checked against its identity
(inode, size, times) as planned and while read, so its bytes are one version of the file.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from extract.formats import HEAD_BYTES, detect_format
from extract.options import ExtractOptions
from extract.paths import path_bytes
from extract.worker import Identity, file_identity, one_line


class NotRegularFile(OSError):
    """The path is a directory, FIFO, socket or device: never read, reported in the row."""


class FileChanged(OSError):
    """The file's identity (inode, size, times) changed while it was read: its bytes are no one
    version of the file."""


@dataclass
class FilePlan:
    path: str
    content: bytes | memoryview | None
    size: int
    format: str
    structural: bool
    index: int = 0
    md5: str | None = None  # computed with the window's other files
    read_error: OSError | None = None  # the whole read failed: the file's row says why
    identity: Identity | None = None  # the file as planned (None for a caller's own content)
    skip: str | None = None  # why structural parsing is skipped (too large), for the row


def held_bytes(content: bytes | bytearray | memoryview) -> bytes | memoryview:
    """A caller's content as the file's bytes: bytes as they are, a read-only view (e.g. of an Arrow
    column's buffer, :func:`content_views`) without a copy, anything a caller could still change (a
    bytearray, a writable view) copied, so the bytes hashed are the bytes parsed."""
    if isinstance(content, bytes):
        return content
    if isinstance(content, memoryview) and content.readonly and content.c_contiguous:
        return content if content.format == "B" and content.ndim == 1 else content.cast("B")
    return bytes(content)


def content_views(column: pa.Array | pa.ChunkedArray) -> list[bytes | memoryview | None]:
    """The values of a batch's ``content`` column as read-only views of its buffers, without the copy
    ``to_pylist`` makes (the column is most of such a batch); a column of another type than binary
    as Python values."""
    large = pa.types.is_large_binary(column.type)
    if not (large or pa.types.is_binary(column.type)):
        return column.to_pylist()
    views: list[bytes | memoryview | None] = []
    for chunk in column.chunks if isinstance(column, pa.ChunkedArray) else [column]:
        _, offsets_buffer, data_buffer = chunk.buffers()
        n = len(chunk)
        if n == 0:
            continue
        # the value offsets of this chunk (a slice of an array starts at its offset) into one data buffer
        at = np.frombuffer(offsets_buffer, np.int64 if large else np.int32)[chunk.offset:chunk.offset + n + 1].tolist()
        data = memoryview(data_buffer if data_buffer is not None else b"").cast("B").toreadonly()
        valid = chunk.is_valid().to_pylist() if chunk.null_count else [True] * n
        views += [data[at[i]:at[i + 1]] if valid[i] else None for i in range(n)]
    return views


def read_failure(exc: OSError) -> str:
    """The row's error for a file that could not be read."""
    if isinstance(exc, FileNotFoundError):
        return "read: file not found (deleted or moved after listing?)"
    if isinstance(exc, (FileChanged, NotRegularFile)):
        return f"read: {exc}"
    return f"read: {exc.strerror or one_line(exc)}"


class FilePlanner:
    """Plans and reads files for an extractor's options (``parses``: a structural group is selected)."""

    def __init__(self, options: ExtractOptions, parses: bool) -> None:
        self.options = options
        self.parses = parses

    def plan(self, path: str, content: bytes | None) -> FilePlan | str:
        """Size and format of one input, or the error its row gets when it cannot be read at all."""
        if content is not None:
            data = held_bytes(content)
            return self.describe(path, data, len(data), detect_format(data[:HEAD_BYTES]))
        try:
            fd, st = open_regular(path)
        except OSError as exc:
            return read_failure(exc)
        except ValueError as exc:  # a malformed text form, a NUL byte
            return f"path: {exc}"
        try:
            head = os.pread(fd, HEAD_BYTES, 0)
        except OSError as exc:
            return read_failure(exc)
        finally:
            os.close(fd)
        return self.describe(path, None, st.st_size, detect_format(head), file_identity(st))

    def describe(self, path: str, content: bytes | None, size: int, fmt: str,
                 identity: Identity | None = None) -> FilePlan:
        o = self.options
        if fmt == "unknown" or not self.parses:  # nothing to parse, or no structural group selected
            return FilePlan(path, content, size, fmt, False, identity=identity)
        skip = None
        if size > o.max_structural_bytes:
            skip = f"structure: skipped, file larger than {o.max_structural_bytes} bytes"
        elif size > o.memory_limit_mb << 20:  # the parse could never fit
            skip = f"structure: skipped, file larger than the parser's memory limit ({o.memory_limit_mb} MiB)"
        return FilePlan(path, content, size, fmt, skip is None, identity=identity, skip=skip)

    def held(self, plan: FilePlan | object) -> int:
        """Bytes an input holds in memory in its window: its size when it is read whole, else 0."""
        return plan.size if isinstance(plan, FilePlan) and plan.size <= self.options.whole_read_bytes else 0

    def read_whole(self, plan: FilePlan, redescribe: bool = True) -> None:
        """Read a file of at most ``whole_read_bytes`` into the plan (or keep the error for its row);
        a file that grew past the limit since planning is left to the streaming read. A file replaced
        or rewritten since planning is described anew from the bytes read (before its parse request
        is made; after, when ``redescribe`` is false, its row says it changed)."""
        try:
            fd, st = open_regular(plan.path)
        except OSError as exc:
            plan.read_error = exc
            return
        try:
            if st.st_size <= self.options.whole_read_bytes:
                content = read_all(fd, st.st_size)
                seen = file_identity(st)
                if file_identity(os.fstat(fd)) != seen:
                    raise FileChanged("file changed while it was read; extract it again")
                if seen != plan.identity:
                    if not redescribe:
                        raise FileChanged("file changed between planning and reading; extract it again")
                    now = self.describe(plan.path, None, len(content), detect_format(content[:HEAD_BYTES]), seen)
                    plan.size, plan.format, plan.structural, plan.skip = now.size, now.format, now.structural, now.skip
                    plan.identity = seen
                plan.content = content
        except OSError as exc:
            plan.read_error = exc
        finally:
            os.close(fd)

    def feed(self, plan: FilePlan, update: Callable[..., None]) -> tuple[int, bytes | None]:
        """Feed every byte of the file to ``update(chunk, last=...)`` in one pass, whole or streamed
        in chunks above the limit; returns the size read and the whole content (None: streamed)."""
        if plan.content is None and plan.read_error is None and self.held(plan):
            self.read_whole(plan, redescribe=False)  # its window's read failed (e.g. memory): read it now
        if plan.read_error is not None:
            raise plan.read_error
        if plan.content is not None:
            update(plan.content, last=True)
            return len(plan.content), plan.content
        fd, st = open_regular(plan.path)
        try:
            seen = file_identity(st)
            if plan.identity is not None and seen != plan.identity:
                raise FileChanged("file changed between planning and reading; extract it again")
            nbytes = 0
            buf = bytearray(self.options.chunk_bytes)
            view = memoryview(buf)
            while True:
                n = os.readv(fd, [view])
                if n <= 0:
                    break
                update(buf if n == len(buf) else bytes(view[:n]))
                nbytes += n
            if file_identity(os.fstat(fd)) != seen:
                raise FileChanged("file changed while it was read; extract it again")
            return nbytes, None
        finally:
            os.close(fd)


def open_regular(path: str) -> tuple[int, os.stat_result]:
    """A read-only descriptor of a regular file, and its stat (of what was opened)."""
    # stat first: opening a socket fails with a confusing error, and a FIFO must never be read
    raw = path_bytes(path)  # the path column's text form names these bytes (extract.paths)
    check_regular(os.stat(raw))
    fd = os.open(raw, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    try:
        st = os.fstat(fd)  # what was opened, in case the path changed after the stat
        check_regular(st)
    except OSError:
        os.close(fd)
        raise
    return fd, st


def check_regular(st: os.stat_result) -> None:
    mode = st.st_mode
    if stat.S_ISREG(mode):
        return
    kind = ("directory" if stat.S_ISDIR(mode) else "FIFO" if stat.S_ISFIFO(mode)
            else "socket" if stat.S_ISSOCK(mode) else "device" if (stat.S_ISCHR(mode) or stat.S_ISBLK(mode))
            else "special file")
    raise NotRegularFile(f"not a regular file ({kind})")


def read_all(fd: int, size: int) -> bytes:
    """The whole file from ``fd``, including what was appended since its fstat."""
    parts = []
    got = 0
    while True:
        chunk = os.read(fd, max(size - got, 1 << 16))
        if not chunk:
            break
        parts.append(chunk)
        got += len(chunk)
        if got >= size:
            extra = os.read(fd, 1 << 16)  # the file may have grown since fstat
            if not extra:
                break
            parts.append(extra)
            got += len(extra)
    return parts[0] if len(parts) == 1 else b"".join(parts)
