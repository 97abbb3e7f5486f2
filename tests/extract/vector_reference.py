"""Vector encodings written from their documented rules (docs/vector_layout.md, extract/hashing.py),
for tests that compare a group's whole vector with what its raw value should give."""

from __future__ import annotations

from collections import defaultdict

import mmh3
import numpy as np


def hashed(prefix: str, tokens: list[str], dims: int, weights: list[float] | None = None) -> dict[str, float]:
    """MurmurHash3 x86 32 (seed 0, unsigned) of each token's UTF-8: bin h mod dims, sign - when bit 31
    of h is set; each token adds sign * weight (1 without weights) to ``prefix[bin]``."""
    out: dict[str, float] = defaultdict(float)
    for i, token in enumerate(tokens):
        h = mmh3.hash(token.encode("utf-8", "surrogatepass"), 0, signed=False)
        w = 1.0 if weights is None else float(weights[i])
        out[f"{prefix}[{h % dims}]"] += -w if h >> 31 else w
    return out


def onehot(prefix: str, value: object, choices: tuple, fmt: str = "{:#x}") -> dict[str, float]:
    """``prefix=value`` (formatted) when value is one of choices, else ``prefix=other``."""
    return {f"{prefix}={fmt.format(value)}" if value in choices else f"{prefix}=other": 1.0}


def assert_vector(group, raw: dict, want: dict[str, float]) -> None:
    """The group's vector of ``raw`` equals ``want`` (dimension name -> value; unnamed dimensions 0)."""
    got = group.vector(raw)
    assert got.dtype == np.float32 and got.shape == (group.dims,)
    unknown = set(want) - set(group.dim_names)
    assert not unknown, f"{group.name}: no dimensions {sorted(unknown)[:5]}"
    expected = np.array([want.get(n, 0.0) for n in group.dim_names], dtype=np.float64)
    bad = [(n, float(g), e) for n, g, e in zip(group.dim_names, got, expected, strict=True)
           if not np.isclose(g, e, rtol=1e-6, atol=1e-6)]
    assert not bad, f"{group.name}: {bad[:5]}"
