"""The extractor's side of the parser worker: submit a file, wait with a deadline, restart on failure.

The bytes of a window's files travel in one shared buffer (a memfd the worker inherits): the
extractor writes them once after reading them, the worker reads each file's slice with one
``pread``. Where there is no memfd the bytes travel inline, in the request.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import select
import signal
import subprocess
import sys
import time

from extract.worker import _HEADER


class WorkerFailure(Exception):
    """The worker died, hung or ran out of memory on the current file; the message says which."""


class ParserWorker:
    """One long-lived ``python -m extract.worker`` child, restarted after a crash or a time-out."""

    def __init__(self, *, timeout_s: float, memory_limit_mb: int, preload: tuple[str, ...] = (),
                 shared: bool = True) -> None:
        self.timeout_s = timeout_s
        self.memory_limit_mb = memory_limit_mb
        self.preload = preload
        self._proc: subprocess.Popen | None = None
        self._inbox = bytearray()  # bytes read from the worker; those before _at are taken
        self._at = 0
        self._pending = 0  # requests sent whose replies have not been read
        self._shared = shared and hasattr(os, "memfd_create")
        self._shared_fd: int | None = None
        self._shared_bytes = 0  # the shared buffer's size
        self._pid = -1  # the process that owns the worker and the buffer
        self._own()

    def _own(self) -> None:
        """Make the worker and the buffer this process's own. A forked child (the pyspark daemon forks
        its Python workers) must neither talk to its parent's worker nor write into its buffer."""
        if self._pid == os.getpid():
            return
        inherited = self._pid != -1
        self._pid = os.getpid()
        if inherited:
            proc, self._proc = self._proc, None  # the parent's: not ours to kill or wait for
            for stream in (proc.stdin, proc.stdout) if proc is not None else ():
                if stream:
                    with contextlib.suppress(OSError):
                        stream.close()
            if self._shared_fd is not None:
                with contextlib.suppress(OSError):
                    os.close(self._shared_fd)
        self._inbox, self._at, self._pending = bytearray(), 0, 0
        self._shared_fd, self._shared_bytes = None, 0
        if self._shared:
            self._shared_fd = os.memfd_create("binfeat-parser-window", os.MFD_CLOEXEC)

    def _env(self) -> dict[str, str]:
        env = dict(os.environ)
        # where the extract package lives: a directory, or a zip shipped with --py-files
        root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
        env["PYTHONPATH"] = os.pathsep.join(p for p in [root, env.get("PYTHONPATH", "")] if p)
        env["BINFEAT_WORKER_MEMORY_MB"] = str(self.memory_limit_mb)
        env["BINFEAT_WORKER_PRELOAD"] = ",".join(self.preload)
        env.setdefault("OMP_NUM_THREADS", "1")
        env["BINFEAT_WORKER_SHARED_FD"] = "" if self._shared_fd is None else str(self._shared_fd)
        return env

    def _start(self) -> subprocess.Popen:
        # -P: the working directory is not put first on sys.path, so a checkout that happens to be
        # there never replaces the extract package this process runs (the PYTHONPATH root above)
        proc = subprocess.Popen(
            [sys.executable, "-P", "-m", "extract.worker"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL, env=self._env(), close_fds=True,
            pass_fds=() if self._shared_fd is None else (self._shared_fd,),
        )
        self._proc = proc
        self._inbox, self._at = bytearray(), 0
        try:
            hello = self._read(deadline=time.monotonic() + max(60.0, self.timeout_s))
        except WorkerFailure as exc:
            self.close()
            raise WorkerFailure(f"parser worker could not start ({exc})") from None
        if not isinstance(hello, dict) or not hello.get("ready"):
            self.close()
            raise WorkerFailure("parser worker could not start")
        return proc

    def _read_exact(self, n: int, deadline: float) -> bytes:
        """n bytes from the worker; whatever else has arrived (often the next replies) is kept, so
        most replies cost no system call."""
        if self._proc is None or self._proc.stdout is None:
            raise EOFError
        inbox, at = self._inbox, self._at
        if len(inbox) - at < n:
            if at:  # drop what was taken before reading more (one move per read, not per reply)
                del inbox[:at]
                at = self._at = 0
            fd = self._proc.stdout.fileno()
            while len(inbox) < n:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError
                ready, _, _ = select.select([fd], [], [], left)
                if not ready:
                    raise TimeoutError
                chunk = os.read(fd, max(n - len(inbox), 1 << 20))
                if not chunk:
                    raise EOFError
                inbox += chunk
        self._at = at + n
        with memoryview(inbox) as view:  # released at once: the inbox must stay resizable
            return view[at : at + n].tobytes()

    def _read(self, deadline: float) -> object:
        try:
            (n,) = _HEADER.unpack(self._read_exact(_HEADER.size, deadline))
            return pickle.loads(self._read_exact(n, deadline))
        except TimeoutError:
            self.close()
            raise WorkerFailure(f"parser timed out after {self.timeout_s:g} s") from None
        except EOFError:
            raise WorkerFailure(self._death()) from None

    def _death(self) -> str:
        proc = self._proc
        self._proc = None
        self._inbox, self._at = bytearray(), 0
        self._pending = 0
        if proc is None:
            return "parser worker is gone"
        try:
            code = proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            code = proc.wait()
        if code < 0:
            try:
                name = signal.Signals(-code).name
            except ValueError:
                name = f"signal {-code}"
            return f"parser crashed ({name})"
        return f"parser worker exited with code {code}"

    def _drop_unanswered(self) -> None:
        """A caller that left replies unread (an exception between submit and result) would get them
        as the answers to its next requests, and the worker may still be reading the shared buffer:
        start afresh."""
        if self._pending:
            self.close()

    def share(self, contents: list[bytes | bytearray | memoryview]) -> list[dict]:
        """Put a window's contents where the worker reads them; returns each one's request fields.

        Overwrites the previous window's (a request left unanswered restarts the worker first). The
        buffer keeps the pages of the last window (at most about ``WINDOW_BYTES``) for the next one:
        writing into pages already there costs a copy (~22 µs for a 97 KiB file), into fresh ones
        twice that.
        """
        self._own()
        self._drop_unanswered()
        fd = self._shared_fd
        if fd is None:
            return [{"data": c} for c in contents]
        fields, at = [], 0
        try:
            for content in contents:
                n = len(content)
                with memoryview(content) as view:
                    done = 0
                    while done < n:
                        done += os.pwrite(fd, view[done:], at + done)
                fields.append({"shared": (at, n)})
                at += n
            if at < self._shared_bytes:  # give back what a larger window took
                os.ftruncate(fd, at)
        except OSError:  # no memory for the buffer: this window's bytes travel inline
            self._shared_bytes = max(self._shared_bytes, at)
            return [{"data": c} for c in contents]
        self._shared_bytes = at
        return fields

    def submit_many(self, requests: list[dict]) -> None:
        """Send several files' requests in one message; :meth:`result` reads their answers in order."""
        self._own()
        if self._proc is None or self._proc.poll() is not None:
            self._proc = None
            self._pending = 0
            self._start()
        body = pickle.dumps(requests, protocol=pickle.HIGHEST_PROTOCOL)
        try:
            self._proc.stdin.write(_HEADER.pack(len(body)) + body)
            self._proc.stdin.flush()
        except (BrokenPipeError, OSError):
            raise WorkerFailure(self._death()) from None
        self._pending += len(requests)

    def result(self, started: float) -> dict:
        reply = self._read(deadline=started + self.timeout_s)
        self._pending = max(0, self._pending - 1)
        if not isinstance(reply, dict):
            raise WorkerFailure("parser worker sent a malformed reply")
        if reply.get("fatal") == "out of memory":
            self.close()
            raise WorkerFailure(f"parser ran out of memory (limit {self.memory_limit_mb} MiB)")
        return reply

    def close(self) -> None:
        """Stop the worker (the next submit starts a fresh one)."""
        self._own()  # in a forked child: let go of the parent's worker, never kill it
        proc, self._proc = self._proc, None
        self._inbox, self._at = bytearray(), 0
        self._pending = 0
        if proc is None:
            return
        with contextlib.suppress(OSError, subprocess.TimeoutExpired):
            proc.kill()
            proc.wait(timeout=5)
        for stream in (proc.stdin, proc.stdout):
            if stream:
                with contextlib.suppress(OSError):
                    stream.close()

    def shutdown(self) -> None:
        """Stop the worker and free the shared buffer (this object is not used again)."""
        self.close()
        fd, self._shared_fd = self._shared_fd, None
        if fd is not None:
            with contextlib.suppress(OSError):
                os.close(fd)

    def __del__(self) -> None:  # pragma: no cover - interpreter shutdown
        with contextlib.suppress(Exception):
            self.shutdown()


class WindowReplies:
    """The parser worker's replies for one window of files, read in input order.

    A file's request goes out once the extractor holds the bytes the parser is to see: the window's
    whole-read files together (so the worker parses ahead while this process runs the byte kernels),
    a streamed file's (``None`` until then) when :meth:`provide` gives it, after the extractor's own
    read. A file's deadline runs from the moment the previous reply was taken (so the limit is at
    least ``timeout_s``). When the worker dies or hangs on a file, that file gets the failure and the
    window's later requests go to a fresh one.
    """

    def __init__(self, worker: ParserWorker, requests: dict[int, dict | None]) -> None:
        self._worker = worker
        self._requests = requests
        self._order = sorted(requests)
        self._pos = 0  # next reply to read, as a position in _order
        self._sent = 0  # positions sent to the current worker process
        self._mark = 0.0

    def _send(self) -> None:
        """Send from the next reply up to the first request not yet provided."""
        batch = []
        for i in self._order[self._pos :]:
            if self._requests[i] is None:
                break
            batch.append(self._requests[i])
        if not batch:
            raise RuntimeError(f"parser request for file {self._order[self._pos]} was never provided")
        self._worker.submit_many(batch)
        self._sent = self._pos + len(batch)
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
        try:
            if self._sent <= self._pos:
                self._send()
            reply = self._worker.result(self._mark)
        except WorkerFailure:
            self._pos += 1
            self._sent = self._pos  # the worker is gone: the rest of the window is sent again
            raise
        self._pos += 1
        self._mark = time.monotonic()
        return reply

    def skip(self, index: int) -> None:
        """Drop a file's reply (its row failed before it was needed), keeping later replies in step."""
        if self._pos < len(self._order) and self._order[self._pos] == index:
            if self._sent <= self._pos:  # never sent: nothing to read
                self._pos += 1
                self._sent = self._pos
                return
            with contextlib.suppress(WorkerFailure):
                self.get(index)
