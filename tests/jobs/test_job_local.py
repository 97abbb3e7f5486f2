"""The extraction job on local Spark: one row per input, exact statuses, same rows as extract itself."""

from __future__ import annotations

import json
import os
import threading

import pyarrow as pa
import pytest

import extract
from jobs.extract_features import features_dataframe, run
from jobs.inputs import InputFile, list_inputs
from jobs.output import SUMMARY_IN_DATASET, summary_path
from tests.jobs._support import read_output, rows_by_path

pytestmark = pytest.mark.spark


def _direct(paths: list[str]) -> pa.Table:
    """extract_batch called in this process, for comparison."""
    batch = extract.extract_batch(pa.record_batch({"path": pa.array(paths, pa.string())}))
    return pa.Table.from_batches([batch])


def test_local_job_rows_statuses_and_equality_with_extract(spark, crafted, tmp_path):
    out = tmp_path / "features"
    progress: list[dict] = []
    summary = run(
        str(crafted["root"]), str(out), spark=spark, progress=progress.append, progress_interval=0.2
    )
    table = read_output(out)
    rows = rows_by_path(table)

    listed = list_inputs(str(crafted["root"]))
    assert table.num_rows == len(listed) == 9
    assert sorted(rows) == [f.path for f in listed]
    assert table.schema.names == extract.output_schema().names

    status = {p: r["status"] for p, r in rows.items()}
    error = {p: r["error"] for p, r in rows.items()}
    c = {k: str(v) for k, v in crafted.items()}
    assert status[c["ls"]] == status[c["ls_dup"]] == status[c["elf_lib"]] == "ok"
    assert rows[c["ls"]]["format"] == rows[c["elf_lib"]]["format"] == "elf"
    assert rows[c["fake_pe"]]["format"] == "pe"
    assert status[c["fifo"]] == "error" and error[c["fifo"]] == "read: not a regular file (FIFO)"
    assert status[c["dangling"]] == "error" and error[c["dangling"]] == "dangling symbolic link"
    for k in ("empty", "random", "text"):
        assert rows[c[k]]["format"] == "unknown" and status[c[k]] in ("ok", "partial"), k
    assert rows[c["ls"]]["sha256"] == rows[c["ls_dup"]]["sha256"]

    # Every row the job handed to extract equals extract_batch's own row, column for column.
    handed = [p for p in sorted(rows) if p != c["dangling"]]
    direct = rows_by_path(_direct(handed))
    for p in handed:
        assert rows[p] == direct[p], p
    # The job's own error row matches extract's error-row shape (identity from extract).
    dangling = rows[c["dangling"]]
    assert dangling["vector"] is None and dangling["sha256"] is None and dangling["format"] == "unknown"
    assert dangling["feature_version"] == extract.FEATURE_VERSION

    # Summary: next to the output, inside it, returned, consistent.
    on_disk = json.loads(summary_path(out).read_text())
    assert on_disk == summary == json.loads((out / SUMMARY_IN_DATASET).read_text())
    assert summary["rows"] == 9 and summary["inputs_listed"] == 9
    assert summary["counts_by_status"] == {s: list(status.values()).count(s) for s in set(status.values())}
    assert sum(summary["counts_by_format"].values()) == 9
    assert summary["bytes"] == sum(r["size"] or 0 for r in rows.values())
    assert summary["feature_version"] == extract.FEATURE_VERSION
    assert summary["binfeat_version"] == extract.__version__
    assert summary["spark_version"] and summary["run_id"] and summary["mb_per_s"] >= 0
    assert (
        progress
        and progress[-1]["files_done"] == 9
        and progress[-1]["bytes_total"] == summary["inputs_bytes"]
    )


def test_rerun_gives_same_rows_and_replaces_atomically(spark, crafted, tmp_path):
    out = tmp_path / "features"
    first = run(str(crafted["root"]), str(out), spark=spark, run_id="first")
    before = read_output(out)
    seen: list[int] = []
    stop = threading.Event()

    def reader():  # a reader polling OUTPUT during the rewrite sees the old or the new dataset
        while not stop.is_set():
            try:
                seen.append(read_output(out).num_rows)
            except (FileNotFoundError, OSError, pa.ArrowInvalid):
                seen.append(-1)

    t = threading.Thread(target=reader)
    t.start()
    try:
        second = run(str(crafted["root"]), str(out), spark=spark, run_id="second", partitions=3)
    finally:
        stop.set()
        t.join()
    after = read_output(out)
    assert rows_by_path(before) == rows_by_path(after)
    assert first["run_id"] == "first" and second["run_id"] == "second"
    assert json.loads(summary_path(out).read_text())["run_id"] == "second"
    # never a partial dataset: the old or new 9 rows, or (listing raced the swap) a read error
    assert 9 in seen and set(seen) <= {9, -1}, sorted(set(seen))
    leftovers = [p.name for p in tmp_path.iterdir() if p.name.startswith(".")]
    assert leftovers == []


def test_vanished_file_symlink_policy_and_labels(spark, tmp_path):
    (tmp_path / "d").mkdir()
    keep = tmp_path / "d" / "keep.bin"
    keep.write_bytes(b"\x7fELF" + os.urandom(500))
    gone = tmp_path / "d" / "gone.bin"
    gone.write_bytes(b"soon gone")
    (tmp_path / "d" / "link").symlink_to(keep)
    listed = list_inputs(str(tmp_path / "d"), follow_symlinks=False)
    gone.unlink()  # vanishes between listing and reading
    inputs = [InputFile(f.path, f.size, label=f"L{i}", error=f.error) for i, f in enumerate(listed)]
    df = features_dataframe(spark, inputs, follow_symlinks=False, partitions=2)
    table = df.toArrow()
    assert table.column_names[-1] == "label"
    rows = rows_by_path(table)
    assert len(rows) == 3
    assert rows[str(gone)]["status"] == "error"
    assert rows[str(gone)]["error"] == "read: file not found (deleted or moved after listing?)"
    assert rows[str(tmp_path / "d" / "link")]["error"] == "symbolic link not followed (--no-follow-symlinks)"
    assert rows[str(keep)]["status"] in ("ok", "partial") and rows[str(keep)]["sha256"]
    assert [rows[f.path]["label"] for f in inputs] == ["L0", "L1", "L2"]


def test_manifest_labels_and_dedupe(spark, crafted, tmp_path):
    m = tmp_path / "m.jsonl"
    entries = [
        {"path": str(crafted["ls_dup"]), "label": "b"},
        {"path": str(crafted["ls"]), "label": "a"},
        {"path": str(crafted["elf_lib"]), "label": "c"},
        {"path": str(tmp_path / "nope"), "label": "d"},
        {"path": str(crafted["dangling"]), "label": "e"},
    ]
    m.write_text("".join(json.dumps(e) + "\n" for e in entries))
    out = tmp_path / "dedup"
    summary = run(str(m), str(out), spark=spark, dedupe=True)
    rows = rows_by_path(read_output(out))
    # ls and its copy share a sha256: the smallest path stays; rows without sha256 all stay.
    kept = sorted([str(crafted["ls"]), str(crafted["ls_dup"])])[0]
    assert sorted(rows) == sorted(
        [kept, str(crafted["elf_lib"]), str(tmp_path / "nope"), str(crafted["dangling"])]
    )
    assert rows[kept]["label"] == {str(crafted["ls"]): "a", str(crafted["ls_dup"]): "b"}[kept]
    assert rows[str(tmp_path / "nope")]["status"] == "error"
    assert summary["rows"] == 4 and summary["duplicates_removed"] == 1
    assert read_output(out).column_names == [*extract.output_schema().names, "label"]
