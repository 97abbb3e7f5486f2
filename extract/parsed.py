"""The one parse of a file that every structural group shares, and the per-format parser registry."""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


@functools.cache
def load_lief() -> Any:
    """LIEF, imported at the first parse with its stderr logging off.

    Not at import time: importing LIEF costs ~0.6 CPU-s, and the extractor's own process (every Spark
    executor's Python worker) only declares groups and vectorises; the parser worker parses.
    """
    import lief

    lief.logging.disable()
    return lief


def items(sequence: Any) -> list:
    """The items of a LIEF sequence (sections, imports, entries...) as a list, read by index.

    Why not iterate: each of LIEF's Python iterators ends by raising a C++ exception that the binding
    turns into StopIteration, ~1 us per loop; ``len`` and indexing raise nothing.
    """
    return [sequence[i] for i in range(len(sequence))]


class ParseError(Exception):
    """The format's parser could not make sense of the file; the message says why, in one line."""


@dataclass
class Parsed:
    """What a structural group receives.

    ``binary`` is the parser's object (a LIEF binary for PE and ELF; None for Mach-O, which binfeat
    reads itself), ``data``
    the file's bytes, ``extra`` anything the format's parse step worked out once for several groups
    (e.g. the fat architecture list, the chosen slice's offset).
    """

    format: str
    data: bytes | memoryview
    size: int
    binary: Any = None
    extra: dict[str, Any] = field(default_factory=dict)


ParseFn = Callable[[bytes | memoryview], Parsed]
_PARSERS: dict[str, ParseFn] = {}
_PARSER_LIBRARIES: dict[str, str] = {}
LIEF = "lief"  # a parse step on LIEF; any other library name is binfeat's own reader, versioned with binfeat


def register_parser(fmt: str, fn: ParseFn, *, library: str) -> ParseFn:
    """Declare the parse step of a format (raises ParseError when the file cannot be parsed) and what
    parses it: ``LIEF``, or the name of binfeat's own reader. Rows name it in their ``parser`` column."""
    if fmt in _PARSERS:
        raise ValueError(f"a parser for {fmt!r} is already registered")
    if not library or not library.replace("-", "").isalnum():
        raise ValueError(f"the parser of {fmt!r} needs a library name (letters, digits, '-'), not {library!r}")
    _PARSERS[fmt] = fn
    _PARSER_LIBRARIES[fmt] = library
    return fn


def parser_for(fmt: str) -> ParseFn | None:
    return _PARSERS.get(fmt)


def parser_libraries() -> dict[str, str]:
    """Format -> the library that parses it, for every registered format."""
    return dict(_PARSER_LIBRARIES)


# Each format module provides the general group's fields from its parse (EMBER's general group).
GeneralFn = Callable[[Parsed], dict[str, int]]
_GENERAL: dict[str, GeneralFn] = {}
GENERAL_FIELDS = (
    "vsize", "has_debug", "exports", "imports", "has_relocations", "has_resources",
    "has_signature", "has_tls", "symbols",
)


def register_general(fmt: str, fn: GeneralFn) -> GeneralFn:
    if fmt in _GENERAL:
        raise ValueError(f"general fields for {fmt!r} are already registered")
    _GENERAL[fmt] = fn
    return fn


def general_for(fmt: str) -> GeneralFn | None:
    return _GENERAL.get(fmt)
