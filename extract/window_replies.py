"""The parser worker's replies for one window of files, read in input order, one failed row per fault."""

from __future__ import annotations

import collections
import contextlib
import time

from extract.isolation import ParserWorker, WorkerFailure


class WindowReplies:
    """The parser worker's replies for one window of files, read in input order.

    A file's request goes out once the extractor holds the bytes the parser is to see: the window's
    whole-read files together (so the worker parses ahead while this process runs the byte kernels),
    a streamed file's (``None`` until then) when :meth:`provide` gives it, after the extractor's own
    read. A file's time limit runs from the moment the worker started it, and is never less than
    ``timeout_s`` after the previous reply was taken. When the worker dies or hangs on a file, that
    file gets the failure and every file sent after the last reply taken, except it, goes to a fresh
    worker: those before it (their replies went down with the worker) and those after it.
    """

    def __init__(self, worker: ParserWorker, requests: dict[int, dict | None]) -> None:
        self._worker = worker
        self._requests = requests
        self._order = sorted(requests)
        self._pos = 0  # next reply to read, as a position in _order
        self._inflight: collections.deque[int] = collections.deque()  # sent to the current worker, unread
        self._failed: dict[int, WorkerFailure] = {}  # files at fault whose turn has not come yet
        self._mark = 0.0

    def _send(self) -> None:
        """Send from the next reply up to the first request not yet provided (files at fault left out)."""
        batch = []
        for i in self._order[self._pos :]:
            if i in self._failed:
                continue
            if self._requests[i] is None:
                break
            batch.append(i)
        if not batch:
            raise RuntimeError(f"parser request for file {self._order[self._pos]} was never provided")
        self._worker.submit_many([self._requests[i] for i in batch])
        self._inflight = collections.deque(batch)
        self._mark = time.monotonic()

    def waiting(self, index: int) -> bool:
        """Whether the file's request is held back until the extractor has read the file."""
        return index in self._requests and self._requests[index] is None

    def provide(self, index: int, request: dict) -> None:
        """The request of a file held back until the extractor had read it."""
        self._requests[index] = request

    def get(self, index: int) -> dict:
        if self._pos >= len(self._order) or self._order[self._pos] != index:
            raise RuntimeError(f"parser replies read out of order (file {index})")
        while True:
            if index in self._failed:
                self._pos += 1
                raise self._failed.pop(index)
            try:
                if not self._inflight:
                    self._send()
                reply = self._worker.result(self._mark)
            except WorkerFailure as exc:
                # the worker is gone: the file at fault fails, the others are sent again
                at_fault = self._inflight[exc.lost] if exc.lost < len(self._inflight) else index
                self._inflight.clear()
                if at_fault == index:
                    self._pos += 1
                    raise
                self._failed[at_fault] = WorkerFailure(str(exc))
                continue
            self._inflight.popleft()
            self._pos += 1
            self._mark = time.monotonic()
            return reply

    def skip(self, index: int) -> None:
        """Drop a file's reply (its row failed before it was needed), keeping later replies in step."""
        if self._pos < len(self._order) and self._order[self._pos] == index:
            if not self._inflight and index not in self._failed:  # never sent: nothing to read
                self._pos += 1
                return
            with contextlib.suppress(WorkerFailure):
                self.get(index)
