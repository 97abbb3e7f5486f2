"""Vector schemes: declared, versioned layouts that turn stored raw features into float32 vectors.

- ``binfeat`` (the default): every feature group's own vector, in ``extract.groups.LAYOUT`` order
  (or the selected groups only);
- ``ember2``: EMBER v2's 2,381-float32 ``feature_vector``, for models trained on EMBER's features.

:func:`get` returns a scheme by name for a group selection; the vector, its names and its Parquet
metadata all come from the scheme.
"""

from __future__ import annotations

from collections.abc import Sequence

from extract.schemes.base import Block, RowBatch, Scheme, read_metadata

SCHEMES = ("binfeat", "ember2")
DEFAULT = "binfeat"

__all__ = ["DEFAULT", "SCHEMES", "Block", "RowBatch", "Scheme", "get", "read_metadata", "select_groups"]


class SchemeError(ValueError):
    """An unknown scheme, an unknown group, or a selection the scheme cannot be computed from."""


def select_groups(groups: Sequence[str] | None) -> list:
    """The registry's groups named in ``groups`` (None: all), in layout order; SchemeError naming any
    unknown one."""
    from extract.groups import REGISTRY

    if groups is None:
        return list(REGISTRY)
    unknown = sorted(set(groups) - set(REGISTRY.names()))
    if unknown:
        raise SchemeError(f"unknown feature group(s) {', '.join(unknown)}: choose from {', '.join(REGISTRY.names())}")
    wanted = set(groups)
    return [g for g in REGISTRY if g.name in wanted]


_BUILT: dict[tuple, Scheme] = {}  # (name, selection, groups declared) -> the scheme


def get(name: str = DEFAULT, groups: Sequence[str] | None = None) -> Scheme:
    """The scheme ``name`` over the groups ``groups`` (None: all groups).

    ``binfeat`` vectorises exactly the selected groups; ``ember2`` needs its nine groups among them
    (SchemeError says which are missing). Built once per process for a name, a selection and the
    groups declared so far (a scheme is immutable): building one names and checks every dimension
    (~0.1 s for binfeat's 6,163), and every ``ExtractOptions`` asks for its scheme when made, e.g.
    the default options of each ``extract_batch`` call in a Spark task.
    """
    from extract.groups import REGISTRY

    key = (name, None if groups is None else tuple(groups), len(REGISTRY))
    scheme = _BUILT.get(key)
    if scheme is None:
        scheme = _BUILT[key] = _build(name, groups)
    return scheme


def _build(name: str, groups: Sequence[str] | None) -> Scheme:
    selected = select_groups(groups)
    if name == "binfeat":
        from extract.schemes.binfeat import binfeat_scheme

        return binfeat_scheme(selected)
    if name == "ember2":
        from extract.schemes.ember2 import GROUPS, ember2_scheme

        missing = [g for g in GROUPS if g not in {s.name for s in selected}]
        if missing:
            raise SchemeError(f"scheme ember2 needs the group(s) {', '.join(missing)}: add them to the selection")
        return _with_groups(ember2_scheme(), [g.name for g in selected])
    raise SchemeError(f"unknown vector scheme {name!r}: choose from {', '.join(SCHEMES)}")


def _with_groups(scheme: Scheme, groups: list[str]) -> Scheme:
    from dataclasses import replace

    return replace(scheme, groups=tuple(groups))
