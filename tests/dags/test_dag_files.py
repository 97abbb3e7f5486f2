"""The DAG folder parses cleanly and fast, never imports pyspark, and the DAGs are shaped as promised."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import timedelta

import pytest

from tests.airflow_ops.airflow_home import REPO

pytestmark = pytest.mark.airflow

DAGS = REPO / "dags"


@pytest.fixture(scope="module")
def dagbag():
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(DAGS))


def test_dag_folder_imports_without_errors(dagbag):
    assert dagbag.import_errors == {}
    assert sorted(dagbag.dag_ids) == ["binfeat_corpus_update", "binfeat_maintenance"]


@pytest.mark.parametrize("name", ["corpus_update.py", "maintenance.py"])
def test_dag_file_imports_fast_and_without_pyspark(name, tmp_path):
    """In a fresh interpreter: the cost of the DAG file itself, on top of `import airflow.sdk`."""
    code = f"""
import importlib.util, json, sys, time
t0 = time.perf_counter()
import airflow.sdk  # the baseline every DAG file pays
t1 = time.perf_counter()
spec = importlib.util.spec_from_file_location("dagfile", {str(DAGS / name)!r})
mod = importlib.util.module_from_spec(spec)
spec.loader.exec_module(mod)
t2 = time.perf_counter()
print(json.dumps({{"airflow_s": t1 - t0, "dag_file_s": t2 - t1,
                  "pyspark": sorted(m for m in sys.modules if m == "pyspark" or m.startswith("pyspark.")),
                  "jobs": sorted(m for m in sys.modules if m == "jobs" or m.startswith("jobs."))}}))
"""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}
    env.update(
        {"AIRFLOW_HOME": str(tmp_path), "AIRFLOW__CORE__LOAD_EXAMPLES": "False", "PYTHONPATH": str(REPO)}
    )
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    got = json.loads(proc.stdout.strip().splitlines()[-1])
    print(name, got)
    assert got["pyspark"] == []
    assert got["jobs"] == []  # not even the (Spark-free) jobs package: tasks import it at run time
    assert got["dag_file_s"] < 5.0, got


def test_corpus_update_dag_shape(dagbag):
    from airflow.providers.standard.operators.trigger_dagrun import TriggerDagRunOperator

    from airflow_ops import CORPUS_FEATURES, CorpusPublishedSensor, CorpusUpdateOperator, IncomingReadySensor

    dag = dagbag.dags["binfeat_corpus_update"]
    assert dag.catchup is False
    assert dag.max_active_runs == 1  # one night commits at a time
    assert dag.render_template_as_native_obj is True
    assert type(dag.timetable).__name__ == "CronDataIntervalTimetable"
    assert dag.timetable.summary == "0 0 * * *"  # daily, processing the day just ended
    assert dag.deadline is not None  # DeadlineAlert for a late run
    assert not any(isinstance(t, TriggerDagRunOperator) for t in dag.tasks)  # one master DAG
    # Nights are not chained: no cross-run wait can deadlock with max_active_runs=1 when a date is cleared.
    assert [t.task_id for t in dag.tasks if t.depends_on_past or t.wait_for_downstream] == []
    wait = dag.get_task("wait_for_incoming")
    update = dag.get_task("update_corpus")
    check = dag.get_task("corpus_published")
    assert isinstance(wait, IncomingReadySensor) and isinstance(update, CorpusUpdateOperator)
    assert isinstance(check, CorpusPublishedSensor)
    assert update.upstream_task_ids == {"wait_for_incoming"} and check.upstream_task_ids == {"update_corpus"}
    # A day whose files never come is skipped (not failed), waiting without holding a worker slot.
    assert wait.mode == "reschedule" and wait.soft_fail is True
    assert wait.timeout == float(os.environ.get("BINFEAT_INCOMING_TIMEOUT_S", 12 * 3600))
    assert update.retries >= 1 or os.environ.get("BINFEAT_CORPUS_RETRIES") == "0"
    assert update.retry_exponential_backoff and update.max_retry_delay == timedelta(hours=1)
    # The asset names the Iceberg features table.
    assert check.outlets == [CORPUS_FEATURES]
    assert (CORPUS_FEATURES.name, CORPUS_FEATURES.uri) == ("binfeat.features", "iceberg://binfeat/binfeat.features")
    assert update.job_args["run_id"] == "{{ run_id }}"
    assert set(dag.params.keys()) == {"date", "incoming", "labels", "max_error_share", "partitions",
                                      "allow_missing_incoming"}  # fmt: skip
    assert dag.params["max_error_share"] == 0.1


def test_maintenance_dag_shape(dagbag):
    dag = dagbag.dags["binfeat_maintenance"]
    assert dag.catchup is False and dag.render_template_as_native_obj is True
    assert {t.task_id: t.python_callable.__module__ for t in dag.tasks} == {
        "delete_old_task_logs": "airflow_ops.maintenance",
        "maintain_corpus_store": "airflow_ops.maintenance",
    }
    # No task may need the metadata database: Airflow 3 isolates tasks from it.
    assert not any(t.task_type == "BashOperator" for t in dag.tasks)
    assert dag.params.validate() == {"log_retention_days": 30, "keep_days": 14, "orphan_age_hours": 72.0,
                                     "compact": True}  # fmt: skip


# --- every operator, rendered as a run would render it, against the job's own parser -------------

RUN_CASES = {
    # name: (logical date or None, run conf, Variables set)
    "scheduled": ("2026-11-20", {}, {}),
    "variables": ("2026-11-20", {}, {
        "BINFEAT_STORE": "/srv/store", "BINFEAT_WAREHOUSE": "s3://corpus-bucket/binfeat",
        "BINFEAT_INCOMING_ROOT": "s3://in/incoming", "BINFEAT_LABELS_ROOT": "/srv/labels",
        "BINFEAT_S3_ENDPOINT_URL": "http://127.0.0.1:9000", "BINFEAT_STATSD_HOST": "graphite",
        "BINFEAT_STATSD_PORT": "9125",
    }),
    # A pyiceberg catalog configured on the workers: it wins over binfeat_store (exactly one reaches the job).
    "catalog": ("2026-11-20", {}, {
        "BINFEAT_CATALOG": "prod", "BINFEAT_STORE": "/srv/store", "BINFEAT_WAREHOUSE": "s3://corpus-bucket/binfeat",
        "BINFEAT_NAMESPACE": "corpus_v2",
    }),
    "empty_variables": ("2026-11-20", {}, {  # an empty Variable means its default
        "BINFEAT_STORE": "", "BINFEAT_CATALOG": "", "BINFEAT_NAMESPACE": "", "BINFEAT_STATSD_PORT": "",
    }),
    "all_params": ("2026-11-20", {
        "date": "2026-11-18", "incoming": "/elsewhere/in", "labels": "/elsewhere/labels.csv",
        "max_error_share": 0.3, "partitions": 6, "allow_missing_incoming": True,
    }, {}),
    "rerun_by_date_param": (None, {"date": "2026-11-19"}, {}),  # a manual run without a logical date
}  # fmt: skip
# Where the corpus lives, by case, as the job's parser must read it: (store, catalog, warehouse, namespace).
WHERE = {
    "variables": ("/srv/store", None, "s3://corpus-bucket/binfeat", "binfeat"),
    "catalog": (None, "prod", "s3://corpus-bucket/binfeat", "corpus_v2"),
}
DEFAULT_WHERE = ("/data/binfeat/store", None, None, "binfeat")


def _render(task, logical: str | None, conf: dict):
    """A copy of ``task`` with its templates rendered as Airflow renders them for such a run."""
    import copy

    from airflow.sdk.execution_time.context import VariableAccessor

    params = copy.deepcopy(task.dag.params)
    params.update(conf)
    context = {
        "params": params.validate(),
        "run_id": f"scheduled__{logical}T00:00:00+00:00" if logical else "manual__2026-12-06T10:00:00+00:00",
        "var": {"value": VariableAccessor(deserialize_json=False)},
    }
    if logical:
        context["ds"] = logical
    rendered = copy.deepcopy(task)
    rendered.render_template_fields(context)
    return rendered, context


@pytest.mark.parametrize("case", list(RUN_CASES))
def test_every_spark_operator_renders_arguments_its_jobs_parser_accepts(dagbag, monkeypatch, case):
    from airflow_ops import SparkJobOperator

    logical, conf, variables = RUN_CASES[case]
    for name, value in variables.items():
        monkeypatch.setenv(f"AIRFLOW_VAR_{name}", value)
    checked = 0
    for dag in dagbag.dags.values():
        for task in dag.tasks:
            if not isinstance(task, SparkJobOperator):
                continue
            op, context = _render(task, logical, conf)
            argv = op.job_argv()
            ns = op.job.parser().parse_args(argv)  # the job's own parser: exit 2 on any bad argument
            for key, value in op.job_args.items():  # every rendered value arrived typed, as the job reads it
                if value is not None:
                    assert getattr(ns, key) == value, (task.task_id, key, argv)
            checked += 1
            if task.task_id == "update_corpus":
                _check_corpus_update(ns, case, context)
    assert checked == 1  # update_corpus; a new Spark operator in a DAG is checked here too


def _check_corpus_update(ns, case: str, context: dict) -> None:
    p = context["params"]
    date = p["date"] or context.get("ds")
    assert ns.date == date and ns.run_id == context["run_id"]
    assert (ns.max_error_share, ns.partitions) == (p["max_error_share"], p["partitions"])
    assert ns.allow_missing_labels is True and ns.allow_missing_incoming is p["allow_missing_incoming"]
    assert (ns.store, ns.catalog, ns.warehouse, ns.namespace) == WHERE.get(case, DEFAULT_WHERE)
    if case == "variables":
        assert (ns.incoming, ns.labels) == (f"s3://in/incoming/{date}", f"/srv/labels/{date}")
        assert (ns.s3_endpoint_url, ns.statsd_host, ns.statsd_port) == ("http://127.0.0.1:9000", "graphite", 9125)
    elif case == "all_params":
        assert (ns.incoming, ns.labels) == ("/elsewhere/in", "/elsewhere/labels.csv")
    else:
        assert (ns.incoming, ns.labels) == (f"/data/binfeat/incoming/{date}", f"/data/binfeat/labels/{date}")
        assert (ns.s3_endpoint_url, ns.statsd_host, ns.statsd_port) == (None, None, 8125)  # unset: left out


@pytest.mark.parametrize("case", list(RUN_CASES))
def test_every_task_renders_the_same_date_and_store(dagbag, monkeypatch, case):
    logical, conf, variables = RUN_CASES[case]
    for name, value in variables.items():
        monkeypatch.setenv(f"AIRFLOW_VAR_{name}", value)
    dag = dagbag.dags["binfeat_corpus_update"]
    update, _ = _render(dag.get_task("update_corpus"), logical, conf)
    wait, _ = _render(dag.get_task("wait_for_incoming"), logical, conf)
    check, _ = _render(dag.get_task("corpus_published"), logical, conf)
    maintain, _ = _render(dagbag.dags["binfeat_maintenance"].get_task("maintain_corpus_store"), logical, {})
    assert wait.date == check.date == update.job_args["date"]
    assert wait.location == update.job_args["incoming"]
    assert wait.allow_missing is update.job_args["allow_missing_incoming"]
    assert wait.s3_endpoint_url == update.job_args["s3_endpoint_url"]
    where = {k: update.job_args[k] for k in ("store", "catalog", "warehouse", "namespace", "s3_endpoint_url")}
    assert check.location() == where
    assert {k: maintain.op_kwargs[k] for k in where} == where
    assert check.aws_conn_id == update.aws_conn_id == maintain.op_kwargs["aws_conn_id"]


def test_a_manual_run_without_date_fails_in_one_line(dagbag):
    """No logical date and no date param: the first task says what to do."""
    dag = dagbag.dags["binfeat_corpus_update"]
    wait, _ = _render(dag.get_task("wait_for_incoming"), None, {})
    assert wait.date is None
    with pytest.raises(ValueError, match="trigger it with a logical date, or with the 'date' param"):
        wait.poke({})


def test_maintenance_tasks_render_and_run(dagbag, tmp_path, monkeypatch):
    """Each maintenance task's callable with its rendered arguments, on real folders."""
    import time

    monkeypatch.setenv("AIRFLOW_VAR_BINFEAT_STORE", str(tmp_path / "no-store"))
    dag = dagbag.dags["binfeat_maintenance"]
    logs, _ = _render(dag.get_task("delete_old_task_logs"), "2026-11-22", {"log_retention_days": 7})
    assert logs.op_kwargs == {"days": 7}
    folder = tmp_path / "logs" / "dag_id=x"
    folder.mkdir(parents=True)
    (folder / "old.log").write_text("x")
    past = time.time() - 8 * 86400
    os.utime(folder / "old.log", (past, past))
    got = logs.python_callable(**logs.op_kwargs, base_log_folder=str(tmp_path / "logs"))
    assert got == {"folder": str(tmp_path / "logs"), "removed_files": 1, "kept_files": 0}
    store, _ = _render(dag.get_task("maintain_corpus_store"), "2026-11-22",
                       {"keep_days": 3, "orphan_age_hours": 1.5, "compact": False})  # fmt: skip
    assert store.op_kwargs == {"store": str(tmp_path / "no-store"), "catalog": None, "warehouse": None,
                               "namespace": "binfeat", "s3_endpoint_url": None, "keep_days": 3,
                               "orphan_age_hours": 1.5, "compact": False, "aws_conn_id": None}  # fmt: skip
    assert store.python_callable(**store.op_kwargs) == {"store": str(tmp_path / "no-store"), "skipped": "no store yet"}
    assert not (tmp_path / "no-store").exists()  # not created either


def test_the_variables_table_of_the_docs_is_the_code(dagbag):
    """docs/airflow.md lists every Variable with its default, as airflow_ops.variables declares them."""
    import re

    from airflow_ops.variables import VARIABLES

    doc = (REPO / "docs" / "airflow.md").read_text(encoding="utf-8")
    rows = dict(re.findall(r"^\s*\| `(binfeat_[a-z0-9_]+)` \| ([^|]*) \|", doc, flags=re.M))
    documented = {name: default.strip().strip("`") for name, default in rows.items()}
    assert set(documented) == set(VARIABLES)
    for name, (default, _meaning) in VARIABLES.items():
        assert documented[name] == default if default else documented[name].startswith("empty"), name
