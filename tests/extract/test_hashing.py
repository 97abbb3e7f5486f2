"""Feature hashing: every path to the bins gives the same float32 values."""

from __future__ import annotations

import numpy as np
import pytest

from extract.hashing import _FEW, add_hashed, bin_and_sign, hash_tokens, hash_weighted


def reference(tokens: list, weights: list, dims: int) -> np.ndarray:
    """The documented rule token by token: float64 sums in token order, then float32."""
    acc = np.zeros(dims, np.float64)
    for t, w in zip(tokens, weights, strict=True):
        b, sign = bin_and_sign(t, dims)
        acc[b] += sign * w
    return acc.astype(np.float32)


@pytest.mark.parametrize("n", [0, 1, 7, _FEW, _FEW + 1, 500])
def test_in_place_bins_equal_the_array_bins(n):
    rng = np.random.default_rng(n)
    tokens = [f"tok{int(i)}" for i in rng.integers(0, 60, n)] + (["caf\u00e9", b"raw\xff", "lone\udc80"] if n else [])
    weights = [float(w) for w in rng.normal(0, 1e6, len(tokens))]
    out = np.zeros(3 + 64 + 64, np.float32)
    add_hashed(out, 3, tokens, 64)
    add_hashed(out, 67, tokens, 64, weights)
    assert out[:3].tolist() == [0.0, 0.0, 0.0]
    counts, sums = reference(tokens, [1.0] * len(tokens), 64), reference(tokens, weights, 64)
    assert out[3:67].tobytes() == hash_tokens(tokens, 64).tobytes() == counts.tobytes()
    assert out[67:].tobytes() == hash_weighted(zip(tokens, weights, strict=True), 64).tobytes() == sums.tobytes()


def test_counts_are_signed_per_bin():
    v = hash_tokens(["a", "a", "b"], 1)  # one bin: every token lands there, each with its sign
    signs = [hash_tokens([t], 1)[0] for t in ("a", "b")]
    assert v[0] == 2 * signs[0] + signs[1] and set(signs) <= {-1.0, 1.0}
