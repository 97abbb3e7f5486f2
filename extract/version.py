"""binfeat's version (one place: setup.py reads it) and the derived feature version."""

from __future__ import annotations

import hashlib
import json
from functools import lru_cache

__version__ = "0.1.0"

# Bump when anything outside the group declarations changes numbers (kernels, parse-step rules,
# hashing rule, vector conventions) or the raw columns' Arrow types change. The feature version also
# hashes every group's (name, version, dims) and the parser's version, so a new group, a bumped group
# or another LIEF release gives a new feature version.
# 3: raw integer types Iceberg holds exactly (no uint*, int8/16: extract.raw_types); same values
#    and vectors, another output schema (rows of 2 and 3 do not concatenate).
FEATURE_SCHEMA = 3


def parser_version() -> str:
    try:
        from importlib.metadata import version

        return version("lief")
    except Exception:
        import lief

        return str(lief.__version__).split("-")[0]


def parser_name() -> str:
    return f"lief {parser_version()}"


@lru_cache(maxsize=1)
def feature_version() -> str:
    from extract.groups import REGISTRY
    from extract.hashing import SEED

    decl = {
        "schema": FEATURE_SCHEMA,
        "groups": [[g.name, g.version, g.dims, sorted(g.formats)] for g in REGISTRY],
        "parser": parser_name(),
        "hash": ["mmh3-x86-32", SEED],
    }
    digest = hashlib.sha256(json.dumps(decl, sort_keys=True).encode()).hexdigest()[:10]
    return f"{FEATURE_SCHEMA}.{digest}"
