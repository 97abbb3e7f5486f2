"""Run one ``dag.test()`` of a DAG in this (fresh) process and print the outcome as JSON.

Used by test_corpus_update_dag.py in a subprocess, so that Airflow's settings, ORM and logging
never touch the pytest process. The environment (AIRFLOW_HOME, dags folder, connections,
variables) is prepared by the caller.
"""

from __future__ import annotations

import argparse
import json
import sys


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--dag-id", required=True)
    p.add_argument("--date", required=True, help="logical date YYYY-MM-DD")
    p.add_argument("--conf", default="{}", help="run conf (JSON): the DAG's params")
    args = p.parse_args(argv)

    import pendulum
    from airflow.dag_processing.dagbag import DagBag
    from airflow.sdk import conf

    bag = DagBag(dag_folder=conf.get("core", "dags_folder"))
    if bag.import_errors:
        print(json.dumps({"import_errors": {k: str(v) for k, v in bag.import_errors.items()}}))
        return 2
    dag = bag.get_dag(args.dag_id)
    logical = pendulum.parse(args.date).in_timezone("UTC")
    dr = dag.test(logical_date=logical, run_conf=json.loads(args.conf))
    from airflow.models.taskinstance import TaskInstance
    from airflow.utils.session import create_session

    with create_session() as session:
        tis = session.query(TaskInstance).filter(
            TaskInstance.dag_id == args.dag_id, TaskInstance.run_id == dr.run_id
        )
        states = {ti.task_id: str(ti.state) for ti in tis}
        events = _asset_events(session, dr.run_id)
    result = {"run_id": dr.run_id, "state": str(dr.state), "tasks": states, "asset_events": events}
    print("DAG_TEST_RESULT " + json.dumps(result, default=str))
    return 0


def _asset_events(session, run_id: str) -> list[dict]:
    """Asset events this run emitted (uri and extra), from the metadata DB."""
    from airflow.models.asset import AssetEvent, AssetModel

    rows = (
        session.query(AssetModel.uri, AssetEvent.extra)
        .join(AssetModel, AssetEvent.asset_id == AssetModel.id)
        .filter(AssetEvent.source_run_id == run_id)
        .all()
    )
    return [{"uri": uri, "extra": extra} for uri, extra in rows]


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
