"""The extractor's side of the parser worker: submit a file, wait with a deadline, restart on failure."""

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

    def __init__(self, *, timeout_s: float, memory_limit_mb: int, preload: tuple[str, ...] = ()) -> None:
        self.timeout_s = timeout_s
        self.memory_limit_mb = memory_limit_mb
        self.preload = preload
        self._proc: subprocess.Popen | None = None
        self._inbox = bytearray()  # bytes read from the worker; those before _at are taken
        self._at = 0

    def _env(self) -> dict[str, str]:
        env = dict(os.environ)
        # where the extract package lives: a directory, or a zip shipped with --py-files
        root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
        env["PYTHONPATH"] = os.pathsep.join(p for p in [root, env.get("PYTHONPATH", "")] if p)
        env["BINFEAT_WORKER_MEMORY_MB"] = str(self.memory_limit_mb)
        env["BINFEAT_WORKER_PRELOAD"] = ",".join(self.preload)
        env.setdefault("OMP_NUM_THREADS", "1")
        return env

    def _start(self) -> subprocess.Popen:
        proc = subprocess.Popen(
            [sys.executable, "-m", "extract.worker"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL, env=self._env(), close_fds=True,
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

    def submit_many(self, requests: list[dict]) -> None:
        """Send several files' requests in one message; :meth:`result` reads their answers in order."""
        if self._proc is None or self._proc.poll() is not None:
            self._proc = None
            self._start()
        body = pickle.dumps(requests, protocol=pickle.HIGHEST_PROTOCOL)
        try:
            self._proc.stdin.write(_HEADER.pack(len(body)) + body)
            self._proc.stdin.flush()
        except (BrokenPipeError, OSError):
            raise WorkerFailure(self._death()) from None

    def result(self, started: float) -> dict:
        reply = self._read(deadline=started + self.timeout_s)
        if not isinstance(reply, dict):
            raise WorkerFailure("parser worker sent a malformed reply")
        if reply.get("fatal") == "out of memory":
            self.close()
            raise WorkerFailure(f"parser ran out of memory (limit {self.memory_limit_mb} MiB)")
        return reply

    def close(self) -> None:
        """Stop the worker (the next submit starts a fresh one)."""
        proc, self._proc = self._proc, None
        self._inbox, self._at = bytearray(), 0
        if proc is None:
            return
        with contextlib.suppress(OSError, subprocess.TimeoutExpired):
            proc.kill()
            proc.wait(timeout=5)
        for stream in (proc.stdin, proc.stdout):
            if stream:
                with contextlib.suppress(OSError):
                    stream.close()

    def __del__(self) -> None:  # pragma: no cover - interpreter shutdown
        with contextlib.suppress(Exception):
            self.close()
