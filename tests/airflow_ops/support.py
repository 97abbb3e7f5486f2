"""Shared by the operator tests: credentials, a corpus-update operator, running it as a task would."""

from __future__ import annotations

import json
import sys
from pathlib import Path

PY = sys.executable
BIN = str(Path(PY).parent)
SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYzEXAMPLEKEY"
KEY_ID = "AKIAIOSFODNN7EXAMPLE"
RUN_ID = "scheduled__2026-11-20T00:00:00+00:00"
JOB_ARGS = {
    "date": "2026-11-20",
    "incoming": "/data/incoming/2026-11-20",
    "store": "/data/store",
    "labels": None,
    "allow_missing_labels": True,
    "max_error_share": 0.1,
    "partitions": None,
}


def spark_conn(monkeypatch, conn: dict) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_SPARK_DEFAULT", json.dumps(conn))


def corpus_op(**kw):
    from airflow_ops import CorpusUpdateOperator

    args = dict(task_id="update_corpus", job_args=JOB_ARGS, python="/opt/venv/bin/python")
    args.update(kw)
    return CorpusUpdateOperator(**args)


def run(op, context: dict | None = None) -> None:
    """Render the operator's templates with a small context, then run it as a task would."""
    op.render_template_fields({"run_id": RUN_ID, "params": {}, **(context or {})})
    op.execute({})
