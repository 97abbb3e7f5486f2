"""binfeat_maintenance: what Airflow does not do by itself, daily, within what a task may do.

* ``delete_old_task_logs``: delete task log files older than N days (Airflow has no local log
  rotation);
* ``maintain_corpus_store``: the Iceberg corpus store's maintenance (keep N days of dates and
  snapshots, remove the orphan files of killed nights, compact past partitions). It touches the
  catalog and the warehouse only, so it runs under Airflow 3's task isolation.

Cleaning Airflow's metadata database is NOT a task: Airflow 3 isolates tasks from that database.
It is a command for the scheduler host's cron or systemd timer:
``python -m airflow_ops.metadata_cleanup --retention-days 90`` (docs/airflow.md).

Settings are Params with documented defaults; where the corpus lives comes from the same
Variables as the nightly DAG's (airflow_ops.variables).
"""

from __future__ import annotations

from datetime import timedelta

import pendulum
from airflow.providers.standard.operators.python import PythonOperator
from airflow.sdk import DAG, Param

from airflow_ops.maintenance import delete_old_task_logs, maintain_corpus_store
from airflow_ops.variables import store_settings, variable

with DAG(
    dag_id="binfeat_maintenance",
    description="Task-log rotation and the Iceberg corpus store's maintenance",
    schedule="@daily",
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    render_template_as_native_obj=True,
    default_args={"owner": "binfeat", "retries": 1, "retry_delay": timedelta(minutes=10)},
    params={
        "log_retention_days": Param(30, type="integer", minimum=1, description="Delete task logs older than this"),
        "keep_days": Param(
            14, type="integer", minimum=1, description="Keep the corpus's dates (tags) and snapshots of this many days"
        ),
        "orphan_age_hours": Param(
            72.0, type="number", minimum=0, description="Remove unreferenced files older than this (protects a night)"
        ),
        "compact": Param(True, type="boolean", description="Compact the small files of past partitions"),
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
        op_kwargs={
            **store_settings(),
            "keep_days": "{{ params.keep_days }}",
            "orphan_age_hours": "{{ params.orphan_age_hours }}",
            "compact": "{{ params.compact }}",
            "aws_conn_id": variable("binfeat_aws_conn_id"),
        },
    )
