"""The local engine: the Spark job's executor side in a pool of processes on this machine, no JVM.

Why: a JVM takes 10-15 s to start, more than a small run's whole extraction. The pool runs the very
code a Spark task runs (:mod:`jobs.local_worker` drives :class:`jobs.partition.PartitionExtractor`
and :class:`jobs.part_writer.PartitionWriter`), into the same run folder (:mod:`jobs.staging`), so
the rows, part files, error rows and fault containment are the Spark job's; :func:`jobs.run.run`
publishes and summarises either engine's output the same way.

How: ``workers`` processes (default :func:`pool_size`: up to one per core, as many as the work pays
for). The input is bin-packed as for Spark (:func:`jobs.planning.plan_inputs`, about
:data:`PARTS_PER_WORKER` partitions per process, so uneven files even out), each partition cut into
the chunks one ``extract_batch`` call takes (:func:`jobs.partition.chunked`): one chunk is one task
and one part file. Each pool process holds one extractor and one task at a time (memory stays
bounded: the driver sends a task only to an idle process). A process that dies (killed, out of
memory) costs no row: its task runs again in a fresh process, and a task that kills its process
twice gets an error row for each of its files. A task that raises (its part file could not be
written) is retried once; a second failure fails the run, as a Spark task's last attempt does.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import selectors
import signal
import subprocess
import sys
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass

import pyarrow as pa

from jobs.input_file import InputFile
from jobs.local_worker import bytes_table, receive, send
from jobs.partition import BATCH_BYTES, BATCH_FILES, chunked
from jobs.planning import DEFAULT_PER_FILE_COST, PlanEntry, plan_inputs

PARTS_PER_WORKER = 4  # tasks per pool process: small enough to balance, large enough to amortise
ATTEMPTS = 2  # a task runs at most twice: once, and once more in a fresh process if its process died
WORKER_MODULE = "jobs.local_worker"
# What a pool process costs to start (Python, pyarrow, the kernels, its parser worker: ~2 CPU-s
# measured on the development machine) and what extraction costs (~1 ms per file plus ~150 MB per
# CPU-second on the small sample corpus's mix): the default pool gets another process only for
# each START_CPU_S of extraction. Measured on 100 files of the small sample corpus (8.8 MB, a 2-core
# machine at load 2.5-4): 1 process 2.2-3.6 s wall, 2 processes 6.6-7.5 s (twice the start-up
# CPU, for 0.2 CPU-s of extraction); 1,000 files (101 MB, load 4-5): 3.3-6.5 s against 5.8-12.7 s.
START_CPU_S = 2.0
FILE_CPU_S = 0.001
BYTES_PER_CPU_S = 150e6


class LocalEngineError(RuntimeError):
    """The local run cannot finish (pool processes that cannot start, a part file that cannot be
    written twice); one line why."""


class Count:
    """A counter the driver adds to and the progress reporter reads (Spark's accumulators' shape)."""

    def __init__(self) -> None:
        self.value = 0

    def add(self, n: int) -> None:
        self.value += n


@dataclass
class LocalStats:
    """What the summary needs from the pool besides the status rows."""

    workers: int = 0  # processes started for the run's tasks at the start
    deaths: int = 0  # pool processes that died under a task


def pool_size(n_files: int, n_bytes: int, cores: int) -> int:
    """The default number of pool processes: one per core at most, one per START_CPU_S of estimated
    extraction (at least one). Why not always one per core: each process's start costs about as much
    CPU as extracting two thousand small files, so on a small input more processes only compete for
    the cores (a busy machine's wall time doubled with two)."""
    work = n_files * FILE_CPU_S + n_bytes / BYTES_PER_CPU_S
    return max(1, min(cores, int(work // START_CPU_S)))


def plan_local(
    inputs: Sequence[InputFile], workers: int, partitions: int | None = None, per_file_cost: int = DEFAULT_PER_FILE_COST
) -> list[list[PlanEntry]]:
    """The local run's tasks: the Spark planner's partitions (``partitions``, else about
    :data:`PARTS_PER_WORKER` per process), each cut into ``extract_batch``-sized chunks."""
    wanted = partitions or workers * PARTS_PER_WORKER
    plan = plan_inputs(inputs, workers, wanted, per_file_cost)
    return [chunk for part in plan for chunk in chunked(part, BATCH_FILES, BATCH_BYTES)]


def _worker_env() -> dict[str, str]:
    """The driver's environment, with this code first on the path (the workers run the driver's code)."""
    from jobs.session import code_root

    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (code_root(), env.get("PYTHONPATH")) if p)
    return env


def _death_text(code: int) -> str:
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exit code {code}"


class _Proc:
    """One pool process and the task it holds (None: idle). It starts warming up for ``options`` at once."""

    def __init__(self, options, env: dict[str, str]) -> None:
        # -P: the process's current folder is not put on sys.path, so it imports this code, not a
        # jobs/ folder that happens to be there
        self.popen = subprocess.Popen(
            [sys.executable, "-P", "-m", WORKER_MODULE, "--parent", str(os.getpid())],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, bufsize=0, env=env, close_fds=True,
        )  # fmt: skip
        self.options_key = repr(options)
        self.task: int | None = None
        self.alive = True
        self.ready = False  # warmed up (its first reply)
        self._tell((options,))

    def _tell(self, message: object) -> bool:
        try:
            send(self.popen.stdin.fileno(), message)
        except OSError:  # gone: its end of output says how
            return False
        return True

    def configure(self, config) -> None:
        self._tell(config)

    @property
    def reply_fd(self) -> int:
        return self.popen.stdout.fileno()

    def assign(self, task: int, entries: list[PlanEntry]) -> bool:
        """Send a task; False when the process is gone (its end of output says how)."""
        self.task = task
        return self._tell((task, entries))

    def reap(self) -> int:
        """Close its pipes and wait for it; its exit code (negative: the signal that killed it)."""
        self.alive = False
        for stream in (self.popen.stdin, self.popen.stdout):
            with contextlib.suppress(OSError):
                stream.close()
        try:
            return self.popen.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.popen.kill()
            return self.popen.wait()

    def kill(self) -> None:
        if self.alive:
            with contextlib.suppress(OSError):
                self.popen.kill()
            self.reap()


_SPARES: list[_Proc] = []  # started ahead of a run (prestart), taken by the run's pool


def prestart(options=None) -> None:
    """Start one pool process now, for the next local run with these ``options`` to take.

    Why: its start (Python, pyarrow, the compiled kernels: about a second) then overlaps what the
    driver does before extracting (imports, listing INPUT, the run folder). ``binfeat extract`` calls
    it when the local engine may run; :func:`discard_spares` ends unused ones (and exit does).
    """
    if not _SPARES:
        atexit.register(discard_spares)
    _SPARES.append(_Proc(options, _worker_env()))


def discard_spares() -> None:
    """End the processes :func:`prestart` started that no run took."""
    while _SPARES:
        _SPARES.pop().kill()


def _spare(options) -> _Proc | None:
    key = repr(options)
    for i, proc in enumerate(_SPARES):
        if proc.options_key == key and proc.popen.poll() is None:
            return _SPARES.pop(i)
    return None


class LocalPool:
    """Runs a run's tasks on ``workers`` processes; see the module's docstring for the rules.

    ``config`` is what each process's tasks share, a picklable object whose ``runner(options)``
    makes the function a task runs in the process: :class:`jobs.local_worker.WorkerConfig` for
    ``binfeat extract``, :class:`jobs.corpus.local_night.NightWorkerConfig` for a corpus night (with
    its subclass of this pool, for its replies)."""

    def __init__(self, tasks: list[list], options, config, workers: int, counters) -> None:
        self.tasks = tasks
        self.options = options
        self.config = config
        self.workers = max(1, min(workers, len(tasks)))
        self.counters = counters  # jobs.dataframe.Counters of Count objects
        self.stats = LocalStats(workers=self.workers)
        self._env = _worker_env()
        self._attempts = [0] * len(tasks)
        self._pending = deque(range(len(tasks)))
        self._procs: list[_Proc] = []
        self._sel = selectors.DefaultSelector()
        self._status: list[pa.Table] = []
        self._done = 0
        self._start_failures = 0  # processes in a row that died before they were ready

    def run(self) -> pa.Table:
        """All tasks' status rows (:meth:`_result`); every part file is in the dataset folder."""
        try:
            for _ in range(self.workers):
                self._start()
            for proc in list(self._procs):
                self._next(proc)
            while self._done < len(self.tasks):
                for key, _ in self._sel.select():
                    self._on_reply(key.data)
            live = [p for p in self._procs if p.alive]
            for proc in live:
                self._sel.unregister(proc.popen.stdout)
                proc.popen.stdin.close()  # end of input: every process exits, all at once
            for proc in live:
                proc.reap()
        finally:
            for proc in self._procs:
                proc.kill()
            self._sel.close()
        return self._result(self._status)

    def _result(self, status: list[pa.Table]) -> pa.Table:
        """The extraction's status rows in (part, row) order (a subclass's replies may differ)."""
        from jobs.part_writer import WRITTEN_SCHEMA

        table = pa.concat_tables(status, promote_options="none") if status else None
        if table is None:  # no task (no input): never reached from jobs.run
            table = pa.Table.from_batches([], WRITTEN_SCHEMA)
        return table.sort_by([("part", "ascending"), ("row", "ascending")])

    def _start(self) -> _Proc:
        proc = _spare(self.options) or _Proc(self.options, self._env)
        proc.configure(self.config)
        self._procs.append(proc)
        self._sel.register(proc.popen.stdout, selectors.EVENT_READ, proc)
        return proc

    def _next(self, proc: _Proc, task: int | None = None) -> None:
        """Give ``proc`` the task (or the next pending one); a process found dead is handled at once."""
        if task is None:
            if not self._pending:
                return
            task = self._pending.popleft()
        self._attempts[task] += 1
        if not proc.assign(task, self.tasks[task]):
            self._on_death(proc)

    def _on_reply(self, proc: _Proc) -> None:
        reply = receive(proc.reply_fd)
        if reply is None:
            self._on_death(proc)
            return
        if "ready" in reply:
            proc.ready = True
            self._start_failures = 0
            return
        task, proc.task = proc.task, None
        if "failed" in reply:
            if self._attempts[task] >= ATTEMPTS:
                raise LocalEngineError(f"task {task} failed twice: {reply['failed']}")
            self._next(proc, task)
            return
        self._status.append(bytes_table(reply["status"]))
        self.counters.mismatch.add(reply["mismatch"])
        self._finished(task)
        self._next(proc)

    def _on_death(self, proc: _Proc) -> None:
        self._sel.unregister(proc.popen.stdout)
        task = proc.task
        why = _death_text(proc.reap())
        if not proc.ready:  # it could not even start: no task's fault, but twice in a row ends the run
            self._start_failures += 1
            if self._start_failures >= ATTEMPTS:
                raise LocalEngineError(f"the local engine's worker processes cannot start ({why}; see stderr)")
            if task is not None:
                self._attempts[task] -= 1
                self._pending.appendleft(task)
            task = None
        if task is None:  # died idle: replace it only if work is left
            if self._pending:
                self._next(self._start())
            return
        self.stats.deaths += 1
        if self._attempts[task] < ATTEMPTS:
            self._next(self._start(), task)  # once more, in a fresh process
            return
        self._give_up(task, f"internal: WorkerDied: the pool process extracting this file's chunk died twice ({why})")
        if self._pending:
            self._next(self._start())

    def _give_up(self, task: int, message: str) -> None:
        """Error rows for every file of ``task``, written as its part file by this process (a
        subclass whose tasks are not extract's may fail the run instead)."""
        from jobs.part_writer import WRITTEN_SCHEMA, PartitionWriter
        from jobs.partition import PartitionExtractor
        from jobs.spark_types import contract_schema

        c = self.config
        holder = _OnePlan({task: self.tasks[task]})
        extractor = PartitionExtractor(
            plan=holder, options=self.options, s3_endpoint_url=c.s3_endpoint_url, follow_symlinks=c.follow_symlinks,
            with_label=c.with_label, out_schema=contract_schema(c.with_label),
        )  # fmt: skip
        writer = PartitionWriter(extractor, c.dataset_dir, c.attempts_dir, c.tag)
        batches = list(writer.write(task, extractor.failed_rows(task, message)))
        self._status.append(pa.Table.from_batches(batches, WRITTEN_SCHEMA))
        self._finished(task)

    def _finished(self, task: int) -> None:
        entries = self.tasks[task]
        self.counters.files.add(len(entries))
        self.counters.bytes.add(sum(e[1] for e in entries))
        self._done += 1


class _OnePlan:
    def __init__(self, value: dict) -> None:
        self.value = value
