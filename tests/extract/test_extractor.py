"""The extractor's contract: one row per input whatever the input, isolation of the parser, streaming."""

from __future__ import annotations

import importlib.metadata
import os
import socket

import numpy as np
import pyarrow as pa
import pytest

import extract
from extract.extractor import ExtractOptions, Extractor
from extract.groups import REGISTRY
from extract.output_contract import output_schema, vector_length
from tests.rows import canonical_rows

FAST = ExtractOptions(fuzzy_hashes=())


@pytest.fixture(scope="module")
def ex():
    e = Extractor(FAST)
    yield e
    e.close()


def test_vector_length_is_sum_of_declared_dims():
    assert vector_length() == sum(g.dims for g in REGISTRY)
    layout = extract.vector_layout()
    assert layout[-1]["offset"] + layout[-1]["length"] == vector_length()
    assert [r["group"] for r in layout] == REGISTRY.names()


def test_every_group_on_every_fixture(ex, fixture_files):
    schema = output_schema()
    for name, path in fixture_files.items():
        row = ex.extract(str(path))
        assert row["status"] in ("ok", "partial", "error"), name
        assert row["sha256"] is not None and row["size"] == path.stat().st_size, name
        if row["status"] == "error":
            continue
        assert len(row["vector"]) == vector_length(), name
        for g in REGISTRY:
            if g.applies_to(row["format"]) and row[g.name] is not None:
                assert len(g.vector(row[g.name])) == g.dims, (name, g.name)
        pa.RecordBatch.from_pylist([{k: (v.tolist() if isinstance(v, np.ndarray) else v)
                                     for k, v in row.items()}], schema=schema)


def test_valid_fixtures_are_ok_and_formats_detected(ex, fixture_files):
    expected = {"pe32_minimal": "pe", "pe32plus_minimal": "pe", "dotnet_minimal": "pe",
                "elf64_le_minimal": "elf", "elf32_be_minimal": "elf", "macho64_minimal": "macho",
                "macho_fat_minimal": "macho", "java_class": "unknown", "random_64k": "unknown", "empty": "unknown"}
    for name, fmt in expected.items():
        row = ex.extract(str(fixture_files[name]))
        assert row["format"] == fmt, name
        assert row["status"] == "ok", (name, row["error"])


def test_damaged_fixtures_give_one_row_each(ex, fixture_files):
    kinds = ("truncated", "past_end", "absurd", "bitflip", "magic_only")
    damaged = [n for n in fixture_files if any(k in n for k in kinds)]
    assert len(damaged) >= 10
    rows = extract.extract_batch(pa.record_batch({"path": [str(fixture_files[n]) for n in damaged]}), FAST)
    assert rows.num_rows == len(damaged)
    columns = rows.column("status").to_pylist(), rows.column("error").to_pylist()
    for n, status, err in zip(damaged, *columns, strict=True):
        assert status in ("ok", "partial"), (n, status, err)
        assert (err is None) == (status == "ok"), n
        assert err is None or "\n" not in err


def test_bad_inputs_get_error_rows(ex, tmp_path):
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    sock_path = tmp_path / "sock"
    s = socket.socket(socket.AF_UNIX)
    s.bind(str(sock_path))
    cases = {
        str(tmp_path / "missing"): "file not found",
        str(fifo): "not a regular file (FIFO)",
        str(tmp_path): "not a regular file (directory)",
        "/dev/null": "not a regular file (device)",
        str(sock_path): "not a regular file (socket)",
        "": "file not found",
    }
    batch = extract.extract_batch(pa.record_batch({"path": list(cases)}), FAST)
    s.close()
    assert batch.num_rows == len(cases)
    columns = [batch.column(c).to_pylist() for c in ("path", "status", "error", "vector")]
    for path, status, err, vec in zip(*columns, strict=True):
        assert status == "error" and cases[path] in err and vec is None, (path, err)


def test_same_bytes_same_row_and_content_equals_path(ex, fixture_files, tmp_path):
    paths = [str(p) for p in fixture_files.values()]
    a = extract.extract_batch(pa.record_batch({"path": paths}), FAST)
    b = extract.extract_batch(pa.record_batch({"path": paths[::-1]}), FAST)
    assert canonical_rows(a) == canonical_rows(b)[::-1]
    contents = [open(p, "rb").read() for p in paths]
    c = extract.extract_batch(pa.record_batch({"path": paths, "content": pa.array(contents, pa.binary())}), FAST)
    assert canonical_rows(c) == canonical_rows(a)
    # a table's content column in chunks (read as views of its buffers), large_binary, a null content
    # (that file is read from its path), the same rows
    half = len(paths) // 2
    content = pa.chunked_array([pa.array(contents[:half], pa.large_binary()),
                                pa.array([None, *contents[half + 1:]], pa.large_binary())])
    d = extract.extract_batch(pa.table({"path": paths, "content": content}), FAST)
    assert canonical_rows(d) == canonical_rows(a)


def test_windows_of_any_shape_give_the_same_rows_and_hashlib_md5s(monkeypatch, fixture_files, tmp_path):
    """md5s come from the multi-buffer kernel per window (hashlib for streamed files): the windows'
    cut (by files and by bytes) never changes a row."""
    import hashlib

    import extract.file_windows as file_windows

    paths = [str(p) for p in fixture_files.values()]
    gone = tmp_path / "gone"
    gone.write_bytes(b"MZ" * 100)
    paths.insert(3, str(gone))
    expected = [hashlib.md5(open(p, "rb").read()).hexdigest() for p in paths]
    reference = Extractor(FAST).extract_rows(paths)
    options = ExtractOptions(fuzzy_hashes=(), whole_read_bytes=4096, chunk_bytes=1024)
    monkeypatch.setattr(file_windows, "WINDOW_FILES", 3)
    monkeypatch.setattr(file_windows, "WINDOW_BYTES", 10_000)
    ex = Extractor(options)
    real_read = ex._files.read_whole

    def vanishing(plan):  # deleted between listing and reading
        if plan.path == str(gone):
            gone.unlink()
        real_read(plan)

    monkeypatch.setattr(ex._files, "read_whole", vanishing)
    rows = ex.extract_rows(paths)
    assert [r["md5"] for r in rows if r["path"] != str(gone)] == [m for p, m in zip(paths, expected, strict=True)
                                                                   if p != str(gone)]
    lost = next(r for r in rows if r["path"] == str(gone))
    assert lost["status"] == "error" and "file not found" in lost["error"]
    same = [(a, b) for a, b in zip(reference, rows, strict=True) if a["path"] != str(gone)]
    for a, b in same:
        assert {k: v for k, v in a.items() if k != "vector"} == {k: v for k, v in b.items() if k != "vector"}
        assert a["vector"].tobytes() == b["vector"].tobytes()


def test_md5_falls_back_to_hashlib_when_the_lanes_fail(monkeypatch, fixture_files):
    import hashlib

    import extract.md5_lanes

    def broken(buffers):
        raise RuntimeError("no vector unit today")

    monkeypatch.setattr(extract.md5_lanes, "md5_many", broken)
    paths = [str(p) for p in fixture_files.values()]
    rows = Extractor(FAST).extract_rows(paths)
    assert [r["md5"] for r in rows] == [hashlib.md5(open(p, "rb").read()).hexdigest() for p in paths]
    assert all(r["status"] in ("ok", "partial") for r in rows)


def test_stamps(ex, fixture_files, tmp_path):
    row = ex.extract(str(fixture_files["elf64_le_minimal"]))
    assert row["feature_version"] == extract.FEATURE_VERSION and row["binfeat_version"] == extract.__version__
    lief_name = f"lief {importlib.metadata.version('lief')}"
    # each row names what parsed it: LIEF for PE and ELF, binfeat's own Mach-O reader, nothing otherwise
    expected = {"pe32plus_minimal": lief_name, "elf64_le_minimal": lief_name,
                "macho64_minimal": f"binfeat-macho {extract.__version__}",
                "macho_fat_minimal": f"binfeat-macho {extract.__version__}", "random_64k": "none", "empty": "none"}
    rows = ex.extract_rows([str(fixture_files[name]) for name in expected] + [str(tmp_path / "missing")])
    assert [r["parser"] for r in rows] == [*expected.values(), "none"]
    byte_only = Extractor(ExtractOptions(fuzzy_hashes=(), groups=("byte_histogram",)))
    try:
        assert byte_only.extract(str(fixture_files["elf64_le_minimal"]))["parser"] == "none"
    finally:
        byte_only.close()
    assert extract.error_rows(["x"], ["why"]).column("parser").to_pylist() == ["none"]


def test_a_parser_is_registered_with_what_parses_it():
    from extract.parsed import register_parser

    with pytest.raises(ValueError, match="already registered"):
        register_parser("pe", lambda data: None, library="lief")
    with pytest.raises(ValueError, match="needs a library name"):
        register_parser("new-format", lambda data: None, library="")


def test_large_file_streams_and_skips_structure(tmp_path, fixture_files):
    data = fixture_files["elf64_le_minimal"].read_bytes()
    big = tmp_path / "big"
    with open(big, "wb") as f:
        f.write(data)
        f.truncate(5 << 20)  # sparse tail: 5 MiB
    small_limits = ExtractOptions(fuzzy_hashes=(), whole_read_bytes=1 << 20, chunk_bytes=1 << 20,
                                  max_structural_bytes=2 << 20)
    streamed = Extractor(small_limits).extract(str(big))
    whole = Extractor(FAST).extract(str(big))
    assert streamed["status"] == "partial" and "skipped, file larger than" in streamed["error"]
    assert whole["status"] == "ok"
    for col in ("sha256", "md5", "byte_histogram", "byte_entropy_histogram", "strings", "size"):
        assert streamed[col] == whole[col], col
    elf = next(r for r in extract.vector_layout() if r["group"] == "elf_header")
    skipped = streamed["vector"][elf["offset"] : elf["offset"] + elf["length"]]
    assert np.isnan(skipped).all()  # unknown, not zero
    assert not np.isnan(whole["vector"]).any()


@pytest.mark.parametrize(("marker", "message"), [
    (b"BINFEAT-CRASH", "parser crashed (SIGSEGV)"),
    (b"BINFEAT-HANG", "parser timed out after 2 s"),
    (b"BINFEAT-BALLOON", "parser ran out of memory (limit 512 MiB)"),
])
def test_parser_faults_cost_one_row(tmp_path, fixture_files, marker, message):
    options = ExtractOptions(fuzzy_hashes=(), parse_timeout_s=2, memory_limit_mb=512,
                             worker_preload=("tests.extract.fault_plugin",))
    bad = tmp_path / "bad"
    bad.write_bytes(b"\x7fELF\x02\x01\x01" + bytes(9) + marker + bytes(100))
    good = fixture_files["elf64_le_minimal"]
    batch = extract.extract_batch(pa.record_batch({"path": [str(good), str(bad), str(good)]}), options)
    status = batch.column("status").to_pylist()
    errors = batch.column("error").to_pylist()
    assert status == ["ok", "error", "ok"], errors
    assert errors[1] == message
    # the byte-level groups of the failed file were still computed
    assert batch.column("byte_histogram")[1].as_py() is not None
    assert batch.column("sha256")[1].as_py() is not None


def test_in_process_mode_equals_isolated(fixture_files):
    paths = [str(p) for p in fixture_files.values()]
    iso = Extractor(FAST).extract_batch(pa.record_batch({"path": paths}))
    inproc = Extractor(ExtractOptions(fuzzy_hashes=(), isolate=False)).extract_batch(pa.record_batch({"path": paths}))
    assert canonical_rows(iso) == canonical_rows(inproc)


def test_bad_options_say_what_is_wrong():
    with pytest.raises(ValueError, match="multiple of 1024"):
        ExtractOptions(chunk_bytes=1000)
    with pytest.raises(ValueError, match="unknown fuzzy hashes"):
        ExtractOptions(fuzzy_hashes=("sdhash",))


@pytest.mark.corpus
def test_every_corpus_file_gives_one_row(small_corpus):
    from tests.conftest import corpus_manifest

    records = corpus_manifest()
    paths = [str(small_corpus / r["sha256"][:2] / r["sha256"]) for r in records]
    batch = extract.extract_batch(pa.record_batch({"path": paths}), FAST)
    assert batch.num_rows == len(records)
    assert batch.column("sha256").to_pylist() == [r["sha256"] for r in records]
    assert batch.column("size").to_pylist() == [r["size"] for r in records]
    assert batch.column("format").to_pylist() == [r["format"] for r in records]
    for r, status, err in zip(records, batch.column("status").to_pylist(), batch.column("error").to_pylist(),
                              strict=True):
        assert status in ("ok", "partial"), (r, err)  # no parser crash, hang or balloon on this corpus
        if r["mutation"] is None and r["kind"] != "malformed":
            assert status == "ok", (r["kind"], r["origin"], err)  # real, undamaged files parse fully


@pytest.mark.parametrize("binary", [pa.binary(), pa.large_binary()], ids=["binary", "large_binary"])
def test_content_views_are_the_column_values_without_a_copy(binary):
    """extract_batch reads the content column as read-only views of its data buffer: the values of any
    slice, chunking, null or empty value, byte for byte."""
    from extract.file_plans import content_views

    values = [b"MZab", None, b"", b"\xff\x00", b"xyz"]
    a = pa.array(values, binary)
    columns = [a, a.slice(1), a.slice(2, 2), pa.chunked_array([a.slice(0, 2), a.slice(2)]),
               pa.chunked_array([], binary), pa.array([None, None], binary), pa.array([b"", b""], binary)]
    for column in columns:
        views = content_views(column)
        assert [None if v is None else bytes(v) for v in views] == column.to_pylist()
        assert all(v is None or (v.readonly and v.format == "B") for v in views)
    assert content_views(pa.array(["text"])) == ["text"]  # another type: its Python values, as before
