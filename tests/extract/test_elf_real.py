"""ELF groups on real files: the sample corpus against pyelftools' reading (every group and the
general fields), system files against readelf's."""

from __future__ import annotations

import glob
import os
from pathlib import Path

import pyarrow as pa
import pytest

from extract.groups import REGISTRY
from extract.groups.elf import parse as E
from extract.parsed import general_for
from tests.conftest import corpus_dir, corpus_manifest
from tests.extract import elf_reference as R
from tests.extract.readelf_reference import READELF, assert_matches_readelf
from tests.extract.vector_reference import assert_vector

ELF_GROUPS = [g for g in REGISTRY if g.name.startswith("elf_")]


def _raw(data: bytes) -> dict:
    p = E.parse_elf(data)
    out = {g.name: g.compute(p) for g in ELF_GROUPS}
    out["general"] = general_for("elf")(p)
    return out


def _corpus_files() -> list[Path]:
    """The undamaged ELF files of the sample corpus (seven architectures, both byte orders)."""
    root = corpus_dir()
    if root is None:
        return []
    return [root / r["sha256"][:2] / r["sha256"] for r in corpus_manifest()
            if r["format"] == "elf" and r["mutation"] is None and r["kind"] != "malformed"]


@pytest.mark.corpus
def test_corpus_against_pyelftools() -> None:
    files = _corpus_files()
    if not files:
        pytest.skip("the small sample corpus is not built")
    machines = set()
    for path in files:
        data = path.read_bytes()
        raw = _raw(data)
        want = R.expected(data)
        assert set(want) == {*(g.name for g in ELF_GROUPS), "general"}
        try:
            R.assert_raw_equal(raw, want)
            for g in ELF_GROUPS:
                pa.array([raw[g.name]], type=g.raw_type)
                assert_vector(g, raw[g.name], R.expected_vector(g.name, raw[g.name]))
        except AssertionError as exc:
            raise AssertionError(f"{path.name}: {exc}") from exc
        machines.add((raw["elf_header"]["machine"], raw["elf_header"]["ei_data"]))
    assert len(files) >= 70 and len(machines) >= 6, (len(files), machines)


def _system_files() -> list[str]:
    """A spread of system ELF files, plus BINFEAT_ELF_EXTRA (a glob, e.g. unpacked s390x coreutils)."""
    pats = ["/usr/lib/x86_64-linux-gnu/*.so*", "/usr/bin/*", "/usr/lib/aarch64-linux-gnu/*.so*"]
    out = []
    for pat in pats:
        for f in sorted(glob.glob(pat)):
            if os.path.isfile(f) and not os.path.islink(f) and 0 < os.path.getsize(f) < 20_000_000:
                with open(f, "rb") as fh:
                    if fh.read(4) == b"\x7fELF":
                        out.append(f)
    out = out[::max(1, len(out) // 24)][:24]
    extra = os.environ.get("BINFEAT_ELF_EXTRA")
    if extra:
        out += [f for f in sorted(glob.glob(extra))[:24] if os.path.isfile(f) and not os.path.islink(f)]
    return out


SYSTEM = _system_files() if READELF else []


@pytest.mark.skipif(not SYSTEM, reason="no readelf or no system ELF files")
@pytest.mark.parametrize("path", SYSTEM, ids=os.path.basename)
def test_system_files_against_readelf(path: str) -> None:
    data = Path(path).read_bytes()
    assert_matches_readelf(path, data, _raw(data))
