"""A throw-away AIRFLOW_HOME for tests that import Airflow in the pytest process.

Must run before the first ``import airflow``: Airflow reads AIRFLOW_HOME and writes its config
there when it is first imported. No database is needed by these tests (DAG parsing, operators,
connections from AIRFLOW_CONN_* variables); the DAG runs themselves happen in subprocesses.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def ensure_test_airflow_home() -> None:
    if "airflow" in sys.modules or os.environ.get("BINFEAT_TEST_AIRFLOW_HOME"):
        return
    home = tempfile.mkdtemp(prefix="binfeat-airflow-test-")
    os.environ["BINFEAT_TEST_AIRFLOW_HOME"] = home
    os.environ["AIRFLOW_HOME"] = home
    os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
    os.environ["AIRFLOW__CORE__DAGS_FOLDER"] = str(REPO / "dags")
