"""Mach-O groups on the sample corpus's real files (from macOS wheels, thin and fat): every group and
the general fields against macholib's and LIEF's readings; the entry point, virtual size and
relocation flag against LIEF's on every image, damaged ones and every fat slice included."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pytest

from extract.groups import REGISTRY
from extract.groups.macho import loader_view as L
from extract.groups.macho import parse as M
from extract.parsed import ParseError, general_for
from tests.conftest import corpus_dir, corpus_manifest
from tests.extract import macho_reference as R
from tests.extract.vector_reference import assert_vector

MACHO_GROUPS = [g for g in REGISTRY if g.name.startswith("macho_")]
pytestmark = pytest.mark.corpus


def _corpus(undamaged: bool) -> list[Path]:
    root = corpus_dir()
    if root is None:
        pytest.skip("the small sample corpus is not built")
    return [root / r["sha256"][:2] / r["sha256"] for r in corpus_manifest() if r["format"] == "macho"
            and (not undamaged or (r["mutation"] is None and r["kind"] != "malformed"))]


def test_corpus_against_macholib_and_lief() -> None:
    files = _corpus(undamaged=True)
    fat = 0
    seen_cpus = set()
    for path in files:
        data = path.read_bytes()
        p = M.parse_macho(data)
        raw = {g.name: g.compute(p) for g in MACHO_GROUPS}
        raw["general"] = general_for("macho")(p)
        try:
            R.assert_raw_equal(raw, R.expected(data))
            for g in MACHO_GROUPS:
                pa.array([raw[g.name]], type=g.raw_type)
                assert_vector(g, raw[g.name], R.expected_vector(g.name, raw[g.name]))
        except AssertionError as exc:
            raise AssertionError(f"{path.name}: {exc}") from exc
        fat += raw["macho_fat"]["fat"]
        seen_cpus.add(raw["macho_header"]["cputype"])
    assert len(files) >= 35 and fat >= 8 and len(seen_cpus) >= 3, (len(files), fat, seen_cpus)


def test_loader_view_equals_lief_on_every_image() -> None:
    """Every image LIEF and binfeat both read: thin files, each slice of fat ones, damaged ones too."""
    compared = 0
    for path in _corpus(undamaged=False):
        data = path.read_bytes()
        images = [data]
        if data[:4] in (b"\xca\xfe\xba\xbe", b"\xca\xfe\xba\xbf"):
            try:
                archs = M.read_fat(data)
            except ParseError:
                continue
            images = [data[a["offset"]:a["offset"] + a["size"]] for a in archs
                      if a["offset"] >= 8 and a["size"] > 0 and a["offset"] + a["size"] <= len(data)]
        for image in images:
            try:
                p = M.parse_macho(image)
            except ParseError:
                continue
            assert (L.entry_point(p), L.virtual_size(p), L.has_relocations(p)) == R.lief_values(image), path.name
            compared += 1
    assert compared >= 65
