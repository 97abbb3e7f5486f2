"""Byte-level groups: exact counts on crafted buffers, equality with a reference written from the rules
(tests/extract/byte_reference.py) and, when ``BINFEAT_EMBER_SOURCE`` names a checkout of
elastic/ember, with EMBER v2's own code loaded from it at run time."""

from __future__ import annotations

import numpy as np
import pytest

from extract import kernels as kernels_module
from extract.kernels import ByteScanner, ember_entropy_bin, scan_bytes
from tests.extract import byte_reference as ref


def _row(data: bytes) -> dict:
    from extract.extractor import ExtractOptions, Extractor

    ex = Extractor(ExtractOptions(fuzzy_hashes=(), isolate=False))
    import tempfile

    with tempfile.NamedTemporaryFile() as f:
        f.write(data)
        f.flush()
        return ex.extract(f.name)


CRAFTED = {
    "empty": b"",
    "one": b"A",
    "2047": bytes(range(256)) * 7 + bytes(range(255)),
    "2048": bytes(range(256)) * 8,
    "2049": bytes(range(256)) * 8 + b"\x01",
    "3072": bytes(range(256)) * 12,
    "zeros": bytes(4096),
    "ffs": b"\xff" * 5000,
    "runs_4_and_5": b"\x00abcd\x00abcde\x00",
    "7f_in_run": b"\x01ab\x7fcd\x02",
    "mzmz": b"MZMZ\x00MZ",
    "mixed_case": b"C:\\x c:\\ HTTPS://a http://b HtTp://c hkey_ HKEY_",
}


def test_crafted_exact_counts():
    r = scan_bytes(CRAFTED["runs_4_and_5"])
    assert r["numstrings"] == 1 and r["string_bytes"] == 5
    assert r["printabledist"].sum() == 5 and r["printabledist"][ord("e") - 0x20] == 1
    assert r["printabledist"][ord("a") - 0x20] == 1  # the 4-run's 'a' does not count
    r = scan_bytes(CRAFTED["7f_in_run"])
    assert r["numstrings"] == 1 and r["string_bytes"] == 5 and r["printabledist"][0x7F - 0x20] == 1
    # 2047 bytes: one window divided by 2048; 2048: one window; 2049: still one; 3072: two windows
    for name, windows in (("2047", 1), ("2048", 1), ("2049", 1), ("3072", 2)):
        grid = scan_bytes(CRAFTED[name])["entropy_grid"]
        assert grid.sum() == (len(CRAFTED[name]) if name == "2047" else 2048 * windows), name
    # uniform nibbles over 2048 bytes: entropy 4 bits x2 = 8 -> row int(16) -> 15
    assert scan_bytes(CRAFTED["2048"])["entropy_grid"].reshape(16, 16)[15].sum() == 2048
    zeros = scan_bytes(CRAFTED["zeros"])
    assert zeros["histogram"][0] == 4096 and zeros["entropy_grid"][0] == 3 * 2048
    ffs = scan_bytes(CRAFTED["ffs"])
    assert ffs["histogram"][255] == 5000 and ffs["entropy_grid"][15] == 3 * 2048
    assert scan_bytes(b"")["histogram"].sum() == 0 and scan_bytes(b"")["entropy_grid"].sum() == 0


def test_pattern_counts_exact():
    assert scan_bytes(CRAFTED["mixed_case"])["patterns"] == {"paths": 2, "urls": 3, "registry": 1, "MZ": 0}
    assert scan_bytes(CRAFTED["mzmz"])["patterns"]["MZ"] == 3
    # a pattern split across chunks is counted once
    s = ByteScanner()
    s.update(b"x" * 1022 + b"HK")
    s.update(b"EY_ " + bytes(1018) + b"ht")
    s.update(b"tp://")
    assert s.finish()["patterns"] == {"paths": 0, "urls": 1, "registry": 1, "MZ": 0}


@pytest.mark.parametrize("name", sorted(CRAFTED))
def test_groups_equal_reference_on_crafted(name):
    data = CRAFTED[name]
    row = _row(data)
    assert row["byte_histogram"] == ref.histogram(data)
    assert row["byte_entropy_histogram"] == ref.entropy_grid(data)
    assert row["strings"] == ref.strings(data)


def _random_buffers() -> list[bytes]:
    rng = np.random.default_rng(7)
    out = []
    for n in (1, 100, 1023, 1024, 1025, 2047, 2048, 2049, 3071, 3072, 3073, 10_000, 100_000):
        out.append(rng.integers(0, 256, n, dtype=np.uint8).tobytes())
        # text-heavy and zero-heavy mixtures exercise runs and low-entropy rows
        mix = rng.choice([0, 0x41, 0x7F, 0x20, 0x0A, 0x90, 0xFF], n).astype(np.uint8).tobytes()
        out.append(mix)
    return out


def test_equal_reference_on_random_buffers():
    for data in _random_buffers():
        r = scan_bytes(data)
        assert r["histogram"].tolist() == ref.histogram(data)
        assert r["entropy_grid"].tolist() == ref.entropy_grid(data)
        s = ref.strings(data)
        assert (r["numstrings"], r["string_bytes"], r["printabledist"].tolist()) == (
            s["numstrings"], s["printables"], s["printabledist"])


def _near_boundary_windows(n: int, seed: int) -> list[np.ndarray]:
    """Nibble counts of 2048-byte windows whose exact 4 x entropy lies within 1e-4 of an integer:
    the windows where float32 rounding decides the row (found by a seeded random search)."""
    rng = np.random.default_rng(seed)
    found: list[np.ndarray] = []
    while len(found) < n:
        k = int(rng.integers(2, 17))
        cuts = np.sort(rng.choice(np.arange(1, 2048), k - 1, replace=False))
        counts = np.zeros(16, np.int64)
        counts[rng.choice(16, k, replace=False)] = np.diff(np.concatenate(([0], cuts, [2048])))
        p = counts[counts > 0] / 2048
        h4 = float(-(p * np.log2(p)).sum() * 4)
        if abs(h4 - round(h4)) < 1e-4 and round(h4) > 0:
            found.append(counts)
    return found


# Windows (nibble counts, 2048 bytes) whose row float32 arithmetic moves across a boundary: exact
# 4 x entropy, then the row by EMBER's float32 rule (found by a seeded search over 20 million windows)
FLOAT32_FLIPS = [
    ([32, 100, 161, 22, 144, 90, 34, 118, 332, 25, 5, 229, 381, 45, 136, 194], 13.999999732943667, 14),
    ([272, 24, 88, 108, 26, 148, 197, 83, 133, 52, 312, 145, 122, 142, 86, 110], 15.000000076802337, 14),
    ([15, 8, 330, 16, 198, 270, 157, 43, 149, 181, 71, 102, 260, 49, 191, 8], 13.999999376906977, 14),
    ([639, 59, 166, 7, 22, 28, 131, 173, 131, 8, 96, 26, 252, 179, 109, 22], 12.99999925181454, 13),
    ([32, 61, 160, 181, 40, 31, 71, 649, 236, 57, 219, 28, 34, 199, 27, 23], 12.999999979033959, 13),
    ([120, 144, 53, 157, 100, 98, 59, 129, 2, 184, 60, 222, 234, 233, 55, 198], 14.999999957034044, 15),
]


def _window_bytes(counts) -> bytes:
    """A 2048-byte window with these high-nibble counts (low nibbles varied, order shuffled)."""
    block = np.repeat(np.arange(16, dtype=np.uint8) << 4, counts)
    block |= np.arange(block.size, dtype=np.uint8) & 0x0F
    np.random.default_rng(1).shuffle(block)
    return block.tobytes()


@pytest.mark.parametrize("counts,exact4h,row", FLOAT32_FLIPS)
def test_entropy_bin_follows_float32_across_a_boundary(counts, exact4h, row):
    c = np.array(counts)
    p = c / 2048
    assert float(-(p * np.log2(p)).sum() * 4) == pytest.approx(exact4h, abs=1e-12)
    assert row != min(15, int(exact4h))  # exact arithmetic would give another row
    assert ember_entropy_bin(c) == ref.entropy_row(c) == row
    # the kernel (float64 entropy, float32 re-binning near boundaries) puts the two copies there
    data = _window_bytes(counts) * 2
    grid = scan_bytes(data)["entropy_grid"]
    assert grid.tolist() == ref.entropy_grid(data)
    assert grid.reshape(16, 16)[row].sum() >= 2 * 2048


def test_entropy_bin_on_near_boundary_windows():
    windows = _near_boundary_windows(60, 5)
    assert [ember_entropy_bin(c) for c in windows] == [ref.entropy_row(c) for c in windows]
    for c in windows[:20]:
        data = _window_bytes(c) * 2
        grid = scan_bytes(data)["entropy_grid"]
        assert grid.tolist() == ref.entropy_grid(data)
        assert grid.reshape(16, 16)[ref.entropy_row(c)].sum() >= 2 * 2048


def test_entropy_bin_edges():
    assert ember_entropy_bin(np.zeros(16, np.int64)) == 0  # an empty file's one window
    assert ember_entropy_bin(np.full(16, 128)) == 15  # uniform nibbles: 4 bits x 4 = 16 -> 15
    assert ember_entropy_bin(np.array([2048] + [0] * 15)) == 0
    assert ember_entropy_bin(np.array([1024, 1024] + [0] * 14)) == 4  # 1 bit -> row 4


@pytest.mark.parametrize("chunk", [1024, 3072, 65536])
def test_streaming_equals_whole(chunk):
    for data in _random_buffers() + [CRAFTED["mixed_case"] * 300]:
        whole = scan_bytes(data)
        s = ByteScanner()
        for i in range(0, len(data), chunk):
            s.update(data[i : i + chunk])
        streamed = s.finish()
        for key, value in whole.items():
            if key == "patterns":
                assert value == streamed[key]
            else:
                assert np.array_equal(np.asarray(value), np.asarray(streamed[key])), key


def test_strings_spanning_chunks_and_marked_last():
    # runs that start, end or reach exactly 5 bytes across chunk edges; the last chunk marked or not
    data = b"\x00" * 1021 + b"abcd" + b"e" + b"\x00" * 1019 + b"ABCDE" + b"xyz" + b"\x00" * 1021 + b"12"
    whole = scan_bytes(data)
    assert (whole["numstrings"], whole["string_bytes"]) == (2, 13)
    for last in (False, True):
        s = ByteScanner()
        for i in range(0, len(data), 1024):
            s.update(data[i : i + 1024], last=last and i + 1024 >= len(data))
        got = s.finish()
        assert (got["numstrings"], got["string_bytes"]) == (2, 13)
        assert np.array_equal(got["printabledist"], whole["printabledist"])


def test_calls_split_above_the_kernel_limit(monkeypatch):
    # one kernel call takes at most MAX_CALL bytes; a larger chunk is split, same counts
    data = _random_buffers()[-1] + CRAFTED["mixed_case"] * 50
    whole = scan_bytes(data)
    monkeypatch.setattr(kernels_module, "MAX_CALL", 4096)
    split = scan_bytes(data)
    for key, value in whole.items():
        assert value == split[key] if key == "patterns" else np.array_equal(value, split[key]), key


def test_odd_chunk_refused():
    s = ByteScanner()
    s.update(b"x" * 1000)
    with pytest.raises(ValueError, match="multiple of 1024"):
        s.update(b"y" * 10)


def test_real_files_equal_reference(system_binaries):
    for path in system_binaries:
        data = path.read_bytes()
        r = scan_bytes(data)
        assert r["histogram"].tolist() == ref.histogram(data), path
        assert r["entropy_grid"].tolist() == ref.entropy_grid(data), path
        s = ref.strings(data)
        assert r["numstrings"] == s["numstrings"] and r["printabledist"].tolist() == s["printabledist"], path
        assert r["patterns"] == {k: s[k] for k in ("paths", "urls", "registry", "MZ")}, path


def _bits(v: np.ndarray) -> list[int]:
    return np.asarray(v, np.float32).view(np.uint32).tolist()


@pytest.mark.parametrize("name", ["mixed_case", "2049", "zeros", "empty", "one", "runs_4_and_5"])
def test_vectors_follow_the_rules(name):
    from extract.groups import REGISTRY

    data = CRAFTED[name] * 10
    row = _row(data)
    for group in ("byte_histogram", "byte_entropy_histogram"):
        assert _bits(REGISTRY[group].vector(row[group])) == _bits(ref.shares_f32(row[group])), group
    v = REGISTRY["strings"].vector(row["strings"])
    assert _bits(v) == _bits(ref.strings_vector(row["strings"]))
    assert v.shape == (104,) and v[0] == row["strings"]["numstrings"]
    assert np.isfinite(v).all()


def test_vector_of_a_large_histogram_rounds_its_total_in_float32():
    from extract.groups import REGISTRY

    counts = [1 << 24, 3] + [1] * 254  # 16,777,473 bytes: a total float32 cannot hold
    vec = REGISTRY["byte_histogram"].vector(counts)
    assert _bits(vec) == _bits(ref.shares_f32(counts))
    assert int(np.array(counts, np.float32).sum()) != sum(counts)
    assert vec[1] != np.float32(3 / sum(counts))  # the float32 total, not the exact one, divides


# ---------------------------------------------------------------------------------------------
# EMBER's own code, from a checkout named by BINFEAT_EMBER_SOURCE (skipped without one)


@pytest.fixture(scope="module")
def ember():
    from benchmarks import ember_checkout

    loaded = ember_checkout.from_environment()
    if loaded is None:
        pytest.skip(f"set {ember_checkout.ENV} to a checkout of github.com/elastic/ember to compare with EMBER's code")
    return loaded


def _assert_equals_ember(ember, data: bytes, what: object) -> None:
    r = scan_bytes(data)
    assert r["histogram"].tolist() == ember.byte_histogram(data), what
    assert r["entropy_grid"].tolist() == ember.byte_entropy_histogram(data), what
    theirs = ember.string_features(data)
    row = _row(data)["strings"]
    assert {k: v for k, v in row.items() if k != "entropy"} == {k: v for k, v in theirs.items() if k != "entropy"}, what
    # EMBER's own code computes the string entropy in float64 under numpy 2 (float32 under numpy 1,
    # whose value binfeat keeps): docs/architecture.md, "Byte-level rules"
    assert row["entropy"] == pytest.approx(theirs["entropy"], rel=1e-6, abs=0), what


def test_equal_ember_checkout_on_crafted_random_and_real(ember, system_binaries):
    for name, data in CRAFTED.items():
        if data:  # EMBER divides by zero on an empty file's vector, not its raw value; raw is compared
            _assert_equals_ember(ember, data, name)
    for data in _random_buffers():
        _assert_equals_ember(ember, data, len(data))
    for path in system_binaries:
        _assert_equals_ember(ember, path.read_bytes(), path)


def test_entropy_bin_equals_ember_checkout_near_boundaries(ember):
    # EMBER's row for a window built from the counts (its own numpy float32 code)
    windows = [np.array(c) for c, _, _ in FLOAT32_FLIPS] + _near_boundary_windows(60, 5)
    for counts in windows:
        grid = np.asarray(ember.byte_entropy_histogram(_window_bytes(counts))).reshape(16, 16)
        assert grid[ember_entropy_bin(counts)].tolist() == counts.tolist()
