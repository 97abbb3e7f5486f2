"""The parser worker: its memory cap (a budget on top of the warm worker's own footprint, set after
the kernels are compiled: compiling under the cap made LLVM abort at start-up with a cold numba cache)
and its messages, and the bytes it parses (those the extractor read, whatever happens to the file)."""

from __future__ import annotations

import hashlib
import os
import time
from pathlib import Path

import pyarrow as pa
import pytest

import extract
from extract.extractor import ExtractOptions, Extractor
from extract.groups.general import general_fields
from extract.isolation import ParserWorker, WorkerFailure
from tests.fixtures import all_fixtures
from tests.rows import canonical_rows


def fixtures_data(name: str) -> bytes:
    return all_fixtures()[name]


def _limits(pid: int) -> tuple[int, int]:
    """(soft address-space limit, current VmSize) of a process, in bytes."""
    limit = next(
        int(line.split()[3]) for line in Path(f"/proc/{pid}/limits").read_text().splitlines()
        if line.startswith("Max address space")
    )
    vm = next(
        int(line.split()[1]) << 10 for line in Path(f"/proc/{pid}/status").read_text().splitlines()
        if line.startswith("VmSize:")
    )
    return limit, vm


def test_cold_kernel_cache_under_the_smallest_budget(tmp_path, monkeypatch, fixture_files):
    import extract.isolation as isolation

    monkeypatch.setenv("NUMBA_CACHE_DIR", str(tmp_path / "numba"))  # the worker compiles every kernel
    monkeypatch.setattr(isolation, "WARM_BYTES", 0)  # at start, as for a large first window
    good = fixture_files["elf64_le_minimal"]
    options = ExtractOptions(fuzzy_hashes=(), memory_limit_mb=256)
    batch = extract.extract_batch(pa.record_batch({"path": [str(good)]}), options)
    assert batch.column("status").to_pylist() == ["ok"], batch.column("error").to_pylist()
    assert any((tmp_path / "numba").rglob("*.nbi"))  # the compiled kernels were written: it really was cold


def test_budget_is_on_top_of_the_warm_footprint(fixture_files):
    good = fixture_files["elf64_le_minimal"]
    worker = ParserWorker(timeout_s=30, memory_limit_mb=256)
    try:
        worker.submit_many([{"path": str(good), "format": "elf", "size": good.stat().st_size}])
        assert worker.result(time.monotonic())["parse_error"] is None
        limit, vm = _limits(worker._proc.pid)
    finally:
        worker.close()
    footprint = limit - (256 << 20)
    assert 0 < footprint <= vm  # the cap was set from the address space held then, plus the budget
    # LIEF, numpy and pyarrow alone (a light worker; LLVM adds ~200 MiB) are more than the budget: a
    # total cap would fail
    assert footprint > 256 << 20


def test_a_parse_may_take_most_of_its_budget(tmp_path, fixture_files):
    taker = tmp_path / "taker"
    taker.write_bytes(fixture_files["elf64_le_minimal"].read_bytes() + b"BINFEAT-TAKE200")
    options = ExtractOptions(fuzzy_hashes=(), memory_limit_mb=256, worker_preload=("tests.extract.fault_plugin",))
    batch = extract.extract_batch(pa.record_batch({"path": [str(taker)]}), options)
    assert batch.column("status").to_pylist() == ["ok"], batch.column("error").to_pylist()


# -- the memory cap's message ---------------------------------------------------------------------


def _sparse_copy(src: Path, dst: Path, size: int) -> Path:
    with open(dst, "wb") as f:
        f.write(src.read_bytes())
        f.truncate(size)  # sparse: no disk, no page cache
    return dst


def test_a_file_larger_than_the_cap_is_named_out_of_memory_by_the_worker(tmp_path, fixture_files):
    """The worker reads a file inside its out-of-memory handler: the reply names the limit (it used to
    die on the read: 'parser worker exited with code 1')."""
    big = _sparse_copy(fixture_files["elf64_le_minimal"], tmp_path / "big", 300 << 20)
    good = fixture_files["elf64_le_minimal"]
    worker = ParserWorker(timeout_s=60, memory_limit_mb=256)
    try:
        worker.submit_many([{"path": str(big), "format": "elf", "size": 300 << 20, "identity": None}])
        with pytest.raises(WorkerFailure) as failure:
            worker.result(time.monotonic())
        assert str(failure.value) == "parser ran out of memory (limit 256 MiB)"
        worker.submit_many([{"path": str(good), "format": "elf", "size": good.stat().st_size}])
        assert worker.result(time.monotonic())["parse_error"] is None  # a fresh worker took over
    finally:
        worker.shutdown()


def test_a_file_larger_than_the_cap_is_not_sent_to_the_parser(tmp_path, fixture_files):
    """A parse needs at least the file's bytes: beyond the cap it is skipped and the row says why."""
    big = _sparse_copy(fixture_files["elf64_le_minimal"], tmp_path / "big", 300 << 20)
    ex = Extractor(ExtractOptions(fuzzy_hashes=(), memory_limit_mb=256))
    try:
        row = ex.extract(str(big))
        assert ex._worker is None  # no worker was started (nor restarted) for it
    finally:
        ex.close()
    assert row["status"] == "partial" and row["format"] == "elf"
    assert row["error"] == "structure: skipped, file larger than the parser's memory limit (256 MiB)"
    assert row["sha256"] == hashlib.sha256(big.read_bytes()).hexdigest()


# -- the parser sees the bytes the extractor read -------------------------------------------------


def _rows_equal_but_path(a: dict, b: dict) -> None:
    assert canonical_rows([{k: v for k, v in a.items() if k not in ("path", "vector")}]) == canonical_rows(
        [{k: v for k, v in b.items() if k not in ("path", "vector")}])
    assert (a["vector"] is None) == (b["vector"] is None)
    if a["vector"] is not None:
        assert a["vector"].tobytes() == b["vector"].tobytes()


def _rewrite_in_place(path: Path, data: bytes) -> None:
    """New bytes, same inode and size, the old modification time put back (only ctime tells)."""
    st = path.stat()
    assert len(data) == st.st_size
    with open(path, "r+b") as f:
        f.write(data)
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))


@pytest.fixture
def real_elf(tmp_path) -> tuple[Path, bytes]:
    """A real executable (this machine's ls) and its bytes."""
    data = Path("/bin/ls").read_bytes()
    return tmp_path / "reference-ls", data


@pytest.mark.parametrize("change", ["rewritten", "deleted", "replaced"])
def test_a_file_changed_after_the_whole_read_is_parsed_as_read(tmp_path, monkeypatch, real_elf, change):
    """Whole-read files reach the parser through the shared buffer: whatever happens to the file after
    the extractor's read, the row describes the bytes that were read, and the worker stays up."""
    reference, data = real_elf
    reference.write_bytes(data)
    victim, after = tmp_path / "victim", fixtures_data("pe32plus_minimal")
    victim.write_bytes(data)
    ex = Extractor(ExtractOptions(fuzzy_hashes=()))
    try:
        expected = ex.extract(str(reference))
        pid = ex._worker._proc.pid
        real_read = ex._files.read_whole

        def read_then_change(plan, redescribe=True):
            real_read(plan, redescribe)
            if plan.path == str(victim):
                if change == "rewritten":
                    _rewrite_in_place(victim, bytes(reversed(data)))
                elif change == "deleted":
                    victim.unlink()
                else:  # a new file renamed over the old name
                    (tmp_path / "new").write_bytes(after)
                    os.replace(tmp_path / "new", victim)

        monkeypatch.setattr(ex._files, "read_whole", read_then_change)
        rows = ex.extract_rows([str(victim), str(reference)])
        assert ex._worker._proc.pid == pid
    finally:
        ex.close()
    assert rows[0]["status"] == "ok" and rows[0]["sha256"] == hashlib.sha256(data).hexdigest()
    _rows_equal_but_path(rows[0], expected)
    _rows_equal_but_path(rows[1], expected)


def test_a_file_replaced_between_planning_and_reading_is_described_as_read(tmp_path, monkeypatch, fixture_files):
    """The format, size and parse all follow the bytes read, not the first look at the file."""
    pe = fixture_files["pe32plus_minimal"]
    victim = tmp_path / "victim"
    victim.write_bytes(fixture_files["elf64_le_minimal"].read_bytes())
    ex = Extractor(ExtractOptions(fuzzy_hashes=()))
    try:
        expected = ex.extract(str(pe))
        real_read = ex._files.read_whole

        def replace_then_read(plan, redescribe=True):
            if plan.path == str(victim):
                (tmp_path / "new").write_bytes(pe.read_bytes())
                os.replace(tmp_path / "new", victim)
            real_read(plan, redescribe)

        monkeypatch.setattr(ex._files, "read_whole", replace_then_read)
        row = ex.extract(str(victim))
    finally:
        ex.close()
    assert row["format"] == "pe" and row["status"] == "ok"
    _rows_equal_but_path(row, expected)


@pytest.mark.parametrize(("change", "message"), [
    ("rewritten", "structure: the file changed after the extractor read it"),
    ("grown", "structure: the file changed after the extractor read it"),
    ("deleted", "structure: the file vanished after the extractor read it"),
])
def test_a_streamed_file_changed_before_the_parser_reads_it(tmp_path, monkeypatch, real_elf, change, message):
    """A file too large to hold is read by the parser itself, after the extractor's stream, checked
    against the identity the extractor saw: a change costs the structural groups (said in the row),
    never the worker, and the byte-level groups describe what the extractor read."""
    reference, data = real_elf
    reference.write_bytes(data)
    victim = tmp_path / "victim"
    victim.write_bytes(data)
    options = ExtractOptions(fuzzy_hashes=(), whole_read_bytes=64 << 10, chunk_bytes=16 << 10)
    assert len(data) > options.whole_read_bytes
    ex = Extractor(options)
    try:
        expected = ex.extract(str(reference))
        pid = ex._worker._proc.pid
        real_feed = ex._files.feed

        def stream_then_change(plan, update):
            out = real_feed(plan, update)
            if plan.path == str(victim):
                if change == "rewritten":
                    _rewrite_in_place(victim, bytes(reversed(data)))
                elif change == "grown":
                    with open(victim, "ab") as f:
                        f.write(b"more")
                else:
                    victim.unlink()
            return out

        monkeypatch.setattr(ex._files, "feed", stream_then_change)
        rows = ex.extract_rows([str(victim), str(reference)])
        assert ex._worker._proc.pid == pid  # the worker survived
    finally:
        ex.close()
    changed, after = rows
    assert changed["status"] == "partial" and changed["error"] == message
    assert changed["sha256"] == expected["sha256"] and changed["byte_histogram"] == expected["byte_histogram"]
    assert changed["elf_header"] is None and changed["general"] == general_fields(None, len(data), "elf")
    _rows_equal_but_path(after, expected)


@pytest.mark.parametrize("whole_read_bytes", [64 << 20, 64 << 10])
def test_a_file_written_while_the_extractor_reads_it_gets_an_error_row(tmp_path, monkeypatch, real_elf,
                                                                       whole_read_bytes):
    """Bytes read across a write are no version of the file: an error row that says so."""
    import extract.file_plans as file_plans

    reference, data = real_elf
    reference.write_bytes(data)
    victim = tmp_path / "victim"
    victim.write_bytes(data)
    ex = Extractor(ExtractOptions(fuzzy_hashes=(), whole_read_bytes=whole_read_bytes, chunk_bytes=16 << 10))
    real_read_all, real_readv = file_plans.read_all, os.readv

    def write_behind(path):
        with open(path, "ab") as f:
            f.write(b"appended while read")

    def read_all(fd, size):  # a whole read
        out = real_read_all(fd, size)
        if os.fstat(fd).st_ino == victim.stat().st_ino:
            write_behind(victim)
        return out

    def readv(fd, buffers):  # a streamed read: the write lands after the first chunk
        n = real_readv(fd, buffers)
        if os.fstat(fd).st_ino == victim.stat().st_ino and n and os.lseek(fd, 0, os.SEEK_CUR) == n:
            write_behind(victim)
        return n

    monkeypatch.setattr(file_plans, "read_all", read_all)
    monkeypatch.setattr(file_plans.os, "readv", readv)
    try:
        expected = ex.extract(str(reference))
        rows = ex.extract_rows([str(victim), str(reference)])
    finally:
        ex.close()
    assert rows[0]["status"] == "error"
    assert rows[0]["error"] == "read: file changed while it was read; extract it again"
    _rows_equal_but_path(rows[1], expected)


class _Interrupted(BaseException):
    pass


def test_replies_left_unread_are_never_taken_for_the_next_batchs(monkeypatch, fixture_files):
    """An exception that escapes a batch between sending the requests and reading the replies (here
    a BaseException out of one row) leaves replies in the pipe and the worker reading the shared
    buffer: the next batch starts a fresh worker instead of reading them as its own."""
    names = ["elf64_le_minimal", "pe32plus_minimal", "macho64_minimal", "macho_fat_minimal", "dotnet_minimal"]
    paths = [str(fixture_files[n]) for n in names]
    ex = Extractor(ExtractOptions(fuzzy_hashes=()))
    try:
        expected = ex.extract_rows(paths)
        real_finish = ex._finish

        def interrupted(plan, replies):
            if plan.index == 1:
                raise _Interrupted
            return real_finish(plan, replies)

        monkeypatch.setattr(ex, "_finish", interrupted)
        with pytest.raises(_Interrupted):
            ex.extract_rows(paths)
        monkeypatch.setattr(ex, "_finish", real_finish)
        rows = ex.extract_rows(paths[::-1])[::-1]
    finally:
        ex.close()
    for a, b in zip(rows, expected, strict=True):
        _rows_equal_but_path(a, b)


def test_a_checkout_in_the_working_directory_does_not_replace_the_workers_code(tmp_path, monkeypatch,
                                                                               fixture_files):
    """The worker imports extract from where this process did, not from its working directory."""
    fake = tmp_path / "cwd" / "extract"
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text("")
    (fake / "worker.py").write_text("raise SystemExit(3)\n")
    monkeypatch.chdir(tmp_path / "cwd")
    ex = Extractor(ExtractOptions(fuzzy_hashes=()))
    try:
        row = ex.extract(str(fixture_files["elf64_le_minimal"]))
    finally:
        ex.close()
    assert row["status"] == "ok", row["error"]


def test_bytes_travel_inline_when_the_shared_buffer_cannot_take_them(monkeypatch, fixture_files):
    import errno

    import extract.isolation as isolation

    paths = [str(p) for p in fixture_files.values()]
    ex = Extractor(ExtractOptions(fuzzy_hashes=()))
    try:
        expected = ex.extract_rows(paths)

        def full(fd, data, offset):
            raise OSError(errno.ENOMEM, "Cannot allocate memory")

        monkeypatch.setattr(isolation.os, "pwrite", full)
        rows = ex.extract_rows(paths)
    finally:
        ex.close()
    for a, b in zip(rows, expected, strict=True):
        _rows_equal_but_path(a, b)
        assert a["path"] == b["path"]


def test_a_forked_process_gets_its_own_worker_and_buffer(fixture_files):
    """The pyspark daemon forks its Python workers: a child must not write into its parent's shared
    buffer nor read its parent's worker's replies (each would get the other's rows)."""
    elf = str(fixture_files["elf64_le_minimal"])
    pe = str(fixture_files["pe32plus_minimal"])
    ex = Extractor(ExtractOptions(fuzzy_hashes=()))
    try:
        expected = {p: ex.extract(p) for p in (elf, pe)}
        parent_buffer = os.fstat(ex._worker._shared_fd).st_ino
        parent_worker = ex._worker._proc.pid
        read_end, write_end = os.pipe()
        child = os.fork()
        if child == 0:  # pragma: no cover - the child reports through the pipe
            code = 1
            try:
                row = ex.extract(pe)
                same = canonical_rows([{k: v for k, v in row.items() if k != "vector"}]) == canonical_rows(
                    [{k: v for k, v in expected[pe].items() if k != "vector"}])
                report = (same, os.fstat(ex._worker._shared_fd).st_ino != parent_buffer,
                          ex._worker._proc.pid != parent_worker)
                os.write(write_end, repr(report).encode())
                ex.close()
                code = 0
            finally:
                os._exit(code)
        os.close(write_end)
        with os.fdopen(read_end, "rb") as f:
            report = f.read().decode()
        assert os.waitpid(child, 0)[1] == 0
        assert report == "(True, True, True)"  # its own row, its own buffer, its own worker
        row = ex.extract(elf)  # the parent's worker still serves the parent
        assert ex._worker._proc.pid == parent_worker
        _rows_equal_but_path(row, expected[elf])
    finally:
        ex.close()
