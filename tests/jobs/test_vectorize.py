"""The job with a scheme and a group selection, binfeat vectorize (here and on Spark), binfeat matrix:
the vectors equal extract's own, the Parquet metadata says what the vector is."""

from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import extract
from binfeat.cli import main
from binfeat.model_commands import matrix_main, vectorize_main
from extract import schemes
from jobs.extract_features import run
from jobs.vectorize import run as vectorize
from tests.jobs._support import read_output, rows_by_path

pytestmark = pytest.mark.spark
GROUPS = ("byte_histogram", "byte_entropy_histogram", "strings", "general", "pe_header", "pe_section", "pe_imports",
          "pe_exports", "pe_data_directories", "pe_rich")


def _vectors(table: pa.Table) -> dict[str, list | None]:
    return {p: r["vector"] for p, r in rows_by_path(table).items()}


def test_job_with_ember2_and_a_selection_then_vectorize_back_and_forth(spark, crafted, tmp_path):
    options = extract.ExtractOptions(scheme="ember2", groups=GROUPS)
    run(str(crafted["root"]), str(tmp_path / "ember"), spark=spark, options=options, partitions=2)
    table = read_output(tmp_path / "ember")
    assert table.schema.names == extract.output_schema(options).names
    assert table.schema.field("vector").type == pa.list_(pa.float32(), 2381)
    meta = schemes.read_metadata(pq.read_schema(next((tmp_path / "ember").glob("*.parquet"))).metadata)
    assert meta["scheme"] == "ember2" and meta["groups"] == list(GROUPS) and meta["dim_names"][0] == "histogram__0x00"
    assert set(table.column("groups").to_pylist()) == {",".join(GROUPS)}
    handed = [p for p, r in rows_by_path(table).items() if r["status"] != "error"]
    direct = extract.extract_batch(pa.record_batch({"path": handed}), options)
    assert {p: v for p, v in _vectors(table).items() if p in handed} == _vectors(pa.Table.from_batches([direct]))

    # re-vectorised with binfeat's scheme on Spark (the selection's groups), and back to ember2 locally
    vectorize(str(tmp_path / "ember"), str(tmp_path / "binfeat"), "binfeat", spark=spark)
    binfeat = read_output(tmp_path / "binfeat")
    assert binfeat.schema.field("vector").type == pa.list_(pa.float32(), schemes.get("binfeat", GROUPS).dims)
    selected = extract.extract_batch(pa.record_batch({"path": handed}), extract.ExtractOptions(groups=GROUPS))
    assert {p: v for p, v in _vectors(binfeat).items() if p in handed} == _vectors(pa.Table.from_batches([selected]))
    assert vectorize_main([str(tmp_path / "binfeat"), str(tmp_path / "again"), "--scheme", "ember2"]) == 0
    again = read_output(tmp_path / "again")
    assert _vectors(again) == _vectors(table) and again.drop_columns(["vector"]).equals(table.drop_columns(["vector"]))

    assert matrix_main([str(tmp_path / "again"), str(tmp_path / "m"), "--scheme", "ember2"]) == 0
    info = json.loads((tmp_path / "m" / "matrix.json").read_text())
    x = np.load(tmp_path / "m" / "X.npy", mmap_mode="r")
    assert x.shape == (info["rows"], 2381) == (len(handed), 2381) and info["vectors"] == "stored"


@pytest.mark.parametrize(("argv", "message"), [
    (["missing", "out"], "no such file or folder"),
    (["{ember}", "out", "--scheme", "ember3"], "invalid choice: 'ember3'"),
    (["{ember}", "out", "--master", "local[0]"], "bad local master"),
])
def test_vectorize_refuses_in_one_line(argv, message, tmp_path, capsys):
    (tmp_path / "ember").mkdir()
    pq.write_table(pa.table({"status": ["ok"]}), tmp_path / "ember" / "p.parquet")
    argv = [a.replace("{ember}", str(tmp_path / "ember")).replace("out", str(tmp_path / "out")) for a in argv]
    assert main(["vectorize", *argv]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


def test_vectorize_refuses_rows_without_the_schemes_groups(tmp_path, capsys):
    (tmp_path / "bytes").mkdir()
    batch = extract.extract_batch(pa.record_batch({"path": ["/bin/ls"]}), extract.ExtractOptions(groups=("strings",)))
    pq.write_table(pa.Table.from_batches([batch]), tmp_path / "bytes" / "p.parquet")
    assert vectorize_main([str(tmp_path / "bytes"), str(tmp_path / "out"), "--scheme", "ember2"]) == 2
    assert "ember2 needs the group(s) byte_histogram" in capsys.readouterr().err
    assert matrix_main([str(tmp_path / "bytes"), str(tmp_path / "m"), "--scheme", "ember2"]) == 2
