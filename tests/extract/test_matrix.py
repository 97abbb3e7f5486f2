"""Training matrices and re-vectorising: every kind of source, labels, error rows, order, names that
ML tools take, and a real LightGBM trained on the sample corpus's matrix."""

from __future__ import annotations

import json
import re
from datetime import date
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import extract
from extract import schemes
from extract.matrix import MatrixError, label_values, write_matrix
from extract.revectorize import revectorize
from extract.sources import SourceError
from tests.fixtures import all_fixtures

NAMES = ("pe32plus_minimal", "pe32_minimal", "dotnet_minimal", "elf64_le_minimal", "macho64_minimal", "text",
         "empty", "random_64k")


@pytest.fixture(scope="module")
def features(tmp_path_factory) -> tuple[Path, pa.Table]:
    """The fixtures' rows (plus one unreadable file) with labels, stored as a two-file dataset."""
    root = tmp_path_factory.mktemp("features")
    fixtures = all_fixtures()
    paths = []
    for name in NAMES:
        folder = root / "bins" / ("malicious" if name.startswith("pe") else "benign")
        folder.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(fixtures[name])
        paths.append(str(folder / name))
    paths.insert(3, str(root / "bins" / "gone"))  # an error row
    batch = extract.extract_batch(pa.record_batch({"path": paths}))
    labels = ["1", "malicious", "0", None, "benign", "-1", "unlabelled", "clean", "malware"]
    table = pa.Table.from_batches([batch]).append_column("label", pa.array(labels, pa.string()))
    table = table.replace_schema_metadata(batch.schema.metadata)
    dataset = root / "dataset"
    dataset.mkdir()
    pq.write_table(table.slice(0, 5), dataset / "part-00000.parquet")
    pq.write_table(table.slice(5), dataset / "part-00001.parquet")
    (dataset / "_binfeat_summary.json").write_text("{}")
    return dataset, table


def test_names_are_safe_unique_deterministic_and_reversible():
    for name in schemes.SCHEMES:
        scheme = schemes.get(name)
        names = scheme.names
        assert all(re.fullmatch(r"[A-Za-z0-9_]+", n) for n in names), name
        assert len(set(names)) == len(names) == scheme.dims
        assert names == schemes.get(name).names  # deterministic
        for n in names[:: max(1, len(names) // 200)]:
            block, label = scheme.describe(n)
            assert n.startswith(block + "__") and label
    binfeat = schemes.get("binfeat")
    assert binfeat.describe("byte_entropy_histogram__entropy_3_nibble_0xa") == (
        "byte_entropy_histogram", "byte_entropy_histogram[entropy=3,nibble=0xa]")
    assert binfeat.describe("pe_dotnet__stream_x23_x7e") == ("pe_dotnet", "stream=#~")
    with pytest.raises(KeyError):
        binfeat.describe("pe_dotnet__nope")


def test_paths_tables_readers_and_datasets_give_the_same_matrix_in_input_order(features):
    dataset, table = features
    x, y, names, ids = extract.training_matrix(dataset)
    kept = [r for r in table.to_pylist() if r["status"] != "error"]
    assert ids == [r["sha256"] for r in kept]  # input order, the error row dropped
    assert x.dtype == np.float32 and x.shape == (8, schemes.get("binfeat").dims) and names == schemes.get().names
    expected = np.array([r["vector"] for r in kept], np.float32)
    assert np.array_equal(x, expected, equal_nan=True)
    assert y.dtype == np.int64 and y.tolist() == [1, 1, 0, 0, -1, -1, 0, 1]
    import pyarrow.dataset as ds

    for source in (table, table.to_reader(), ds.dataset(str(dataset / "part-00000.parquet"))):
        x2, _, _, ids2 = extract.training_matrix(source)
        assert np.array_equal(x2, x[:len(ids2)], equal_nan=True) and ids2 == ids[:len(ids2)]


def test_error_rows_kept_as_nan(features):
    dataset, _ = features
    x, y, _, ids = extract.training_matrix(dataset, errors="nan")
    assert len(ids) == 9 and ids[3] is None and np.isnan(x[3]).all() and y[3] == -1
    with pytest.raises(MatrixError, match="errors must be one of"):
        extract.training_matrix(dataset, errors="zero")


def test_stored_vectors_and_recomputed_ones_agree(features):
    """The stored binfeat vector is used as it is; without it, the raw columns give the same numbers;
    ember2 from the raw columns equals ember2 from extraction."""
    dataset, table = features
    x_stored, *_ = extract.training_matrix(table)
    x_raw, *_ = extract.training_matrix(table.drop_columns(["vector"]).replace_schema_metadata({}))
    assert np.array_equal(x_stored, x_raw, equal_nan=True)
    e_raw, _, names, _ = extract.training_matrix(dataset, scheme="ember2")
    rows = extract.extract_batch(pa.record_batch({"path": table.column("path").to_pylist()}),
                                 extract.ExtractOptions(scheme="ember2")).to_pylist()
    direct = np.array([r["vector"] for r in rows if r["status"] != "error"], np.float32)
    assert names == schemes.get("ember2").names and np.array_equal(e_raw, direct, equal_nan=True)


def test_labels_numbers_words_and_folders(features):
    dataset, _ = features
    assert label_values(pa.array([1, None, 0], pa.int64()), 3).tolist() == [1, -1, 0]
    assert label_values(pa.array(["2.5", "Malicious", ""]), 3).tolist() == [2.5, 1, -1]
    assert label_values(None, 2).tolist() == [-1, -1]
    with pytest.raises(MatrixError, match="neither a number nor one of"):
        label_values(pa.array(["trojan"]), 1)
    _, y, _, _ = extract.training_matrix(dataset, label="folder")
    assert y.tolist() == [1, 1, 0, 0, 0, 0, 0, 0]  # bins/malicious/pe32*, bins/benign/<the others>
    _, y_none, _, _ = extract.training_matrix(dataset, label="no_such_column")
    assert set(y_none.tolist()) == {-1}
    _, y_float, _, _ = extract.training_matrix(
        pa.table({"status": ["ok"], "sha256": ["a"], "format": ["unknown"], "error": [None], "label": [0.5],
                  "byte_histogram": pa.array([[1] * 256], pa.list_(pa.int64()))}))
    assert y_float.dtype == np.float64 and y_float.tolist() == [0.5]


class Store:
    """A feature store as extract.sources describes it: rows as of a date."""

    def __init__(self, by_date: dict[str, pa.Table]) -> None:
        self.by_date, self.asked = by_date, []

    def feature_batches(self, as_of=None, columns=None) -> pa.RecordBatchReader:
        self.asked.append((as_of, None if columns is None else tuple(columns)))
        table = self.by_date[str(as_of)]
        return (table.select(columns) if columns is not None else table).to_reader()


def test_a_store_as_of_a_date(features):
    _, table = features
    store = Store({"2026-11-20": table.slice(0, 4), "2026-11-21": table})
    _, _, _, ids = extract.training_matrix(store, as_of=date(2026, 11, 20))
    assert len(ids) == 3 and store.asked[-1][0] == date(2026, 11, 20) and "vector" in store.asked[-1][1]
    assert len(extract.training_matrix(store, as_of="2026-11-21")[3]) == 8
    with pytest.raises(SourceError, match="as_of needs a feature store"):
        extract.training_matrix(table, as_of="2026-11-21")


def test_matrix_files_on_disk(features, tmp_path):
    dataset, _ = features
    info = write_matrix(dataset, tmp_path / "m", scheme="ember2")
    x = np.load(tmp_path / "m" / "X.npy", mmap_mode="r")
    expected, y, names, ids = extract.training_matrix(dataset, scheme="ember2")
    assert isinstance(x, np.memmap) and np.array_equal(x, expected, equal_nan=True)
    assert np.load(tmp_path / "m" / "y.npy").tolist() == y.tolist()
    assert (tmp_path / "m" / "names.txt").read_text().split() == names
    assert (tmp_path / "m" / "ids.txt").read_text().splitlines() == ids
    assert info["rows"] == 8 and info["dims"] == 2381 and info["labels"] == {"-1": 2, "0": 3, "1": 3}
    x2, *_ = extract.training_matrix(dataset, scheme="ember2", out=tmp_path / "x.npy")
    assert isinstance(x2, np.memmap) and np.array_equal(x2, expected, equal_nan=True)


def test_rows_of_another_feature_version_are_refused(features):
    _, table = features
    old = table.drop_columns(["vector"]).replace_schema_metadata({})
    i = old.schema.get_field_index("pe_imports")
    library = pa.struct([("name", pa.string()), ("functions", pa.list_(pa.string()))])  # pe_imports v2
    legacy = pa.struct([("libraries", pa.list_(library)), ("imphash", pa.string()), ("truncated", pa.bool_())])
    old = old.set_column(i, "pe_imports", pa.nulls(old.num_rows, legacy))
    with pytest.raises(MatrixError, match="pe_imports columns come from another feature version"):
        extract.training_matrix(old, scheme="ember2")
    with pytest.raises(MatrixError, match="ember2 needs the group"):
        extract.training_matrix(old.drop_columns(["pe_section"]), scheme="ember2")


def test_revectorize_keeps_every_column_and_sets_the_metadata(features):
    _, table = features
    schema, batches = revectorize(table.to_batches(), table.schema, "ember2")
    out = pa.Table.from_batches(list(batches), schema)
    assert out.schema.field("vector").type == pa.list_(pa.float32(), 2381)
    meta = schemes.read_metadata(out.schema.metadata)
    assert meta["scheme"] == "ember2" and meta["dim_names"] == schemes.get("ember2").names
    assert meta["feature_version"] == extract.FEATURE_VERSION
    assert out.drop_columns(["vector"]).equals(table.drop_columns(["vector"]))


@pytest.fixture(scope="module")
def corpus_table(small_corpus) -> pa.Table:
    """The sample corpus's rows, labelled by a property to learn: a .NET assembly (1) or not (0)."""
    manifest = [json.loads(line) for line in (small_corpus / "manifest.jsonl").read_text().splitlines() if line]
    pe = [m for m in manifest if m["format"] == "pe"]
    batch = extract.extract_batch(pa.record_batch({"path": [str(small_corpus / m["sha256"][:2] / m["sha256"])
                                                            for m in pe]}), extract.ExtractOptions(scheme="ember2"))
    labels = pa.array([int(m["kind"] == "dotnet") for m in pe], pa.int64())
    return pa.Table.from_batches([batch]).append_column("label", labels).replace_schema_metadata(batch.schema.metadata)


def test_lightgbm_trains_with_the_names_and_an_ember_style_model_file_scores(corpus_table, tmp_path):
    lgb = pytest.importorskip("lightgbm")
    from sklearn.metrics import roc_auc_score

    for scheme in ("binfeat", "ember2"):
        x, y, names, ids = extract.training_matrix(corpus_table.drop_columns(["vector"]), scheme=scheme)
        order = np.argsort(ids)  # a fixed split: by sha256
        test = np.zeros(len(ids), bool)
        test[order[::3]] = True
        model = lgb.LGBMClassifier(n_estimators=60, min_child_samples=3, verbose=-1, random_state=0)
        model.fit(x[~test], y[~test], feature_name=names)
        assert model.booster_.feature_name() == names
        auc = roc_auc_score(y[test], model.booster_.predict(x[test]))  # the booster takes the bare array
        print(f"{scheme}: {len(ids)} PE files, {int(y.sum())} .NET, test AUC {auc:.3f}")
        assert auc >= 0.9
    # an EMBER-trained model is a LightGBM model file over the 2,381 unnamed columns: one trained here
    # on ember2 vectors scores binfeat's ember2 vectors of the same files the same way
    booster = lgb.train({"objective": "binary", "verbose": -1, "min_data_in_leaf": 3},
                        lgb.Dataset(x, y), num_boost_round=20)
    booster.save_model(str(tmp_path / "ember_style_model.txt"))
    loaded = lgb.Booster(model_file=str(tmp_path / "ember_style_model.txt"))
    assert loaded.num_feature() == 2381 and loaded.feature_name()[0] == "Column_0"
    rescored, *_ = extract.training_matrix(corpus_table, scheme="ember2")  # the stored ember2 vectors
    assert np.array_equal(loaded.predict(rescored), booster.predict(x))


def test_the_readme_recipe_runs(small_corpus, tmp_path, capsys):
    """README's "Features straight into models": folders benign/ and malicious/ (here: native and
    .NET PE files of the sample corpus), extracted, then the recipe's Python as written."""
    pytest.importorskip("lightgbm")
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    recipe = readme.split("python - <<'PY'\n", 1)[1].split("\nPY\n", 1)[0]
    manifest = [json.loads(line) for line in (small_corpus / "manifest.jsonl").read_text().splitlines() if line]
    paths = []
    for m in manifest:
        if m["format"] == "pe" and m["kind"] != "malformed":
            folder = tmp_path / "data" / ("malicious" if m["kind"] == "dotnet" else "benign")
            folder.mkdir(parents=True, exist_ok=True)
            (folder / m["sha256"]).symlink_to(small_corpus / m["sha256"][:2] / m["sha256"])
            paths.append(str(folder / m["sha256"]))
    batch = extract.extract_batch(pa.record_batch({"path": paths}))  # what `binfeat extract data/ ...` writes
    (tmp_path / "out" / "features").mkdir(parents=True)
    pq.write_table(pa.Table.from_batches([batch]), tmp_path / "out" / "features" / "part-00000.parquet")
    exec(compile(recipe.replace('"out/features"', repr(str(tmp_path / "out" / "features"))), "README", "exec"), {})
    auc = float(capsys.readouterr().out.split("AUC")[1])
    print(f"README recipe: {len(paths)} files, AUC {auc:.3f}")
    assert auc >= 0.9
