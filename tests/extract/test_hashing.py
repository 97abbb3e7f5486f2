"""Feature hashing against references that share no code with extract.hashing.

- binfeat's rule (docs: MurmurHash3 x86 32-bit of the UTF-8 bytes, seed 0, read unsigned; bin = h mod
  dims; sign -1 when bit 31 is set): a reference written here from that sentence, with its own
  MurmurHash3 (the published algorithm) checked against the mmh3 package first.
- EMBER's rule: scikit-learn's own ``FeatureHasher`` (what EMBER v2 calls), string and pair inputs.
"""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.feature_extraction import FeatureHasher

from extract.hashing import _FEW, add_feature_hashed, add_hashed, hash_tokens, hash_weighted


def murmur3_x86_32(data: bytes, seed: int = 0) -> int:
    """MurmurHash3 x86 32-bit as Austin Appleby published it (unsigned result)."""
    c1, c2, mask = 0xCC9E2D51, 0x1B873593, 0xFFFFFFFF
    h = seed & mask
    n = len(data) // 4 * 4
    for i in range(0, n, 4):
        k = int.from_bytes(data[i:i + 4], "little")
        k = (k * c1) & mask
        k = ((k << 15) | (k >> 17)) & mask
        k = (k * c2) & mask
        h ^= k
        h = ((h << 13) | (h >> 19)) & mask
        h = (h * 5 + 0xE6546B64) & mask
    tail = data[n:]
    k = 0
    for j, byte in enumerate(tail):
        k |= byte << (8 * j)
    if tail:
        k = (k * c1) & mask
        k = ((k << 15) | (k >> 17)) & mask
        k = (k * c2) & mask
        h ^= k
    h ^= len(data)
    h ^= h >> 16
    h = (h * 0x85EBCA6B) & mask
    h ^= h >> 13
    h = (h * 0xC2B2AE35) & mask
    h ^= h >> 16
    return h


def binfeat_reference(tokens: list, weights: list, dims: int) -> np.ndarray:
    """The documented binfeat rule, token by token: float64 sums in token order, then float32."""
    acc = np.zeros(dims, np.float64)
    for t, w in zip(tokens, weights, strict=True):
        data = t if isinstance(t, bytes) else t.encode("utf-8", "surrogatepass")
        h = murmur3_x86_32(data)
        acc[h % dims] += -w if h >> 31 else w
    return acc.astype(np.float32)


TOKENS = ["", "a", "ab", "abc", "abcd", "kernel32.dll:CreateFileA", "caf\u00e9", "\u65e5\u672c", "x" * 301]


def test_the_reference_murmur_is_mmh3():
    import mmh3

    for t in TOKENS:
        assert murmur3_x86_32(t.encode()) == mmh3.hash(t.encode(), 0, signed=False), t


@pytest.mark.parametrize("n", [0, 1, 7, _FEW, _FEW + 1, 500])
def test_binfeat_bins_equal_the_documented_rule(n):
    rng = np.random.default_rng(n)
    tokens = [f"tok{int(i)}" for i in rng.integers(0, 60, n)] + (["caf\u00e9", b"raw\xff", "lone\udc80"] if n else [])
    weights = [float(w) for w in rng.normal(0, 1e6, len(tokens))]
    out = np.zeros(3 + 64 + 64, np.float32)
    add_hashed(out, 3, tokens, 64)
    add_hashed(out, 67, tokens, 64, weights)
    assert out[:3].tolist() == [0.0, 0.0, 0.0]
    counts = binfeat_reference(tokens, [1.0] * len(tokens), 64)
    sums = binfeat_reference(tokens, weights, 64)
    assert out[3:67].tobytes() == hash_tokens(tokens, 64).tobytes() == counts.tobytes()
    assert out[67:].tobytes() == hash_weighted(zip(tokens, weights, strict=True), 64).tobytes() == sums.tobytes()


def test_binfeat_counts_are_signed_per_bin():
    v = hash_tokens(["a", "a", "b"], 1)  # one bin: every token lands there, each with its sign
    signs = [-1.0 if murmur3_x86_32(t.encode()) >> 31 else 1.0 for t in ("a", "b")]
    assert v[0] == 2 * signs[0] + signs[1]


@pytest.mark.parametrize("dims", [1, 10, 50, 128, 256, 1024])
def test_ember_rule_is_feature_hashers_for_strings(dims):
    rng = np.random.default_rng(dims)
    tokens = [*TOKENS, *(f"lib{int(i)}.dll:fn{int(j)}" for i, j in rng.integers(0, 40, (300, 2)))]
    out = np.zeros(dims + 2, np.float32)
    add_feature_hashed(out, 1, tokens, dims)
    expected = FeatureHasher(dims, input_type="string").transform([tokens]).toarray()[0].astype(np.float32)
    assert out[0] == out[-1] == 0.0
    assert out[1:-1].tobytes() == expected.tobytes()


@pytest.mark.parametrize("dims", [1, 50])
def test_ember_rule_is_feature_hashers_for_pairs(dims):
    """Section sizes and entropies: integer and float weights, zeros (skipped), repeated names."""
    rng = np.random.default_rng(7)
    names = [".text", ".data", ".rsrc", "", ".text", "UPX0", "/4"] * 20
    weights = [0, 1, 512, 7.9921875, 4096.0, 0.0, 6.123456789] * 20
    weights = [w * float(rng.uniform(0.5, 2.0)) if isinstance(w, float) else w for w in weights]
    out = np.zeros(dims, np.float32)
    add_feature_hashed(out, 0, names, dims, weights)
    expected = FeatureHasher(dims, input_type="pair").transform([list(zip(names, weights, strict=True))])
    assert out.tobytes() == expected.toarray()[0].astype(np.float32).tobytes()


def test_ember_rule_edge_of_the_signed_hash():
    """|h| for h = -2**31 (scikit-learn special-cases it): a token whose signed hash is -2**31 is hard
    to find, so the rule is checked at the sign boundary over many tokens instead."""
    tokens = [f"t{i}" for i in range(20000)]
    out = np.zeros(97, np.float32)
    add_feature_hashed(out, 0, tokens, 97)
    expected = FeatureHasher(97, input_type="string").transform([tokens]).toarray()[0].astype(np.float32)
    assert out.tobytes() == expected.tobytes()
