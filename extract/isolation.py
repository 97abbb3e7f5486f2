"""The extractor's side of the parser worker: start it early, submit a window, read the replies with
a deadline per file, restart on failure.

The bytes of a window's files travel in one shared buffer (a memfd the worker inherits and both
map, :mod:`extract.shared_window`): the extractor copies them in once after reading them, the worker
copies each file's slice out. Where there is no memfd, or a window does not fit, the bytes travel
inline, in the request.

The worker replies a few files per message; a progress channel (:mod:`extract.progress`) says which
file it is on, so a crash or a hang costs that file's row only (the files before it whose replies were
lost with the worker go again to a fresh one, see :class:`WindowReplies`), and a file's time limit
runs from the moment the worker started it (never less than ``timeout_s`` after the previous reply
was taken).

Start-up: :meth:`ParserWorker.spawn` starts the process without waiting for it (it imports LIEF and the
groups while this process goes on), and :func:`prestart` does so before this process has even
imported extraction (``binfeat file``). A worker starts light (no compiled kernels) and is asked to
load them once it has been sent ``WARM_BYTES`` (see :mod:`extract.worker`).
"""

from __future__ import annotations

import atexit
import collections
import contextlib
import os
import select
import signal
import subprocess
import sys
import time

from extract import progress as progress_channel
from extract import shared_window
from extract.shared_window import SharedWindow
from extract.worker import _HEADER, decode, encode, one_line

# Bytes of requests after which a worker loads its compiled kernels: about what numpy's slower
# section histograms would cost in CPU before they have paid for numba's start (~0.3 s).
WARM_BYTES = 32 << 20
START_ALLOWANCE_S = 60.0  # start-up and loading the kernels: minimum time allowed (never a file's)


class WorkerFailure(Exception):
    """The worker died, hung or ran out of memory on a file; the message says which.

    ``lost``: how many files sent before the one at fault had their replies lost with the worker
    (0: the file whose reply was awaited is the one at fault)."""

    def __init__(self, message: str, lost: int = 0) -> None:
        super().__init__(message)
        self.lost = lost


class ParserWorker:
    """One long-lived ``python -m extract.worker`` child, restarted after a crash or a time-out."""

    def __init__(self, *, timeout_s: float, memory_limit_mb: int, preload: tuple[str, ...] = (),
                 shared: bool = True, window_bytes: int = shared_window.SIZE) -> None:
        self.timeout_s = timeout_s
        self.window_bytes = window_bytes  # the shared buffer's size: the largest window it takes
        self.memory_limit_mb = memory_limit_mb
        self.preload = preload
        self._proc: subprocess.Popen | None = None
        self._inbox = bytearray()  # bytes read from the worker; those before _at are taken
        self._at = 0
        self._replies: collections.deque[object] = collections.deque()  # received, not yet taken
        self._pending = 0  # requests sent whose replies have not been taken
        self._taken = 0  # replies taken from the current process
        self._configured = False  # the current process has its configuration
        self._warm = False  # ... and its compiled kernels
        self._sent_bytes = 0  # of files sent to any of this object's processes (WARM_BYTES)
        self._shared = shared and hasattr(os, "memfd_create")
        self._window: SharedWindow | None = None
        self._shared_fd: int | None = None  # the window buffer's, inherited by the worker
        self._progress_fd: int | None = None
        self._progress: progress_channel.Progress | None = None
        self._pid = -1  # the process that owns the worker and the buffer
        self._own()

    def _own(self) -> None:
        """Make the worker and the buffers this process's own. A forked child (the pyspark daemon forks
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
            self._close_fds()
        self._inbox, self._at, self._pending = bytearray(), 0, 0
        self._replies = collections.deque()
        self._window, self._shared_fd = None, None
        if self._shared:
            with contextlib.suppress(OSError):  # no buffer: the bytes travel inline
                self._window = SharedWindow(self.window_bytes)
                self._shared_fd = self._window.fd
        self._progress_fd = progress_channel.create()
        self._progress = None if self._progress_fd is None else progress_channel.Progress(self._progress_fd)

    def _close_fds(self) -> None:
        if self._progress is not None:
            self._progress.close()
        if self._window is not None:
            self._window.close()
        if self._progress_fd is not None:
            with contextlib.suppress(OSError):
                os.close(self._progress_fd)
        self._window = None
        self._shared_fd = self._progress_fd = None
        self._progress = None

    def _env(self) -> dict[str, str]:
        env = dict(os.environ)
        # where the extract package lives: a directory, or a zip shipped with --py-files
        root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
        env["PYTHONPATH"] = os.pathsep.join(p for p in [root, env.get("PYTHONPATH", "")] if p)
        env.setdefault("OMP_NUM_THREADS", "1")
        env["BINFEAT_WORKER_SHARED_FD"] = "" if self._shared_fd is None else str(self._shared_fd)
        env["BINFEAT_WORKER_PROGRESS_FD"] = "" if self._progress_fd is None else str(self._progress_fd)
        return env

    def _alive(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def spawn(self) -> None:
        """Start the worker process now unless one runs, without waiting for it: it imports LIEF and
        the groups while this process goes on, and waits for its configuration (sent with the first
        requests)."""
        self._own()
        if self._alive():
            return
        self._proc = None
        if self._progress is not None:
            self._progress.reset()
        # -P: the working directory is not put first on sys.path, so a checkout that happens to be
        # there never replaces the extract package this process runs (the PYTHONPATH root above)
        fds = tuple(fd for fd in (self._shared_fd, self._progress_fd) if fd is not None)
        self._proc = subprocess.Popen(
            [sys.executable, "-P", "-m", "extract.worker"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL, env=self._env(), close_fds=True, pass_fds=fds,
        )
        self._inbox, self._at = bytearray(), 0
        self._replies.clear()
        self._pending = self._taken = 0
        self._configured = self._warm = False

    def _send(self, obj: object) -> None:
        body = encode(obj)
        try:
            self._proc.stdin.write(_HEADER.pack(len(body)) + body)
            self._proc.stdin.flush()
        except (BrokenPipeError, OSError):
            raise WorkerFailure(self._death()) from None

    def _ready(self, warm: bool) -> None:
        """Configure a fresh worker (memory budget, plugins, kernels) or have a light one load its
        kernels, and wait until it says it is ready (at least START_ALLOWANCE_S: never a file's time)."""
        if self._configured and (self._warm or not warm):
            return
        if self._configured:
            message: dict = {"warm": True}
        else:
            message = {"config": {"memory_mb": self.memory_limit_mb, "preload": list(self.preload), "warm": warm}}
        try:
            self._send(message)
            limit = max(START_ALLOWANCE_S, self.timeout_s)
            deadline = time.monotonic() + limit
            hello = self._read(lambda: deadline, f"did not answer in {limit:g} s")
        except WorkerFailure as exc:
            self.close()
            raise WorkerFailure(f"parser worker could not start ({exc})") from None
        if not isinstance(hello, dict) or not hello.get("ready"):
            self.close()
            raise WorkerFailure("parser worker could not start")
        self._configured = True
        self._warm = self._warm or warm

    def warm(self) -> None:
        """Start the worker if needed and have it load its compiled kernels now (benchmarks, servers:
        what would otherwise happen once enough bytes were sent)."""
        self.spawn()
        self._ready(warm=True)

    def _read_exact(self, n: int, deadline) -> bytes:
        """n bytes from the worker; whatever else has arrived (often the next replies) is kept, so
        most replies cost no system call. ``deadline()`` says until when to wait (asked again when
        it passes: the worker may have moved on)."""
        if self._proc is None or self._proc.stdout is None:
            raise EOFError
        inbox, at = self._inbox, self._at
        if len(inbox) - at < n:
            if at:  # drop what was taken before reading more (one move per read, not per reply)
                del inbox[:at]
                at = self._at = 0
            fd = self._proc.stdout.fileno()
            while len(inbox) < n:
                ready, _, _ = select.select([fd], [], [], max(0.0, deadline() - time.monotonic()))
                if not ready:
                    if deadline() <= time.monotonic():
                        raise TimeoutError
                    continue
                chunk = os.read(fd, max(n - len(inbox), 1 << 20))
                if not chunk:
                    raise EOFError
                inbox += chunk
        self._at = at + n
        with memoryview(inbox) as view:  # released at once: the inbox must stay resizable
            return view[at : at + n].tobytes()

    def _read(self, deadline, timed_out: str) -> object:
        try:
            (n,) = _HEADER.unpack(self._read_exact(_HEADER.size, deadline))
            body = self._read_exact(n, deadline)
        except TimeoutError:
            lost = self._lost()
            self.close()
            raise WorkerFailure(timed_out, lost) from None
        except EOFError:
            lost = self._lost()
            raise WorkerFailure(self._death(), lost) from None
        try:
            return decode(body)
        except Exception as exc:  # a message that does not unpickle
            self.close()
            raise WorkerFailure(f"parser worker sent a malformed message ({one_line(exc)})") from None

    def _lost(self) -> int:
        """Files whose replies go down with the worker before the one it is on (0 when it is between
        files, or on the awaited file)."""
        if self._progress is None:
            return 0
        on = progress_channel.working_on(self._progress.read()[0])
        return max(0, on - self._taken) if on is not None else 0

    def _file_deadline(self, started: float) -> float:
        """Until when to wait for the next reply: ``timeout_s`` after the worker started the file it is
        on, and never less than ``timeout_s`` after ``started``."""
        since = started
        if self._progress is not None:
            since = max(since, self._progress.read()[1])
        return since + self.timeout_s

    def _death(self) -> str:
        proc = self._proc
        self._proc = None
        self._inbox, self._at = bytearray(), 0
        self._replies.clear()
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

    def share_start(self) -> None:
        """Begin a window's contents in the shared buffer, overwriting the previous window's (a request
        left unanswered restarts the worker first: it may still be reading them)."""
        self._own()
        self._drop_unanswered()
        if self._window is not None:
            self._window.start()

    def share_one(self, content: bytes | bytearray | memoryview) -> dict:
        """Put one content where the worker reads it; the request's fields that say where."""
        span = self._window.append(content) if self._window is not None else None
        # no buffer, or no room left in it: the bytes travel inline
        return {"data": bytes(content)} if span is None else {"shared": span}

    def share_end(self) -> None:
        if self._window is not None:
            self._window.finish()

    def submit_many(self, requests: list[dict]) -> None:
        """Send several files' requests in one message; :meth:`result` reads their answers in order."""
        self._own()
        if not self._alive():
            self.spawn()
        self._sent_bytes += sum(int(r.get("size") or 0) for r in requests)
        self._ready(warm=self._sent_bytes >= WARM_BYTES)
        self._send(requests)
        self._pending += len(requests)

    def result(self, started: float) -> dict:
        """The next file's reply. ``started``: when it became awaited (its time limit is never less
        than ``timeout_s`` from then)."""
        if not self._replies:
            replies = self._read(lambda: self._file_deadline(started), f"parser timed out after {self.timeout_s:g} s")
            if not isinstance(replies, list) or not replies:
                self.close()
                raise WorkerFailure("parser worker sent a malformed reply")
            self._replies.extend(replies)
        reply = self._replies.popleft()
        self._pending = max(0, self._pending - 1)
        self._taken += 1
        if not isinstance(reply, dict):
            self.close()
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
        self._replies.clear()
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
        """Stop the worker and free the shared buffers (this object is not used again)."""
        self.close()
        self._close_fds()

    def __del__(self) -> None:  # pragma: no cover - interpreter shutdown
        with contextlib.suppress(Exception):
            self.shutdown()


_PRESTARTED: ParserWorker | None = None


def prestart() -> None:
    """Start a parser worker now, before this process imports what extraction needs, so that both
    start side by side (``binfeat file``). The next extractor that needs a worker in this process
    takes it (:func:`take_prestarted`) and configures it with its own options; one never taken is
    stopped at exit."""
    global _PRESTARTED
    if _PRESTARTED is not None and _PRESTARTED._pid == os.getpid():
        return
    _PRESTARTED = ParserWorker(timeout_s=START_ALLOWANCE_S, memory_limit_mb=0)
    _PRESTARTED.spawn()
    atexit.register(_stop_prestarted)


def take_prestarted(*, timeout_s: float, memory_limit_mb: int, preload: tuple[str, ...] = (),
                    window_bytes: int = shared_window.SIZE) -> ParserWorker | None:
    """The worker :func:`prestart` started in this process, now with these options, or None (also when
    its shared buffer is smaller than ``window_bytes``: it is stopped)."""
    global _PRESTARTED
    worker, _PRESTARTED = _PRESTARTED, None
    if worker is None or worker._pid != os.getpid() or worker._configured:
        return None
    if window_bytes > worker.window_bytes:
        worker.shutdown()
        return None
    worker.timeout_s, worker.memory_limit_mb, worker.preload = timeout_s, memory_limit_mb, preload
    return worker


def _stop_prestarted() -> None:
    worker = _PRESTARTED
    if worker is not None and worker._pid == os.getpid():
        worker.shutdown()
