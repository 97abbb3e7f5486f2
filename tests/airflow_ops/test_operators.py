"""The operators through the provider's real hook: exact commands per deploy mode, credentials only in
the environment, native rendering, the job's own parser (a real spark-submit: test_spark_submit.py).

A small ``spark-submit`` stand-in (a real executable first on PATH) records the argv and the
credential variables of every process the hook starts, and answers like spark-submit does in each
mode (driver id, YARN application id); a standalone master's REST status
endpoint is a small HTTP server on 127.0.0.1.
"""

from __future__ import annotations

import http.server
import json
import os
import threading

import pytest

from tests.airflow_ops.airflow_home import REPO
from tests.airflow_ops.support import JOB_ARGS, KEY_ID, PY, RUN_ID, SECRET, corpus_op, run, spark_conn

pytestmark = pytest.mark.airflow

APP = str(REPO / "jobs" / "corpus_update.py")
NAME = "binfeat-corpus-update"
PY_CONF = [
    "--conf", "spark.pyspark.python=/opt/venv/bin/python",
    "--conf", "spark.pyspark.driver.python=/opt/venv/bin/python",
]  # fmt: skip
JOB_ARGV = [
    "--date", "2026-11-20", "--incoming", "/data/incoming/2026-11-20", "--store", "/data/store",
    "--allow-missing-labels", "--max-error-share", "0.1", "--run-id", RUN_ID,
]  # fmt: skip
DRIVER_ID = "driver-20261206000000-0001"

STUB = """\
#!{python}
import json, os, sys
argv = sys.argv[1:]
with open(os.environ["BINFEAT_STUB_RECORD"], "a") as fh:
    keys = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_DEFAULT_REGION", "BINFEAT_TEST_SETTING")
    fh.write(json.dumps({{"argv": argv, "env": {{k: os.environ.get(k) for k in keys}},
                         "path0": os.environ["PATH"].split(os.pathsep)[0]}}) + "\\n")
mode = argv[argv.index("--deploy-mode") + 1] if "--deploy-mode" in argv else "client"
master = argv[argv.index("--master") + 1]
if mode == "cluster" and master.startswith("spark://"):
    print("Submitting a request to launch an application in " + master)
    print("Driver successfully submitted as {driver_id}")
elif mode == "cluster" and master.startswith("yarn"):
    print("Submitted application application_1700000000000_0001")
print("stand-in spark-submit done")
"""


@pytest.fixture
def stub(tmp_path, monkeypatch):
    """A spark-submit stand-in in its own bin folder; returns (bin_dir, records())."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    exe = bin_dir / "spark-submit"
    exe.write_text(STUB.format(python=PY, driver_id=DRIVER_ID))
    exe.chmod(0o755)
    record = tmp_path / "record.jsonl"
    monkeypatch.setenv("BINFEAT_STUB_RECORD", str(record))

    def records() -> list[dict]:
        return [json.loads(line) for line in record.read_text().splitlines()] if record.exists() else []

    return str(bin_dir), records


@pytest.fixture
def standalone_rest():
    """The REST status endpoint of a standalone master: every driver is FINISHED."""

    paths: list[str] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            paths.append(self.path)
            body = json.dumps(
                {"action": "SubmissionStatusResponse", "driverState": "FINISHED", "serverSparkVersion": "4.2.0",
                 "submissionId": self.path.rsplit("/", 1)[-1], "success": True}, indent=2,
            ).replace('": "', '" : "').encode()  # fmt: skip
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1], paths
    server.shutdown()
    server.server_close()


# Each deploy mode the hook treats differently: (connection, operator kwargs, expected submit argv).
# Kubernetes masters need the cncf-kubernetes provider (not a binfeat dependency); the mechanism is
# the same there: spark-submit inherits the task's environment, nothing goes through env_vars.
MODES = {
    "local": (
        {"conn_type": "spark", "host": "local[2]"}, {},
        ["--master", "local[2]", *PY_CONF, "--name", NAME, APP, *JOB_ARGV],
    ),
    "standalone-client": (
        {"conn_type": "spark", "host": "spark://127.0.0.1", "port": 7077}, {},
        ["--master", "spark://127.0.0.1:7077", *PY_CONF, "--name", NAME, APP, *JOB_ARGV],
    ),
    "standalone-cluster": (
        {"conn_type": "spark", "host": "spark://127.0.0.1", "port": 7077,
         "extra": {"deploy-mode": "cluster", "rest-port": "REST_PORT"}},
        {"durable": False},
        ["--master", "spark://127.0.0.1:7077", *PY_CONF, "--name", NAME, "--deploy-mode", "cluster", APP,
         *JOB_ARGV],  # the status polls go to the master's REST endpoint (with curl)
    ),
    "yarn-client": (
        {"conn_type": "spark", "host": "yarn", "extra": {"deploy-mode": "client", "queue": "binfeat"}}, {},
        ["--master", "yarn", *PY_CONF, "--name", NAME, "--queue", "binfeat", "--deploy-mode", "client", APP,
         *JOB_ARGV],
    ),
    "yarn-cluster": (
        {"conn_type": "spark", "host": "yarn", "extra": {"deploy-mode": "cluster"}}, {"durable": False},
        ["--master", "yarn", *PY_CONF, "--name", NAME, "--deploy-mode", "cluster", APP, *JOB_ARGV],
    ),
}  # fmt: skip


@pytest.mark.parametrize("mode", list(MODES))
def test_each_deploy_mode_exact_command_and_credentials_only_in_the_environment(
    mode, stub, aws_conn, standalone_rest, monkeypatch, capfd
):
    conn, op_kwargs, expected_submit = MODES[mode]
    rest_port, rest_paths = standalone_rest
    conn = json.loads(json.dumps(conn).replace('"REST_PORT"', f'"{rest_port}"'))
    spark_conn(monkeypatch, conn)
    bin_dir, records = stub
    op = corpus_op(
        aws_conn_id="aws_test", spark_bin_dir=bin_dir, process_env={"BINFEAT_TEST_SETTING": "on"}, **op_kwargs
    )
    run(op)
    calls = records()
    assert [c["argv"] for c in calls] == [expected_submit]
    for call in calls:  # every process the hook started had the credentials in its environment...
        assert call["env"] == {
            "AWS_ACCESS_KEY_ID": KEY_ID,
            "AWS_SECRET_ACCESS_KEY": SECRET,
            "AWS_DEFAULT_REGION": "eu-west-1",
            "BINFEAT_TEST_SETTING": "on",
        }
        assert call["path0"] == bin_dir
        joined = " ".join(call["argv"])  # ...and none on its command line
        assert SECRET not in joined and KEY_ID not in joined and "Env." not in joined
    logged = capfd.readouterr()
    text = logged.out + logged.err
    assert "Spark-Submit cmd" in text and "stand-in spark-submit done" in text  # the hook logged...
    assert SECRET not in text and KEY_ID not in text  # ...without the credentials
    # Standalone cluster mode: the driver's status was polled on the master's REST port until FINISHED.
    assert rest_paths == ([f"/v1/submissions/status/{DRIVER_ID}"] if mode == "standalone-cluster" else [])
    # The task process's environment is as before.
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_DEFAULT_REGION", "BINFEAT_TEST_SETTING"):
        assert key not in os.environ
    assert not os.environ["PATH"].startswith(bin_dir)


def test_credentials_are_registered_with_the_secrets_masker(stub, aws_conn, monkeypatch):
    from airflow.sdk.log import redact  # the masker the task log goes through

    spark_conn(monkeypatch, {"conn_type": "spark", "host": "local[2]"})
    worker_secret = "workerEnvSecret" + "0123456789abcdef"
    monkeypatch.setenv("AWS_SESSION_TOKEN", worker_secret)  # a credential of the worker's own environment
    run(corpus_op(aws_conn_id="aws_test", spark_bin_dir=stub[0]))
    assert redact(f"a {SECRET} b {KEY_ID} c {worker_secret}") == "a *** b *** c ***"


def test_pyiceberg_catalog_secrets_in_the_environment_are_masked(stub, monkeypatch):
    """A catalog configured by PYICEBERG_CATALOG__* variables on the worker: its secrets (by key name,
    and a password inside a URI) are registered with the masker; its other settings are not."""
    from airflow.sdk.log import redact

    from airflow_ops.environment import environment_secrets

    spark_conn(monkeypatch, {"conn_type": "spark", "host": "local[2]"})
    catalog = {
        "PYICEBERG_CATALOG__PROD__TYPE": "sql",
        "PYICEBERG_CATALOG__PROD__URI": "postgresql+psycopg2://iceberg:pgSecret0123@db.internal/iceberg",
        "PYICEBERG_CATALOG__PROD__WAREHOUSE": "s3://corpus-bucket/binfeat",
        "PYICEBERG_CATALOG__PROD__S3__SECRET_ACCESS_KEY": "s3Secret0123456789",
        "PYICEBERG_CATALOG__REST__CREDENTIAL": "client:restSecret0123",
        "PYICEBERG_CATALOG__REST__TOKEN": "tokenSecret0123",
    }
    for key, value in catalog.items():
        monkeypatch.setenv(key, value)
    assert sorted(environment_secrets(catalog)) == sorted(
        ["pgSecret0123", "s3Secret0123456789", "client:restSecret0123", "tokenSecret0123"]
    )
    run(corpus_op(spark_bin_dir=stub[0]))
    text = "pgSecret0123 s3Secret0123456789 client:restSecret0123 tokenSecret0123 s3://corpus-bucket/binfeat"
    assert redact(text) == "*** *** *** *** s3://corpus-bucket/binfeat"


def test_provider_arguments_pass_through_untouched(stub, monkeypatch):
    """Any provider argument reaches the hook; the operator lists none of them."""
    spark_conn(monkeypatch, {"conn_type": "spark", "host": "local[2]"})
    op = corpus_op(
        spark_bin_dir=stub[0], conf={"spark.executor.memory": "4g"}, driver_memory="2g", executor_cores=2,
        num_executors=3, files="/etc/hosts", py_files="/opt/binfeat.zip", verbose=True, name="nightly",
        properties_file="/etc/spark/defaults.conf",
    )  # fmt: skip
    run(op)
    assert [c["argv"] for c in stub[1]()] == [
        [
            "--master", "local[2]", *PY_CONF, "--conf", "spark.executor.memory=4g",
            "--properties-file", "/etc/spark/defaults.conf", "--files", "/etc/hosts", "--py-files", "/opt/binfeat.zip",
            "--num-executors", "3", "--executor-cores", "2", "--driver-memory", "2g", "--name", "nightly",
            "--verbose", APP, *JOB_ARGV,
        ]
    ]  # fmt: skip


def test_native_rendering_keeps_param_types(stub, monkeypatch):
    """Typed Params render as numbers, booleans and None, never as the strings 'None'/'True'."""
    import pendulum
    from airflow.sdk import DAG, Param

    spark_conn(monkeypatch, {"conn_type": "spark", "host": "local[2]"})
    with DAG("t", schedule=None, start_date=pendulum.datetime(2026, 1, 1, tz="UTC")):  # not native itself
        op = corpus_op(
            spark_bin_dir=stub[0],
            job_args={
                "date": "{{ params.date or ds }}", "incoming": "/in/{{ params.date or ds }}",
                "catalog": "{{ params.catalog }}", "warehouse": "{{ params.warehouse or None }}",
                "labels": "{{ params.labels }}", "allow_missing_incoming": "{{ params.allow }}",
                "allow_missing_labels": "{{ params.allow_labels }}", "max_error_share": "{{ params.share }}",
                "partitions": "{{ params.partitions }}",
            },
        )  # fmt: skip
    params = {
        "date": Param(None, type=["null", "string"]), "labels": Param(None, type=["null", "string"]),
        "catalog": Param("prod", type="string"), "warehouse": Param("", type="string"),
        "allow": Param(True, type="boolean"), "allow_labels": Param(False, type="boolean"),
        "share": Param(0.25, type="number"), "partitions": Param(None, type=["null", "integer"]),
    }  # fmt: skip
    context = {"ds": "2026-11-21", "params": {k: p.resolve() for k, p in params.items()}}
    op.render_template_fields({"run_id": RUN_ID, **context})
    assert op.job_args == {
        "date": "2026-11-21", "incoming": "/in/2026-11-21", "catalog": "prod", "warehouse": None, "labels": None,
        "allow_missing_incoming": True, "allow_missing_labels": False, "max_error_share": 0.25, "partitions": None,
        "run_id": RUN_ID,
    }  # fmt: skip
    op.execute({})
    argv = stub[1]()[0]["argv"]
    assert argv[argv.index(APP) :] == [
        APP, "--date", "2026-11-21", "--incoming", "/in/2026-11-21", "--catalog", "prod", "--allow-missing-incoming",
        "--max-error-share", "0.25", "--run-id", RUN_ID,
    ]  # fmt: skip


# Every option of `binfeat corpus update` an operator may set, twice: the embedded store with its files on S3,
# and a pyiceberg catalog by name (--store and --catalog exclude each other).
STORE_CASES = {
    "embedded": {"store": "/data/store", "warehouse": "s3://corpus-bucket/binfeat", "namespace": "binfeat"},
    "catalog": {"catalog": "prod", "warehouse": "s3://corpus-bucket/binfeat", "namespace": "corpus_v2"},
}


@pytest.mark.parametrize("case", list(STORE_CASES))
def test_corpus_update_arguments_pass_the_jobs_own_parser(case):
    from airflow_ops.spark_jobs import CORPUS_UPDATE

    where = STORE_CASES[case]
    job_args = {k: v for k, v in JOB_ARGS.items() if k != "store"}
    op = corpus_op(
        job_args={**job_args, **where, "labels": "/l", "allow_missing_incoming": True, "partitions": 8,
                  "s3_endpoint_url": "http://127.0.0.1:9", "statsd_host": "graphite", "statsd_port": 9125,
                  "statsd_prefix": "corpus.test", "summary_out": "/tmp/s.json"},
    )  # fmt: skip
    op.render_template_fields({"run_id": RUN_ID, "params": {}})
    ns = CORPUS_UPDATE.parser().parse_args(op.job_argv())
    assert (ns.date, ns.incoming, ns.labels, ns.partitions, ns.max_error_share) == (
        "2026-11-20", "/data/incoming/2026-11-20", "/l", 8, 0.1,
    )  # fmt: skip
    assert (ns.store, ns.catalog, ns.warehouse, ns.namespace) == (
        where.get("store"), where.get("catalog"), where["warehouse"], where["namespace"],
    )  # fmt: skip
    assert (ns.allow_missing_labels, ns.allow_missing_incoming, ns.run_id) == (True, True, RUN_ID)
    assert (ns.s3_endpoint_url, ns.statsd_host, ns.statsd_port, ns.statsd_prefix, ns.summary_out) == (
        "http://127.0.0.1:9", "graphite", 9125, "corpus.test", "/tmp/s.json",
    )  # fmt: skip


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"keep": 3}, "unrecognized arguments: --keep 3"),  # retention is the maintenance DAG's now
        ({"catalog": "prod"}, "not allowed with argument --store"),  # exactly one of --store / --catalog
        ({"store": None}, "one of the arguments --store --catalog is required"),
        ({"store": "s3://bucket/store"}, "must be a local folder"),
        ({"warehouse": "relative/path"}, "use s3://bucket/prefix"),
    ],
)
def test_the_jobs_parser_refuses_what_the_job_would(change, message):
    from airflow_ops.spark_jobs import CORPUS_UPDATE
    from jobs.corpus.cli import UsageError

    op = corpus_op(job_args={**JOB_ARGS, **change})
    op.render_template_fields({"run_id": RUN_ID, "params": {}})
    with pytest.raises(UsageError, match=message):
        CORPUS_UPDATE.parser().parse_args(op.job_argv())


def test_extract_operator_exact_command_and_the_jobs_own_parser(stub, monkeypatch):
    from airflow_ops import ExtractOperator
    from airflow_ops.spark_jobs import EXTRACT

    spark_conn(monkeypatch, {"conn_type": "spark", "host": "local[2]"})
    op = ExtractOperator(
        task_id="extract", python="/opt/venv/bin/python", spark_bin_dir=stub[0],
        job_args={"output": "/data/features", "input": "s3://bucket/incoming/", "s3_endpoint_url": "http://127.0.0.1:9000",
                  "partitions": 4, "dedupe": True, "fuzzy_hashes": "tlsh,ssdeep", "scheme": "ember2",
                  "groups": "byte_histogram,strings", "engine": "spark", "exclude": ["manifest.jsonl", "*.md"],
                  "conf": ["spark.a=1", "spark.b=x=y"]},
    )  # fmt: skip
    run(op, {"run_id": "manual__1"})
    argv = [
        "s3://bucket/incoming/", "/data/features", "--s3-endpoint-url", "http://127.0.0.1:9000", "--partitions", "4",
        "--dedupe", "--fuzzy-hashes", "tlsh,ssdeep", "--scheme", "ember2", "--groups", "byte_histogram,strings",
        "--engine", "spark", "--exclude", "manifest.jsonl", "--exclude", "*.md", "--conf", "spark.a=1",
        "--conf", "spark.b=x=y", "--run-id", "manual__1", "--quiet",
    ]  # fmt: skip
    assert [c["argv"] for c in stub[1]()] == [
        ["--master", "local[2]", *PY_CONF, "--name", "binfeat-extract", str(REPO / "jobs" / "extract_features.py"),
         *argv]
    ]  # fmt: skip
    ns = EXTRACT.parser().parse_args(op.job_argv())
    assert (ns.input, ns.output, ns.partitions, ns.dedupe, ns.quiet, ns.run_id) == (
        "s3://bucket/incoming/", "/data/features", 4, True, True, "manual__1",
    )  # fmt: skip
    assert ns.fuzzy_hashes == ("tlsh", "ssdeep") and ns.conf == [("spark.a", "1"), ("spark.b", "x=y")]
    assert (ns.scheme, ns.groups, ns.engine) == ("ember2", ("byte_histogram", "strings"), "spark")
    assert ns.exclude == ["manifest.jsonl", "*.md"]


def test_refusals():
    from airflow_ops import ExtractOperator

    with pytest.raises(ValueError, match="env_vars"):
        corpus_op(env_vars={"AWS_SECRET_ACCESS_KEY": SECRET})
    with pytest.raises(ValueError, match="job_args"):
        corpus_op(application_args=["--date", "x"])
    with pytest.raises(ValueError, match="not an option name"):
        corpus_op(job_args={"max-error-share": 0.1})
    with pytest.raises(ValueError, match="'output' is required"):
        ExtractOperator(task_id="x", job_args={"input": "/in"})


def test_missing_job_is_one_clear_error():
    from airflow_ops.spark_jobs import SparkJob

    job = SparkJob(module="jobs.no_such_job", parser=lambda: None)  # type: ignore[arg-type,return-value]
    with pytest.raises(FileNotFoundError, match=r"cannot find jobs\.no_such_job"):
        job.application()
