"""One file in, one row out, whatever the file: the extractor that every backend calls.

Per window of files (:mod:`extract.file_windows`): plan and read each file
(:mod:`extract.file_plans`), send the structural parses to the isolated worker at once, and
meanwhile run the byte kernels, the digests and the pattern counts on the same bytes
(:mod:`extract.byte_pass`); then assemble each file's row and vectorise the window's rows together.
Rows follow the contract schema (:mod:`extract.output_contract`). An ``Extractor`` keeps its worker
and its compiled kernels warm across calls.

The parser sees the bytes this process read (a streamed file, too large to hold, it reads itself,
after this process and checked against the same file identity), so byte-level and structural
features always describe one content; a file that changes while it is read gets a row that says so.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

import pyarrow as pa

from extract.byte_pass import ByteState
from extract.file_plans import FilePlan, FilePlanner, content_views, read_failure
from extract.file_windows import WINDOW_BYTES, windows
from extract.groups import REGISTRY
from extract.groups.bytelevel import ByteContext
from extract.groups.general import general_fields
from extract.isolation import ParserWorker, WorkerFailure, take_prestarted
from extract.options import ExtractOptions
from extract.output_contract import arrays_kept, output_schema, plain, record_batch, scheme_of
from extract.paths import canonical_path, path_bytes
from extract.registry import FeatureGroup
from extract.schemes import RowBatch
from extract.version import NO_PARSER, __version__, feature_version, parser_names
from extract.window_replies import WindowReplies
from extract.worker import handle_request, one_line

__all__ = ["ExtractOptions", "Extractor", "extractor_for", "output_schema", "scheme_of"]


class Extractor:
    """Extracts rows; keeps the parser worker and the compiled kernels warm between calls."""

    def __init__(self, options: ExtractOptions | None = None) -> None:
        self.options = options or ExtractOptions()
        self._worker: ParserWorker | None = None
        self._schema = output_schema(self.options)
        self._names = tuple(self._schema.names)  # the row's keys (Schema.names builds a new list per call)
        self._feature_version = feature_version()
        self._parsers = parser_names()
        self._scheme = scheme_of(self.options)
        groups: list[FeatureGroup] = [REGISTRY[name] for name in self._scheme.groups]
        self._selected = frozenset(self._scheme.groups)
        self._groups_text = ",".join(self._scheme.groups)
        self._byte_groups = [g for g in groups if g.stage == "bytes"]
        # structural groups selected: the parser worker is needed (None in a request: all of them)
        structural = tuple(g.name for g in groups if g.stage == "structure")
        self._parses = bool(structural)
        self._files = FilePlanner(self.options, self._parses)
        self._only = None if self.options.groups is None else structural

    @property
    def schema(self) -> pa.Schema:
        return self._schema

    def _parser_worker(self) -> ParserWorker:
        if self._worker is None:
            o = self.options
            limits = {"timeout_s": o.parse_timeout_s, "memory_limit_mb": o.memory_limit_mb, "preload": o.worker_preload,
                      "window_bytes": max(WINDOW_BYTES, o.whole_read_bytes)}  # a window, or one file read whole
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
                   feature_version=self._feature_version, binfeat_version=__version__, parser=NO_PARSER,
                   groups=self._groups_text)
        row.update(known)
        return row

    def _plan(self, path: str, content: bytes | None) -> FilePlan | dict:
        """Size and format of one input (an error row when it cannot be read at all)."""
        plan = self._files.plan(path, content)
        return self._error_row(path, plan) if isinstance(plan, str) else plan

    def _finish(self, plan: FilePlan, replies: WindowReplies | None) -> dict:
        o = self.options
        bs = ByteState(o, md5=plan.md5 is None)
        try:
            size, whole = self._files.feed(plan, bs.update)
        except OSError as exc:
            replies and replies.skip(plan.index)
            return self._error_row(plan.path, read_failure(exc))
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
        parser = self._parsers.get(fmt, NO_PARSER) if plan.structural else NO_PARSER
        row.update(sha256=bs.sha256.hexdigest(), md5=md5, size=size, path=path, format=fmt,
                   feature_version=self._feature_version, binfeat_version=__version__, parser=parser,
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

    def _structure(self, plan: FilePlan, whole: bytes | None,
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
                    row[name] = plain(row[name]) if name in byte_groups else arrays_kept(row[name])
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
        for plans in windows(self._plans(paths, contents), self._files.held):
            rows += self._window(plans)
        return rows

    def _plans(self, paths: list[str], contents: list[bytes | None]) -> Iterator[FilePlan | dict]:
        for p, c in zip(paths, contents, strict=True):
            try:
                yield self._plan(p, c)
            except Exception as exc:  # the contract: one row per file, never an exception
                yield self._error_row(p, f"internal: {one_line(exc)}")

    def _read_window(self, plans: list[FilePlan | dict]) -> tuple[list[FilePlan], dict[int, dict]]:
        """Read the window's whole-read files; returns the plans that hold their bytes and, for those
        the parser worker is to parse, where it finds them (each copied into the shared buffer right
        after its read, while still in the CPU's cache)."""
        worker = None
        if self.options.isolate and any(isinstance(pl, FilePlan) and pl.structural for pl in plans):
            worker = self._parser_worker()
            worker.share_start()
            worker.spawn()  # it starts (imports LIEF) while this process reads and hashes the window
        held, where = [], {}
        for plan in plans:
            if isinstance(plan, FilePlan):
                if plan.content is None and self._files.held(plan):
                    try:
                        self._files.read_whole(plan)
                    except Exception:  # e.g. memory: the file is read again on its own
                        plan.content = None
                if plan.content is not None:
                    held.append(plan)
                    if worker is not None and plan.structural and plan.read_error is None:
                        where[plan.index] = worker.share_one(plan.content)
        if worker is not None:
            worker.share_end()
        return held, where

    def _requests(self, plans: list[FilePlan | dict], where: dict[int, dict]) -> WindowReplies | None:
        """The window's parse requests, sent at once for the files whose bytes are held (``where``: in
        the shared buffer, or inline); a streamed file's waits until this process has read it."""
        structural = [pl for pl in plans if isinstance(pl, FilePlan) and pl.structural and pl.read_error is None]
        if not structural:
            return None
        requests: dict[int, dict | None] = dict.fromkeys(pl.index for pl in structural)
        for pl in structural:
            if pl.index in where:
                requests[pl.index] = {"format": pl.format, "size": pl.size, "groups": self._only, **where[pl.index]}
        return WindowReplies(self._parser_worker(), requests)

    def _request(self, plan: FilePlan, whole: bytes | None) -> dict:
        """A parse request carrying the bytes read, or (a streamed file) the path and the identity
        the worker must find."""
        if whole is not None:
            return {"format": plan.format, "size": plan.size, "groups": self._only, "data": whole}
        return {"format": plan.format, "size": plan.size, "groups": self._only, "path": path_bytes(plan.path),
                "identity": plan.identity}

    def _window(self, plans: list[FilePlan | dict]) -> list[dict]:
        for i, plan in enumerate(plans):
            if isinstance(plan, FilePlan):
                plan.index = i
        held, where = self._read_window(plans)
        replies = self._requests(plans, where) if self.options.isolate else None
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
        return record_batch(rows, self._schema)

    def extract_batch(self, batch: pa.RecordBatch | pa.Table) -> pa.RecordBatch:
        if "path" not in batch.schema.names:
            raise ValueError("extract_batch needs a 'path' column (string)")
        paths = [p if p is not None else "" for p in batch.column("path").to_pylist()]
        contents = content_views(batch.column("content")) if "content" in batch.schema.names else None
        return self.to_record_batch(self._rows(paths, contents))


_DEFAULT: dict[ExtractOptions, Extractor] = {}


def extractor_for(options: ExtractOptions | None = None) -> Extractor:
    """The process's extractor for these options (kept warm: worker and kernels)."""
    options = options or ExtractOptions()
    ex = _DEFAULT.get(options)
    if ex is None:
        ex = _DEFAULT[options] = Extractor(options)
    return ex
