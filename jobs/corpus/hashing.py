"""A night's candidates: the day's inputs with their sha256, hashed on the executors (or, on the
local engine, in threads of the driver).

A manifest's sha256 is trusted (lower-cased); other files are hashed where they are read (local
file or S3 object), so the driver never reads the corpus and already-known files are skipped
before extraction. One streamed read per file; SHA-NI makes it cheap.
"""

from __future__ import annotations

import functools
import hashlib
import os
import stat
from dataclasses import dataclass


@dataclass(frozen=True)
class Candidate:
    """A file the night may extract: where it is, its size and sha256, and its ingest date."""

    path: str
    size: int
    sha256: str
    ingest_date: str
    stale: bool = False  # in the store with another feature version only: re-extracted


def sha256_of(path: str, s3_endpoint_url: str | None = None) -> tuple[str | None, str | None]:
    """(sha256, None) or (None, why)."""
    from jobs.corpus.extraction import fetch, is_s3, s3_client

    try:
        if is_s3(path):
            got = fetch(path, s3_client(s3_endpoint_url))
            if got.error:
                return None, got.error
            try:
                if got.content is not None:
                    return hashlib.sha256(got.content).hexdigest(), None
                with open(got.local_path, "rb") as fh:  # type: ignore[arg-type]
                    return hashlib.file_digest(fh, "sha256").hexdigest(), None
            finally:
                got.cleanup()
        # Never block on a FIFO or a device: open without blocking, hash regular files only.
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
        with os.fdopen(fd, "rb") as fh:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                return None, "not a regular file"
            return hashlib.file_digest(fh, "sha256").hexdigest(), None
    except OSError as exc:
        return None, f"cannot read: {exc.strerror or exc}"


def _hash_partition(paths, s3_endpoint_url: str | None = None):
    for path in paths:
        digest, why = sha256_of(path, s3_endpoint_url)
        yield path, digest, why


def _hash_on_spark(spark, todo: list[str], s3_endpoint_url: str | None):
    # a few slices per core, and no slice over ~5,000 paths (Spark warns of tasks over 1 MB)
    slices = max(1, min(len(todo), max(spark.sparkContext.defaultParallelism * 3, -(-len(todo) // 5000))))
    fn = functools.partial(_hash_partition, s3_endpoint_url=s3_endpoint_url)
    return spark.sparkContext.parallelize(todo, slices).mapPartitions(fn).collect()


def _hash_here(todo: list[str], s3_endpoint_url: str | None, threads: int):
    """The local engine's hashing: threads of this process, not pool processes. Why: SHA-256 and
    file reads release the GIL, so threads use every core, and a pool process would cost about a
    second of start-up for what takes milliseconds per file (a re-run night then starts no process)."""
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=max(1, min(threads, len(todo))), thread_name_prefix="binfeat-hash") as ex:
        return list(ex.map(lambda path: next(_hash_partition([path], s3_endpoint_url)), todo))


def hash_inputs(spark, inputs: list, s3_endpoint_url: str | None, date: str, *, threads: int = 2):
    """(candidates, sorted (path, why) of inputs that cannot be read); hashed on Spark's executors,
    or with ``threads`` threads here when ``spark`` is None (the local engine)."""
    unreadable = [(f.path, f.error) for f in inputs if f.error]
    readable = [f for f in inputs if not f.error]
    given = {f.path: f.sha256.lower() for f in readable if f.sha256 and len(f.sha256) == 64}
    todo = [f.path for f in readable if f.path not in given]
    hashed: dict[str, str] = {}
    if todo:
        results = _hash_here(todo, s3_endpoint_url, threads) if spark is None else _hash_on_spark(
            spark, todo, s3_endpoint_url)  # fmt: skip
        for path, digest, why in results:
            if digest is None:
                unreadable.append((path, why))
            else:
                hashed[path] = digest
    cands = [
        Candidate(f.path, f.size, given.get(f.path) or hashed[f.path], date)
        for f in readable
        if f.path in given or f.path in hashed
    ]
    return cands, sorted(unreadable)


def unique_by_sha(candidates: list[Candidate]) -> dict[str, Candidate]:
    """One candidate per sha256 (in-day duplicates: the smallest path wins), by sha256."""
    unique: dict[str, Candidate] = {}
    for cand in sorted(candidates, key=lambda c: (c.sha256, c.path)):
        unique.setdefault(cand.sha256, cand)
    return unique
