"""The run-time loader of EMBER's code: its stand-ins reach only the loaded module, and a folder that
is not a checkout is refused with a message. A stand-in ``ember/features.py`` written here plays
EMBER (no EMBER code in the repository); the real one is compared in tests/extract/test_bytelevel.py
when ``BINFEAT_EMBER_SOURCE`` is set."""

from __future__ import annotations

import sys

import numpy as np
import pytest

from benchmarks import ember_checkout

FAKE_FEATURES = '''
import lief
import numpy as np
from sklearn.feature_extraction import FeatureHasher

LIEF_VERSION = lief.__version__.split(".")


class ByteHistogram:
    def raw_features(self, bytez, lief_binary):
        return [bytez.count(bytes([b])) for b in range(256)]


class ByteEntropyHistogram:
    def raw_features(self, bytez, lief_binary):
        return np.zeros(4, dtype=np.int).tolist()


class StringExtractor:
    def raw_features(self, bytez, lief_binary):
        return {"hasher": FeatureHasher.__name__}
'''


@pytest.fixture
def fake_checkout(tmp_path):
    (tmp_path / "ember").mkdir()
    (tmp_path / "ember" / "features.py").write_text(FAKE_FEATURES)
    (tmp_path / "ember" / "__init__.py").write_text("raise ImportError('the package is never imported')\n")
    return tmp_path


def test_stand_ins_reach_only_the_loaded_module(fake_checkout):
    had_lief = "lief" in sys.modules
    ember = ember_checkout.load(fake_checkout)
    assert ember.source == fake_checkout
    assert ember.byte_histogram(b"aab")[0x61:0x63] == [2, 1]
    assert ember.byte_entropy_histogram(b"") == [0, 0, 0, 0]  # np.int, gone from numpy, is int
    module = sys.modules.get(type(ember.histogram).__module__)
    assert module is None  # the loaded module is not registered under any name
    assert ("lief" in sys.modules) == had_lief and not hasattr(np, "int")
    if ember.string_features(b"")["hasher"] == "_NoFeatureHasher":
        with pytest.raises(RuntimeError, match="scikit-learn is not installed"):
            ember_checkout._NoFeatureHasher(16)


def test_lief_stand_in_has_only_the_version_ember_parses(fake_checkout):
    loaded_globals = ember_checkout.load(fake_checkout).histogram.raw_features.__globals__
    assert loaded_globals["lief"].__version__ == "0.9.0"
    assert loaded_globals["LIEF_VERSION"] == ["0", "9", "0"]
    with pytest.raises(AttributeError):
        loaded_globals["lief"].PE  # noqa: B018  (no LIEF API behind the stand-in)


def test_not_a_checkout(tmp_path, monkeypatch):
    with pytest.raises(ember_checkout.EmberSourceError, match="is not an EMBER checkout"):
        ember_checkout.load(tmp_path)
    (tmp_path / "ember").mkdir()
    (tmp_path / "ember" / "features.py").write_text("raise SystemError('broken')\n")
    with pytest.raises(ember_checkout.EmberSourceError, match="did not load: SystemError: broken"):
        ember_checkout.load(tmp_path)
    monkeypatch.delenv(ember_checkout.ENV, raising=False)
    assert ember_checkout.from_environment() is None
    monkeypatch.setenv(ember_checkout.ENV, str(tmp_path / "missing"))
    with pytest.raises(ember_checkout.EmberSourceError):
        ember_checkout.from_environment()


FAKE_EXTRACTOR = '''
import lief
import numpy as np
from sklearn.feature_extraction import FeatureHasher


class PEFeatureExtractor:
    def __init__(self, feature_version=2, print_feature_warning=True):
        self.version = feature_version

    def feature_vector(self, bytez):
        b = lief.PE.parse(list(bytez))
        try:
            entry = b.section_from_offset(b.entrypoint).name
        except lief.not_found:
            entry = next(s.name for s in b.sections
                         if lief.PE.SECTION_CHARACTERISTICS.MEM_EXECUTE in s.characteristics_lists)
        tokens = [str(b.header.machine).split(".")[-1], str(b.optional_header.magic).split(".")[-1]]
        return np.hstack([FeatureHasher(8, input_type="string").transform([entry]).toarray()[0],
                          FeatureHasher(8, input_type="string").transform([tokens]).toarray()[0],
                          [len(b.data_directories), len(b.exported_functions)]])
'''


def test_whole_extractor_through_the_lief09_shim(tmp_path):
    """A stand-in PEFeatureExtractor calling the LIEF 0.9 API EMBER calls: a bare-string sample is
    hashed character by character, enums print as LIEF 0.9 printed them, a VA that is no raw offset
    raises not_found, 15 directory slots, named exports."""
    from sklearn.feature_extraction import FeatureHasher

    from tests.fixtures import pe_builder

    (tmp_path / "ember").mkdir()
    (tmp_path / "ember" / "features.py").write_text(FAKE_EXTRACTOR)
    extractor = ember_checkout.load_extractor(tmp_path)
    v = extractor.feature_vector(pe_builder.pe32plus_minimal())
    assert v[:8].tolist() == FeatureHasher(8, input_type="string").transform([list(".text")]).toarray()[0].tolist()
    assert v[8:16].tolist() == FeatureHasher(8, input_type="string").transform([["AMD64", "PE32_PLUS"]]).toarray()[0]\
        .tolist()
    assert v[16:].tolist() == [15, 2]
    arm = pe_builder.pe_arm64_minimal()
    tokens = extractor.feature_vector(arm)[8:16].tolist()
    assert tokens == FeatureHasher(8, input_type="string").transform([["???", "PE32_PLUS"]]).toarray()[0].tolist()
    module = extractor.feature_vector.__globals__["lief"]
    with pytest.raises(module.bad_format):
        module.PE.parse(list(b"MZ"))


def test_embers_own_vectors_against_ember2():
    """EMBER's whole extractor (from BINFEAT_EMBER_SOURCE) on LIEF 1.0 against ember2, on the sample
    corpus's PE files: equal everywhere but where docs/ember2.md says why."""
    import os

    from benchmarks import ember_vectors
    from tests.conftest import corpus_dir

    source, corpus = os.environ.get(ember_checkout.ENV, "").strip(), corpus_dir()
    if not source or corpus is None:
        pytest.skip(f"set {ember_checkout.ENV} to a checkout of elastic/ember (and build the sample corpus)")
    report = ember_vectors.compare(ember_vectors.pe_paths(corpus), source)
    print(report["equal_dims"])
    # LIEF 0.9's binding raised on a section name that is not UTF-8: EMBER gives no vector there
    assert all(v.startswith("UnicodeDecodeError") for v in report["ember_failed"].values())
    for blocks in report["differing"].values():
        for entry in blocks:
            name, count = entry.split(":")
            # strings: EMBER's entropy in float64 under numpy 2 (1 dim); general: has_relocations and
            # has_resources from the directory entries here, from LIEF's parse of the tables there
            assert (name, int(count) <= 2) in (("strings", True), ("general", True)), entry
    equal = {k: tuple(map(int, v.split("/"))) for k, v in report["equal_dims"].items()}
    assert all(e == t for k, (e, t) in equal.items() if k not in ("strings", "general")), equal


def test_whole_extractor_stage_times_both_on_the_same_files(tmp_path):
    """The ``ember_whole`` stage with the stand-in extractor: every file through both sides, one row
    each from binfeat (in both schemes), a damaged file counted as EMBER's failure, a ratio."""
    from benchmarks.bench_ember_whole import bench_ember_whole, render
    from benchmarks.input_files import FileEntry
    from tests.fixtures import pe_builder

    (tmp_path / "ember").mkdir()
    (tmp_path / "ember" / "features.py").write_text(FAKE_EXTRACTOR)
    files = {"a.exe": pe_builder.pe32plus_minimal(), "b.exe": pe_builder.pe_arm64_minimal(), "bad.exe": b"MZ" * 40}
    entries = []
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
        entries.append(FileEntry(str(tmp_path / name), len(data), "pe"))
    steps: list[str] = []
    got = bench_ember_whole(entries, 2, steps.append, str(tmp_path))
    assert got["_inputs"] == {"files": 3, "bytes": sum(len(d) for d in files.values())}
    assert got["ember"]["runs"] == 2 and got["ember"]["failed"] == 1
    for scheme in ("binfeat", "ember2"):
        assert sum(got[f"binfeat.{scheme}"]["statuses"].values()) == 3
        assert got[f"ratio_cpu_{scheme}"] is not None  # three tiny files: CPU ticks may round to 0
    assert steps == [f"EMBER whole extractor: {v} (run {r}/2)" for r in (1, 2)
                     for v in ("ember", "binfeat.binfeat", "binfeat.ember2")]
    assert "binfeat over EMBER's whole extractor" in "\n".join(render(got, {}))
