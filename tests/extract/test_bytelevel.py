"""Byte-level groups: exact counts on crafted buffers and equality with EMBER v2's own computation."""

from __future__ import annotations

import numpy as np
import pytest

from benchmarks import ember_reference as ember
from extract import kernels as kernels_module
from extract.kernels import ByteScanner, scan_bytes


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
def test_groups_equal_ember_on_crafted(name):
    data = CRAFTED[name]
    row = _row(data)
    assert row["byte_histogram"] == ember.byte_histogram(data)
    assert row["byte_entropy_histogram"] == ember.byte_entropy_histogram(data)
    assert row["strings"] == ember.strings(data)


def _random_buffers() -> list[bytes]:
    rng = np.random.default_rng(7)
    out = []
    for n in (1, 100, 1023, 1024, 1025, 2047, 2048, 2049, 3071, 3072, 3073, 10_000, 100_000):
        out.append(rng.integers(0, 256, n, dtype=np.uint8).tobytes())
        # text-heavy and zero-heavy mixtures exercise runs and low-entropy rows
        mix = rng.choice([0, 0x41, 0x7F, 0x20, 0x0A, 0x90, 0xFF], n).astype(np.uint8).tobytes()
        out.append(mix)
    return out


def test_equal_ember_on_random_buffers():
    for data in _random_buffers():
        r = scan_bytes(data)
        assert r["histogram"].tolist() == ember.byte_histogram(data)
        assert r["entropy_grid"].tolist() == ember.byte_entropy_histogram(data)
        s = ember.strings(data)
        assert (r["numstrings"], r["string_bytes"], r["printabledist"].tolist()) == (
            s["numstrings"], s["printables"], s["printabledist"])


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


def test_real_files_equal_ember(system_binaries):
    for path in system_binaries:
        data = path.read_bytes()
        r = scan_bytes(data)
        assert r["histogram"].tolist() == ember.byte_histogram(data), path
        assert r["entropy_grid"].tolist() == ember.byte_entropy_histogram(data), path
        s = ember.strings(data)
        assert r["numstrings"] == s["numstrings"] and r["printabledist"].tolist() == s["printabledist"], path
        assert r["patterns"] == {k: s[k] for k in ("paths", "urls", "registry", "MZ")}, path


def test_vectors_follow_ember():
    from extract.groups import REGISTRY

    data = CRAFTED["mixed_case"] * 10
    row = _row(data)
    hist = np.asarray(row["byte_histogram"], np.float32)
    assert np.allclose(REGISTRY["byte_histogram"].vector(row["byte_histogram"]), hist / hist.sum())
    v = REGISTRY["strings"].vector(row["strings"])
    assert v.shape == (104,) and v[0] == row["strings"]["numstrings"]
    assert np.isclose(v[3:99].sum(), 1.0)
    assert REGISTRY["byte_histogram"].vector(_row(b"")["byte_histogram"]).sum() == 0  # no NaN on empty
