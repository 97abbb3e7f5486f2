"""The fuzz in `make test`: 2,000 seeded mutants of real executables through ``extract.extract_batch``.

Parents are the sample corpus's undamaged executables (``$BINFEAT_CORPUS``), or the fixtures built
in code when the corpus is missing. ``python -m benchmarks.fuzz`` runs the same check on 10,000 or
more; a failure here names the mutant (seed, index) it rebuilds.
"""

from __future__ import annotations

import hashlib
import os

import pyarrow as pa
import pytest

import extract
from benchmarks.corpus_mutate import Mutator
from benchmarks.fuzz import Parents, check_rows, corpus_parents, write_mutants
from extract.options import ExtractOptions
from extract.output_contract import vector_length
from tests.benchmarks.test_mutants import VALID, fixture_parents
from tests.conftest import corpus_dir

SEED = 20261206
COUNT = 2000
BATCH = 250


def fuzz_parents() -> Parents:
    root = corpus_dir()
    if root is not None:
        parents = corpus_parents(root, 256 << 10)
        if parents.names:
            return parents
    return Parents(list(VALID), fixture_parents(), "fixtures")


@pytest.fixture(scope="module")
def parents() -> Parents:
    return fuzz_parents()


def test_two_thousand_mutants_give_one_right_row_each(parents, tmp_path):
    mutator = Mutator(parents.datas)
    options = ExtractOptions(fuzzy_hashes=())
    statuses: dict[str, int] = {}
    problems = []
    for start in range(0, COUNT, BATCH):
        mutants = [mutator.mutant(SEED, i) for i in range(start, start + BATCH)]
        paths = write_mutants(mutants, tmp_path / str(start))
        batch = extract.extract_batch(pa.record_batch({"path": pa.array(paths, pa.string())}), options)
        rows = batch.to_pylist()
        assert len(rows) == len(paths)
        assert [r["path"] for r in rows] == paths  # one row per input, in order, with its path
        for m, r in zip(mutants, rows, strict=True):
            assert r["status"] in ("ok", "partial", "error"), (m.index, m.operations, r["status"])
            if r["status"] != "ok":
                assert r["error"] and r["error"].strip(), (m.index, m.operations)
            assert r["sha256"] == hashlib.sha256(m.data).hexdigest(), m.index
            statuses[r["status"]] = statuses.get(r["status"], 0) + 1
        problems += [f"mutant {SEED}/{mutants[i].index} ({'; '.join(mutants[i].operations)}): {p}"
                     for i, p in check_rows(rows, paths, [m.data for m in mutants], vector_length())]
        for p in paths:
            os.unlink(p)
    assert not problems, "\n".join(problems[:20])
    assert sum(statuses.values()) == COUNT
    assert statuses.get("partial", 0) > 0  # the damage reaches the parsers: some rows lose groups


def test_the_check_catches_a_wrong_row(parents, tmp_path):
    """The fuzz's own check fails on rows that break the contract (it is not a check that cannot fail)."""
    mutants = [Mutator(parents.datas).mutant(SEED, i) for i in range(4)]
    paths = write_mutants(mutants, tmp_path)
    rows = extract.extract_batch(pa.record_batch({"path": pa.array(paths, pa.string())})).to_pylist()
    assert check_rows(rows, paths, [m.data for m in mutants], vector_length()) == []
    broken = [dict(r) for r in rows]
    broken[1]["sha256"] = "0" * 64
    broken[2].update(status="partial", error="")
    broken[3]["path"] = paths[0]
    found = check_rows(broken, paths, [m.data for m in mutants], vector_length())
    assert [i for i, _ in found] == [1, 2, 3]
    assert check_rows(rows[:3], paths, [m.data for m in mutants], vector_length()) == [(0, "3 rows for 4 inputs")]


def test_the_fuzz_counts_the_parser_faults_it_meets(fixture_files):
    """Mutants of files that crash or balloon the parser (the fault plugin's markers) are counted as
    such, by (seed, index), and their error rows still hold the contract."""
    from benchmarks.corpus_sniff import detect_format
    from benchmarks.fuzz import run

    elf = fixture_files["elf64_le_minimal"].read_bytes()
    crash, balloon = (elf[:16] + marker + elf[16 + len(marker) :] for marker in (b"BINFEAT-CRASH", b"BINFEAT-BALLOON"))
    parents = Parents(["crash", "balloon"], [crash, balloon], "fault fixtures")
    options = ExtractOptions(fuzzy_hashes=(), memory_limit_mb=512, worker_preload=("tests.extract.fault_plugin",))
    report = run(parents, SEED, 6, batch=3, options=options)
    mutator = Mutator(parents.datas)
    expected: dict[str, list[int]] = {}
    for i in range(6):
        data = mutator.mutant(SEED, i).data
        if detect_format(data) == "elf":
            for name, marker in (("crashed", b"BINFEAT-CRASH"), ("out of memory", b"BINFEAT-BALLOON")):
                if marker in data[:64]:
                    expected.setdefault(name, []).append(i)
    assert report.faults == expected and set(expected) == {"crashed", "out of memory"}
    assert report.problems == [] and report.rows == 6
    assert report.statuses["error"] == sum(len(v) for v in expected.values())
