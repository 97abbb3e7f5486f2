"""What the maintenance DAG's tasks do: task-log rotation and corpus-store maintenance.

Both run inside an Airflow task, which Airflow 3 isolates from the metadata database: nothing here
may touch it. Cleaning the metadata database is a command for the scheduler host instead
(:mod:`airflow_ops.metadata_cleanup`).
"""

from __future__ import annotations

import contextlib
import os
import time
from typing import Any


def delete_old_files(folder: str, days: int) -> dict[str, Any]:
    """Delete files under ``folder`` not modified for ``days`` days, then the folders left empty.

    Symbolic links are judged and removed as links (never followed); ``folder`` itself stays.
    """
    days = int(days)
    if days < 1:
        raise ValueError(f"days must be at least 1, got {days}")
    cutoff = time.time() - days * 86400
    removed = kept = 0
    for dirpath, _dirnames, filenames in os.walk(folder, topdown=False):
        for name in filenames:
            path = os.path.join(dirpath, name)
            try:
                if os.lstat(path).st_mtime < cutoff:
                    os.unlink(path)
                    removed += 1
                else:
                    kept += 1
            except FileNotFoundError:
                continue  # removed meanwhile
        if os.path.normpath(dirpath) != os.path.normpath(folder):
            with contextlib.suppress(OSError):
                os.rmdir(dirpath)  # succeeds only when empty
    return {"folder": folder, "removed_files": removed, "kept_files": kept}


def delete_old_task_logs(days: int, base_log_folder: str | None = None) -> dict[str, Any]:
    """Rotate Airflow's local task logs (Airflow does not): :func:`delete_old_files` on
    ``[logging] base_log_folder`` unless another folder is given."""
    if base_log_folder is None:
        from airflow.sdk import conf

        base_log_folder = conf.get("logging", "base_log_folder")
    return delete_old_files(base_log_folder, days)


def maintain_corpus_store(store: str, keep: int) -> dict[str, Any]:
    """The corpus store's own maintenance: keep the newest ``keep`` snapshots, drop orphaned data
    and the staging left by killed runs. A store that does not exist yet is left alone."""
    if not os.path.isdir(store):
        return {"store": store, "skipped": "no store yet"}
    from jobs.corpus_store import CorpusStore  # the store's maintenance entry point (no Spark)

    return CorpusStore(store).apply_retention(int(keep))
