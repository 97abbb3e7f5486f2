"""EMBER v2's own byte-level code, loaded at run time from a checkout the user points to.

EMBER (github.com/elastic/ember, AGPL-3.0) is never copied into binfeat: the benchmark suite
(``binfeat bench --ember-source DIR``) and an optional test (``BINFEAT_EMBER_SOURCE=DIR``) load
``DIR/ember/features.py`` with importlib and call its ``ByteHistogram``, ``ByteEntropyHistogram`` and
``StringExtractor``. Only that file is loaded (``ember/__init__.py`` imports lightgbm, pandas, tqdm).

The file was written for LIEF 0.9, scikit-learn and numpy 1.x. Its byte-level classes need none of
LIEF and scikit-learn, but the module imports both at import time and reads ``lief.__version__``,
and ``ByteEntropyHistogram`` uses ``np.int`` (removed in numpy 1.24). So the module is executed with
its own ``__builtins__`` whose ``__import__`` hands it, and nothing else in the process:
- ``lief``: a stand-in module with only ``__version__ = "0.9.0"`` (the version EMBER v2 pins), so
  any LIEF call would fail loudly instead of running LIEF 1.0 through the 0.9 API;
- ``sklearn.feature_extraction`` when scikit-learn is not installed: a stand-in whose
  ``FeatureHasher`` raises when constructed (only the structural classes' vectors use it);
- ``numpy``: numpy itself behind a proxy module that adds ``int`` (numpy's old alias of Python's
  ``int``). numpy itself is not modified.

:func:`load_extractor` runs EMBER's whole ``PEFeatureExtractor(feature_version=2)`` instead: its
module gets, in place of the stand-in, binfeat's LIEF 0.9 API over LIEF 1.0
(:mod:`benchmarks.lief09_shim`), and scikit-learn's real ``FeatureHasher`` behind one adapter: a
sample that is a bare string is handed over as the list of its characters. EMBER passes the entry
section's name so (``transform([raw_obj['entry']])``); the scikit-learn of EMBER's day iterated the
string, today's raises "Samples can not be a single string".
"""

from __future__ import annotations

import builtins
import importlib.util
import os
import types
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

ENV = "BINFEAT_EMBER_SOURCE"
FEATURES = Path("ember") / "features.py"
EMBER_LIEF_VERSION = "0.9.0"


class EmberSourceError(ValueError):
    """The folder given as an EMBER checkout does not hold a loadable ``ember/features.py``."""


def _stand_in_lief() -> types.ModuleType:
    lief = types.ModuleType("lief", "binfeat stand-in: EMBER's byte-level classes do not use LIEF")
    lief.__version__ = EMBER_LIEF_VERSION  # type: ignore[attr-defined]
    return lief


class _NoFeatureHasher:
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        raise RuntimeError("scikit-learn is not installed: EMBER's hashed (structural) vectors are unavailable")


def _stand_in_sklearn_fe() -> types.ModuleType:
    fe = types.ModuleType("sklearn.feature_extraction", "binfeat stand-in: scikit-learn is not installed")
    fe.FeatureHasher = _NoFeatureHasher  # type: ignore[attr-defined]
    return fe


class _NumpyWithInt(types.ModuleType):
    """numpy, plus the ``int`` alias numpy 1.24 removed (EMBER allocates its entropy grid with it)."""

    int = int

    def __getattr__(self, name: str) -> Any:
        return getattr(np, name)


class _CharacterSamplesHasher:
    """scikit-learn's FeatureHasher, handing a bare-string sample over as its characters."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        from sklearn.feature_extraction import FeatureHasher

        self._hasher = FeatureHasher(*args, **kwargs)

    def transform(self, raw_x: Any) -> Any:
        return self._hasher.transform([list(x) if isinstance(x, str) else x for x in raw_x])


def _importer(full: bool = False) -> Any:
    """An ``__import__`` for EMBER's module: the stand-ins above (``full``: the LIEF 0.9 API shim
    and the adapted FeatureHasher), everything else as usual."""
    real_import = builtins.__import__
    sklearn_missing = importlib.util.find_spec("sklearn") is None
    if full:
        from benchmarks import lief09_shim

        lief = lief09_shim.module()
        fe = types.ModuleType("sklearn.feature_extraction", "FeatureHasher with EMBER-era string samples")
        fe.FeatureHasher = _CharacterSamplesHasher  # type: ignore[attr-defined]
    else:
        lief = _stand_in_lief()
        fe = _stand_in_sklearn_fe() if sklearn_missing else None
    numpy = _NumpyWithInt("numpy")

    def ember_import(name: str, globals: Any = None, locals: Any = None, fromlist: Any = (), level: int = 0) -> Any:
        if level == 0 and name == "lief":
            return lief
        if level == 0 and name == "numpy" and not fromlist:
            return numpy
        if level == 0 and name == "sklearn.feature_extraction" and fe is not None:
            return fe
        return real_import(name, globals, locals, fromlist, level)

    return ember_import


@dataclass(frozen=True)
class Ember:
    """EMBER's byte-level feature objects from one checkout."""

    source: Path
    histogram: Any
    byte_entropy: Any
    strings: Any

    def byte_histogram(self, data: bytes) -> list[int]:
        return self.histogram.raw_features(data, None)

    def byte_entropy_histogram(self, data: bytes) -> list[int]:
        return self.byte_entropy.raw_features(data, None)

    def string_features(self, data: bytes) -> dict:
        return self.strings.raw_features(data, None)


def _module(source: str | os.PathLike[str], full: bool) -> tuple[Path, Any]:
    root = Path(source).expanduser()
    path = root / FEATURES
    if not path.is_file():
        raise EmberSourceError(f"{root} is not an EMBER checkout: {FEATURES} is missing there")
    spec = importlib.util.spec_from_file_location("binfeat_ember_checkout_features", path)
    if spec is None or spec.loader is None:
        raise EmberSourceError(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    module.__builtins__ = {**vars(builtins), "__import__": _importer(full)}  # type: ignore[attr-defined]
    try:
        spec.loader.exec_module(module)
    except Exception as exc:
        raise EmberSourceError(f"{path} did not load: {type(exc).__name__}: {exc}") from exc
    return root, module


def load(source: str | os.PathLike[str]) -> Ember:
    """Load ``SOURCE/ember/features.py`` (see the module docstring); EmberSourceError when it cannot."""
    root, module = _module(source, full=False)
    return Ember(root, module.ByteHistogram(), module.ByteEntropyHistogram(), module.StringExtractor())


def load_extractor(source: str | os.PathLike[str]) -> Any:
    """EMBER's ``PEFeatureExtractor(feature_version=2)`` from ``SOURCE``, running on LIEF 1.0 through
    :mod:`benchmarks.lief09_shim` (needs scikit-learn); ``.feature_vector(bytes)`` gives its 2,381
    floats, ``.raw_features(bytes)`` its raw dict."""
    if importlib.util.find_spec("sklearn") is None:
        raise EmberSourceError("EMBER's whole extractor needs scikit-learn (pip install scikit-learn)")
    _, module = _module(source, full=True)
    try:
        return module.PEFeatureExtractor(feature_version=2, print_feature_warning=False)
    except Exception as exc:
        raise EmberSourceError(f"EMBER's PEFeatureExtractor did not start: {type(exc).__name__}: {exc}") from exc


def from_environment() -> Ember | None:
    """The checkout named by ``BINFEAT_EMBER_SOURCE``, or None when it is unset or empty."""
    source = os.environ.get(ENV, "").strip()
    return load(source) if source else None
