"""Shared helpers of the PE group tests: the parse step, every PE group's raw values, the fixtures
and the real PE files found on this machine."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import numpy as np
import pyarrow as pa

import extract.groups  # noqa: F401  (declares every group)
from extract.parsed import Parsed, parser_for
from extract.registry import REGISTRY
from tests.conftest import corpus_dir, corpus_manifest
from tests.fixtures import pe_builder as fx

PE_GROUPS = [g for g in REGISTRY if g.name.startswith("pe_")]
EMBER_DIMS = {
    "pe_header": 62,
    "pe_section": 255,
    "pe_imports": 1280,
    "pe_exports": 128,
    "pe_data_directories": 30,
}
FIXTURES = fx.fixtures()
VALID = ["pe32_minimal", "pe32plus_minimal", "pe_arm64_minimal", "dotnet_minimal"]
MUST_FAIL = ["pe_lfanew_past_end", "pe_magic_only"]


def parse(data: bytes | memoryview) -> Parsed:
    return parser_for("pe")(data)


def raws(data: bytes) -> dict:
    p = parse(data)
    return {g.name: g.compute(p) for g in PE_GROUPS}


def check_raw(group, raw) -> np.ndarray:
    pa.array([raw], type=group.raw_type)  # the stored type accepts the raw value
    vec = group.vector(raw)
    assert vec.shape == (group.dims,)
    assert np.isfinite(vec).all(), group.name
    return vec


def real_pe_files() -> list[Path]:
    """PE files always present (setuptools' and pip's launcher exes: i386, AMD64, ARM64), plus the
    sample corpus and directories named in BINFEAT_PE_DIRS (os.pathsep-separated), when there."""
    files = []
    for pkg, sub in (("setuptools", ""), ("pip", "_vendor/distlib")):
        spec = importlib.util.find_spec(pkg)  # locate without importing (setuptools patches distutils)
        if spec and spec.submodule_search_locations:
            files += sorted(Path(next(iter(spec.submodule_search_locations)), sub).glob("*.exe"))
    root = corpus_dir()
    if root is not None:  # the sample corpus's undamaged PE files (damaged ones are tested elsewhere)
        files += [root / r["sha256"][:2] / r["sha256"] for r in corpus_manifest()
                  if r["format"] == "pe" and r["mutation"] is None and r["kind"] != "malformed"][:300]
    roots = [Path(d) for d in os.environ.get("BINFEAT_PE_DIRS", "").split(os.pathsep) if d]
    for root in roots:
        if root.is_dir():
            extra = [f for f in sorted(root.rglob("*")) if f.is_file() and f.open("rb").read(2) == b"MZ"]
            files += extra[:300]
    return files


REAL = real_pe_files()

