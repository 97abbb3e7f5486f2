"""The executor side without Spark: a partition's rows in plan order, labels, faults contained."""

from __future__ import annotations

import os
import shutil
from types import SimpleNamespace

import pytest

import extract
from jobs.inputs import list_inputs
from jobs.partition import PartitionExtractor, s3_uri
from jobs.planning import plan_inputs
from jobs.spark_types import contract_schema


def test_s3_uri_reads_the_text_form():
    assert s3_uri("s3://bucket/dir/a\\\\b.bin") == "s3://bucket/dir/a\\b.bin"
    assert s3_uri("s3://bucket/caf\u00e9") == "s3://bucket/caf\u00e9"
    with pytest.raises(ValueError, match="names a key that is not UTF-8"):
        s3_uri("s3://bucket/bad\\xff")


@pytest.fixture
def partition(tmp_path):
    d = tmp_path / "d"
    d.mkdir()
    for name in ("a.bin", "b.bin", "c.bin"):
        shutil.copyfile("/bin/ls", d / name)
        with open(d / name, "ab") as f:
            f.write(name.encode())
    os.symlink(d / "nowhere", d / "b-dangling")
    inputs = list_inputs(str(d))
    (entries,) = plan_inputs(inputs, cores=1, partitions=1)
    labelled = [(*e[:2], f"L-{os.path.basename(e[0])}", *e[3:]) for e in entries]
    fn = PartitionExtractor(plan=SimpleNamespace(value=[labelled]), options=None, s3_endpoint_url=None,
                            follow_symlinks=True, with_label=True, out_schema=contract_schema(True), batch_files=2)
    return fn, labelled


def _rows(fn):
    return [r for b in fn.rows(0) for r in b.to_pylist()]


def test_rows_keep_plan_order_and_labels(partition):
    fn, entries = partition
    rows = _rows(fn)
    assert [r["path"] for r in rows] == [e[0] for e in entries]
    assert [r["label"] for r in rows] == [e[2] for e in entries]
    status = {os.path.basename(r["path"]): (r["status"], r["error"]) for r in rows}
    assert status["b-dangling"] == ("error", "dangling symbolic link")
    assert {status[n][0] for n in ("a.bin", "b.bin", "c.bin")} == {"ok"}


def test_an_exception_costs_its_file_or_its_chunk(partition, monkeypatch):
    fn, entries = partition
    real_source, real_batch = PartitionExtractor.source, extract.extract_batch

    def source(self, entry, fetcher, fetched):
        if entry[0].endswith("a.bin"):
            raise KeyError("boom")
        return real_source(self, entry, fetcher, fetched)

    def batch(b, options=None):
        if any(p.endswith("c.bin") for p in b.column("path").to_pylist()):
            raise OSError(5, "I/O error")
        return real_batch(b, options)

    monkeypatch.setattr(PartitionExtractor, "source", source)
    monkeypatch.setattr(extract, "extract_batch", batch)
    rows = _rows(fn)
    names = [os.path.basename(e[0]) for e in entries]
    assert names == ["a.bin", "b.bin", "c.bin", "b-dangling"]  # largest first; chunks of two files
    assert [os.path.basename(r["path"]) for r in rows] == names
    chunk_fault = ("error", "internal: OSError: [Errno 5] I/O error")
    assert [(r["status"], r["error"]) for r in rows] == [
        ("error", "internal: KeyError: 'boom'"),  # its own file only
        ("ok", None),  # same chunk, untouched
        chunk_fault,  # the chunk holding c.bin: every file of it
        chunk_fault,
    ]
    assert [r["label"] for r in rows] == [e[2] for e in entries]
