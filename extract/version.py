"""binfeat's version (one place: setup.py reads it) and the derived feature version."""

from __future__ import annotations

import hashlib
import json
from functools import lru_cache

__version__ = "0.1.0"

# Bump when anything outside the group declarations changes numbers (kernels, parse-step rules,
# hashing rule, vector conventions) or the raw columns' Arrow types change. The feature version also
# hashes every group's (name, version, dims) and every format's parser (library and version), so a new
# group, a bumped group, another LIEF release or another parser for a format gives a new feature version.
# 3: raw integer types Iceberg holds exactly (no uint*, int8/16: extract.raw_types); same values
#    and vectors, another output schema (rows of 2 and 3 do not concatenate).
FEATURE_SCHEMA = 3


@lru_cache(maxsize=1)
def parser_version() -> str:
    try:
        from importlib.metadata import version

        return version("lief")
    except Exception:
        import lief

        return str(lief.__version__).split("-")[0]


NO_PARSER = "none"  # the row of a file no parser read (unreadable, no structural format, byte groups only)


def parser_name(fmt: str | None = None) -> str:
    """What parsed a file of format ``fmt``: ``lief <version>`` or ``binfeat-macho <binfeat version>``
    (binfeat's own reader), ``none`` for a format nothing parses."""
    from extract.groups import REGISTRY  # noqa: F401  (the format modules register their parsers)
    from extract.parsed import LIEF, parser_libraries

    library = parser_libraries().get(fmt or "")
    if library is None:
        return NO_PARSER
    return f"lief {parser_version()}" if library == LIEF else f"{library} {__version__}"


def parser_names() -> dict[str, str]:
    """Every registered format's parser (see :func:`parser_name`)."""
    from extract.groups import REGISTRY  # noqa: F401
    from extract.parsed import parser_libraries

    return {fmt: parser_name(fmt) for fmt in sorted(parser_libraries())}


@lru_cache(maxsize=1)
def feature_version() -> str:
    from extract.groups import REGISTRY
    from extract.hashing import SEED

    decl = {
        "schema": FEATURE_SCHEMA,
        "groups": [[g.name, g.version, g.dims, sorted(g.formats)] for g in REGISTRY],
        "parser": parser_names(),
        "hash": ["mmh3-x86-32", SEED],
    }
    digest = hashlib.sha256(json.dumps(decl, sort_keys=True).encode()).hexdigest()[:10]
    return f"{FEATURE_SCHEMA}.{digest}"
