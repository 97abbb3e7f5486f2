"""binfeat_maintenance: what Airflow does not do by itself, daily, within what a task may do.

* ``delete_old_task_logs``: delete task log files older than N days (Airflow has no local log
  rotation);
* ``maintain_corpus_store``: the corpus store's retention (keep the newest N snapshots; drop
  orphaned data and the staging litter of killed runs).

Cleaning Airflow's metadata database is NOT a task: Airflow 3 isolates tasks from that database.
It is a command for the scheduler host's cron or systemd timer:
``python -m airflow_ops.metadata_cleanup --retention-days 90`` (docs/airflow.md).

Settings are Params with documented defaults; the store comes from Variable ``binfeat_store``.
"""

from __future__ import annotations

from datetime import timedelta

import pendulum
from airflow.providers.standard.operators.python import PythonOperator
from airflow.sdk import DAG, Param

from airflow_ops.maintenance import delete_old_task_logs, maintain_corpus_store

STORE = "{{ var.value.get('binfeat_store', '/data/binfeat/store') }}"

with DAG(
    dag_id="binfeat_maintenance",
    description="Task-log rotation and corpus store retention",
    schedule="@daily",
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    render_template_as_native_obj=True,
    default_args={"owner": "binfeat", "retries": 1, "retry_delay": timedelta(minutes=10)},
    params={
        "log_retention_days": Param(30, type="integer", minimum=1, description="Delete task logs older than this"),
        "keep_snapshots": Param(14, type="integer", minimum=1, description="Corpus snapshots to keep"),
    },
    tags=["binfeat"],
    doc_md=__doc__,
) as dag:
    # Independent tasks: one failing does not block the other.
    PythonOperator(
        task_id="delete_old_task_logs",
        python_callable=delete_old_task_logs,
        op_kwargs={"days": "{{ params.log_retention_days }}"},
    )
    PythonOperator(
        task_id="maintain_corpus_store",
        python_callable=maintain_corpus_store,
        op_kwargs={"store": STORE, "keep": "{{ params.keep_snapshots }}"},
    )
