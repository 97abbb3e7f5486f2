"""Counting the CPU of every descendant of a measured command, orphans included.

pyspark's driver exits without waiting for its JVM, and the local engine's pool processes outlive
their parent by a moment: their CPU would be reaped by init and be missing from this process's
RUSAGE_CHILDREN. A benchmark that measures whole commands becomes a subreaper (it adopts orphaned
descendants) and reaps them all before it reads its children's CPU.
"""

from __future__ import annotations

import ctypes
import os
import time

import psutil

_PR_SET_CHILD_SUBREAPER = 36  # linux/prctl.h


def become_subreaper() -> None:
    """Adopt this process's orphaned descendants (Linux PR_SET_CHILD_SUBREAPER)."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_CHILD_SUBREAPER) failed")


def reap_descendants(timeout: float = 120.0, *, kill_late: bool = False) -> None:
    """Wait for every child (adopted ones included) to exit, and reap it. What outlives ``timeout``
    is killed (``kill_late``) or makes this raise TimeoutError."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            if time.monotonic() > deadline:
                if not kill_late:
                    raise TimeoutError("descendants of a measured command did not exit")
                for child in psutil.Process().children(recursive=True):
                    child.kill()
            time.sleep(0.05)
