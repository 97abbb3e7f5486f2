"""binfeat_corpus_update: the nightly corpus update, one master DAG of three tasks.

``wait_for_incoming`` waits (in reschedule mode, freeing its worker slot) for the day's files and
skips the day cleanly when they never come, so later days still run; ``update_corpus``
spark-submits ``binfeat corpus update`` for the day (the day's new files are appended to the
Iceberg table ``binfeat.features``, its labels upserted, the date tagged ``corpus-D`` in one
atomic commit); ``corpus_published`` checks the date's tag and emits the ``binfeat.features``
asset event, whose extra says which date it announces and where the tables are.

Nights are not chained (no ``depends_on_past``): each night appends what the table does not hold
yet, so nights need not run in order, a failed or skipped night does not block the next, and
clearing an earlier date while a later run is active cannot deadlock. ``max_active_runs=1`` keeps
two nights of this DAG from committing at once (the store would also survive it: one retries).
Re-run a date with a manual run and the ``date`` param (a second run with the same logical date is
refused by Airflow); a re-run adds no row.

This file must import fast and never import pyspark or the jobs package: the DAG processor parses
it often. Templates render natively: Params keep their types on the command line.
"""

from __future__ import annotations

import os
from datetime import timedelta

import pendulum
from airflow.sdk import DAG, AsyncCallback, DeadlineAlert, DeadlineReference, Param
from airflow.timetables.interval import CronDataIntervalTimetable

from airflow_ops import CORPUS_FEATURES, CorpusPublishedSensor, CorpusUpdateOperator, IncomingReadySensor
from airflow_ops.variables import DATE, store_settings, under_root, variable

# Deployment settings are Airflow Variables (airflow_ops.variables), read when a task runs.
WHERE = store_settings()  # store or catalog, warehouse, namespace, S3 endpoint: the same for every task
INCOMING = under_root("binfeat_incoming_root", "incoming")
LABELS = under_root("binfeat_labels_root", "labels")
AWS_CONN = variable("binfeat_aws_conn_id")

default_args = {
    "owner": "binfeat",
    # Exponential back-off: 5 min, 10 min, ... capped at 1 h. BINFEAT_CORPUS_RETRIES (environment of
    # the DAG processor) overrides the count, e.g. 0 in tests.
    "retries": int(os.environ.get("BINFEAT_CORPUS_RETRIES", "2")),
    "retry_delay": timedelta(minutes=5),
    "retry_exponential_backoff": True,
    "max_retry_delay": timedelta(hours=1),
    "execution_timeout": timedelta(hours=8),
}

# How long the first task waits for the day's files before skipping the day, and how often it
# looks (reschedule mode: no worker slot is held in between). Environment of the DAG processor.
INCOMING_TIMEOUT_S = float(os.environ.get("BINFEAT_INCOMING_TIMEOUT_S", str(12 * 3600)))
INCOMING_POKE_S = float(os.environ.get("BINFEAT_INCOMING_POKE_S", "600"))

# A run not finished this many hours after it was queued is late: the DeadlineAlert's callback
# logs it and counts it in StatsD. BINFEAT_CORPUS_DEADLINE_HOURS=0 turns it off (dag.test() in
# Airflow 3.3.2 crashes on DAG-level deadlines when the run succeeds, so the DAG test does).
DEADLINE_HOURS = float(os.environ.get("BINFEAT_CORPUS_DEADLINE_HOURS", "6"))
DEADLINE = (
    DeadlineAlert(
        reference=DeadlineReference.DAGRUN_QUEUED_AT,
        interval=timedelta(hours=DEADLINE_HOURS),
        callback=AsyncCallback("airflow_ops.alerts.corpus_update_late"),
    )
    if DEADLINE_HOURS > 0
    else None
)

with DAG(
    dag_id="binfeat_corpus_update",
    description="Nightly append-only binfeat corpus update on Apache Iceberg, one tag per date",
    # Interval [D 00:00, D+1 00:00) runs just after midnight UTC and processes day D ({{ ds }} = D).
    schedule=CronDataIntervalTimetable("@daily", timezone="UTC"),
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,  # one night commits at a time
    render_template_as_native_obj=True,  # Params keep their types (numbers, booleans, None)
    default_args=default_args,
    deadline=DEADLINE,
    params={
        "date": Param(
            None,
            type=["null", "string"],
            format="date",
            description="The date to publish, YYYY-MM-DD (its new files' ingest date and the tag corpus-DATE); "
            "default: the run's logical date (ds)",
        ),
        "incoming": Param(
            None,
            type=["null", "string"],
            description="The day's files (folder, manifest, s3:// prefix); "
            "default: Variable binfeat_incoming_root + '/' + date",
        ),
        "labels": Param(
            None,
            type=["null", "string"],
            description="The day's labels feed; default: Variable binfeat_labels_root + '/' + date",
        ),
        "max_error_share": Param(
            0.1,
            type="number",
            minimum=0,
            maximum=1,
            description="Fail when more extracted rows than this share have status error",
        ),
        "partitions": Param(
            None,
            type=["null", "integer"],
            minimum=1,
            description="Extraction partitions; default: planned from file sizes",
        ),
        "allow_missing_incoming": Param(
            False,
            type="boolean",
            description="Do not wait for the day's files; publish the date even when they are missing",
        ),
    },
    tags=["binfeat"],
    doc_md=__doc__,
) as dag:
    wait = IncomingReadySensor(
        task_id="wait_for_incoming",
        location=INCOMING,
        date=DATE,
        allow_missing="{{ params.allow_missing_incoming }}",
        s3_endpoint_url=WHERE["s3_endpoint_url"],
        aws_conn_id=AWS_CONN,
        mode="reschedule",
        poke_interval=INCOMING_POKE_S,
        timeout=INCOMING_TIMEOUT_S,
        soft_fail=True,  # no input by then: the day is skipped, not failed; later days run
    )
    update = CorpusUpdateOperator(
        task_id="update_corpus",
        conn_id="spark_default",  # the connection chooses the master (local[*], spark://, yarn, k8s)
        # The options of `binfeat corpus update --help`, by name; the job's parser checks them.
        job_args={
            "date": DATE,
            "incoming": INCOMING,
            **WHERE,  # --store DIR or --catalog NAME, --warehouse, --namespace, --s3-endpoint-url
            "labels": LABELS,
            "allow_missing_labels": True,  # a day without a labels feed is normal
            "allow_missing_incoming": "{{ params.allow_missing_incoming }}",
            "max_error_share": "{{ params.max_error_share }}",
            "partitions": "{{ params.partitions }}",
            "statsd_host": variable("binfeat_statsd_host"),
            "statsd_port": variable("binfeat_statsd_port"),
        },
        aws_conn_id=AWS_CONN,
    )
    check = CorpusPublishedSensor(
        task_id="corpus_published",
        date=DATE,
        **WHERE,
        aws_conn_id=AWS_CONN,
        mode="poke",
        poke_interval=30,
        timeout=600,
        outlets=[CORPUS_FEATURES],
    )
    wait >> update >> check
