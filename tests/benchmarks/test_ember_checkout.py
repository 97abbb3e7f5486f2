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
