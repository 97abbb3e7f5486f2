"""S3 access for the driver (listing) and the executors (fetching), with boto3 only.

No hadoop-aws jar ships with pyspark, so ``s3a://`` is not an option; Python reads the objects.
Credentials come from boto3's standard chain (environment, shared profile, instance role): this
module never takes keys as arguments, so they cannot end up on a command line or in a log.

Fetching overlaps downloads with extraction: :func:`prefetch` keeps a bounded number of objects in
flight on a small thread pool and yields them in input order. Small objects come back as bytes;
large ones are streamed with ranged GETs into a temporary file and handed over as a path, so a big
object is never held twice in memory.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import threading
from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

SMALL_OBJECT_BYTES = 32 * 1024 * 1024  # up to this, fetch into memory with one GET
RANGE_BYTES = 16 * 1024 * 1024  # ranged GET size when streaming a large object to disk

_clients: dict[str | None, object] = {}
_clients_lock = threading.Lock()


def s3_client(endpoint_url: str | None = None, *, max_pool_connections: int = 16):
    """A boto3 S3 client (thread-safe), cached per process and endpoint.

    Standard retries with 10 attempts ride out throttling and transient errors; the credential
    chain is boto3's own. Set ``BINFEAT_S3_RETRY_MODE=adaptive`` for client-side rate limiting.
    """
    with _clients_lock:
        client = _clients.get(endpoint_url)
        if client is None:
            import boto3
            from botocore.config import Config

            mode = os.environ.get("BINFEAT_S3_RETRY_MODE", "standard")
            config = Config(
                retries={"mode": mode, "max_attempts": 10},
                max_pool_connections=max_pool_connections,
                connect_timeout=10,
                read_timeout=60,
            )
            # A session per client: boto3 sessions are not thread-safe, clients are.
            client = boto3.session.Session().client("s3", endpoint_url=endpoint_url, config=config)
            _clients[endpoint_url] = client
        return client


@dataclass
class Fetched:
    """One fetched object: ``content`` (small) or ``local_path`` (a temp file to delete), or ``error``."""

    uri: str
    content: bytes | None = None
    local_path: str | None = None
    error: str | None = None

    def cleanup(self) -> None:
        if self.local_path:
            with contextlib.suppress(OSError):
                os.unlink(self.local_path)
            self.local_path = None


def _code(exc: BaseException) -> str | None:
    response = getattr(exc, "response", None)
    return response.get("Error", {}).get("Code") if isinstance(response, dict) else None


def _error_text(exc: BaseException) -> str:
    code = _code(exc)
    if code in ("PreconditionFailed", "412"):
        return "object changed on S3 while it was being read"
    if code in ("NoSuchKey", "404", "NotFound"):
        return "object vanished: not found on S3"
    if code in ("AccessDenied", "403"):
        return "access denied by S3"
    text = " ".join(str(exc).split()) or type(exc).__name__
    return f"S3 read failed: {text}"


def _env_bytes(name: str, default: int) -> int:
    value = os.environ.get(name)
    return int(value) if value and value.isdigit() and int(value) > 0 else default


def fetch(uri: str, client, *, small_bytes: int | None = None, tmp_dir: str | None = None) -> Fetched:
    """Fetch one object; never raises (errors come back in ``Fetched.error``).

    The first GET asks for the first ``small_bytes`` (env ``BINFEAT_S3_SMALL_OBJECT_BYTES``); if
    that was the whole object it stays in memory, otherwise the rest follows in ranges of
    ``BINFEAT_S3_RANGE_BYTES`` into a temporary file.
    """
    from jobs.inputs import split_s3

    small_bytes = small_bytes or _env_bytes("BINFEAT_S3_SMALL_OBJECT_BYTES", SMALL_OBJECT_BYTES)
    range_bytes = _env_bytes("BINFEAT_S3_RANGE_BYTES", RANGE_BYTES)
    bucket, key = split_s3(uri)
    try:
        head = client.get_object(Bucket=bucket, Key=key, Range=f"bytes=0-{small_bytes - 1}")
        body = head["Body"].read()
        total = _total_size(head, len(body))
        if total <= len(body):
            return Fetched(uri, content=body)
        # Large object: keep the first range on disk and stream the rest range by range, each
        # pinned to the first response's ETag so a concurrent overwrite cannot splice two versions.
        same = {"IfMatch": head["ETag"]} if head.get("ETag") else {}
        fd, tmp = tempfile.mkstemp(prefix="binfeat-s3-", dir=tmp_dir)
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(body)
                del body
                pos = small_bytes
                while pos < total:
                    end = min(pos + range_bytes, total) - 1
                    part = client.get_object(Bucket=bucket, Key=key, Range=f"bytes={pos}-{end}", **same)
                    for chunk in part["Body"].iter_chunks(1024 * 1024):
                        fh.write(chunk)
                    pos = end + 1
        except BaseException:
            os.unlink(tmp)
            raise
        return Fetched(uri, local_path=tmp)
    except Exception as exc:
        if _code(exc) == "InvalidRange":  # an empty object: any range is unsatisfiable
            try:
                return Fetched(uri, content=client.get_object(Bucket=bucket, Key=key)["Body"].read())
            except Exception as exc2:
                return Fetched(uri, error=_error_text(exc2))
        return Fetched(uri, error=_error_text(exc))


def _total_size(resp: dict, got: int) -> int:
    cr = resp.get("ContentRange")  # "bytes 0-99/1234"
    if cr and "/" in cr:
        tail = cr.rsplit("/", 1)[1]
        if tail.isdigit():
            return int(tail)
    return got


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
