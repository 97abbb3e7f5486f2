"""The executor side: one planned partition's files in, their feature rows out, in plan order.

Spark runs a :class:`PartitionExtractor` per task (``mapInArrow`` over one id per partition). For
each chunk of the partition's files it decides per file what extract gets (a local path, an S3
object's bytes or its spooled temp file) or why nothing (a symlink not followed, a dangling link,
an S3 read that failed), calls ``extract.extract_batch`` once, adds ``extract.error_rows`` for the
rest, and puts every row back in plan order with its label.

No exception may fail the task (a failed task fails the job after its retries): an unexpected
exception while preparing one file becomes that file's error row, one while building a chunk
becomes error rows for every file of the chunk, each saying ``internal: TYPE: message``.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass

import pyarrow as pa

from jobs.planning import PlanEntry
from jobs.s3 import is_s3
from jobs.warmup import prepare_worker

BATCH_FILES = 256  # files per extract_batch call: amortises the call, fills the md5 lanes
BATCH_BYTES = 64 * 1024 * 1024  # bytes per call when contents are held in memory (S3)


def internal_error(exc: BaseException) -> str:
    """The error text of an unexpected exception: ``internal: TYPE: message`` on one line."""
    text = " ".join(str(exc).split())[:300]
    return f"internal: {type(exc).__name__}: {text}" if text else f"internal: {type(exc).__name__}"


def local_problem(path: str, follow_symlinks: bool) -> str | None:
    """Why a local path must not be handed to extract (None: let extract open it).

    extract itself opens without blocking and turns FIFOs, devices, directories, missing files and
    malformed path texts into error rows; only the symlink policy, and a clearer message for a
    dangling link, are ours.
    """
    from extract.paths import path_bytes

    try:
        raw = path_bytes(path)
    except ValueError:
        return None  # extract says what is wrong with the text
    if not os.path.islink(raw):
        return None
    if not follow_symlinks:
        return "symbolic link not followed (--no-follow-symlinks)"
    if not os.path.exists(raw):
        return "dangling symbolic link"
    return None


def s3_uri(path: str) -> str:
    """The real ``s3://bucket/key`` a path text names (keys are UTF-8: only backslashes differ)."""
    from extract.paths import path_bytes

    try:
        return path_bytes(path).decode("utf-8")
    except UnicodeDecodeError:
        raise ValueError(f"{path!r} names a key that is not UTF-8 (S3 keys always are)") from None


class _Fetcher:
    """S3 objects of a partition in plan order: prefetched ahead, fetched directly once that fails."""

    def __init__(self, uris: list[str], endpoint_url: str | None, threads: int) -> None:
        self._endpoint_url = endpoint_url
        self._ahead = None
        if uris:
            from jobs.s3 import prefetch

            self._ahead = iter(prefetch(uris, endpoint_url, threads=threads))

    def get(self, uri: str):
        """The fetched object for ``uri`` (the next one of the plan order, skipping unclaimed ones)."""
        while self._ahead is not None:
            try:
                item = next(self._ahead)
            except Exception:  # the prefetcher broke (StopIteration too): fetch the rest directly
                self._ahead = None
                break
            if item.uri == uri:
                return item
            item.cleanup()  # fetched for a file whose chunk failed before claiming it
        from jobs.s3 import fetch, s3_client

        return fetch(uri, s3_client(self._endpoint_url))

    def close(self) -> None:
        if self._ahead is not None:
            self._ahead.close()
            self._ahead = None


def chunked(entries: list[PlanEntry], max_files: int, max_bytes: int) -> Iterator[list[PlanEntry]]:
    """Consecutive runs of ``entries`` of at most ``max_files`` files and ``max_bytes`` bytes (a file
    larger than ``max_bytes`` alone): what one ``extract_batch`` call gets."""
    chunk: list[PlanEntry] = []
    nbytes = 0
    for e in entries:
        if chunk and (len(chunk) >= max_files or nbytes + e[1] > max_bytes):
            yield chunk
            chunk, nbytes = [], 0
        chunk.append(e)
        nbytes += e[1]
    if chunk:
        yield chunk


@dataclass
class _Source:
    """What extract gets for one file: a path to open, or in-memory content under that path."""

    path: str
    content: bytes | None = None
    shown_as: str | None = None  # the row's path, when extract reads a temp file instead


@dataclass
class PartitionExtractor:
    """The function Spark runs per partition (pickled once per task; state kept small).

    ``plan`` is a broadcast of ``list[list[PlanEntry]]``; :meth:`rows` gives one partition's rows.
    """

    plan: object  # Broadcast
    options: object
    s3_endpoint_url: str | None
    follow_symlinks: bool
    with_label: bool
    out_schema: pa.Schema
    acc_files: object = None
    acc_bytes: object = None
    acc_mismatch: object = None
    batch_files: int = BATCH_FILES
    batch_bytes: int = BATCH_BYTES
    s3_threads: int = 4

    def __call__(self, batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        prepare_worker(self.options)
        for b in batches:
            for pid in b.column(0).to_pylist():
                yield from self.rows(pid)

    def rows(self, pid: int) -> Iterator[pa.RecordBatch]:
        """Partition ``pid``'s rows in plan order, in batches of at most ``batch_files`` rows."""
        entries = self.plan.value[pid]
        uris = []
        for path, _size, _label, _sha, error in entries:
            if error is None and is_s3(path):
                with contextlib.suppress(ValueError):  # its own step reports it
                    uris.append(s3_uri(path))
        fetcher = _Fetcher(uris, self.s3_endpoint_url, self.s3_threads)
        try:
            for chunk in self._chunks(entries):
                try:
                    table = self._chunk_rows(chunk, fetcher)
                except Exception as exc:  # the whole chunk: an error row per file, never a failed task
                    errors = self._error_rows(chunk, [internal_error(exc)] * len(chunk))
                    table = self._finish(pa.Table.from_batches([errors]), chunk)
                if self.acc_files is not None:
                    self.acc_files.add(len(chunk))
                    self.acc_bytes.add(sum(e[1] for e in chunk))
                yield from table.to_batches(max_chunksize=self.batch_files)
        finally:
            fetcher.close()

    def _chunks(self, entries: list[PlanEntry]) -> Iterator[list[PlanEntry]]:
        return chunked(entries, self.batch_files, self.batch_bytes)

    def failed_rows(self, pid: int, message: str) -> Iterator[pa.RecordBatch]:
        """An error row saying ``message`` for every file of partition ``pid``, in plan order, with labels.

        For a partition whose extraction cannot finish at all (the local engine's pool process died
        on it twice): its files still get their one row each.
        """
        entries = self.plan.value[pid]
        for chunk in self._chunks(entries):
            table = self._finish(pa.Table.from_batches([self._error_rows(chunk, [message] * len(chunk))]), chunk)
            yield from table.to_batches(max_chunksize=self.batch_files)

    def source(self, entry: PlanEntry, fetcher: _Fetcher, fetched: list) -> _Source | str:
        """What extract gets for one file, or the message of its error row."""
        path, _size, _label, _sha, error = entry
        if error is not None:
            return error
        if is_s3(path):
            try:
                uri = s3_uri(path)
            except ValueError as exc:
                return str(exc)
            f = fetcher.get(uri)
            fetched.append(f)
            if f.error is not None:
                return f.error
            if f.local_path:
                return _Source(f.local_path, shown_as=path)
            return _Source(path, content=f.content)
        return local_problem(path, self.follow_symlinks) or _Source(path)

    def _chunk_rows(self, chunk: list[PlanEntry], fetcher: _Fetcher) -> pa.Table:
        import extract

        sources: list[_Source] = []
        ex_pos: list[int] = []
        err_pos: list[int] = []
        err_msgs: list[str] = []
        fetched: list = []
        for pos, entry in enumerate(chunk):
            try:
                got = self.source(entry, fetcher, fetched)
            except Exception as exc:  # this file only
                got = internal_error(exc)
            if isinstance(got, str):
                err_pos.append(pos)
                err_msgs.append(got)
            else:
                ex_pos.append(pos)
                sources.append(got)
        parts: list[pa.Table] = []
        try:
            if sources:
                cols = {"path": pa.array([s.path for s in sources], pa.string())}
                if any(s.content is not None for s in sources):
                    cols["content"] = pa.array([s.content for s in sources], pa.binary())
                out = pa.Table.from_batches([extract.extract_batch(pa.record_batch(cols), self.options)])
                if any(s.shown_as for s in sources):
                    i = out.schema.get_field_index("path")
                    shown = [s.shown_as or p for s, p in zip(sources, out.column(i).to_pylist(), strict=True)]
                    out = out.set_column(i, out.schema.field(i), pa.array(shown, out.schema.field(i).type))
                parts.append(out)
        finally:
            for f in fetched:
                f.cleanup()
        if err_pos:
            parts.append(pa.Table.from_batches([self._error_rows([chunk[p] for p in err_pos], err_msgs)]))
        table = pa.concat_tables(parts) if len(parts) > 1 else parts[0]
        if err_pos:  # error rows were appended after extract's: put every row back in plan order
            positions = ex_pos + err_pos
            order = sorted(range(len(positions)), key=positions.__getitem__)
            table = table.take(pa.array(order, pa.int64()))
        return self._finish(table, chunk)

    def _error_rows(self, entries: list[PlanEntry], messages: list[str]) -> pa.RecordBatch:
        import extract

        return extract.error_rows([e[0] for e in entries], messages, self.options)

    def _finish(self, table: pa.Table, chunk: list[PlanEntry]) -> pa.Table:
        """Count sha256 mismatches with the manifest, add labels, give the output schema."""
        if self.acc_mismatch is not None and any(e[3] for e in chunk):
            got = table.column("sha256").to_pylist()
            bad = sum(1 for e, g in zip(chunk, got, strict=True) if e[3] and g and e[3].lower() != g)
            if bad:
                self.acc_mismatch.add(bad)
        if self.with_label:
            table = table.append_column(pa.field("label", pa.string()), pa.array([e[2] for e in chunk], pa.string()))
        table = table.select(self.out_schema.names)
        # already the contract types (the job's own writer): no per-column cast on every chunk
        return table if table.schema.equals(self.out_schema) else table.cast(self.out_schema)
