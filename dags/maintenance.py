"""binfeat_maintenance: what Airflow does not do by itself, daily.

* delete task log files older than N days (Airflow has no local log rotation);
* ``airflow db clean`` of metadata older than N days (task instances, XComs, logs tables...);
* snapshot retention of the corpus store (keep the newest N; drop orphaned data and the staging
  litter of killed runs).

Settings are Params with documented defaults; the store comes from Variable ``binfeat_store``.
"""

from __future__ import annotations

from datetime import timedelta

import pendulum
from airflow.providers.standard.operators.bash import BashOperator
from airflow.sdk import DAG, Param, task

STORE = "{{ var.value.get('binfeat_store', '/data/binfeat/store') }}"

with DAG(
    dag_id="binfeat_maintenance",
    description="Task-log cleanup, metadata DB clean-up and corpus snapshot retention",
    schedule="@daily",
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    default_args={"owner": "binfeat", "retries": 1, "retry_delay": timedelta(minutes=10)},
    params={
        "log_retention_days": Param(
            30, type="integer", minimum=1, description="Delete task logs older than this"
        ),
        "db_retention_days": Param(
            90, type="integer", minimum=1, description="airflow db clean: remove metadata older than this"
        ),
        "keep_snapshots": Param(14, type="integer", minimum=1, description="Corpus snapshots to keep"),
    },
    tags=["binfeat"],
    doc_md=__doc__,
) as dag:

    @task
    def delete_old_task_logs(days: int, base_log_folder: str | None = None) -> dict:
        """Remove log files not modified for ``days`` days under the logs folder, then empty folders."""
        import contextlib
        import os
        import time

        if base_log_folder is None:
            from airflow.sdk import conf

            base_log_folder = conf.get("logging", "base_log_folder")
        cutoff = time.time() - int(days) * 86400
        removed = kept = 0
        for dirpath, _dirnames, filenames in os.walk(base_log_folder, topdown=False):
            for name in filenames:
                path = os.path.join(dirpath, name)
                try:
                    if os.lstat(path).st_mtime < cutoff:
                        os.unlink(path)
                        removed += 1
                    else:
                        kept += 1
                except OSError:
                    continue
            if dirpath != base_log_folder:
                with contextlib.suppress(OSError):
                    os.rmdir(dirpath)  # only succeeds when empty
        return {"folder": base_log_folder, "removed_files": removed, "kept_files": kept}

    @task
    def apply_snapshot_retention(store: str, keep: int) -> dict:
        """Keep the newest ``keep`` snapshots (jobs.corpus_store: no Spark, imported only here)."""
        import os

        from jobs.corpus_store import CorpusStore

        if not os.path.isdir(store):
            return {"store": store, "skipped": "no store yet"}
        return CorpusStore(store).apply_retention(int(keep))

    BashOperator(
        task_id="airflow_db_clean",
        # --skip-archive: no archive tables that would grow forever; --yes: no prompt.
        bash_command=(
            "airflow db clean --clean-before-timestamp "
            "'{{ (data_interval_end - macros.timedelta(days=params.db_retention_days)).isoformat() }}' "
            "--skip-archive --yes"
        ),
    )

    delete_old_task_logs(days="{{ params.log_retention_days }}")
    apply_snapshot_retention(store=STORE, keep="{{ params.keep_snapshots }}")
    # The three tasks are independent: one failing does not block the others.
