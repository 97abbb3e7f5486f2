from __future__ import annotations

import json

import pytest

from tests.airflow_ops.airflow_home import ensure_test_airflow_home
from tests.airflow_ops.support import KEY_ID, SECRET  # constants only: imports no Airflow

ensure_test_airflow_home()


@pytest.fixture
def aws_conn(monkeypatch):
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_DEFAULT_REGION"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv(
        "AIRFLOW_CONN_AWS_TEST",
        json.dumps(
            {"conn_type": "aws", "login": KEY_ID, "password": SECRET, "extra": {"region_name": "eu-west-1"}}
        ),
    )
