"""One local SparkSession for all job tests (JVM start-up is the expensive part), crafted inputs."""

from __future__ import annotations

import pytest

from tests.jobs._support import craft_tree


@pytest.fixture(scope="session")
def _spark_holder():
    holder: dict = {}
    yield holder
    if holder.get("session") is not None and holder["session"].sparkContext._jsc is not None:
        holder["session"].stop()


@pytest.fixture
def spark(_spark_holder):
    """The shared session, re-created if another test stopped it (getOrCreate + stop elsewhere)."""
    from jobs.session import spark_session

    session = _spark_holder.get("session")
    if session is None or session.sparkContext._jsc is None:
        session = spark_session(
            "local[2]",
            app_name="binfeat-tests",
            conf={"spark.ui.enabled": "false", "spark.sql.shuffle.partitions": "4"},
        )
        _spark_holder["session"] = session
    return session


@pytest.fixture(scope="session")
def crafted(tmp_path_factory) -> dict:
    """A crafted tree shared read-only by the tests (tests that mutate make their own)."""
    root = tmp_path_factory.mktemp("crafted")
    return {"root": root, **craft_tree(root)}
