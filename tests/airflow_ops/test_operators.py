"""The operators' exact spark-submit commands, credentials handling, the sensor, and on_kill for real."""

from __future__ import annotations

import json
import os
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from tests.airflow_ops.airflow_home import REPO

pytestmark = pytest.mark.airflow

PY = sys.executable
BIN = str(Path(PY).parent)
SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYzEXAMPLEKEY"
KEY_ID = "AKIAIOSFODNN7EXAMPLE"


@pytest.fixture
def spark_conn(monkeypatch):
    monkeypatch.setenv("AIRFLOW_CONN_SPARK_DEFAULT", json.dumps({"conn_type": "spark", "host": "local[2]"}))
    monkeypatch.setenv(
        "AIRFLOW_CONN_AWS_TEST",
        json.dumps(
            {"conn_type": "aws", "login": KEY_ID, "password": SECRET, "extra": {"region_name": "eu-west-1"}}
        ),
    )


def corpus_op(**kw):
    from airflow_ops import CorpusUpdateOperator

    args = dict(
        task_id="update_corpus", store="/data/store", incoming="/data/incoming/2026-11-20",
        date="2026-11-20", labels="/data/labels/2026-11-20",
        airflow_run_id="scheduled__2026-11-20T00:00:00+00:00",
        python="/opt/venv/bin/python", spark_bin_dir="/opt/venv/bin",
    )  # fmt: skip
    args.update(kw)
    return CorpusUpdateOperator(**args)


def test_corpus_update_command(spark_conn):
    cmd = corpus_op().build_command()
    assert cmd == [
        "spark-submit",
        "--master", "local[2]",
        "--conf", "spark.pyspark.python=/opt/venv/bin/python",
        "--conf", "spark.pyspark.driver.python=/opt/venv/bin/python",
        "--name", "binfeat-corpus-update",
        str(REPO / "jobs" / "corpus_update.py"),
        "--date", "2026-11-20",
        "--incoming", "/data/incoming/2026-11-20",
        "--store", "/data/store",
        "--labels", "/data/labels/2026-11-20",
        "--allow-missing-labels",
        "--max-error-share", "0.1",
        "--keep", "14",
        "--run-id", "scheduled__2026-11-20T00:00:00+00:00",
    ]  # fmt: skip


def test_corpus_update_command_all_options(spark_conn):
    op = corpus_op(
        partitions=8, s3_endpoint_url="http://127.0.0.1:9000", allow_missing_labels=False,
        allow_missing_incoming="True", max_error_share="0.25", keep="3", statsd_host="graphite.internal",
        statsd_port=9125, conf={"spark.executor.memory": "4g"}, name="nightly",
    )  # fmt: skip
    assert op.build_command() == [
        "spark-submit",
        "--master", "local[2]",
        "--conf", "spark.pyspark.python=/opt/venv/bin/python",
        "--conf", "spark.pyspark.driver.python=/opt/venv/bin/python",
        "--conf", "spark.executor.memory=4g",
        "--name", "nightly",
        str(REPO / "jobs" / "corpus_update.py"),
        "--date", "2026-11-20",
        "--incoming", "/data/incoming/2026-11-20",
        "--store", "/data/store",
        "--labels", "/data/labels/2026-11-20",
        "--allow-missing-incoming",
        "--max-error-share", "0.25",
        "--keep", "3",
        "--partitions", "8",
        "--s3-endpoint-url", "http://127.0.0.1:9000",
        "--statsd-host", "graphite.internal", "--statsd-port", "9125", "--statsd-prefix", "binfeat.corpus",
        "--run-id", "scheduled__2026-11-20T00:00:00+00:00",
    ]  # fmt: skip


def test_extract_command(spark_conn):
    from airflow_ops import ExtractOperator

    op = ExtractOperator(
        task_id="extract", input_path="s3://bucket/incoming/", output_path="/data/features",
        s3_endpoint_url="http://127.0.0.1:9000", partitions=4, dedupe=True, airflow_run_id="manual__1",
        python="/opt/venv/bin/python",
    )  # fmt: skip
    assert op.build_command() == [
        "spark-submit",
        "--master", "local[2]",
        "--conf", "spark.pyspark.python=/opt/venv/bin/python",
        "--conf", "spark.pyspark.driver.python=/opt/venv/bin/python",
        "--name", "binfeat-extract",
        str(REPO / "jobs" / "extract_features.py"),
        "s3://bucket/incoming/", "/data/features",
        "--s3-endpoint-url", "http://127.0.0.1:9000",
        "--partitions", "4",
        "--dedupe",
        "--quiet",
        "--run-id", "manual__1",
    ]  # fmt: skip


def test_templates_render_run_id_and_date(spark_conn):
    import pendulum
    from airflow.sdk import DAG

    with DAG("t", schedule=None, start_date=pendulum.datetime(2026, 1, 1, tz="UTC")):
        op = corpus_op(
            date="{{ ds }}", airflow_run_id="{{ run_id }}", incoming="/in/{{ ds }}", keep="{{ params.k }}"
        )
    op.render_template_fields({"ds": "2026-11-21", "run_id": "manual__abc", "params": {"k": 5}})
    cmd = op.build_command()
    assert cmd[cmd.index("--date") + 1] == "2026-11-21"
    assert cmd[cmd.index("--incoming") + 1] == "/in/2026-11-21"
    assert cmd[cmd.index("--keep") + 1] == "5"
    assert cmd[-2:] == ["--run-id", "manual__abc"]


@pytest.mark.parametrize(
    "conn",
    [
        {"conn_type": "spark", "host": "local[2]"},
        {"conn_type": "spark", "host": "yarn"},  # the provider would turn env_vars into --conf here
        {"conn_type": "spark", "host": "spark://10.0.0.1", "port": 7077},
    ],
)
def test_credentials_never_on_the_command_line_nor_in_the_hook_log(spark_conn, monkeypatch, capfd, conn):
    monkeypatch.setenv("AIRFLOW_CONN_SPARK_DEFAULT", json.dumps(conn))
    op = corpus_op(aws_conn_id="aws_test", process_env={"BINFEAT_S3_RETRY_MODE": "adaptive"})
    cmd = op.build_command()
    joined = " ".join(cmd)
    assert SECRET not in joined and KEY_ID not in joined
    assert "appMasterEnv" not in joined and "driverEnv" not in joined and "executorEnv" not in joined
    env = op._get_hook()._process_env  # what spark-submit's process gets instead
    assert env["AWS_SECRET_ACCESS_KEY"] == SECRET and env["AWS_ACCESS_KEY_ID"] == KEY_ID
    assert env["AWS_DEFAULT_REGION"] == "eu-west-1" and env["BINFEAT_S3_RETRY_MODE"] == "adaptive"
    assert env["PATH"].startswith("/opt/venv/bin" + os.pathsep)
    logged = capfd.readouterr()
    assert "Spark-Submit cmd" in logged.out + logged.err  # the hook did log the command...
    assert SECRET not in logged.out + logged.err and KEY_ID not in logged.out + logged.err  # ...without them


def test_env_vars_and_application_args_are_refused(spark_conn):
    with pytest.raises(ValueError, match="process_env"):
        corpus_op(env_vars={"AWS_SECRET_ACCESS_KEY": SECRET})
    with pytest.raises(ValueError, match="application_args"):
        corpus_op(application_args=["--date", "x"])


def test_sensor(tmp_path):
    from airflow_ops import SnapshotPublishedSensor

    sensor = SnapshotPublishedSensor(task_id="check", store=str(tmp_path), date="2026-11-20", min_rows=2)
    assert sensor.poke({}) is False  # not published yet
    (tmp_path / "snapshots").mkdir()
    manifest = {"format": "binfeat-corpus-snapshot/1", "date": "2026-11-20", "rows": {"total": 3},
                "feature_version": "1.x", "labels": {"coverage": 0.5}, "run_id": "r"}  # fmt: skip
    (tmp_path / "snapshots" / "2026-11-20.json").write_text(json.dumps(manifest))
    got = sensor.poke({})
    assert got.is_done and got.xcom_value["rows"] == 3 and got.xcom_value["date"] == "2026-11-20"
    sensor.min_rows = 4
    with pytest.raises(RuntimeError, match="fewer than min_rows"):
        sensor.poke({})


@pytest.mark.spark
def test_spark_submit_for_real_env_reaches_driver_not_log(spark_conn, tmp_path, capfd):
    """A real spark-submit (local mode): the job sees the credentials; the task output never does."""
    from airflow_ops.operators import BinfeatSparkSubmitOperator

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

    class Probe(BinfeatSparkSubmitOperator):
        def job_arguments(self) -> list[str]:
            return ["--probe"]

    op = Probe(task_id="probe", application=str(app), aws_conn_id="aws_test", airflow_run_id="manual__probe")
    op.execute({})
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


@pytest.mark.spark
@pytest.mark.timeout(600)
def test_on_kill_stops_the_job_and_publishes_nothing(spark_conn, tmp_path):
    """on_kill (the provider's, through the hook) stops spark-submit and the Python driver; no snapshot."""
    from tests.dags.corpus_split import DAY1, build_split

    split = build_split(tmp_path / "data")
    store = tmp_path / "store"
    op = corpus_op(
        store=str(store), incoming=str(split.incoming / DAY1), labels=str(split.labels / DAY1), date=DAY1,
        python=PY, spark_bin_dir=BIN, process_env={"PYTHONPATH": str(REPO), "SPARK_LOCAL_IP": "127.0.0.1"},
    )  # fmt: skip
    errors: list[BaseException] = []

    def run() -> None:
        try:
            op.execute({})
        except BaseException as exc:  # the killed spark-submit makes the hook raise
            errors.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 300
    while not ((store / "_staging").is_dir() and any((store / "_staging").iterdir())):
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
    snapshots = store / "snapshots"
    assert not snapshots.exists() or not list(snapshots.iterdir())  # nothing published
