"""A run's private folder next to OUTPUT, and the removal of those that killed runs left behind.

The job writes into a hidden sibling of OUTPUT (same filesystem, so publishing is a rename):

    .OUTPUT.binfeat-run-<token>/
        owner.lock   held (flock) by the driver for the whole run; says which process owns it
        dataset/     the part files and the summary: what gets published as OUTPUT
        attempts/    each task attempt's file while it is being written (moved into dataset/ whole)

A task attempt that dies mid-write leaves its partial file in ``attempts/``, never in ``dataset/``.
A run that is killed leaves the whole folder; the next run on the same OUTPUT removes it, but only
once it can prove the owner is gone: the kernel drops an ``flock`` when its process dies, so a lock
that can be taken belongs to a dead run, and a lock that cannot is a run still in progress, whose
folder is left alone (also when the filesystem cannot lock at all). A folder or lock file caught in
its first moments (created, not yet locked) is left alone until it is :data:`GRACE_S` old.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import socket
import time
import uuid
from pathlib import Path

LOCK_NAME = "owner.lock"
GRACE_S = 600.0  # a run takes well under a second from creating its folder to holding the lock
_MARK = ".binfeat-run-"


def _prefix(output: Path) -> str:
    return f".{output.name}{_MARK}"


class RunStaging:
    """The folder of one run; create it with :meth:`create`, end it with :meth:`close` (or ``with``)."""

    def __init__(self, root: Path, lock_fd: int) -> None:
        self.root = root
        self.dataset = root / "dataset"
        self.attempts = root / "attempts"
        self._lock_fd: int | None = lock_fd

    @classmethod
    def create(cls, output: str | os.PathLike) -> RunStaging:
        """Make and lock the folder (raises OSError when OUTPUT's parent will not take it)."""
        out = Path(output).absolute()
        root = out.with_name(f"{_prefix(out)}{uuid.uuid4().hex[:12]}")
        root.mkdir()
        fd = -1
        try:
            fd = os.open(root / LOCK_NAME, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o644)
            fcntl.flock(fd, fcntl.LOCK_EX)  # blocks only while another run's clean-up glances at it
            os.write(fd, f"pid {os.getpid()} host {socket.gethostname()} started {time.time():.0f}\n".encode())
            (root / "dataset").mkdir()
            (root / "attempts").mkdir()
        except BaseException:
            if fd >= 0:
                os.close(fd)
            shutil.rmtree(root, ignore_errors=True)
            raise
        return cls(root, fd)

    def close(self) -> None:
        """Remove the folder, then let go of the lock (so nobody sees it unlocked while it exists)."""
        if self._lock_fd is None:
            return
        shutil.rmtree(self.root, ignore_errors=True)
        os.close(self._lock_fd)
        self._lock_fd = None

    def __enter__(self) -> RunStaging:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def remove_stale(output: str | os.PathLike, *, grace_s: float = GRACE_S) -> list[Path]:
    """Remove the folders that dead runs left next to OUTPUT; returns what was removed."""
    out = Path(output).absolute()
    removed = []
    try:
        candidates = sorted(out.parent.glob(f"{_prefix(out)}*"))
    except OSError:
        return removed
    for folder in candidates:
        if folder.is_dir() and not folder.is_symlink() and _remove_if_dead(folder, grace_s):
            removed.append(folder)
    return removed


def _remove_if_dead(folder: Path, grace_s: float) -> bool:
    try:
        fd = os.open(folder / LOCK_NAME, os.O_RDWR | os.O_CLOEXEC)
    except FileNotFoundError:
        # created but not yet locked (a run starting now), or its owner died in between
        if _age(folder) > grace_s:
            shutil.rmtree(folder, ignore_errors=True)
            return True
        return False
    except OSError:
        return False
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:  # held: a run in progress (or a filesystem without locks: never guess)
            return False
        owned = os.fstat(fd).st_size > 0  # the owner writes only once it holds the lock
        if not owned and _age(folder) <= grace_s:
            return False  # opened by a run that has not locked it yet
        shutil.rmtree(folder, ignore_errors=True)  # still holding the dead run's lock
        return True
    finally:
        os.close(fd)


def _age(path: Path) -> float:
    with contextlib.suppress(OSError):
        return time.time() - path.stat().st_mtime
    return 0.0
