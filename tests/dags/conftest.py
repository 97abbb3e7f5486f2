from __future__ import annotations

from tests.airflow_ops.airflow_home import ensure_test_airflow_home

ensure_test_airflow_home()
