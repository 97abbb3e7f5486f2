"""Run one of the suite's measurements in a fresh Python interpreter and read back its JSON figures.

Why a fresh process: a peak RSS only ever grows, a JVM's options are fixed when it starts, and a
parser that crashes in-process must cost one figure, not the suite. The child is
``python -m MODULE ARGS... RESULT``: it writes its figures as JSON to RESULT, the last argument
(:func:`child_entry` is that side).
Its output lines that start with ``progress_prefix`` become the suite's progress lines; the last
others are quoted when it fails. The child runs in its own process group, killed with it on a
time-out or an interrupt, so a JVM it started cannot outlive it.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
TAIL_LINES = 30


def repo_env() -> dict[str, str]:
    """This environment with the repository first on PYTHONPATH (the child imports this checkout)."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH", "")) if p)
    return env


def installed_env() -> dict[str, str]:
    """:func:`repo_env` with bytecode caching on, as an installed package runs (pip compiles its
    bytecode at install). Commands timed as a user runs them use it: where ``PYTHONDONTWRITEBYTECODE``
    is set, every start would compile extract's modules from source (~0.1 s of CPU per process)."""
    env = repo_env()
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    return env


def run_json(
    module: str,
    args: Sequence[str],
    *,
    timeout: float,
    what: str,
    progress: Callable[[str], None] | None = None,
    progress_prefix: str | None = None,
    ok_exit_codes: Sequence[int] = (0,),
) -> Any:
    """Run ``python -m module *args RESULT``; the JSON it wrote to RESULT. RuntimeError (naming
    ``what``) when it exits with another code, writes nothing or outlives ``timeout`` seconds."""
    with tempfile.TemporaryDirectory(prefix="binfeat-bench-") as tmp:
        result = Path(tmp) / "result.json"
        proc = subprocess.Popen(
            [sys.executable, "-m", module, *args, str(result)],
            cwd=str(REPO),
            env=repo_env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            errors="replace",
            start_new_session=True,
        )
        tail: list[str] = []

        def read() -> None:
            for raw in proc.stdout or ():
                line = raw.rstrip()
                if progress is not None and progress_prefix and line.startswith(progress_prefix):
                    progress(line.removeprefix(progress_prefix).lstrip())
                elif line:
                    tail.append(line)
                    del tail[:-TAIL_LINES]

        reader = threading.Thread(target=read, daemon=True)
        reader.start()
        try:
            code = proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            raise RuntimeError(f"{what} took longer than {timeout:g} s and was stopped") from None
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
            reader.join()
        if code not in ok_exit_codes or not result.exists():
            raise RuntimeError(f"{what} exited with {code}: " + " | ".join(tail[-8:]))
        return json.loads(result.read_text())


def child_entry(argv: Sequence[str], usage: str, nargs: int, compute: Callable[[list[str]], Any]) -> int:
    """The child's side of :func:`run_json`: ``ARGS... RESULT``, ``compute(ARGS)`` written as JSON to
    RESULT; exit 2 with ``usage`` when the count of arguments is not ``nargs`` + 1."""
    if len(argv) != nargs + 1:
        sys.stderr.write(f"usage: {usage}\n")
        return 2
    Path(argv[-1]).write_text(json.dumps(compute(list(argv[:-1])), indent=1))
    return 0
