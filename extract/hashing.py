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


def _key(token: str | bytes) -> str | bytes:
    """What mmh3 is given: bytes and ASCII str as they are (mmh3 hashes a str as its UTF-8), any
    other str as its UTF-8 with surrogates passed through (mmh3 crashes the process on a lone
    surrogate rather than raising)."""
    return token_bytes(token) if type(token) is str and not token.isascii() else token


def _hashes(tokens: Iterable[str | bytes]) -> np.ndarray:
    h = mmh3.hash
    return np.array([h(_key(t), SEED, signed=False) for t in tokens], dtype=np.uint64)


_FEW = 48  # up to this many tokens, a plain loop beats numpy's fixed cost per call


def _sums(tokens: list, weights: list | None, dims: int) -> dict[int, float]:
    """Per-bin float64 sums of sign * weight in token order: what ``np.bincount`` gives in :func:`_bin`."""
    h = mmh3.hash
    acc: dict[int, float] = {}
    for i, t in enumerate(tokens):
        x = h(_key(t), SEED, signed=False)
        w = 1.0 if weights is None else weights[i]
        b = x % dims
        acc[b] = acc.get(b, 0.0) + (-w if x & 0x80000000 else w)
    return acc


def add_hashed(out: np.ndarray, offset: int, tokens: list, dims: int, weights: list | None = None) -> None:
    """Write the bins of ``tokens`` (signed counts, or signed sums of ``weights``) into
    ``out[offset:offset + dims]`` (zeros beforehand). Groups write their hashed parts straight into
    their vector: separate arrays and their joining were most of a row's vectorising time."""
    if dims == 0 or not tokens:
        return
    if len(tokens) > _FEW:
        w = np.ones(len(tokens)) if weights is None else np.array(weights, dtype=np.float64)
        out[offset:offset + dims] = _bin(_hashes(tokens), w, dims)
        return
    for b, v in _sums(tokens, weights, dims).items():
        out[offset + b] = v


def _bin(hashes: np.ndarray, weights: np.ndarray, dims: int) -> np.ndarray:
    if hashes.size == 0 or dims == 0:
        return np.zeros(dims, dtype=np.float32)
    signs = np.where(hashes & 0x80000000, -1.0, 1.0)
    return np.bincount((hashes % dims).astype(np.intp), weights=signs * weights, minlength=dims).astype(np.float32)


def hash_tokens(tokens: Iterable[str | bytes], dims: int) -> np.ndarray:
    """Signed counts of tokens in ``dims`` bins."""
    out = np.zeros(dims, dtype=np.float32)
    add_hashed(out, 0, list(tokens), dims)
    return out


def hash_weighted(pairs: Iterable[tuple[str | bytes, float]], dims: int) -> np.ndarray:
    """Signed sums of weights: each (token, weight) adds sign*weight to the token's bin."""
    pairs = list(pairs)
    out = np.zeros(dims, dtype=np.float32)
    add_hashed(out, 0, [t for t, _ in pairs], dims, [float(w) for _, w in pairs])
    return out


def hashed_dim_names(prefix: str, dims: int) -> list[str]:
    return [f"{prefix}[{i}]" for i in range(dims)]


# ---------------------------------------------------------------------------------------------
# scikit-learn's FeatureHasher rule (EMBER v2's vectors), for the ``ember2`` scheme.

def feature_hasher_bin(token: str | bytes, dims: int) -> tuple[int, float]:
    """(bin, sign) of one token by scikit-learn's ``FeatureHasher`` rule: h = MurmurHash3 x86 32-bit
    of the token's UTF-8 bytes, seed 0, read as a signed int32; bin = |h| mod dims (|-2**31| is
    2**31); sign +1 when h >= 0, else -1 (``alternate_sign=True``, the default)."""
    h = mmh3.hash(_key(token), SEED, signed=True)
    return abs(h) % dims, (1.0 if h >= 0 else -1.0)


def add_feature_hashed(out: np.ndarray, offset: int, tokens: list, dims: int, weights: list | None = None) -> None:
    """Write ``FeatureHasher(dims).transform([tokens])`` (``input_type="string"``), or with ``weights``
    its ``input_type="pair"`` form over ``zip(tokens, weights)``, into ``out[offset:offset + dims]``
    (zeros beforehand). As scikit-learn: a zero weight is skipped, each bin is the float64 sum of
    sign x weight in token order, rounded once to ``out``'s float32."""
    if dims == 0 or not tokens:
        return
    acc: dict[int, float] = {}
    h = mmh3.hash
    for i, t in enumerate(tokens):
        w = 1.0 if weights is None else float(weights[i])
        if w == 0.0:
            continue
        x = h(_key(t), SEED, signed=True)
        b = abs(x) % dims
        acc[b] = acc.get(b, 0.0) + (w if x >= 0 else -w)
    for b, v in acc.items():
        out[offset + b] = v
