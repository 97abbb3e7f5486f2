"""Pinned feature hashing for variable-length things (names, imports, symbols).

MurmurHash3 x86 32-bit (``mmh3.hash``, unsigned, seed 0) of the token's UTF-8 bytes: bin = h mod dims,
sign = +1 when bit 31 of h is 0, else -1 (so collisions tend to cancel, as in scikit-learn's
FeatureHasher, whose exact bins we do not promise). The hash and this rule are part of
feature_version: changing either changes numbers.

A corpus hashes the same tokens (DLL and function names, section names) again and again, so each
token's hash is remembered across rows and files in one bounded table per process
(:data:`CACHE_ENTRIES` tokens of at most :data:`CACHE_TOKEN_CHARS` characters; the table empties
when full). :class:`TokenBins` accumulates a whole window's hashed parts and writes them into the
window's matrix at once.
"""

from __future__ import annotations

from collections.abc import Iterable

import mmh3
import numpy as np

SEED = 0
CACHE_ENTRIES = 1 << 16  # tokens whose hash is remembered (a few MB: most tokens are short names)
CACHE_TOKEN_CHARS = 128  # longer tokens are hashed each time, so the table stays small
_SIGN = 0x80000000
_TWO32 = 1 << 32


def token_bytes(token: str | bytes) -> bytes:
    if isinstance(token, bytes):
        return token
    return token.encode("utf-8", "surrogatepass")


def _key(token: str | bytes) -> str | bytes:
    """What mmh3 is given: bytes and ASCII str as they are (mmh3 hashes a str as its UTF-8), any
    other str as its UTF-8 with surrogates passed through (mmh3 crashes the process on a lone
    surrogate rather than raising)."""
    return token_bytes(token) if type(token) is str and not token.isascii() else token


class _HashTable(dict):
    """token -> its unsigned MurmurHash3 (seed 0); a missing token is hashed and, when short, kept."""

    def __missing__(self, token: str | bytes) -> int:
        h = mmh3.hash(_key(token), SEED, signed=False)
        if len(token) <= CACHE_TOKEN_CHARS:
            if len(self) >= CACHE_ENTRIES:
                self.clear()
            self[token] = h
        return h


_HASHES = _HashTable()
hash_of = _HASHES.__getitem__  # unsigned MurmurHash3 of one token (remembered)


def unsigned_hashes(tokens: Iterable[str | bytes]) -> list[int]:
    return list(map(hash_of, tokens))


def bin_and_sign(token: str | bytes, dims: int) -> tuple[int, float]:
    h = hash_of(token)
    return h % dims, (-1.0 if h & _SIGN else 1.0)


_FEW = 48  # up to this many tokens, a plain loop beats numpy's fixed cost per call


def _sums(tokens: list, weights: list | None, dims: int) -> dict[int, float]:
    """Per-bin float64 sums of sign * weight in token order: what ``np.bincount`` gives in :func:`_bin`."""
    acc: dict[int, float] = {}
    get = acc.get
    if weights is None:
        for x in map(hash_of, tokens):
            b = x % dims
            acc[b] = get(b, 0.0) + (-1.0 if x & _SIGN else 1.0)
        return acc
    for x, w in zip(map(hash_of, tokens), weights, strict=True):
        b = x % dims
        acc[b] = get(b, 0.0) + (-w if x & _SIGN else w)
    return acc


def add_hashed(out: np.ndarray, offset: int, tokens: list, dims: int, weights: list | None = None) -> None:
    """Write the bins of ``tokens`` (signed counts, or signed sums of ``weights``) into
    ``out[offset:offset + dims]`` (zeros beforehand). Groups write their hashed parts straight into
    their vector: separate arrays and their joining were most of a row's vectorising time."""
    if dims == 0 or not tokens:
        return
    if len(tokens) > _FEW:
        w = np.ones(len(tokens)) if weights is None else np.array(weights, dtype=np.float64)
        out[offset:offset + dims] = _bin(np.array(unsigned_hashes(tokens), dtype=np.uint64), w, dims)
        return
    for b, v in _sums(tokens, weights, dims).items():
        out[offset + b] = v


def _bin(hashes: np.ndarray, weights: np.ndarray, dims: int) -> np.ndarray:
    if hashes.size == 0 or dims == 0:
        return np.zeros(dims, dtype=np.float32)
    signs = np.where(hashes & _SIGN, -1.0, 1.0)
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
    h = hash_of(token)
    return ((_TWO32 - h) % dims, -1.0) if h & _SIGN else (h % dims, 1.0)


def add_feature_hashed(out: np.ndarray, offset: int, tokens: list, dims: int, weights: list | None = None) -> None:
    """Write ``FeatureHasher(dims).transform([tokens])`` (``input_type="string"``), or with ``weights``
    its ``input_type="pair"`` form over ``zip(tokens, weights)``, into ``out[offset:offset + dims]``
    (zeros beforehand). As scikit-learn: a zero weight is skipped, each bin is the float64 sum of
    sign x weight in token order, rounded once to ``out``'s float32."""
    if dims == 0 or not tokens:
        return
    for b, v in _feature_sums(tokens, weights, dims).items():
        out[offset + b] = v


def _feature_sums(tokens: list, weights: list | None, dims: int) -> dict[int, float]:
    """FeatureHasher's per-bin float64 sums in token order (a signed hash h < 0 is 2**32 - h's
    unsigned form: bin |h| mod dims = (2**32 - unsigned) mod dims)."""
    acc: dict[int, float] = {}
    get = acc.get
    if weights is None:
        for x in map(hash_of, tokens):
            if x & _SIGN:
                b = (_TWO32 - x) % dims
                acc[b] = get(b, 0.0) - 1.0
            else:
                b = x % dims
                acc[b] = get(b, 0.0) + 1.0
        return acc
    for x, w in zip(map(hash_of, tokens), weights, strict=True):
        w = float(w)
        if w == 0.0:
            continue
        if x & _SIGN:
            b = (_TWO32 - x) % dims
            acc[b] = get(b, 0.0) - w
        else:
            b = x % dims
            acc[b] = get(b, 0.0) + w
    return acc


class TokenBins:
    """The hashed parts of a window of rows, collected and then written at once.

    ``add(row, offset, tokens, dims[, weights])`` adds ``tokens`` to ``out[row, offset:offset + dims]``
    by binfeat's rule (as :func:`add_hashed`), ``add_feature_hashed(...)`` by FeatureHasher's (as
    :func:`add_feature_hashed`); each (offset, dims) is one part of the block, added to once per row.
    :meth:`write` computes every part for all its rows at once: per bin the float64 sum of sign x
    weight in token order (``np.bincount`` adds in input order), rounded once to float32 and
    written into the rows that had tokens (the others keep their values). Why: a few numpy
    operations per window and part instead of Python work per token and bin.
    """

    def __init__(self, out: np.ndarray) -> None:
        self.out = out
        self._parts: dict[tuple[int, int, bool], _Part] = {}

    def add(self, row: int, offset: int, tokens: list, dims: int, weights: list | None = None) -> None:
        if dims and tokens:
            self._part(offset, dims, False).extend(row, tokens, weights)

    def add_feature_hashed(self, row: int, offset: int, tokens: list, dims: int, weights: list | None = None) -> None:
        if dims and tokens:
            self._part(offset, dims, True).extend(row, tokens, weights)

    def _part(self, offset: int, dims: int, feature_hasher: bool) -> _Part:
        key = (offset, dims, feature_hasher)
        part = self._parts.get(key)
        if part is None:
            part = self._parts[key] = _Part()
        return part

    def discard_row(self, row: int) -> None:
        """Forget what was added for ``row`` (its vectoriser failed part-way: the row becomes NaN)."""
        for part in self._parts.values():
            part.discard(row)

    def write(self) -> None:
        for (offset, dims, feature_hasher), part in self._parts.items():
            if part.tokens:
                part.write(self.out, offset, dims, feature_hasher)
        self._parts = {}


class _Part:
    """The tokens added to one (offset, dims) part of a block: row of each, token, weight."""

    __slots__ = ("rows", "tokens", "weights")

    def __init__(self) -> None:
        self.rows: list[int] = []
        self.tokens: list = []
        self.weights: list[float] | None = None  # None while every token weighs 1

    def extend(self, row: int, tokens: list, weights: list | None) -> None:
        n = len(tokens)
        if weights is not None and self.weights is None:
            self.weights = [1.0] * len(self.tokens)
        if self.weights is not None:
            self.weights += [1.0] * n if weights is None else [float(w) for w in weights]
            if len(self.weights) != len(self.tokens) + n:
                raise ValueError(f"{n} tokens but {len(weights or ())} weights")
        self.tokens += tokens
        self.rows += [row] * n

    def discard(self, row: int) -> None:
        keep = [k for k, r in enumerate(self.rows) if r != row]
        if len(keep) < len(self.rows):
            self.tokens = [self.tokens[k] for k in keep]
            if self.weights is not None:
                self.weights = [self.weights[k] for k in keep]
            self.rows = [self.rows[k] for k in keep]

    def write(self, out: np.ndarray, offset: int, dims: int, feature_hasher: bool) -> None:
        n = len(self.tokens)
        h = np.fromiter(map(hash_of, self.tokens), dtype=np.int64, count=n)
        negative = h >= _SIGN
        bins = np.where(negative, (_TWO32 - h) % dims, h % dims) if feature_hasher else h % dims
        rows = np.array(self.rows, dtype=np.int64)
        if self.weights is None:
            values = np.where(negative, -1.0, 1.0)
        else:
            w = np.array(self.weights, dtype=np.float64)
            values = np.where(negative, -w, w)
            if feature_hasher:
                values[w == 0.0] = 0.0  # scikit-learn skips a zero weight (adding it changes no sum)
        touched = np.unique(rows)
        local = np.searchsorted(touched, rows) * dims + bins
        sums = np.bincount(local, weights=values, minlength=touched.size * dims)
        out[touched, offset:offset + dims] = sums.reshape(touched.size, dims)
