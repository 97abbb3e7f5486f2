"""File names that are not UTF-8 (and names with a backslash) through the Spark job, local mode.

Every such file gets its normal row with its features, under the text form of its name
(extract.paths), from a folder and from manifests (JSON Lines and CSV with text forms, Parquet with
the raw names as binary); a manifest entry that is not a well-formed text form gets an error row.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import extract
from extract.paths import path_text
from jobs.extract_features import features_dataframe, run
from jobs.inputs import list_inputs
from tests.jobs._support import ELF_LIB, read_output, rows_by_path

pytestmark = pytest.mark.spark

NAMES = [b"good.bin", b"bad\xff.bin", b"caf\xe9.dll", b"back\\slash.so", b"looks\\xffescaped.bin"]


@pytest.fixture(scope="module")
def odd_tree(tmp_path_factory):
    """A folder of real executables under odd names: text form -> sha256 of its content."""
    root = tmp_path_factory.mktemp("names") / "in"
    root.mkdir()
    sources = ["/bin/ls", os.path.realpath(ELF_LIB), "/bin/cat", "/bin/ls", "/bin/cat"]
    expected = {}
    for i, (name, src) in enumerate(zip(NAMES, sources, strict=True)):
        raw = os.path.join(os.fsencode(root), name)
        shutil.copyfile(src, raw)
        with open(raw, "ab") as f:
            f.write(bytes([i]))  # distinct contents: the row proves which file was read
        with open(raw, "rb") as f:
            expected[path_text(raw)] = hashlib.sha256(f.read()).hexdigest()
    return root, expected


def test_a_folder_with_names_that_are_not_utf8(spark, odd_tree, tmp_path):
    root, expected = odd_tree
    out = tmp_path / "out"
    summary = run(str(root), str(out), spark=spark)
    rows = rows_by_path(read_output(out))
    assert summary["rows"] == len(rows) == len(NAMES) and summary["counts_by_status"] == {"ok": len(NAMES)}
    assert sorted(rows) == sorted(expected)
    assert f"{root}/bad\\xff.bin" in rows and f"{root}/back\\\\slash.so" in rows
    for path, row in rows.items():
        assert row["sha256"] == expected[path] and row["format"] == "elf", path
    # the same rows as extract_batch here, given the same text forms
    direct = rows_by_path(pa.Table.from_batches([extract.extract_batch(pa.record_batch({"path": sorted(rows)}))]))
    assert rows == direct


def test_manifests_carry_text_forms(spark, odd_tree, tmp_path):
    root, expected = odd_tree
    texts = sorted(expected)
    jsonl = tmp_path / "m.jsonl"  # relative text forms, resolved against the manifest's folder
    rel = [os.path.relpath(t, tmp_path) for t in texts]  # (text forms keep '/', '.' and '..' as they are)
    jsonl.write_text("".join(json.dumps({"path": p, "label": f"L{i}"}) + "\n" for i, p in enumerate(rel)))
    csv_m = tmp_path / "m.csv"
    csv_m.write_text("path,label\n" + "".join(f'"{t}",L{i}\n' for i, t in enumerate(texts)))
    parquet_m = tmp_path / "m.parquet"
    raw = [os.path.join(os.fsencode(root), n) for n in NAMES]
    pq.write_table(pa.table({"path": pa.array(sorted(raw, key=path_text), pa.binary()),
                             "label": [f"L{i}" for i in range(len(raw))]}), parquet_m)
    for manifest in (jsonl, csv_m, parquet_m):
        listed = list_inputs(str(manifest))
        assert [f.path for f in listed] == texts, manifest.name
        table = features_dataframe(spark, listed).select("path", "sha256", "status", "label").toArrow()
        got = {r["path"]: r for r in table.to_pylist()}
        assert {p: r["sha256"] for p, r in got.items()} == expected, manifest.name
        assert [got[t]["label"] for t in texts] == [f"L{i}" for i in range(len(texts))]
        assert {r["status"] for r in got.values()} == {"ok"}


def test_a_malformed_text_form_in_a_manifest_is_an_error_row(spark, odd_tree, tmp_path):
    root, expected = odd_tree
    m = tmp_path / "m.jsonl"
    good = sorted(expected)[0]
    m.write_text(json.dumps({"path": good}) + "\n" + json.dumps({"path": f"{root}/back\\slash.so"}) + "\n")
    out = tmp_path / "out"
    run(str(m), str(out), spark=spark)
    rows = rows_by_path(read_output(out))
    assert rows[good]["status"] == "ok"
    bad = rows[f"{root}/back\\slash.so"]  # one backslash: names nothing (the file is back\\slash.so)
    assert bad["status"] == "error" and bad["error"].startswith("path: malformed path text")
