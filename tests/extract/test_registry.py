"""Feature group declarations are validated when declared, and the registry drives layout and version."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from extract.groups import REGISTRY
from extract.registry import DeclarationError, FeatureGroup, Registry, declare


def _group(**changes):
    spec = dict(name="demo", version=1, formats=frozenset({"pe"}), dims=2, raw_type=pa.int64(), stage="bytes",
                compute=lambda ctx: 1, vectorize=lambda raw: np.zeros(2), dim_names=("a", "b"))
    spec.update(changes)
    return FeatureGroup(**spec)


@pytest.mark.parametrize(("changes", "message"), [
    ({"name": "Bad-Name"}, "must be snake_case"),
    ({"name": "sha256"}, "reserved"),
    ({"version": 0}, "version must be an int >= 1"),
    ({"formats": frozenset({"apk"})}, "subset of"),
    ({"stage": "later"}, "stage must be one of"),
    ({"dim_names": ("a",)}, "1 dim_names for 2 dims"),
    ({"dim_names": ("a", "a")}, "dim_names must be unique"),
    ({"raw_type": int}, "raw_type must be a pyarrow DataType"),
])
def test_bad_declarations_fail_when_declared(changes, message):
    with pytest.raises(DeclarationError, match=message):
        _group(**changes)


def test_duplicate_names_fail():
    reg = Registry()
    reg.register(_group())
    with pytest.raises(DeclarationError, match="declared twice"):
        reg.register(_group())


def test_declare_decorator_and_vector_check():
    reg = Registry()

    @declare(reg, name="two", version=1, formats=["elf"], raw_type=pa.int64(), stage="structure",
             dim_names=["x", "y"], vectorize=lambda raw: np.zeros(3))
    def two(parsed):
        """Two numbers."""

    assert reg["two"] is two and two.doc == "Two numbers."
    with pytest.raises(ValueError, match="vectorised to shape"):
        two.vector(0)


def test_the_real_registry():
    names = REGISTRY.names()
    assert names[:5] == ["byte_histogram", "byte_entropy_histogram", "strings", "hashes", "general"]
    ember_dims = {"byte_histogram": 256, "byte_entropy_histogram": 256, "strings": 104, "general": 10,
                  "pe_header": 62, "pe_section": 255, "pe_imports": 1280, "pe_exports": 128,
                  "pe_data_directories": 30}
    assert {n: REGISTRY[n].dims for n in ember_dims} == ember_dims  # EMBER v2: 2381 in all
    assert sum(ember_dims.values()) == 2381
    for fmt in ("pe", "elf", "macho"):
        assert any(g.formats == frozenset({fmt}) for g in REGISTRY), fmt


def test_feature_version_follows_declarations():
    from extract import version

    before = version.feature_version()
    version.feature_version.cache_clear()
    object.__setattr__(REGISTRY["strings"], "version", 2)
    try:
        assert version.feature_version() != before
    finally:
        object.__setattr__(REGISTRY["strings"], "version", 1)
        version.feature_version.cache_clear()
    assert version.feature_version() == before


def test_declaring_the_groups_imports_no_parser():
    """Every Spark executor imports the groups; LIEF (~0.6 CPU-s) belongs to the parser worker only."""
    import subprocess
    import sys

    code = "import sys, extract, extract.groups, extract.extractor; assert 'lief' not in sys.modules, 'lief'"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-500:]
