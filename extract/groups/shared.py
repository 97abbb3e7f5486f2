"""Helpers the ELF and Mach-O groups share: one-hot encoding, the per-parse cache, string-table names."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any, TypeVar

from extract.parsed import Parsed
from extract.text import clean

T = TypeVar("T")
NAME_CAP = 256  # characters kept of a symbol or section name


def onehot(value: Any, choices: tuple, other: bool = True) -> list[float]:
    """One-hot over ``choices`` plus a trailing "other" slot (unless ``other`` is False)."""
    out = [0.0] * (len(choices) + (1 if other else 0))
    try:
        out[choices.index(value)] = 1.0
    except ValueError:
        if other:
            out[-1] = 1.0
    return out


def onehot_names(prefix: str, choices: tuple, fmt: str = "{:#x}", other: bool = True) -> list[str]:
    """Dimension names matching :func:`onehot`: ``prefix=choice`` (numbers formatted by ``fmt``)."""
    names = [f"{prefix}={fmt.format(c) if not isinstance(c, str) else c}" for c in choices]
    return [*names, f"{prefix}=other"] if other else names


def as_number(x: Any) -> float:
    """A raw number as a float for the vector (None → NaN, a missing value)."""
    return float("nan") if x is None else float(x)


def cached(parsed: Parsed, key: str, build: Callable[[Parsed], T]) -> T:
    """``build(parsed)`` once per parse, kept in ``parsed.extra[key]`` for every group that needs it.

    LIEF warns when it meets an enum value it does not know: silenced (the raw number is kept).
    """
    if key not in parsed.extra:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            parsed.extra[key] = build(parsed)
    return parsed.extra[key]


def _name_at(strtab: bytes, o: int) -> str:
    if o >= len(strtab):
        return ""
    e = strtab.find(b"\0", o, o + 4 * NAME_CAP)
    raw = strtab[o:e] if e >= 0 else strtab[o:o + 4 * NAME_CAP]
    if raw.isascii():
        return raw.decode("ascii")[:NAME_CAP]
    return clean(raw, NAME_CAP)


def symbol_names(strtab: bytes, offsets: list[int]) -> list[str]:
    """The NUL-terminated names at ``offsets`` in a string table (cut at 256 characters; "" when an
    offset lies past the table).

    An all-ASCII table is decoded once and each name sliced from the text (half the cost of
    decoding each name's bytes); any other table name by name.
    """
    if not offsets:
        return []
    if not strtab.isascii():
        return [_name_at(strtab, o) for o in offsets]
    text = strtab.decode("ascii")
    find = text.find
    cut = 4 * NAME_CAP
    out = []
    for o in offsets:
        e = find("\0", o, o + cut)
        out.append((text[o:e] if e >= 0 else text[o:o + cut])[:NAME_CAP])
    return out
