"""What the maintenance DAG's tasks do: task-log rotation and the Iceberg corpus store's maintenance.

Both run inside an Airflow task, which Airflow 3 isolates from the metadata database: nothing here
may touch it. Cleaning the metadata database is a command for the scheduler host instead
(:mod:`airflow_ops.metadata_cleanup`).
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from typing import Any

from airflow_ops.environment import aws_environment, mask_environment_credentials, process_environment

log = logging.getLogger("binfeat.airflow")


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


def maintain_corpus_store(
    *,
    store: str | None = None,
    catalog: str | None = None,
    warehouse: str | None = None,
    namespace: str | None = "binfeat",
    s3_endpoint_url: str | None = None,
    keep_days: int = 14,
    orphan_age_hours: float = 72.0,
    compact: bool = True,
    aws_conn_id: str | None = None,
) -> dict[str, Any]:
    """One maintenance pass of the Iceberg corpus store (``jobs.corpus.maintenance.maintain_store``):
    keep ``keep_days`` days of dates and snapshots, remove orphan files older than
    ``orphan_age_hours`` (a killed night's), compact past partitions unless ``compact`` is False.

    It touches the catalog and the warehouse only, never Airflow's database. A store without the
    corpus tables yet (no night has run) is left alone, and an embedded one is not created. S3 keys
    for the warehouse come from the connection ``aws_conn_id`` names, else the worker's AWS chain.
    """
    from jobs.corpus.catalog import CATALOG_FILE, FEATURES, StoreConfig, open_catalog
    from jobs.corpus.maintenance import maintain_store

    where = {"store": store or None, "catalog": catalog or None, "warehouse": warehouse or None,
             "namespace": namespace or "binfeat", "s3_endpoint_url": s3_endpoint_url or None}  # fmt: skip
    if where["store"] and not where["catalog"] and not os.path.exists(os.path.join(where["store"], CATALOG_FILE)):
        return {"store": where["store"], "skipped": "no store yet"}
    mask_environment_credentials()
    with process_environment(aws_environment(aws_conn_id)):
        cfg = StoreConfig(**where)
        if not open_catalog(cfg).table_exists(cfg.identifier(FEATURES)):
            log.warning("no corpus tables in the %s yet: nothing to maintain", cfg.describe())
            return {"store": cfg.describe(), "skipped": "no corpus tables yet"}
        return maintain_store(**where, keep_days=int(keep_days), orphan_age_hours=float(orphan_age_hours),
                              compact=bool(compact))  # fmt: skip
