"""Callbacks for late or failed corpus runs (the DAG's DeadlineAlert replaces Airflow 2's SLAs)."""

from __future__ import annotations

import logging
import os

log = logging.getLogger("binfeat.airflow")


async def corpus_update_late(**kwargs: object) -> None:
    """Runs in the triggerer when the nightly run misses its deadline: log it and count it in StatsD.

    The StatsD host comes from ``BINFEAT_STATSD_HOST`` (unset: no metric), so the alert lands in
    Graphite beside Airflow's own metrics; wire a pager to that metric or to this log line.
    """
    context = kwargs.get("context") or {}
    dag_run = context.get("dag_run") if isinstance(context, dict) else None
    log.warning(
        "binfeat corpus update is late: deadline missed (dag_run=%s, details=%s)",
        getattr(dag_run, "run_id", dag_run),
        {k: v for k, v in kwargs.items() if k != "context"},
    )
    host = os.environ.get("BINFEAT_STATSD_HOST")
    if host:
        try:
            import statsd

            statsd.StatsClient(
                host, int(os.environ.get("BINFEAT_STATSD_PORT", "8125")), prefix="binfeat.corpus"
            ).incr("deadline_missed")
        except (ImportError, OSError) as exc:
            log.warning("deadline metric not sent: %s", exc)
