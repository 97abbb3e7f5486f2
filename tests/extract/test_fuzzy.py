"""extract.fuzzy: ssdeep equals ppdeep, TLSH (through py-tlsh) equals tlsh.hash, whole or chunked,
whatever the chunk type."""

from __future__ import annotations

import itertools
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from extract.fuzzy import SsdeepHasher, TlshHasher, ssdeep_hash, tlsh_hash

tlsh = pytest.importorskip("tlsh")
ppdeep = pytest.importorskip("ppdeep")

REAL_CAP = 256 * 1024  # ppdeep runs at ~1 MB/s: 50 files * <= 256 KB keeps the suite affordable
N_REAL = 50
MIB8 = 8 * 1024 * 1024


def _ref_tlsh(data: bytes) -> str | None:
    h = tlsh.hash(data)
    return None if h in ("TNULL", "") else h


def _rand(n: int, seed: int = 0) -> bytes:
    return np.random.default_rng(seed).integers(0, 256, n, dtype=np.uint8).tobytes()


_TEXT = (
    b"The quick brown fox jumps over the lazy dog. " * 40
    + Path(__file__).read_bytes()
    + b"\n".join(b"line %d: value=%d" % (i, i * i) for i in range(3000))
)

SYNTHETIC: dict[str, bytes] = {
    "empty": b"",
    "1B": b"\x7f",
    "4B": b"abcd",
    "5B": b"abcde",
    "49B": _rand(49, 1),
    "50B": _rand(50, 2),
    "51B": _rand(51, 3),
    "255B": _rand(255, 4),
    "256B": _rand(256, 5),
    "4096B": _rand(4096, 6),
    "zeros": bytes(100_000),
    "ff": b"\xff" * 100_000,
    "ab-repeat": b"ab" * 30_000,
    "ramp": bytes(range(256)) * 200,
    "sparse": (b"\x00" * 1000 + b"xyz" * 5) * 40,
    "random-1M": _rand(1_000_000, 7),
    "random-3M": _rand(3_000_000, 8),
    "text": _TEXT,
}


def _real_files() -> list[Path]:
    """~50 deterministic regular files of varied size from the system's binaries and libraries."""
    found: list[Path] = []
    for root in ("/usr/bin", "/usr/lib/x86_64-linux-gnu"):
        base = Path(root)
        if not base.is_dir():
            continue
        for p in sorted(base.iterdir()):
            try:
                if p.is_file() and not p.is_symlink() and p.stat().st_size > 0:
                    found.append(p)
            except OSError:
                continue
    if not found:
        return []
    step = max(1, len(found) // N_REAL)
    return found[::step][:N_REAL]


REAL = _real_files()


def _read(p: Path) -> bytes:
    with open(p, "rb") as f:
        return f.read(REAL_CAP)


@pytest.mark.parametrize("name", list(SYNTHETIC))
def test_tlsh_synthetic(name: str) -> None:
    data = SYNTHETIC[name]
    assert tlsh_hash(data) == _ref_tlsh(data)


@pytest.mark.parametrize("name", list(SYNTHETIC))
def test_ssdeep_synthetic(name: str) -> None:
    data = SYNTHETIC[name]
    assert ssdeep_hash(data) == ppdeep.hash(data)


def test_tlsh_length_sweep() -> None:
    """Every length class of the log-length byte near the small-input boundaries."""
    rng = np.random.default_rng(11)
    for n in list(range(40, 700, 3)) + list(range(3150, 3500, 17)) + [65_000, 300_000]:
        data = rng.integers(0, 256, n, dtype=np.uint8).tobytes()
        assert tlsh_hash(data) == _ref_tlsh(data), n


def test_ssdeep_length_sweep() -> None:
    """Block-size selection and the halving retry around the 3 * 2**k * 64 boundaries."""
    rng = np.random.default_rng(12)
    lengths = [190, 191, 192, 193, 383, 384, 385, 767, 768, 769, 6143, 6144, 6145, 50_000]
    for n in lengths:
        data = rng.integers(0, 256, n, dtype=np.uint8).tobytes()
        assert ssdeep_hash(data) == ppdeep.hash(data), n
    for n in range(0, 400, 7):  # low-entropy text forces the retry with smaller block sizes
        data = (b"aaaa bbb cc d " * 40)[:n]
        assert ssdeep_hash(data) == ppdeep.hash(data), n


@pytest.mark.skipif(not REAL, reason="no system binaries to read")
@pytest.mark.parametrize("path", REAL, ids=[p.name for p in REAL])
def test_real_files(path: Path) -> None:
    data = _read(path)
    assert tlsh_hash(data) == _ref_tlsh(data)
    assert ssdeep_hash(data) == ppdeep.hash(data)


def _fed(hasher: TlshHasher | SsdeepHasher, data: bytes, chunk: int) -> str | None:
    for i in range(0, len(data), chunk):
        hasher.update(data[i : i + chunk])
    return hasher.hexdigest()


STREAM_INPUTS = ["empty", "5B", "51B", "4096B", "zeros", "sparse", "text", "random-1M"]


@pytest.mark.parametrize("chunk", [1, 7, 1024, MIB8])
@pytest.mark.parametrize("name", STREAM_INPUTS)
def test_tlsh_streaming(name: str, chunk: int) -> None:
    data = SYNTHETIC[name]
    if chunk == 1:
        data = data[:20_000]  # one call per byte: keep it quick
    assert _fed(TlshHasher(), data, chunk) == tlsh_hash(data) == _ref_tlsh(data)


@pytest.mark.parametrize("chunk", [1, 7, 1024, MIB8])
@pytest.mark.parametrize("name", STREAM_INPUTS)
def test_ssdeep_streaming(name: str, chunk: int) -> None:
    data = SYNTHETIC[name]
    if chunk == 1:
        data = data[:20_000]
    assert _fed(SsdeepHasher(), data, chunk) == ssdeep_hash(data) == ppdeep.hash(data)


def test_tlsh_short_first_updates() -> None:
    """py-tlsh alone digests differently when its first update is shorter than its 5-byte window
    (trendmicro/tlsh issue 151); TlshHasher holds the first bytes back, so any split gives tlsh.hash."""
    data = SYNTHETIC["4096B"]
    for head in range(1, 70):
        for cuts in ([0, head, len(data)], [0, 1, head + 1, head + 2, len(data)]):
            t = TlshHasher()
            for a, b in itertools.pairwise(cuts):
                t.update(data[a:b])
            assert t.hexdigest() == _ref_tlsh(data), cuts
    short = TlshHasher()
    short.update(data[:30])
    short.update(data[30:60])  # 60 bytes, all held until the digest
    assert short.hexdigest() == _ref_tlsh(data[:60])


def test_streaming_real_files_uneven_chunks() -> None:
    """Caller-style 1 KiB multiples plus odd sizes, on real binaries."""
    rng = np.random.default_rng(13)
    for path in REAL[:8]:
        data = _read(path)
        cuts = np.cumsum(rng.integers(1, 5000, 400))
        cuts = [0] + [int(c) for c in cuts if c < len(data)] + [len(data)]
        t, s = TlshHasher(), SsdeepHasher()
        for a, b in itertools.pairwise(cuts):
            t.update(data[a:b])
            s.update(data[a:b])
        assert t.hexdigest() == tlsh_hash(data), path
        assert s.hexdigest() == ssdeep_hash(data), path


@pytest.mark.parametrize(("lane_cap", "two_word_cap"), [(18, 0), (0, 12)])
def test_ssdeep_fallback_paths(lane_cap: int, two_word_cap: int, monkeypatch) -> None:
    """The 3-word packed path and the one-level-at-a-time path (normally rare) stay exact."""
    monkeypatch.setattr(SsdeepHasher, "lane_cap", lane_cap)
    monkeypatch.setattr(SsdeepHasher, "two_word_cap", two_word_cap)
    inputs = [SYNTHETIC[k] for k in ("5B", "4096B", "sparse", "text")] + [_read(p) for p in REAL[:3]]
    for data in inputs:
        assert _fed(SsdeepHasher(), data, 1000) == ppdeep.hash(data)


def test_input_types_and_repeatable_digest() -> None:
    data = SYNTHETIC["random-1M"][:70_000]
    arr = np.frombuffer(data, dtype=np.uint8)
    for chunk in (data, memoryview(data), arr, bytearray(data), arr.view(np.uint32), arr[::-1][::-1]):
        assert tlsh_hash(chunk) == tlsh_hash(data) == _ref_tlsh(data)
        assert ssdeep_hash(chunk) == ssdeep_hash(data)
    s = SsdeepHasher()
    s.update(data[:30_000])
    assert s.hexdigest() == ssdeep_hash(data[:30_000])  # an ssdeep digest mid-stream does not end the stream
    s.update(data[30_000:])
    assert s.hexdigest() == s.hexdigest() == ssdeep_hash(data)
    t = TlshHasher()
    t.update(bytearray(data[:30_000]))
    t.update(memoryview(data)[30_000:])
    assert t.hexdigest() == t.hexdigest() == _ref_tlsh(data)
    with pytest.raises(ValueError, match="already ended"):  # a TLSH digest ends the stream (py-tlsh's final)
        t.update(data)


def test_tnull_maps_to_none() -> None:
    for data in (b"", b"x" * 49, bytes(10_000), b"\xff" * 10_000):
        assert tlsh.hash(data) == "TNULL"
        assert tlsh_hash(data) is None
    assert tlsh_hash(_rand(50, 2)) is not None


def test_import_does_not_compile() -> None:
    code = (
        "import sys, extract.fuzzy as f; "
        "assert f._ss_kernel is None; assert 'numba' not in sys.modules; print('ok')"
    )
    root = Path(__file__).resolve().parents[2]
    env = dict(os.environ, PYTHONPATH=str(root))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert out.returncode == 0, out.stderr
