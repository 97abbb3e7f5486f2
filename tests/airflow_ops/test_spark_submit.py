"""The operators with a real spark-submit (local mode): the driver gets the credentials, the task
output does not; on_kill stops the job and nothing is published."""

from __future__ import annotations

import json
import os
import textwrap
import threading
import time

import pytest

from tests.airflow_ops.airflow_home import REPO
from tests.airflow_ops.support import BIN, KEY_ID, PY, SECRET, corpus_op, run, spark_conn

pytestmark = [pytest.mark.airflow, pytest.mark.spark]


def test_spark_submit_for_real_env_reaches_driver_not_log(aws_conn, monkeypatch, tmp_path, capfd):
    """A real spark-submit (local mode): the driver sees the credentials; the task output never does."""
    from airflow_ops.operators import SparkJobOperator
    from airflow_ops.spark_jobs import SparkJob

    spark_conn(monkeypatch, {"conn_type": "spark", "host": "local[2]"})
    app = tmp_path / "app.py"
    report = tmp_path / "report.json"
    app.write_text(
        textwrap.dedent(f"""
        import json, os, sys
        with open({str(report)!r}, "w") as fh:
            json.dump({{"secret_ok": os.environ.get("AWS_SECRET_ACCESS_KEY") == {SECRET!r},
                        "argv": sys.argv[1:]}}, fh)
        print("job done")
    """)
    )

    class Probe(SparkJobOperator):
        job = SparkJob(module="probe", parser=lambda: None)  # type: ignore[arg-type,return-value]

    op = Probe(task_id="probe", application=str(app), aws_conn_id="aws_test", job_args={"probe": True})
    run(op, {"run_id": "manual__probe"})
    got = json.loads(report.read_text())
    assert got == {"secret_ok": True, "argv": ["--probe", "--run-id", "manual__probe"]}
    out = capfd.readouterr()
    assert "job done" in out.out + out.err  # spark-submit's output is streamed into the task log
    assert SECRET not in out.out + out.err and KEY_ID not in out.out + out.err


def _processes_mentioning(text: str) -> list[int]:
    pids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit() and int(entry) != os.getpid():
            try:
                with open(f"/proc/{entry}/cmdline", "rb") as fh:
                    if text.encode() in fh.read():
                        pids.append(int(entry))
            except OSError:
                continue
    return pids


@pytest.mark.timeout(600)
def test_on_kill_stops_the_job_and_publishes_nothing(monkeypatch, tmp_path):
    """on_kill (the provider's own) stops spark-submit and the Python driver; nothing is published."""
    from jobs.corpus.catalog import CATALOG_FILE
    from jobs.corpus.tags import describe_date
    from tests.dags.corpus_split import DAY1, build_split

    spark_conn(monkeypatch, {"conn_type": "spark", "host": "local[2]"})
    split = build_split(tmp_path / "data", few=True)  # killed long before it could finish
    store = tmp_path / "store"
    op = corpus_op(
        job_args={"date": DAY1, "incoming": str(split.incoming / DAY1), "store": str(store),
                  "labels": str(split.labels / DAY1)},
        python=PY, spark_bin_dir=BIN, process_env={"PYTHONPATH": str(REPO), "SPARK_LOCAL_IP": "127.0.0.1"},
    )  # fmt: skip
    op.render_template_fields({"run_id": "manual__kill", "params": {}})
    errors: list[BaseException] = []

    def work() -> None:
        try:
            op.execute({})
        except BaseException as exc:  # the killed spark-submit makes the hook raise
            errors.append(exc)

    thread = threading.Thread(target=work, daemon=True)
    thread.start()
    deadline = time.monotonic() + 300
    while not (store / CATALOG_FILE).exists():  # the job's driver has opened the store: it is running
        assert time.monotonic() < deadline and thread.is_alive(), "the job never started"
        time.sleep(0.5)
    time.sleep(2)  # the Spark job is running
    assert _processes_mentioning(str(store)), "no job process found"
    op.on_kill()
    thread.join(60)
    assert not thread.is_alive()
    assert errors, "execute should fail once spark-submit is killed"
    deadline = time.monotonic() + 30
    while _processes_mentioning(str(store)) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert _processes_mentioning(str(store)) == []  # spark-submit and the Python driver are gone
    time.sleep(2)
    assert describe_date(DAY1, store=str(store)) is None  # nothing published
