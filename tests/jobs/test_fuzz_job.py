"""The fuzz through the real Spark job: a few hundred mutants listed in a manifest, `binfeat extract` in
local mode, one row per mutant, equal row for row to ``extract.extract_batch`` on the same files."""

from __future__ import annotations

import hashlib
import json
import subprocess
from collections import Counter

import numpy as np
import pyarrow as pa
import pytest

import extract
from benchmarks.corpus_mutate import Mutator
from benchmarks.fuzz import check_rows, write_mutants
from extract.output_contract import vector_length
from tests.extract.test_fuzz import fuzz_parents
from tests.jobs._support import REPO, VENV_BIN, child_env, read_output

pytestmark = pytest.mark.spark

SEED = 20261207
COUNT = 300


def _vector_bytes(vector: list[float] | None) -> bytes | None:
    return None if vector is None else np.asarray(vector, np.float32).tobytes()


def test_mutants_through_binfeat_extract_equal_extract_batch(tmp_path):
    parents = fuzz_parents()
    mutants = [Mutator(parents.datas).mutant(SEED, i) for i in range(COUNT)]
    paths = write_mutants(mutants, tmp_path / "mutants")
    manifest = tmp_path / "mutants.jsonl"
    manifest.write_text("".join(json.dumps({"path": p}) + "\n" for p in paths))
    out = tmp_path / "features"
    proc = subprocess.run(
        [str(VENV_BIN / "binfeat"), "extract", str(manifest), str(out), "--master", "local[2]", "--quiet",
         "--conf", "spark.ui.enabled=false"],
        cwd=REPO, env=child_env(), capture_output=True, text=True, timeout=900,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    job = read_output(out).to_pylist()

    # one row per mutant, each with its own path, the contract's statuses and messages
    assert len(job) == COUNT
    by_path = {r["path"]: r for r in job}
    assert sorted(by_path) == sorted(paths)  # every path once: none lost, none twice
    data = {p: m.data for p, m in zip(paths, mutants, strict=True)}
    ordered = [by_path[p] for p in paths]
    assert check_rows(ordered, paths, [data[p] for p in paths], vector_length()) == []
    for r in job:
        assert r["status"] in ("ok", "partial", "error")
        assert r["sha256"] == hashlib.sha256(data[r["path"]]).hexdigest()
        if r["status"] != "ok":
            assert r["error"] and r["error"].strip()

    # row for row equal to extract_batch's on the same files
    direct = extract.extract_batch(pa.record_batch({"path": pa.array(paths, pa.string())})).to_pylist()
    for p, d in zip(paths, direct, strict=True):
        j = by_path[p]
        assert (j["sha256"], j["status"], j["error"]) == (d["sha256"], d["status"], d["error"]), p
        assert _vector_bytes(j["vector"]) == _vector_bytes(d["vector"]), p
    assert Counter(r["status"] for r in job) == Counter(r["status"] for r in direct)
