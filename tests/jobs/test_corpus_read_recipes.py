"""The read recipes of docs/corpus_store.md give the same rows as ``read_as_of``: DuckDB, polars, Spark.

The store has two feature versions, so the engines read files written with two schemas (the newer
one has an extra column) and must fill the older files' missing column with nulls. The Spark
recipe reads the data files of pyiceberg's plan (the Iceberg Spark runtime jar is not reachable
here); the recipes are copied from the doc's code blocks, so a doc change breaks this test.
"""

from __future__ import annotations

import datetime as dt
import re

import pyarrow as pa
import pytest

from jobs.corpus.catalog import StoreConfig
from jobs.corpus.extraction import load_contract
from jobs.corpus.read import plan_as_of, read_as_of
from tests.jobs import corpus_plugin
from tests.jobs._support import REPO
from tests.jobs.corpus_support import feed, open_store, sha, synthetic_night

D1, D2, D3 = "2026-11-20", "2026-11-21", "2026-11-22"
COLUMNS = ["sha256", "size", "ingest_date", "feature_version", "label"]


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    root = tmp_path_factory.mktemp("recipes") / "store"
    tables = open_store(root)
    synthetic_night(tables, D1, [sha(f"a{i}") for i in range(5)], feed=feed((sha("a1"), "benign"), (sha("a2"), "x")))
    synthetic_night(tables, D2, [sha(f"b{i}") for i in range(3)], feed=feed((sha("b0"), "malicious")))
    bumped = corpus_plugin.bumped(load_contract()).schema  # a column more: files of two schemas
    synthetic_night(tables, D3, [sha("c0")], version="v2", feed=feed((sha("a1"), "malicious")),
                    contract_schema=bumped)  # bump: the 8 earlier samples re-written as v2  # fmt: skip
    return root


def _expected(root, date) -> list[dict]:
    t = read_as_of(date, cfg=StoreConfig(store=str(root)), columns=COLUMNS)
    return sorted(t.to_pylist(), key=lambda r: r["sha256"])


def _recipe(name: str) -> str:
    """The first code block under the heading ``name`` of docs/corpus_store.md."""
    doc = (REPO / "docs" / "corpus_store.md").read_text(encoding="utf-8")
    m = re.search(rf"#### {re.escape(name)}\n(?:[^#]*?)```python\n(.*?)```", doc, re.S)
    assert m, f"docs/corpus_store.md has no '#### {name}' recipe"
    return m.group(1)


def _run(name: str, root, date: str, **extra) -> list[dict]:
    scope = {"STORE": str(root), "DATE": date, "COLUMNS": COLUMNS, **extra}
    exec(compile(_recipe(name), f"docs/corpus_store.md#{name}", "exec"), scope)  # the doc's own code
    got = scope["result"]
    rows = got.to_pylist() if isinstance(got, pa.Table) else got
    for r in rows:
        if isinstance(r["ingest_date"], dt.datetime):
            r["ingest_date"] = r["ingest_date"].date()
    return sorted(rows, key=lambda r: r["sha256"])


@pytest.mark.parametrize("date", [D2, D3])
def test_duckdb_recipe(store, date):
    pytest.importorskip("duckdb")
    assert _run("DuckDB", store, date) == _expected(store, date)


@pytest.mark.parametrize("date", [D2, D3])
def test_polars_recipe(store, date):
    pytest.importorskip("polars")
    assert _run("polars", store, date) == _expected(store, date)


def test_arrow_recipe(store):
    assert _run("Arrow, pandas and polars", store, D3) == _expected(store, D3)


@pytest.mark.spark
@pytest.mark.parametrize("date", [D2, D3])
def test_spark_recipe(store, date, spark):
    rows = _run("Spark", store, date, spark=spark)
    assert rows == _expected(store, date)


def test_plan_holds_one_version_per_file(store):
    plan = plan_as_of(D3, cfg=StoreConfig(store=str(store)))
    assert plan.as_of.feature_version == "v2" and plan.as_of.rows == 9
    assert len(plan.features_files) == 3 and len(plan.labels_files) >= 1  # one file per ingest date
