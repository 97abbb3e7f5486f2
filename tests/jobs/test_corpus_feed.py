"""The labels feed: JSONL, CSV and Parquet files or a folder of them, every column as text."""

from __future__ import annotations

import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from jobs.corpus.feed import LabelsError, read_labels, split_valid

SHA_A = "a" * 64
SHA_B = "b" * 64


def test_labels_jsonl_csv_parquet_and_folder(tmp_path):
    feed = tmp_path / "feed"
    feed.mkdir()
    (feed / "a.jsonl").write_text(
        json.dumps({"sha256": SHA_A.upper(), "label": "malicious", "family": "x", "first_seen": 5}) + "\n"
    )
    (feed / "b.csv").write_text("sha256,label,source\n" + SHA_B + ",benign,feed\nnot-hex,benign,feed\n")
    pq.write_table(pa.table({"sha256": [SHA_A], "label": [""], "source": ["p"]}), feed / "c.parquet")
    (feed / "ignored.txt").write_text("not a feed")
    table = read_labels(str(feed))
    assert table.column_names == ["sha256", "label", "family", "source", "first_seen"]
    assert table.num_rows == 4
    valid, invalid = split_valid(table)
    assert invalid == 2  # a bad sha256 and an empty label
    rows = sorted(valid.to_pylist(), key=lambda r: r["sha256"])
    assert rows == [
        {"sha256": SHA_A, "label": "malicious", "family": "x", "source": None, "first_seen": "5"},
        {"sha256": SHA_B, "label": "benign", "family": None, "source": "feed", "first_seen": None},
    ]


def test_labels_missing_or_malformed(tmp_path):
    with pytest.raises(LabelsError, match="not found"):
        read_labels(str(tmp_path / "nope"))
    assert read_labels(str(tmp_path / "nope"), allow_missing=True).num_rows == 0
    bad = tmp_path / "bad.csv"
    bad.write_text("hash,label\nx,y\n")
    with pytest.raises(LabelsError, match="missing column"):
        read_labels(str(bad))

