"""One process of the local engine's pool: partitions in, Parquet part files and status rows out.

Runs as ``python -P -m jobs.local_worker --parent PID`` (:mod:`jobs.local_engine` starts it). It
does exactly what a Spark task does for a partition, with the same code: warm the extractor once
(:func:`jobs.warmup.prepare_worker`), then for each partition it is sent, extract its files
(:class:`jobs.partition.PartitionExtractor`) and write its part file (:class:`jobs.part_writer.PartitionWriter`:
the attempt's file in ``attempts/``, renamed into ``dataset/`` once complete), and reply with the
partition's status rows.

Protocol: length-prefixed pickles. The driver writes on this process's stdin: the extract options
(the process warms up at once, possibly while the driver is still listing INPUT), then the run's
:class:`WorkerConfig`, then one ``(partition id, plan entries)`` per task; end of input: stop. The
replies (status rows as an Arrow IPC stream) go to the stdout the process started with, which is
moved to a private descriptor at once (file descriptor 1 then points at stderr), so nothing a
library prints can corrupt a reply. The process dies with its driver (``PR_SET_PDEATHSIG``): a
killed run leaves no pool behind, and each process's parser worker ends when its stdin closes.

pandas is made unimportable here (:class:`_NoPandas`): pyarrow imports it on the first ``pa.array``
of Python objects just to ask whether they are pandas objects (0.3-0.5 CPU-s, a third of this
process's start), and nothing in this process uses it.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import signal
import struct
import sys
from collections.abc import Callable
from dataclasses import dataclass

import pyarrow as pa

from jobs.part_writer import WRITTEN_SCHEMA, PartitionWriter
from jobs.partition import PartitionExtractor, internal_error
from jobs.spark_types import contract_schema
from jobs.warmup import prepare_worker

_HEADER = struct.Struct("<Q")
_PR_SET_PDEATHSIG = 1


@dataclass(frozen=True)
class WorkerConfig:
    """What every task of a run shares (the Spark job's broadcast and closure, for the pool); the
    extract options come before it, in their own message."""

    s3_endpoint_url: str | None
    follow_symlinks: bool
    with_label: bool
    dataset_dir: str
    attempts_dir: str
    tag: str

    def runner(self, options) -> Callable[[int, list], dict]:
        """The function that runs one task in this process: ``(partition id, plan entries)`` in, the
        reply out. Any config the pool sends has this method (the corpus night's writes into its
        warehouse instead: :class:`jobs.corpus.local_night.NightWorkerConfig`)."""
        plan = _Plan()
        extractor = PartitionExtractor(
            plan=plan, options=options, s3_endpoint_url=self.s3_endpoint_url, follow_symlinks=self.follow_symlinks,
            with_label=self.with_label, out_schema=contract_schema(self.with_label),
        )  # fmt: skip
        writer = PartitionWriter(extractor, self.dataset_dir, self.attempts_dir, self.tag)

        def run(pid: int, entries: list) -> dict:
            plan.value = {pid: entries}
            extractor.acc_mismatch = mismatch = _Count()
            status = pa.Table.from_batches(list(writer.write(pid)), WRITTEN_SCHEMA)
            return {"status": table_bytes(status), "mismatch": mismatch.value}

        return run


def send(fd: int, obj: object) -> None:
    """Write one message (header and pickle) completely."""
    body = pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)
    view = memoryview(_HEADER.pack(len(body)) + body)
    while view:
        view = view[os.write(fd, view) :]


def _read_exact(fd: int, n: int) -> bytes | None:
    parts = []
    while n:
        chunk = os.read(fd, min(n, 1 << 20))
        if not chunk:
            return None
        parts.append(chunk)
        n -= len(chunk)
    return b"".join(parts)


def receive(fd: int) -> object | None:
    """The next message, or None at end of input (the other side closed it or died)."""
    head = _read_exact(fd, _HEADER.size)
    if head is None:
        return None
    (n,) = _HEADER.unpack(head)
    body = _read_exact(fd, n)
    return None if body is None else pickle.loads(body)


def table_bytes(table: pa.Table) -> bytes:
    """An Arrow IPC stream of ``table`` (a pickled Table would make pyarrow import pandas on both sides)."""
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return sink.getvalue().to_pybytes()


def bytes_table(data: bytes) -> pa.Table:
    return pa.ipc.open_stream(data).read_all()


class _Count:
    """An accumulator for one task (Spark's accumulators, in one process)."""

    def __init__(self) -> None:
        self.value = 0

    def add(self, n: int) -> None:
        self.value += n


class _Plan:
    """The one partition a task carries, where PartitionExtractor looks for its plan."""

    def __init__(self) -> None:
        self.value: dict[int, list] = {}


class _NoPandas:
    """An import finder that says pandas is not installed (pyarrow then never imports it)."""

    def find_spec(self, name: str, path=None, target=None):
        if name == "pandas" or name.startswith("pandas."):
            raise ModuleNotFoundError(f"No module named {name!r} (not used in the local engine's workers)", name=name)
        return None


def _die_with_parent(parent: int) -> None:
    """SIGKILL this process when the driver dies (Linux); exit now if it already has."""
    if sys.platform.startswith("linux"):
        import ctypes

        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)
    if os.getppid() != parent:
        os._exit(0)


def serve(options, config, tasks_fd: int, replies_fd: int) -> None:
    """Run tasks until the input ends (``config.runner``: what a task does)."""
    run = config.runner(options)
    while True:
        task = receive(tasks_fd)
        if task is None:
            return
        pid, entries = task
        try:
            reply = {"part": pid, **run(pid, entries)}
        except Exception as exc:  # the driver retries the partition once, then fails the run
            reply = {"part": pid, "failed": internal_error(exc)}
        send(replies_fd, reply)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    replies_fd = os.dup(1)  # the reply channel; fd 1 (print, libraries) goes to stderr from here on
    os.dup2(2, 1)
    if "pandas" not in sys.modules:
        sys.meta_path.insert(0, _NoPandas())
    if len(argv) == 2 and argv[0] == "--parent":
        _die_with_parent(int(argv[1]))
    first = receive(0)
    if first is None:
        return 0
    (options,) = first
    prepare_worker(options)
    send(replies_fd, {"ready": True})  # a process that dies before this could not start: not a task's fault
    config = receive(0)
    if config is None:
        return 0
    serve(options, config, 0, replies_fd)
    return 0


if __name__ == "__main__":
    sys.exit(main())
