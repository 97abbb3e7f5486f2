"""Feature groups as small declared units, validated when declared.

A group says what it is (name, version, formats, dims, raw Arrow type) and how to compute its raw
value and turn that raw value into a float32 vector. The raw type must be one Apache Iceberg holds
exactly (:mod:`extract.raw_types`: no unsigned or 8/16-bit integers), so that extract's output and
the corpus store have one schema. The extractor parses a file once and hands the
parse to every group; the vector layout and the feature version are derived from the declarations.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa

from extract.raw_types import inexact

FORMATS = frozenset({"pe", "elf", "macho", "unknown"})
ALL_FORMATS = FORMATS
STAGES = ("bytes", "structure")
# snake_case without a double or trailing underscore: "__" separates a group from its dimension in
# the vector-wide names (``pe_header__machine_hash_3``), so a name splits back at its first "__"
_NAME = re.compile(r"^[a-z][a-z0-9]*(_[a-z0-9]+)*$")
SEPARATOR = "__"
_SAFE_KEPT = re.compile(r"[A-Za-z0-9_]")
_SAFE_SPACE = "=[].,/-: "  # separators in labels: become "_"
_SPACE_TO_UNDERSCORE = str.maketrans(dict.fromkeys(_SAFE_SPACE, "_"))
_ALL_KEPT = re.compile(r"[A-Za-z0-9_]*\Z")
_UNDERSCORES = re.compile("_+")
# Names the output contract reserves for identity and provenance columns.
RESERVED = frozenset(
    {"sha256", "md5", "size", "path", "format", "status", "error", "feature_version",
     "binfeat_version", "parser", "vector", "label"}
)


class DeclarationError(ValueError):
    """A feature group declaration is inconsistent; raised when it is declared, not when used."""


def ml_safe(label: str, group: str = "") -> str:
    """A dimension label as a name machine-learning tools accept (``[A-Za-z0-9_]+``).

    Why: LightGBM refuses JSON's special characters in feature names, and other tools choke on
    brackets, dots or ``=``. Rule: a leading ``group.`` or ``group`` before ``[`` is dropped (the
    vector-wide name carries the group); ASCII letters, digits and ``_`` stay; the separators
    ``= [ ] . , / - :`` and space become ``_``; any other character becomes ``_x<hex>_``; runs of
    ``_`` shrink to one and none leads or trails. A group's names are checked unique when it is
    declared, so the mapping back to a label goes through the group's table.
    """
    text = label
    if group and text.startswith(group) and text[len(group):len(group) + 1] in (".", "["):
        text = text[len(group):]
    text = text.translate(_SPACE_TO_UNDERSCORE)
    if not _ALL_KEPT.match(text):  # rare: characters to spell out one by one
        text = "".join(ch if _SAFE_KEPT.match(ch) else f"_x{ord(ch):02x}_" for ch in text)
    return _UNDERSCORES.sub("_", text).strip("_")


@dataclass(frozen=True)
class FeatureGroup:
    """One declared feature group.

    stage "bytes": ``compute(ctx)`` receives a :class:`extract.context.ByteContext` (the byte-level
    kernel results) and runs in the extractor's own process. stage "structure": ``compute(parsed)``
    receives a :class:`extract.parsed.Parsed` and runs inside the isolated parser worker, so it may
    touch the parser's objects; it must return plain Python values matching ``raw_type``.
    ``vectorize(raw)`` maps the stored raw value to ``dims`` float32 numbers and must work from the
    raw value alone (re-vectorising a stored corpus never reads the files again).

    ``fill(raws, out)`` is the same rule over a window of raw values at once: it writes row i of
    ``out`` (len(raws) x dims float32, zeros beforehand) from ``raws[i]`` alone, or raises. A group
    declares one of the two; the other is derived from it (per-row calls, or a window of one row).
    Why: a window costs a few numpy operations instead of several per row.
    """

    name: str
    version: int
    formats: frozenset[str]
    dims: int
    raw_type: pa.DataType
    stage: str
    compute: Callable[[Any], Any]
    vectorize: Callable[[Any], np.ndarray] | None
    dim_names: tuple[str, ...]
    doc: str = ""
    extra: dict[str, Any] = field(default_factory=dict, compare=False)
    fill: Callable[[Sequence[Any], np.ndarray], None] | None = field(default=None, compare=False)
    ml_names: tuple[str, ...] = field(default=(), init=False)

    def __post_init__(self) -> None:
        problems = []
        if not _NAME.match(self.name):
            problems.append(f"name {self.name!r} must be snake_case ([a-z][a-z0-9_]*, no '__', no trailing '_')")
        if self.name in RESERVED:
            problems.append(f"name {self.name!r} is reserved for an identity column")
        if not isinstance(self.version, int) or self.version < 1:
            problems.append(f"version must be an int >= 1, got {self.version!r}")
        if not self.formats or not set(self.formats) <= FORMATS:
            problems.append(f"formats {sorted(self.formats)} must be a non-empty subset of {sorted(FORMATS)}")
        if not isinstance(self.dims, int) or self.dims < 0:
            problems.append(f"dims must be an int >= 0, got {self.dims!r}")
        if not isinstance(self.raw_type, pa.DataType):
            problems.append("raw_type must be a pyarrow DataType")
        else:  # the corpus store (Iceberg) must hold the raw value as declared: one schema for both
            problems += [f"raw_type {p}" for p in inexact(self.raw_type)]
        if self.stage not in STAGES:
            problems.append(f"stage must be one of {STAGES}, got {self.stage!r}")
        if not callable(self.compute) or not (callable(self.vectorize) or callable(self.fill)):
            problems.append("compute and vectorize (or fill) must be callables")
        if len(self.dim_names) != self.dims:
            problems.append(f"{len(self.dim_names)} dim_names for {self.dims} dims")
        elif len(set(self.dim_names)) != len(self.dim_names):
            problems.append("dim_names must be unique")
        else:
            safe = [ml_safe(d, self.name) for d in self.dim_names]
            seen = Counter(safe)
            clash = sorted(n for n, k in seen.items() if k > 1 or not n)
            if clash:
                problems.append(f"dim_names must stay unique and non-empty as ML-safe names; clash: {clash[:3]}")
            object.__setattr__(self, "ml_names", tuple(safe))
        if problems:
            raise DeclarationError(f"feature group {self.name!r}: " + "; ".join(problems))
        object.__setattr__(self, "formats", frozenset(self.formats))
        object.__setattr__(self, "dim_names", tuple(self.dim_names))
        if self.fill is None:
            object.__setattr__(self, "fill", _rows_of(self.vectorize))
        elif self.vectorize is None:
            object.__setattr__(self, "vectorize", _row_of(self.fill, self.dims))

    def applies_to(self, fmt: str) -> bool:
        return fmt in self.formats

    def vector(self, raw: Any) -> np.ndarray:
        """Vectorise a raw value and check the declared length (a mismatch is a bug, said loudly)."""
        out = np.asarray(self.vectorize(raw), dtype=np.float32)
        if out.shape != (self.dims,):
            raise ValueError(f"group {self.name!r} vectorised to shape {out.shape}, declared ({self.dims},)")
        return out


def _rows_of(vectorize: Callable[[Any], np.ndarray]) -> Callable[[Sequence[Any], np.ndarray], None]:
    """A window fill that vectorises row by row (for a group that declares ``vectorize``)."""

    def fill(raws: Sequence[Any], out: np.ndarray) -> None:
        for i, raw in enumerate(raws):
            v = np.asarray(vectorize(raw), dtype=np.float32)
            if v.shape != out.shape[1:]:
                raise ValueError(f"vectorised to shape {v.shape}, declared ({out.shape[1]},)")
            out[i] = v

    return fill


def _row_of(fill: Callable[[Sequence[Any], np.ndarray], None], dims: int) -> Callable[[Any], np.ndarray]:
    """One row's vector through a window fill (for a group that declares ``fill``)."""

    def vectorize(raw: Any) -> np.ndarray:
        out = np.zeros((1, dims), dtype=np.float32)
        fill([raw], out)
        return out[0]

    return vectorize


class Registry:
    """An ordered set of feature groups; the order fixes binfeat's vector layout.

    Groups are kept in declaration order until :meth:`arrange` puts them in a declared order (one
    list, ``extract.groups.LAYOUT``), so the layout never depends on the order modules are
    imported in. A group declared after that (a plugin's) goes last.
    """

    def __init__(self) -> None:
        self._groups: dict[str, FeatureGroup] = {}

    def register(self, group: FeatureGroup) -> FeatureGroup:
        if group.name in self._groups:
            raise DeclarationError(f"feature group {group.name!r} is declared twice")
        self._groups[group.name] = group
        return group

    def arrange(self, order: Sequence[str]) -> None:
        """Put the groups in ``order``, which must name every declared group exactly once."""
        missing = sorted(set(self._groups) - set(order))
        unknown = sorted(set(order) - set(self._groups))
        if missing or unknown or len(set(order)) != len(order):
            raise DeclarationError(
                f"the layout must list every declared group once: missing {missing}, undeclared {unknown}"
            )
        self._groups = {name: self._groups[name] for name in order}

    def __iter__(self):
        return iter(self._groups.values())

    def __len__(self) -> int:
        return len(self._groups)

    def __getitem__(self, name: str) -> FeatureGroup:
        return self._groups[name]

    def names(self) -> list[str]:
        return list(self._groups)

    def by_stage(self, stage: str) -> list[FeatureGroup]:
        return [g for g in self._groups.values() if g.stage == stage]


def declare(
    registry: Registry,
    *,
    name: str,
    version: int,
    formats: Sequence[str] | frozenset[str],
    raw_type: pa.DataType,
    stage: str,
    dim_names: Sequence[str],
    vectorize: Callable[[Any], np.ndarray] | None = None,
    fill: Callable[[Sequence[Any], np.ndarray], None] | None = None,
    doc: str = "",
) -> Callable[[Callable[[Any], Any]], FeatureGroup]:
    """Decorator form: ``@declare(REGISTRY, name=..., ...)`` over the compute function; the vector
    rule as ``vectorize`` (one raw value) or ``fill`` (a window of them), exactly one of the two."""
    if (vectorize is None) == (fill is None):
        raise DeclarationError(f"feature group {name!r}: declare exactly one of vectorize and fill")

    def wrap(compute: Callable[[Any], Any]) -> FeatureGroup:
        group = FeatureGroup(
            name=name, version=version, formats=frozenset(formats), dims=len(dim_names),
            raw_type=raw_type, stage=stage, compute=compute, vectorize=vectorize, fill=fill,
            dim_names=tuple(dim_names), doc=doc or (compute.__doc__ or "").strip().split("\n")[0],
        )
        return registry.register(group)

    return wrap


# The one registry of binfeat's groups, filled by the modules of extract.groups in a fixed order.
REGISTRY = Registry()
