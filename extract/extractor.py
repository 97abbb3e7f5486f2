"""One file in, one row out, whatever the file: the extractor that every backend calls.

Per file: open without blocking (FIFOs, devices and directories get an error row), read whole or in
chunks (constant memory above ``whole_read_bytes``), hand structural parsing to the isolated worker,
and meanwhile run the byte kernels, the digests and the pattern counts on the same chunks. Rows are
assembled into Arrow with the contract schema. An ``Extractor`` keeps its worker and its compiled
kernels warm across calls.

The parser sees the bytes this process read (a streamed file, too large to hold, it reads itself,
after this process and checked against the same file identity), so byte-level and structural
features always describe one content; a file that changes while it is read gets a row that says so.
"""

from __future__ import annotations

import hashlib
import os
import stat
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import numpy as np
import pyarrow as pa

from extract.formats import HEAD_BYTES, detect_format
from extract.groups import REGISTRY
from extract.groups.bytelevel import ByteContext
from extract.groups.general import general_fields
from extract.isolation import ParserWorker, WorkerFailure, take_prestarted
from extract.kernels import ByteScanner
from extract.paths import canonical_path, path_bytes
from extract.registry import FeatureGroup
from extract.schemes import RowBatch, Scheme
from extract.schemes import get as get_scheme
from extract.version import __version__, feature_version, parser_name
from extract.window_replies import WindowReplies
from extract.worker import Identity, file_identity, handle_request, one_line

T = TypeVar("T")

IDENTITY = [
    ("sha256", pa.string()), ("md5", pa.string()), ("size", pa.int64()), ("path", pa.string()),
    ("format", pa.string()), ("status", pa.string()), ("error", pa.string()),
    ("feature_version", pa.string()), ("binfeat_version", pa.string()), ("parser", pa.string()),
    ("groups", pa.string()),  # the feature groups the run computed, comma-separated, in layout order
]


@dataclass(frozen=True)
class ExtractOptions:
    """Per-file limits and knobs. Defaults suit a corpus of executables on a laptop or a cluster."""

    parse_timeout_s: float = 30.0  # wall-clock limit on one file's structural parse
    memory_limit_mb: int = 2048  # address space one parse may take, above the warm worker's own
    max_structural_bytes: int = 512 << 20  # larger files: byte-level groups only, status partial
    isolate: bool = True  # False: parse in-process (faster to debug; a parser crash kills the caller)
    chunk_bytes: int = 8 << 20  # streaming chunk (a multiple of 1024)
    whole_read_bytes: int = 64 << 20  # files up to this size are read in one go
    # opt-in: TLSH (~175 MB/s) and ssdeep (~375 MB/s) would dominate the per-file cost
    fuzzy_hashes: tuple[str, ...] = ()  # subset of ("tlsh", "ssdeep")
    worker_preload: tuple[str, ...] = field(default=())  # modules the worker imports (custom parsers)
    scheme: str = "binfeat"  # the vector: "binfeat" (every group's own) or "ember2" (EMBER v2's 2,381)
    groups: tuple[str, ...] | None = None  # compute only these feature groups (None: every group)

    def __post_init__(self) -> None:
        if self.parse_timeout_s <= 0:
            raise ValueError(f"parse_timeout_s must be > 0, got {self.parse_timeout_s}")
        if self.memory_limit_mb < 256:
            raise ValueError(f"memory_limit_mb must be >= 256, got {self.memory_limit_mb}")
        if self.chunk_bytes < 1024 or self.chunk_bytes % 1024:
            raise ValueError(f"chunk_bytes must be a positive multiple of 1024, got {self.chunk_bytes}")
        unknown = set(self.fuzzy_hashes) - {"tlsh", "ssdeep"}
        if unknown:
            raise ValueError(f"unknown fuzzy hashes {sorted(unknown)}: choose from tlsh, ssdeep")
        if self.groups is not None:
            object.__setattr__(self, "groups", tuple(self.groups))
        get_scheme(self.scheme, self.groups)  # an unknown scheme or group, or a selection it cannot use


def output_schema(options: ExtractOptions | None = None) -> pa.Schema:
    """The contract: identity columns, one column per (selected) group, then the vector, a
    ``fixed_size_list<float32>`` of the scheme's length; the schema's metadata names the scheme,
    its version, the feature version, the groups and every dimension (``binfeat.*`` keys)."""
    scheme = scheme_of(options)
    fields = [pa.field(n, t) for n, t in IDENTITY]
    fields += [pa.field(name, REGISTRY[name].raw_type) for name in scheme.groups]
    fields.append(pa.field("vector", pa.list_(pa.float32(), scheme.dims)))
    return pa.schema(fields, metadata=scheme.metadata(feature_version()))


def scheme_of(options: ExtractOptions | None = None) -> Scheme:
    o = options or ExtractOptions()
    return get_scheme(o.scheme, o.groups)


def vector_length(options: ExtractOptions | None = None) -> int:
    return scheme_of(options).dims


class _FuzzyHashers:
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


class _ByteState:
    """Everything computed from the bytes while they stream past once (md5 too unless the window
    already computed it with the multi-buffer kernel)."""

    def __init__(self, options: ExtractOptions, md5: bool = True) -> None:
        self.scanner = ByteScanner()
        self.sha256 = hashlib.sha256()
        self.md5 = hashlib.md5() if md5 else None
        self.fuzzy = _FuzzyHashers(options.fuzzy_hashes)

    def update(self, chunk: bytes | bytearray | memoryview, last: bool = False) -> None:
        self.scanner.update(chunk, last)
        self.sha256.update(chunk)
        if self.md5 is not None:
            self.md5.update(chunk)
        self.fuzzy.update(chunk)


class Extractor:
    """Extracts rows; keeps the parser worker and the compiled kernels warm between calls."""

    def __init__(self, options: ExtractOptions | None = None) -> None:
        self.options = options or ExtractOptions()
        self._worker: ParserWorker | None = None
        self._schema = output_schema(self.options)
        self._names = tuple(self._schema.names)  # the row's keys (Schema.names builds a new list per call)
        self._feature_version = feature_version()
        self._parser = parser_name()
        self._scheme = scheme_of(self.options)
        self._vector_len = self._scheme.dims
        groups: list[FeatureGroup] = [REGISTRY[name] for name in self._scheme.groups]
        self._selected = frozenset(self._scheme.groups)
        self._groups_text = ",".join(self._scheme.groups)
        self._byte_groups = [g for g in groups if g.stage == "bytes"]
        # structural groups selected: the parser worker is needed (None in a request: all of them)
        structural = tuple(g.name for g in groups if g.stage == "structure")
        self._parses = bool(structural)
        self._only = None if self.options.groups is None else structural

    @property
    def schema(self) -> pa.Schema:
        return self._schema

    def _parser_worker(self) -> ParserWorker:
        if self._worker is None:
            o = self.options
            limits = {"timeout_s": o.parse_timeout_s, "memory_limit_mb": o.memory_limit_mb, "preload": o.worker_preload}
            self._worker = take_prestarted(**limits) or ParserWorker(**limits)
        return self._worker

    def close(self) -> None:
        if self._worker is not None:
            self._worker.shutdown()
            self._worker = None

    # -- one file ---------------------------------------------------------------------------------

    def extract(self, path: str, content: bytes | None = None) -> dict:
        """One row (a dict of plain column values; ``vector`` as a float32 numpy array or None)."""
        return self.extract_rows([path], [content])[0]

    def _error_row(self, path: str, message: str, **known: Any) -> dict:
        row = dict.fromkeys(self._names)
        row.update(path=path, format="unknown", status="error", error=message,
                   feature_version=self._feature_version, binfeat_version=__version__, parser=self._parser,
                   groups=self._groups_text)
        row.update(known)
        return row

    def _open(self, path: str) -> tuple[int, os.stat_result]:
        # stat first: opening a socket fails with a confusing error, and a FIFO must never be read
        raw = path_bytes(path)  # the path column's text form names these bytes (extract.paths)
        _check_regular(os.stat(raw))
        fd = os.open(raw, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
        try:
            st = os.fstat(fd)  # what was opened, in case the path changed after the stat
            _check_regular(st)
        except OSError:
            os.close(fd)
            raise
        return fd, st

    def _plan(self, path: str, content: bytes | None) -> _Plan | dict:
        """Size and format of one input (an error row when it cannot be read at all)."""
        if content is not None:
            data = bytes(content)
            return self._planned(path, data, len(data), detect_format(data[:HEAD_BYTES]))
        try:
            fd, st = self._open(path)
        except FileNotFoundError:
            return self._error_row(path, "read: file not found (deleted or moved after listing?)")
        except NotRegularFile as exc:
            return self._error_row(path, f"read: {exc}")
        except OSError as exc:
            return self._error_row(path, f"read: {exc.strerror or one_line(exc)}")
        except ValueError as exc:  # a malformed text form, a NUL byte
            return self._error_row(path, f"path: {exc}")
        try:
            head = os.pread(fd, HEAD_BYTES, 0)
        except OSError as exc:
            return self._error_row(path, f"read: {exc.strerror or one_line(exc)}")
        finally:
            os.close(fd)
        return self._planned(path, None, st.st_size, detect_format(head), file_identity(st))

    def _planned(self, path: str, content: bytes | None, size: int, fmt: str,
                 identity: Identity | None = None) -> _Plan:
        o = self.options
        if fmt == "unknown" or not self._parses:  # nothing to parse, or no structural group selected
            return _Plan(path, content, size, fmt, False, identity=identity)
        skip = None
        if size > o.max_structural_bytes:
            skip = f"structure: skipped, file larger than {o.max_structural_bytes} bytes"
        elif size > o.memory_limit_mb << 20:  # the parse could never fit
            skip = f"structure: skipped, file larger than the parser's memory limit ({o.memory_limit_mb} MiB)"
        return _Plan(path, content, size, fmt, skip is None, identity=identity, skip=skip)

    def _read_whole(self, plan: _Plan, redescribe: bool = True) -> None:
        """Read a file of at most ``whole_read_bytes`` into the plan (or keep the error for its row);
        a file that grew past the limit since planning is left to the streaming read. A file replaced
        or rewritten since planning is described anew from the bytes read (before its parse request
        is made; after, when ``redescribe`` is false, its row says it changed)."""
        try:
            fd, st = self._open(plan.path)
        except OSError as exc:
            plan.read_error = exc
            return
        try:
            if st.st_size <= self.options.whole_read_bytes:
                content = _read_all(fd, st.st_size)
                seen = file_identity(st)
                if file_identity(os.fstat(fd)) != seen:
                    raise FileChanged("file changed while it was read; extract it again")
                if seen != plan.identity:
                    if not redescribe:
                        raise FileChanged("file changed between planning and reading; extract it again")
                    now = self._planned(plan.path, None, len(content), detect_format(content[:HEAD_BYTES]), seen)
                    plan.size, plan.format, plan.structural, plan.skip = now.size, now.format, now.structural, now.skip
                    plan.identity = seen
                plan.content = content
        except OSError as exc:
            plan.read_error = exc
        finally:
            os.close(fd)

    def _bytes_of(self, plan: _Plan, bs: _ByteState) -> tuple[int, bytes | None]:
        """Feed every byte-level consumer in one pass: whole, or streamed in chunks above the limit."""
        if plan.content is None and plan.read_error is None and self._held(plan):
            self._read_whole(plan, redescribe=False)  # its window's read failed (e.g. memory): read it now
        if plan.read_error is not None:
            raise plan.read_error
        if plan.content is not None:
            bs.update(plan.content, last=True)
            return len(plan.content), plan.content
        fd, st = self._open(plan.path)
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
                bs.update(buf if n == len(buf) else bytes(view[:n]))
                nbytes += n
            if file_identity(os.fstat(fd)) != seen:
                raise FileChanged("file changed while it was read; extract it again")
            return nbytes, None
        finally:
            os.close(fd)

    def _finish(self, plan: _Plan, replies: WindowReplies | None) -> dict:
        o = self.options
        bs = _ByteState(o, md5=plan.md5 is None)
        try:
            size, whole = self._bytes_of(plan, bs)
        except FileNotFoundError:
            replies and replies.skip(plan.index)
            return self._error_row(plan.path, "read: file not found (deleted or moved after listing?)")
        except (FileChanged, NotRegularFile) as exc:
            replies and replies.skip(plan.index)
            return self._error_row(plan.path, f"read: {exc}")
        except OSError as exc:
            replies and replies.skip(plan.index)
            return self._error_row(plan.path, f"read: {exc.strerror or one_line(exc)}")
        path, fmt = plan.path, plan.format
        raw: dict[str, Any] = {}
        errors: dict[str, str] = {}
        parse_error = unreadable = None
        reply, fatal = self._structure(plan, whole, replies) if plan.structural else (None, None)
        if reply is not None:
            unreadable = reply.get("unreadable")
            if unreadable is None:
                parse_error = reply["parse_error"]
                raw.update(reply["raw"])
                errors.update(reply["errors"])
        scan = bs.scanner.finish()
        ctx = ByteContext(size=size, scan=scan, fuzzy=bs.fuzzy.digests())
        row = dict.fromkeys(self._names)
        md5 = plan.md5 if plan.md5 is not None else bs.md5.hexdigest()
        row.update(sha256=bs.sha256.hexdigest(), md5=md5, size=size, path=path, format=fmt,
                   feature_version=self._feature_version, binfeat_version=__version__, parser=self._parser,
                   groups=self._groups_text)
        for g in self._byte_groups:
            try:
                raw[g.name] = g.compute(ctx)
            except Exception as exc:  # costs only this group
                errors[g.name] = one_line(exc)
        messages = []
        if fatal is not None:
            messages.append(fatal)
        elif plan.skip is not None:
            messages.append(plan.skip)
        elif unreadable is not None:
            messages.append(f"structure: {unreadable}")
        elif parse_error is not None:
            messages.append(f"parse({fmt}): {parse_error}")
        if "general" in self._selected and "general" not in raw and "general" not in errors:
            raw["general"] = general_fields(None, size, fmt)
        for name, value in raw.items():
            if name in self._selected and name not in errors:
                # as computed: Arrow takes numpy arrays and scalars as they are; extract_rows makes
                # the values plain Python
                row[name] = value
        messages += [f"{name}: {msg}" for name, msg in sorted(errors.items())]
        row["status"] = "error" if fatal is not None else "partial" if messages else "ok"
        row["error"] = "; ".join(messages) if messages else None
        return row  # its vector comes with its window's (:meth:`_vectorise`)

    def _vectorise(self, rows: list[dict]) -> None:
        """The scheme's vectors of a window of rows, into one float32 matrix; ``vector`` is None for
        an error row. A block that fails on a row costs only that block (NaN, and the row says why)."""
        matrix, valid, errors = self._scheme.vectorize(RowBatch.from_rows(rows, self._scheme.reads))
        for i, row in enumerate(rows):
            row["vector"] = matrix[i] if valid[i] else None
            if errors[i]:
                row["error"] = "; ".join([row["error"], *errors[i]] if row["error"] else errors[i])
                if row["status"] == "ok":
                    row["status"] = "partial"

    def _structure(self, plan: _Plan, whole: bytes | None,
                   replies: WindowReplies | None) -> tuple[dict | None, str | None]:
        """The parser's reply for a file (from the worker, or in-process), or the worker's failure."""
        if replies is None:
            reply = handle_request(self._request(plan, whole))
            return (None, f"parser ran {reply['fatal']}") if reply.get("fatal") else (reply, None)
        if replies.waiting(plan.index):  # held back until this process had read the file
            replies.provide(plan.index, self._request(plan, whole))
        try:
            return replies.get(plan.index), None
        except WorkerFailure as exc:
            return None, str(exc)

    # -- batches ----------------------------------------------------------------------------------

    def extract_rows(self, paths: Iterable[str], contents: Iterable[bytes | None] | None = None) -> list[dict]:
        """Rows in input order, as plain Python values (``vector`` a float32 numpy array or None)."""
        rows = self._rows(paths, contents)
        byte_groups = {g.name for g in self._byte_groups}
        for row in rows:
            for name in self._scheme.groups:
                if row.get(name) is not None:  # byte groups' arrays become lists; numpy scalars numbers
                    row[name] = _plain(row[name]) if name in byte_groups else _arrays_kept(row[name])
        return rows

    def _rows(self, paths: Iterable[str], contents: Iterable[bytes | None] | None = None) -> list[dict]:
        """Rows in input order (byte groups' counts as numpy arrays). Files go in windows (at most
        WINDOW_FILES files and about WINDOW_BYTES read whole): their structural requests go to the
        parser worker together, so it parses ahead while this process runs the byte kernels, and
        their md5s are computed side by side."""
        paths = [canonical_path(p) for p in paths]
        contents = list(contents) if contents is not None else [None] * len(paths)
        if len(contents) != len(paths):
            raise ValueError(f"{len(paths)} paths but {len(contents)} contents")
        rows: list[dict] = []
        for plans in windows(self._plans(paths, contents), self._held):
            rows += self._window(plans)
        return rows

    def _plans(self, paths: list[str], contents: list[bytes | None]) -> Iterator[_Plan | dict]:
        for p, c in zip(paths, contents, strict=True):
            try:
                yield self._plan(p, c)
            except Exception as exc:  # the contract: one row per file, never an exception
                yield self._error_row(p, f"internal: {one_line(exc)}")

    def _held(self, plan: _Plan | dict) -> int:
        """Bytes an input holds in memory in its window: its size when it is read whole, else 0."""
        return plan.size if isinstance(plan, _Plan) and plan.size <= self.options.whole_read_bytes else 0

    def _read_window(self, plans: list[_Plan | dict]) -> list[_Plan]:
        """Read the window's whole-read files; returns the plans that hold their bytes."""
        held = []
        for plan in plans:
            if isinstance(plan, _Plan):
                if plan.content is None and self._held(plan):
                    try:
                        self._read_whole(plan)
                    except Exception:  # e.g. memory: the file is read again on its own
                        plan.content = None
                if plan.content is not None:
                    held.append(plan)
        return held

    def _requests(self, plans: list[_Plan | dict], held: list[_Plan]) -> WindowReplies | None:
        """The window's parse requests, sent at once for the files whose bytes are held (through the
        shared buffer); a streamed file's waits until this process has read it."""
        structural = [pl for pl in plans if isinstance(pl, _Plan) and pl.structural and pl.read_error is None]
        if not structural:
            return None
        worker = self._parser_worker()
        worker.spawn()  # it starts (imports LIEF) while this process hashes the window
        holding = [pl for pl in structural if pl.content is not None]
        requests: dict[int, dict | None] = dict.fromkeys(pl.index for pl in structural)
        for pl, where in zip(holding, worker.share([pl.content for pl in holding]), strict=True):
            requests[pl.index] = {"format": pl.format, "size": pl.size, "groups": self._only, **where}
        return WindowReplies(worker, requests)

    def _request(self, plan: _Plan, whole: bytes | None) -> dict:
        """A parse request carrying the bytes read, or (a streamed file) the path and the identity
        the worker must find."""
        if whole is not None:
            return {"format": plan.format, "size": plan.size, "groups": self._only, "data": whole}
        return {"format": plan.format, "size": plan.size, "groups": self._only, "path": path_bytes(plan.path),
                "identity": plan.identity}

    def _window(self, plans: list[_Plan | dict]) -> list[dict]:
        for i, plan in enumerate(plans):
            if isinstance(plan, _Plan):
                plan.index = i
        held = self._read_window(plans)
        replies = self._requests(plans, held) if self.options.isolate else None
        try:  # the md5s side by side (multi-buffer kernel) while the worker parses
            if len(held) > 1:  # one file alone: hashlib in the byte pass (the lanes cannot beat it)
                from extract.md5_lanes import md5_many

                for plan, digest in zip(held, md5_many([p.content for p in held]), strict=True):
                    plan.md5 = digest.hex()
        except Exception:  # e.g. memory: each file then hashes on its own
            for plan in held:
                plan.md5 = None
        rows = []
        for plan in plans:
            if isinstance(plan, dict):
                rows.append(plan)
                continue
            try:
                rows.append(self._finish(plan, replies))
            except Exception as exc:  # the contract: one row per file, never an exception
                if replies is not None:
                    replies.skip(plan.index)
                rows.append(self._error_row(plan.path, f"internal: {one_line(exc)}"))
            plan.content = None  # the window's bytes are released file by file
        self._vectorise(rows)
        return rows

    def to_record_batch(self, rows: list[dict]) -> pa.RecordBatch:
        vectors = [r.pop("vector") for r in rows]
        names = [n for n in self._names if n != "vector"]
        arrays = [pa.array([r[n] for r in rows], type=self._schema.field(n).type) for n in names]
        arrays.append(_vector_array(vectors, self._vector_len))
        for r, v in zip(rows, vectors, strict=True):
            r["vector"] = v
        return pa.RecordBatch.from_arrays(arrays, schema=self._schema)

    def extract_batch(self, batch: pa.RecordBatch | pa.Table) -> pa.RecordBatch:
        if "path" not in batch.schema.names:
            raise ValueError("extract_batch needs a 'path' column (string)")
        paths = [p if p is not None else "" for p in batch.column("path").to_pylist()]
        contents = batch.column("content").to_pylist() if "content" in batch.schema.names else None
        return self.to_record_batch(self._rows(paths, contents))


WINDOW_FILES = 256  # files whose parse requests go to the worker in one message
# bytes of whole-read files held at once: the md5 lanes stay busy (about half their capacity on a
# corpus of executables, against a quarter with 64-file windows) while memory stays bounded
WINDOW_BYTES = 64 << 20


def windows(items: Iterable[T], held: Callable[[T], int]) -> Iterator[list[T]]:
    """Consecutive windows of at most WINDOW_FILES items holding at most WINDOW_BYTES (``held`` says
    what each item holds; one larger item gets a window of its own)."""
    window: list[T] = []
    total = 0
    for item in items:
        n = held(item)
        if window and (len(window) >= WINDOW_FILES or total + n > WINDOW_BYTES):
            yield window
            window, total = [], 0
        window.append(item)
        total += n
    if window:
        yield window


@dataclass
class _Plan:
    path: str
    content: bytes | None
    size: int
    format: str
    structural: bool
    index: int = 0
    md5: str | None = None  # computed with the window's other files
    read_error: OSError | None = None  # the whole read failed: the file's row says why
    identity: Identity | None = None  # the file as planned (None for a caller's own content)
    skip: str | None = None  # why structural parsing is skipped (too large), for the row


class NotRegularFile(OSError):
    """The path is a directory, FIFO, socket or device: never read, reported in the row."""


class FileChanged(OSError):
    """The file's identity (inode, size, times) changed while it was read: its bytes are no one
    version of the file."""


def _check_regular(st: os.stat_result) -> None:
    mode = st.st_mode
    if stat.S_ISREG(mode):
        return
    kind = ("directory" if stat.S_ISDIR(mode) else "FIFO" if stat.S_ISFIFO(mode)
            else "socket" if stat.S_ISSOCK(mode) else "device" if (stat.S_ISCHR(mode) or stat.S_ISBLK(mode))
            else "special file")
    raise NotRegularFile(f"not a regular file ({kind})")


def _read_all(fd: int, size: int) -> bytes:
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


def _arrays_kept(value: Any) -> Any:
    """numpy scalars made Python numbers; numpy arrays kept (pyarrow converts them without a list)."""
    if isinstance(value, dict):
        return {k: _arrays_kept(v) for k, v in value.items()}
    if isinstance(value, np.generic):
        return value.item()
    return value


def _plain(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return value


def _vector_array(vectors: list[np.ndarray | None], length: int) -> pa.Array:
    """The vectors as one fixed_size_list<float32>[length] column (null for error rows), copied once."""
    values = np.zeros((len(vectors), length), dtype=np.float32)
    for i, v in enumerate(vectors):
        if v is not None:
            values[i] = v
    mask = pa.array([v is None for v in vectors], pa.bool_())
    return pa.FixedSizeListArray.from_arrays(pa.array(values.reshape(-1), pa.float32()), length, mask=mask)


_DEFAULT: dict[ExtractOptions, Extractor] = {}


def extractor_for(options: ExtractOptions | None = None) -> Extractor:
    """The process's extractor for these options (kept warm: worker and kernels)."""
    options = options or ExtractOptions()
    ex = _DEFAULT.get(options)
    if ex is None:
        ex = _DEFAULT[options] = Extractor(options)
    return ex
