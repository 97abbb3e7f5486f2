"""The corpus store as a source of training matrices and re-vectorising (jobs.corpus.source).

A store of two nights holds extract's own rows of crafted executables (PE, .NET, ELF, Mach-O, and
files no parser takes): day 1 adds half of them with labels, day 2 the rest, a relabel and a late
label. The matrix as of each day must have that day's rows and labels; it must equal, row for row,
the matrix of ``binfeat corpus read --as-of`` output of the same date, and its vectors must equal
the ones extract stored (an independent path: the stored ``vector`` column, not re-vectorised).
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from jobs.corpus.catalog import StoreConfig
from jobs.corpus.source import StoreSource
from tests.jobs.corpus_support import feed, open_store, sha, synthetic_night

DAY1, DAY2 = "2026-11-20", "2026-11-21"
NAMES = ["pe32_minimal", "pe32plus_minimal", "dotnet_minimal", "pe_truncated", "elf64_le_minimal", "elf32_be_minimal",
         "elf_bitflip", "macho64_minimal", "macho_fat_minimal", "text", "empty", "random_64k"]  # fmt: skip


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    import extract
    from jobs.corpus.schema import vector_properties
    from tests.fixtures import all_fixtures

    root = tmp_path_factory.mktemp("store-source")
    data = all_fixtures()
    paths = []
    for name in NAMES:
        (root / "in").mkdir(exist_ok=True)
        (root / "in" / name).write_bytes(data[name])
        paths.append(str(root / "in" / name))
    extracted = pa.Table.from_batches([extract.extract_batch(pa.record_batch({"path": pa.array(paths)}))])
    # two rows with status error (a file that could be hashed but not extracted), one per day
    failed = pa.Table.from_batches([extract.error_rows([f"{root}/in/lost-{i}" for i in (1, 2)], ["gone"] * 2)])
    failed = failed.set_column(failed.schema.get_field_index("sha256"), "sha256",
                               pa.array([sha("lost-1"), sha("lost-2")]))  # fmt: skip
    extracted = pa.concat_tables([extracted, failed])
    shas = extracted.column("sha256").to_pylist()
    assert len(set(shas)) == len(NAMES) + 2
    version = extracted.column("feature_version")[0].as_py()
    day1, day2 = [*shas[:6], shas[-2]], [*shas[6:-2], shas[-1]]
    tables = open_store(root / "store")
    props = vector_properties(version, extract.vector_layout())
    synthetic_night(tables, DAY1, day1, version=version, source_rows=extracted, properties=props,
                    feed=feed((day1[0], "malicious"), (day1[1], "benign"), (day1[2], "malicious")))
    synthetic_night(tables, DAY2, day2, version=version, source_rows=extracted, properties=props,
                    feed=feed((day1[0], "benign", None, None, None), (day1[3], "malicious"), (day2[0], "benign")))
    labels = {DAY1: {day1[0]: 1, day1[1]: 0, day1[2]: 1},
              DAY2: {day1[0]: 0, day1[1]: 0, day1[2]: 1, day1[3]: 1, day2[0]: 0}}
    return {"root": root, "cfg": StoreConfig(store=str(root / "store")), "extracted": extracted,
            "rows": {DAY1: day1, DAY2: day1 + day2}, "labels": labels}


def _read_out(store, day: str, tmp_path) -> str:
    from jobs.corpus.cli import read_main

    out = tmp_path / f"read-{day}.parquet"
    assert read_main(["--store", str(store["root"] / "store"), "--as-of", day, str(out)]) == 0
    return str(out)


def _not_error(table: pa.Table, shas) -> list[str]:
    status = dict(zip(table.column("sha256").to_pylist(), table.column("status").to_pylist(), strict=True))
    return [s for s in shas if status[s] != "error"]


@pytest.mark.parametrize("day", [DAY1, DAY2])
def test_matrix_as_of_each_day_has_its_rows_and_labels_and_equals_the_read_outputs(store, day, tmp_path):
    from extract import training_matrix

    x, y, names, ids = training_matrix(StoreSource(store["cfg"]), as_of=day, errors="nan")
    assert sorted(ids) == sorted(store["rows"][day])
    want_y = [store["labels"][day].get(s, -1) for s in ids]
    assert y.dtype == np.int64 and y.tolist() == want_y
    rx, ry, rnames, rids = training_matrix(_read_out(store, day, tmp_path), errors="nan")
    assert ids == rids and names == rnames and y.tolist() == ry.tolist()
    assert np.array_equal(x, rx, equal_nan=True)
    # against the vectors extract itself stored (its metadata says binfeat: the stored column is used)
    ex, _, enames, eids = training_matrix(store["extracted"], errors="nan", label=None)
    assert enames == names
    order = [eids.index(s) for s in ids]
    assert np.array_equal(x, ex[order], equal_nan=True)
    dropped = training_matrix(StoreSource(store["cfg"]), as_of=day)[3]
    assert dropped == _not_error(store["extracted"], ids) and len(dropped) < len(ids)


def test_the_source_streams_and_counts_from_the_record(store):
    source = StoreSource(store["cfg"])
    assert source.count_rows(DAY1) == 7 and source.count_rows(DAY2) == len(NAMES) + 2
    assert source.count_rows() == len(NAMES) + 2  # None: the latest published date
    assert source.count_not_error(DAY1) == 6 and source.count_not_error(DAY2) == len(NAMES)
    reader = source.feature_batches(DAY2, ["sha256", "label"])
    assert reader.schema.names == ["sha256", "label"]
    got = reader.read_all()
    assert dict(zip(*got.to_pydict().values(), strict=True)) == {
        s: {0: "benign", 1: "malicious"}.get(store["labels"][DAY2].get(s)) for s in store["rows"][DAY2]}
    full = source.feature_batches(DAY1)
    assert full.schema.field("vector").type == store["extracted"].schema.field("vector").type  # fixed-size again
    assert sum(b.num_rows for b in full) == 7


def _cli(argv: list[str], capsys) -> tuple[int, str]:
    from binfeat.cli import main

    code = main(argv)
    return code, capsys.readouterr().err


def test_binfeat_matrix_and_vectorize_from_the_store(store, tmp_path, capsys):
    import extract

    root = str(store["root"] / "store")
    code, err = _cli(["matrix", "--store", root, "--as-of", DAY1, str(tmp_path / "m")], capsys)
    assert code == 0, err
    read = _read_out(store, DAY1, tmp_path)
    assert _cli(["matrix", read, str(tmp_path / "r")], capsys)[0] == 0
    for f in ("X.npy", "y.npy"):
        assert np.array_equal(np.load(tmp_path / "m" / f), np.load(tmp_path / "r" / f), equal_nan=True)
    assert (tmp_path / "m" / "ids.txt").read_text() == (tmp_path / "r" / "ids.txt").read_text()
    code, err = _cli(["vectorize", "--store", root, "--as-of", DAY2, "--scheme", "ember2",
                      str(tmp_path / "v")], capsys)  # fmt: skip
    assert code == 0, err
    code, err = _cli(["vectorize", _read_out(store, DAY2, tmp_path), "--scheme", "ember2", str(tmp_path / "w")],
                     capsys)  # fmt: skip
    assert code == 0, err
    ours, theirs = (pq.read_table(tmp_path / d) for d in ("v", "w"))
    assert ours.num_rows == len(NAMES) + 2 and ours.schema.metadata[b"binfeat.scheme"] == b"ember2"
    assert ours.column("sha256").to_pylist() == theirs.column("sha256").to_pylist()
    from extract.revectorize import vector_matrix

    dims = extract.schemes.get("ember2").dims
    mine, other = (vector_matrix(t.select(["vector"]).combine_chunks().to_batches()[0], dims) for t in (ours, theirs))
    assert np.array_equal(mine, other, equal_nan=True)
    assert ours.column("vector").is_null().equals(theirs.column("vector").is_null())
    assert ours.column("label").equals(theirs.column("label"))
    assert ours.schema.field("vector").type == pa.list_(pa.float32(), extract.schemes.get("ember2").dims)


@pytest.mark.parametrize("command", ["matrix", "vectorize"])
@pytest.mark.parametrize(("args", "says"), [
    (["OUT"], "give FEATURES"),
    (["F", "OUT", "--store", "{store}", "--as-of", DAY1], "not both"),
    (["F", "OUT", "--as-of", DAY1], "--as-of needs"),
    (["OUT", "--store", "{store}"], "needs --as-of"),
    (["OUT", "--store", "{store}", "--as-of", "2026-11-30"], "not published"),
    (["OUT", "--store", "{store}", "--as-of", "2026-13-01"], "bad date"),
    (["OUT", "--store", "{store}", "--catalog", "x", "--as-of", DAY1], "not allowed with"),
    (["OUT", "--catalog", "no_such_catalog_here", "--as-of", DAY1], "no_such_catalog_here"),
])  # fmt: skip
def test_bad_arguments_get_one_line_and_exit_2(store, command, args, says, tmp_path, capsys):
    argv = [a.replace("{store}", str(store["root"] / "store")).replace("OUT", str(tmp_path / "o")) for a in args]
    code, err = _cli([command, *argv], capsys)
    assert code == 2 and len(err.strip().splitlines()) == 1 and says in err, err
    assert not (tmp_path / "o").exists()


def test_vectorize_refuses_spark_for_the_store(store, tmp_path, capsys):
    code, err = _cli(["vectorize", "--store", str(store["root"] / "store"), "--as-of", DAY1, "--master", "local[1]",
                      str(tmp_path / "o")], capsys)  # fmt: skip
    assert code == 2 and len(err.strip().splitlines()) == 1 and "--master" in err, err


def test_a_store_revectorised_in_several_parts_keeps_every_row_in_order(store, tmp_path):
    from jobs.vectorize import run_store

    source = StoreSource(store["cfg"])
    whole = run_store(source, DAY2, str(tmp_path / "one"), "binfeat")
    parts = run_store(source, DAY2, str(tmp_path / "many"), "binfeat", part_rows=1)  # a part per batch
    batches = sum(1 for _ in source.feature_batches(DAY2, ["sha256"]))
    assert whole["files"] == 1 and parts["files"] == batches >= 2
    assert whole["rows"] == parts["rows"] == len(NAMES) + 2
    one, many = (pq.read_table(tmp_path / d) for d in ("one", "many"))
    assert one.column("sha256").to_pylist() == many.column("sha256").to_pylist()
    assert one.column("sha256").to_pylist() == source.feature_batches(DAY2, ["sha256"]).read_all().column(
        "sha256").to_pylist()  # fmt: skip
