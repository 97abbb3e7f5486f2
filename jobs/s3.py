"""S3 access for the driver (listing) and the executors (fetching), with boto3 only.

No hadoop-aws jar ships with pyspark, so ``s3a://`` is not an option; Python reads the objects.
Credentials come from boto3's standard chain (environment, shared profile, instance role): this
module never takes keys as arguments, so they cannot end up on a command line or in a log.

Fetching overlaps downloads with extraction: :func:`prefetch` keeps a bounded number of objects in
flight on a small thread pool and yields them in input order. Small objects come back as bytes;
large ones are streamed with ranged GETs into a temporary file and handed over as a path, so a big
object is never held twice in memory.

Broken bodies: botocore retries a request only until its response headers arrive; a connection
that breaks while the body streams is the caller's to retry. Every body read here goes through
:class:`ObjectReader`: each logical read (an object's first GET, each later range) gets the
client's attempt budget (botocore's ``total_max_attempts``, the budget it gives one request), and
a broken body is resumed at the first byte not yet received, after a back-off with full jitter,
uniform in [0, min(BACKOFF_CAP_S, BACKOFF_BASE_S * 2**(retry - 1))]. Every GET after an object's
first pins that GET's ETag with If-Match, so a version written in between is never spliced in:
the read fails with "object changed on S3 while it was being read".
"""

from __future__ import annotations

import contextlib
import http.client
import logging
import os
import random
import tempfile
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from functools import cache

SMALL_OBJECT_BYTES = 32 * 1024 * 1024  # up to this, fetch into memory with one GET
RANGE_BYTES = 16 * 1024 * 1024  # ranged GET size when streaming a large object to disk
READ_CHUNK_BYTES = 256 * 1024  # body read size; a chunk cut off mid-way is asked for again
MAX_RETRIES = 10  # botocore's Config max_attempts (retries): 11 attempts per request in all
BACKOFF_BASE_S = 0.2  # a body cut off is a network blip, not throttling: retry soon ...
BACKOFF_CAP_S = 10.0  # ... but spread the retries of many readers over up to 10 s
CHANGED = "object changed on S3 while it was being read"

log = logging.getLogger(__name__)

_clients: dict[str | None, object] = {}
_clients_lock = threading.Lock()


class S3UriError(ValueError):
    """An ``s3://`` URI without a bucket."""


class S3ReadError(Exception):
    """An object could not be read; the message is the one line an error row carries."""


class ObjectChanged(S3ReadError):
    """A later GET saw another ETag (or size) than the object's first GET."""

    def __init__(self) -> None:
        super().__init__(CHANGED)


def is_s3(spec: str) -> bool:
    return spec.startswith("s3://")


def split_s3(uri: str) -> tuple[str, str]:
    """``s3://bucket/key`` -> (bucket, key); raises S3UriError on a URI without a bucket."""
    rest = uri[len("s3://") :]
    bucket, _, key = rest.partition("/")
    if not bucket:
        raise S3UriError(f"bad S3 URI {uri!r}: expected s3://bucket/prefix")
    return bucket, key


def s3_client(endpoint_url: str | None = None, *, max_pool_connections: int = 16):
    """A boto3 S3 client (thread-safe), cached per process and endpoint.

    Standard retries (MAX_RETRIES after the first attempt, unless botocore's own
    ``AWS_MAX_ATTEMPTS`` sets the total) ride out throttling and transient errors; the body reads
    here use the same budget. The credential chain is boto3's own. Set
    ``BINFEAT_S3_RETRY_MODE=adaptive`` for client-side rate limiting.
    """
    with _clients_lock:
        client = _clients.get(endpoint_url)
        if client is None:
            import boto3
            from botocore.config import Config

            retries: dict[str, object] = {"mode": os.environ.get("BINFEAT_S3_RETRY_MODE", "standard")}
            if not os.environ.get("AWS_MAX_ATTEMPTS"):
                retries["max_attempts"] = MAX_RETRIES
            config = Config(
                retries=retries,
                max_pool_connections=max_pool_connections,
                connect_timeout=10,
                read_timeout=60,
            )
            # A session per client: boto3 sessions are not thread-safe, clients are.
            client = boto3.session.Session().client("s3", endpoint_url=endpoint_url, config=config)
            _clients[endpoint_url] = client
        return client


def attempt_budget(client) -> int:
    """Attempts the client gives one request, first included (botocore's ``total_max_attempts``)."""
    retries = getattr(client.meta.config, "retries", None) or {}
    total = retries.get("total_max_attempts")
    if total is None and retries.get("max_attempts") is not None:
        total = int(retries["max_attempts"]) + 1
    return max(1, int(total or 3))  # 3: botocore's default in standard mode


def list_objects(uri: str, client, *, page_size: int | None = None) -> list[tuple[str, int]]:
    """(uri, size) of every object under ``s3://bucket/prefix``, sorted, "folder" markers skipped.

    Raises S3UriError for a bad URI and botocore's errors as they are.
    """
    bucket, prefix = split_s3(uri)
    paging = {"PageSize": page_size} if page_size else {}
    pages = client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix, PaginationConfig=paging)
    out = []
    for page in pages:
        for obj in page.get("Contents", []):
            key = obj["Key"]
            if key.endswith("/") and obj["Size"] == 0:
                continue
            out.append((f"s3://{bucket}/{key}", int(obj["Size"])))
    return sorted(out)


# --- reading bodies ------------------------------------------------------------------------------


@cache
def _body_errors() -> tuple[type[BaseException], ...]:
    """What a body read raises when the connection breaks (not a checksum mismatch: that is final)."""
    from botocore.exceptions import IncompleteReadError, ReadTimeoutError, ResponseStreamingError
    from urllib3.exceptions import HTTPError

    return (ResponseStreamingError, IncompleteReadError, ReadTimeoutError, HTTPError,
            http.client.HTTPException, OSError)  # fmt: skip


def _drain(body, sink: Callable[[bytes], object]) -> tuple[int, BaseException | None]:
    """Feed the body to sink chunk by chunk: (bytes fed, the error that broke it off or None).

    Only the body read is guarded: an error of the sink (a full disk) propagates as it is.
    """
    fed = 0
    try:
        while True:
            try:
                chunk = body.read(READ_CHUNK_BYTES)
            except _body_errors() as exc:
                return fed, exc
            if not chunk:
                return fed, None
            sink(chunk)
            fed += len(chunk)
    finally:
        with contextlib.suppress(Exception):
            body.close()


def _content_range(resp: dict) -> tuple[int | None, int | None]:
    """(first byte, total size) from ``Content-Range: bytes 0-99/1234``; None where absent."""
    cr = resp.get("ContentRange") or ""
    unit_range, _, total = cr.partition("/")
    first = unit_range.rpartition(" ")[2].partition("-")[0]
    return (int(first) if first.isdigit() else None, int(total) if total.isdigit() else None)


class ObjectReader:
    """Byte ranges of one version of one object, each read resumed after a broken body.

    ``etag`` and ``size`` are those of the object's first GET; ``retries`` counts resumed GETs;
    ``sleep`` waits out the back-off (a test passes its own to check the delays).
    """

    def __init__(self, client, bucket: str, key: str, *, sleep: Callable[[float], object] = time.sleep) -> None:
        self.client, self.bucket, self.key = client, bucket, key
        self.budget = attempt_budget(client)
        self.etag: str | None = None
        self.size: int | None = None
        self.retries = 0
        self._sleep = sleep
        self._seen = False  # has a GET of this object answered yet?

    def read(self, start: int, end: int | None, sink: Callable[[bytes], object]) -> int:
        """Feed bytes ``start..end`` (inclusive; None: to the object's end) to sink, in order, once.

        Returns the position after the last byte fed. Raises S3ReadError (ObjectChanged for a new
        version) or botocore's error for a GET that botocore gave up on.
        """
        pos = start
        attempt = 1
        while True:
            resp = self._get(pos, end)
            fed, broke = _drain(resp["Body"], sink)
            pos += fed
            ends = [e for e in (end, None if self.size is None else self.size - 1) if e is not None]
            if broke is None or (ends and pos > min(ends)):  # done, or broken after the last byte
                return pos
            if attempt >= self.budget:
                raise S3ReadError(f"S3 read failed after {attempt} attempts: {_one_line(broke)}") from broke
            delay = random.uniform(0.0, min(BACKOFF_CAP_S, BACKOFF_BASE_S * 2 ** (attempt - 1)))
            log.warning("s3://%s/%s: body broke off at byte %d (%s); attempt %d of %d in %.2f s",
                        self.bucket, self.key, pos, type(broke).__name__, attempt + 1, self.budget, delay)  # fmt: skip
            self._sleep(delay)
            attempt += 1
            self.retries += 1

    def _get(self, pos: int, end: int | None) -> dict:
        args: dict[str, object] = {"Bucket": self.bucket, "Key": self.key}
        ranged = pos > 0 or end is not None
        if ranged:
            args["Range"] = f"bytes={pos}-{'' if end is None else end}"
        if self.etag:
            args["IfMatch"] = self.etag
        resp = self.client.get_object(**args)
        first, total = _content_range(resp)
        if total is None and first is None:
            total = int(resp["ContentLength"]) if pos == 0 and resp.get("ContentLength") is not None else None
        etag = resp.get("ETag")
        if not self._seen:
            self._seen, self.etag, self.size = True, etag, total
        elif (etag and self.etag and etag != self.etag) or (None not in (total, self.size) and total != self.size):
            resp["Body"].close()  # an endpoint that ignores If-Match still cannot splice two versions
            raise ObjectChanged()
        if ranged and (first if first is not None else 0) != pos:
            resp["Body"].close()  # a whole object when a range was asked for: bytes would repeat
            raise S3ReadError(f"S3 endpoint answered bytes from {first or 0} when asked for {pos}: Range ignored")
        return resp


def read_object(uri: str, client) -> bytes:
    """The whole object in memory, read like :func:`fetch` reads; raises S3ReadError with one line."""
    try:
        bucket, key = split_s3(uri)
        chunks: list[bytes] = []
        ObjectReader(client, bucket, key).read(0, None, chunks.append)
    except Exception as exc:
        raise S3ReadError(_error_text(exc)) from None
    return b"".join(chunks)


# --- fetching for extraction ---------------------------------------------------------------------


@dataclass
class Fetched:
    """One fetched object: ``content`` (small) or ``local_path`` (a temp file to delete), or ``error``.

    ``retries`` counts the GETs that resumed a body cut off mid-way.
    """

    uri: str
    content: bytes | None = None
    local_path: str | None = None
    error: str | None = None
    retries: int = 0

    def cleanup(self) -> None:
        if self.local_path:
            with contextlib.suppress(OSError):
                os.unlink(self.local_path)
            self.local_path = None


def _code(exc: BaseException) -> str | None:
    response = getattr(exc, "response", None)
    return response.get("Error", {}).get("Code") if isinstance(response, dict) else None


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


def _error_text(exc: BaseException) -> str:
    if isinstance(exc, (S3ReadError, S3UriError)):
        return str(exc)
    code = _code(exc)
    if code in ("PreconditionFailed", "412"):
        return CHANGED
    if code in ("NoSuchKey", "404", "NotFound"):
        return "object vanished: not found on S3"
    if code in ("AccessDenied", "403"):
        return "access denied by S3"
    return f"S3 read failed: {_one_line(exc)}"


def _env_bytes(name: str, default: int) -> int:
    value = os.environ.get(name)
    return int(value) if value and value.isdigit() and int(value) > 0 else default


class _Destination:
    """Where an object's bytes go: memory first, a temporary file once the object proves large."""

    def __init__(self, tmp_dir: str | None) -> None:
        self.tmp_dir = tmp_dir
        self.chunks: list[bytes] = []
        self.nbytes = 0
        self.path: str | None = None
        self._fh = None

    def write(self, chunk: bytes) -> None:
        if self._fh is None:
            self.chunks.append(chunk)
        else:
            self._fh.write(chunk)
        self.nbytes += len(chunk)

    def spill(self) -> None:
        fd, self.path = tempfile.mkstemp(prefix="binfeat-s3-", dir=self.tmp_dir)
        self._fh = os.fdopen(fd, "wb")
        for chunk in self.chunks:
            self._fh.write(chunk)
        self.chunks = []

    def take_path(self) -> str:
        self._fh.close()  # type: ignore[union-attr]
        path, self.path = self.path, None
        return path  # type: ignore[return-value]

    def discard(self) -> None:
        if self._fh is not None:
            self._fh.close()
        if self.path:
            with contextlib.suppress(OSError):
                os.unlink(self.path)
        self.chunks = []


def fetch(uri: str, client, *, small_bytes: int | None = None, tmp_dir: str | None = None) -> Fetched:
    """Fetch one object; never raises (errors come back in ``Fetched.error``).

    The first GET asks for the first ``small_bytes`` (env ``BINFEAT_S3_SMALL_OBJECT_BYTES``); if
    that was the whole object it stays in memory, otherwise the rest follows in ranges of
    ``BINFEAT_S3_RANGE_BYTES`` into a temporary file. Every read resumes a broken body (see the
    module docstring), pinned to the first GET's ETag.
    """
    small_bytes = small_bytes or _env_bytes("BINFEAT_S3_SMALL_OBJECT_BYTES", SMALL_OBJECT_BYTES)
    range_bytes = _env_bytes("BINFEAT_S3_RANGE_BYTES", RANGE_BYTES)
    reader: ObjectReader | None = None
    dest = _Destination(tmp_dir)
    try:
        bucket, key = split_s3(uri)
        reader = ObjectReader(client, bucket, key)
        try:
            reader.read(0, small_bytes - 1, dest.write)
        except Exception as exc:
            if _code(exc) != "InvalidRange" or dest.nbytes:
                raise
            reader.read(0, None, dest.write)  # an empty object: any range is unsatisfiable
        if reader.size is None or reader.size <= dest.nbytes:
            return Fetched(uri, content=b"".join(dest.chunks), retries=reader.retries)
        dest.spill()
        pos = dest.nbytes
        while pos < reader.size:
            end = min(pos + range_bytes, reader.size) - 1
            pos = reader.read(pos, end, dest.write)
            if pos != end + 1:
                raise S3ReadError(f"S3 read failed: range ended at byte {pos}, expected {end + 1}")
        return Fetched(uri, local_path=dest.take_path(), retries=reader.retries)
    except Exception as exc:
        return Fetched(uri, error=_error_text(exc), retries=reader.retries if reader else 0)
    finally:
        dest.discard()


def prefetch(
    uris: Iterable[str],
    endpoint_url: str | None = None,
    *,
    threads: int = 4,
    max_in_flight: int = 8,
    tmp_dir: str | None = None,
) -> Iterator[Fetched]:
    """Yield fetched objects in input order while up to ``max_in_flight`` downloads run ahead.

    Bounded so a partition of many objects never sits in memory at once; the caller must call
    ``cleanup()`` on each result once extracted (temp files of large objects).
    """
    client = s3_client(endpoint_url, max_pool_connections=max(threads * 2, 10))
    pending: deque[Future[Fetched]] = deque()
    it = iter(uris)
    with ThreadPoolExecutor(max_workers=threads, thread_name_prefix="binfeat-s3") as pool:
        try:
            for uri in it:
                pending.append(pool.submit(fetch, uri, client, tmp_dir=tmp_dir))
                if len(pending) >= max_in_flight:
                    yield pending.popleft().result()
            while pending:
                yield pending.popleft().result()
        finally:
            for fut in pending:  # consumer stopped early: drop what was fetched ahead
                fut.cancel()
                if fut.done() and not fut.cancelled() and fut.exception() is None:
                    fut.result().cleanup()
