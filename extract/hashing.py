"""Pinned feature hashing for variable-length things (names, imports, symbols).

MurmurHash3 x86 32-bit (``mmh3.hash``, unsigned, seed 0) of the token's UTF-8 bytes: bin = h mod dims,
sign = +1 when bit 31 of h is 0, else -1 (so collisions tend to cancel, as in scikit-learn's
FeatureHasher, whose exact bins we do not promise). The hash and this rule are part of
feature_version: changing either changes numbers.
"""

from __future__ import annotations

from collections.abc import Iterable

import mmh3
import numpy as np

SEED = 0


def token_bytes(token: str | bytes) -> bytes:
    if isinstance(token, bytes):
        return token
    return token.encode("utf-8", "surrogatepass")


def bin_and_sign(token: str | bytes, dims: int) -> tuple[int, float]:
    h = mmh3.hash(token_bytes(token), SEED, signed=False)
    return h % dims, (-1.0 if h & 0x80000000 else 1.0)


def hash_tokens(tokens: Iterable[str | bytes], dims: int) -> np.ndarray:
    """Signed counts of tokens in ``dims`` bins."""
    out = np.zeros(dims, dtype=np.float32)
    for t in tokens:
        i, s = bin_and_sign(t, dims)
        out[i] += s
    return out


def hash_weighted(pairs: Iterable[tuple[str | bytes, float]], dims: int) -> np.ndarray:
    """Signed sums of weights: each (token, weight) adds sign*weight to the token's bin."""
    out = np.zeros(dims, dtype=np.float32)
    for t, w in pairs:
        i, s = bin_and_sign(t, dims)
        out[i] += s * float(w)
    return out


def hashed_dim_names(prefix: str, dims: int) -> list[str]:
    return [f"{prefix}[{i}]" for i in range(dims)]
