"""The sample-corpus builder: deterministic pieces offline, plus checks on a built small corpus."""

from __future__ import annotations

import hashlib
import io
import json
import os
import struct
import tarfile
import zipfile
from collections import Counter
from pathlib import Path

import pytest

from benchmarks import corpus
from benchmarks import corpus_mutate as mut
from benchmarks.corpus_entry import Collection, Entry
from benchmarks.corpus_fetch import Fetched, Pin
from benchmarks.corpus_generate import generate
from benchmarks.corpus_layout import MANIFEST, MANIFEST_KEYS, manifest_text, write_out
from benchmarks.corpus_malformed import mutate
from benchmarks.corpus_select import select_from
from benchmarks.corpus_sniff import detect_format, fat_slices, sniff


# -- crafted headers -----------------------------------------------------------------------------
def make_pe(machine: int = 0x14C, magic: int = 0x10B, clr: bool = False, size: int = 1024) -> bytes:
    buf = bytearray(size)
    buf[:2] = b"MZ"
    e_lfanew = 0x80
    struct.pack_into("<I", buf, 0x3C, e_lfanew)
    buf[e_lfanew : e_lfanew + 4] = b"PE\0\0"
    opt_size = 224 if magic == 0x10B else 240
    struct.pack_into("<HHIIIHH", buf, e_lfanew + 4, machine, 2, 0, 0, 0, opt_size, 0x102)
    opt = e_lfanew + 24
    struct.pack_into("<H", buf, opt, magic)
    n_off, dirs = (opt + 92, opt + 96) if magic == 0x10B else (opt + 108, opt + 112)
    struct.pack_into("<I", buf, n_off, 16)
    if clr:
        struct.pack_into("<II", buf, dirs + 14 * 8, 0x2000, 0x48)
    sect = opt + opt_size
    struct.pack_into("<8sIIII", buf, sect, b".text", 0x100, 0x1000, 0x100, 0x200)
    return bytes(buf)


def make_elf(bits: int = 64, endian: str = "<", machine: int = 62, size: int = 512) -> bytes:
    buf = bytearray(size)
    buf[:4] = b"\x7fELF"
    buf[4] = 2 if bits == 64 else 1
    buf[5] = 1 if endian == "<" else 2
    buf[6] = 1
    struct.pack_into(endian + "HH", buf, 16, 2, machine)
    return bytes(buf)


def make_macho(cpu: int = 0x0100000C, bits: int = 64, size: int = 256) -> bytes:
    buf = bytearray(size)
    buf[:4] = b"\xcf\xfa\xed\xfe" if bits == 64 else b"\xce\xfa\xed\xfe"
    struct.pack_into("<IIIII", buf, 4, cpu, 0, 2, 1, 72)
    hdr = 32 if bits == 64 else 28
    struct.pack_into("<II", buf, hdr, 0x19, 72)
    return bytes(buf)


def make_fat(slices: list[bytes]) -> bytes:
    header = bytearray(struct.pack(">II", 0xCAFEBABE, len(slices)))
    off = 4096
    body = bytearray()
    for s in slices:
        cpu = struct.unpack_from("<I", s, 4)[0]
        header += struct.pack(">IIIII", cpu, 0, off + len(body), len(s), 12)
        body += s
    return bytes(header.ljust(off, b"\0") + body)


# -- sniffing ------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("data", "fmt", "kind", "arch", "endian"),
    [
        (make_pe(0x14C, 0x10B), "pe", "pe32", "x86", "little"),
        (make_pe(0x8664, 0x20B), "pe", "pe32+", "x86_64", "little"),
        (make_pe(0xAA64, 0x20B), "pe", "pe32+", "arm64", "little"),
        (make_pe(0x14C, 0x10B, clr=True), "pe", "dotnet", "x86", "little"),
        (make_elf(64, "<", 62), "elf", "elf64", "x86_64", "little"),
        (make_elf(32, "<", 3), "elf", "elf32", "x86", "little"),
        (make_elf(64, ">", 22), "elf", "elf64", "s390x", "big"),
        (make_elf(64, "<", 21), "elf", "elf64", "ppc64le", "little"),
        (make_elf(64, "<", 8), "elf", "elf64", "mips64el", "little"),
        (make_elf(32, "<", 40), "elf", "elf32", "arm", "little"),
        (make_macho(0x0100000C, 64), "macho", "macho64", "arm64", "little"),
        (make_macho(7, 32), "macho", "macho32", "x86", "little"),
        (make_fat([make_macho(0x01000007), make_macho(0x0100000C)]), "macho", "macho-fat",
         "x86_64+arm64", "little"),
        (b"\xca\xfe\xba\xbe\x00\x00\x00\x34" + bytes(64), "unknown", "java-class", None, None),
        (b"%PDF-1.4\n", "unknown", "pdf", None, None),
        (b"hello world\n", "unknown", "text", None, None),
        (b"", "unknown", None, None, None),
        (b"MZ", "pe", "pe-dos", None, None),
    ],
)
def test_sniff(data: bytes, fmt: str, kind: str | None, arch: str | None, endian: str | None) -> None:
    s = sniff(data)
    assert (s.format, s.kind, s.arch, s.endian) == (fmt, kind, arch, endian)
    assert detect_format(data) == fmt


def test_fat_vs_java_cutoff() -> None:
    assert detect_format(b"\xca\xfe\xba\xbe" + struct.pack(">I", 19)) == "macho"
    assert detect_format(b"\xca\xfe\xba\xbe" + struct.pack(">I", 45)) == "unknown"
    assert detect_format(b"\xca\xfe\xba\xbe") == "unknown"  # magic only: ambiguous


def test_fat_slices_roundtrip() -> None:
    a, b = make_macho(0x01000007), make_macho(0x0100000C)
    fat = make_fat([a, b])
    got = [fat[o : o + n] for _, o, n in fat_slices(fat)]
    assert got == [a, b]


# -- mutations -----------------------------------------------------------------------------------
@pytest.mark.parametrize("fraction", mut.TRUNCATE_FRACTIONS)
def test_truncate_exact(fraction: float) -> None:
    data = make_pe(size=1000)
    out, desc = mut.truncate(data, fraction)
    assert out == data[: int(1000 * fraction)]
    assert desc == f"truncate@{fraction:g}"


def test_bitflip_deterministic_and_counted() -> None:
    data = make_elf(size=4096)
    a, desc = mut.bitflip(data, 1234, 16)
    b, _ = mut.bitflip(data, 1234, 16)
    assert a == b and desc == "bitflip:seed=1234,n=16"
    flipped = sum(bin(x ^ y).count("1") for x, y in zip(a, data, strict=True))
    assert flipped == 16
    assert a[:4] == data[:4]
    assert mut.bitflip(data, 1235, 16)[0] != a


def test_pe_mutations() -> None:
    data = make_pe()
    out, desc = mut.pe_lfanew_past_end(data)
    assert desc == "e_lfanew_past_end" and struct.unpack_from("<I", out, 0x3C)[0] > len(out)
    out, desc = mut.pe_nsections_absurd(data)
    assert struct.unpack_from("<H", out, 0x80 + 6)[0] == 0xFFFF
    out, _ = mut.pe_section_raw_past_end(data)
    first = 0x80 + 24 + 224
    assert struct.unpack_from("<I", out, first + 20)[0] > len(out)
    with pytest.raises(mut.MutationError):
        mut.pe_lfanew_past_end(make_elf())


@pytest.mark.parametrize(("bits", "endian"), [(64, "<"), (32, "<"), (64, ">"), (32, ">")])
def test_elf_mutations(bits: int, endian: str) -> None:
    data = make_elf(bits, endian, 22)
    wide = bits == 64
    u = endian + ("Q" if wide else "I")
    out, desc = mut.elf_shoff_past_end(data)
    assert desc == "e_shoff_past_end" and struct.unpack_from(u, out, 40 if wide else 32)[0] > len(out)
    out, _ = mut.elf_phoff_past_end(data)
    assert struct.unpack_from(u, out, 32 if wide else 28)[0] > len(out)
    out, _ = mut.elf_shnum_absurd(data)
    assert struct.unpack_from(endian + "H", out, 60 if wide else 48)[0] == 0xFFFF
    out, _ = mut.elf_phnum_absurd(data)
    assert struct.unpack_from(endian + "H", out, 56 if wide else 44)[0] == 0xFFFF
    assert sniff(out).format == "elf"


def test_macho_mutations() -> None:
    data = make_macho()
    out, _ = mut.macho_cmdsize_past_end(data)
    assert struct.unpack_from("<I", out, 32 + 4)[0] > len(out)
    out, _ = mut.macho_sizeofcmds_past_end(data)
    assert struct.unpack_from("<I", out, 20)[0] > len(out)
    out, _ = mut.macho_ncmds_absurd(data)
    assert struct.unpack_from("<I", out, 16)[0] == 0xFFFFFFFF
    fat = make_fat([make_macho(0x01000007), make_macho()])
    out, _ = mut.fat_offset_past_end(fat)
    assert fat_slices(out)[0][1] > len(out) and detect_format(out) == "macho"


def test_magic_only_and_empty_exact() -> None:
    assert mut.magic_only("MZ") == (b"MZ", "magic_only:MZ")
    assert mut.magic_only("ELF") == (b"\x7fELF", "magic_only:ELF")
    assert mut.magic_only("MH_MAGIC_64")[0] == b"\xcf\xfa\xed\xfe"
    assert mut.empty() == (b"", "empty")
    names = ("MZ", "ELF", "MH_MAGIC_64", "MH_MAGIC", "FAT_MAGIC")
    assert [detect_format(mut.MAGIC_ONLY[k]) for k in names] == ["pe", "elf", "macho", "macho", "unknown"]


def test_mutate_seeded_and_described() -> None:
    parents = [Entry(make_pe(0x8664, 0x20B, size=2048 + i), "pe32+", "p", "1", f"a{i}")
               for i in range(5)]
    parents += [Entry(make_elf(size=1024 + i), "elf64", "e", "1", f"b{i}") for i in range(5)]
    parents += [Entry(make_macho(size=512 + i), "macho64", "m", "1", f"c{i}") for i in range(5)]
    cfg = {"structural": 2, "truncate": 6, "bitflip": 3, "bitflip_bits": 8}
    a = mutate(parents, cfg, 7, Collection())
    b = mutate(list(reversed(parents)), cfg, 7, Collection())
    assert [(e.sha256, e.mutation) for e in a] == [(e.sha256, e.mutation) for e in b]
    fams = Counter(mut.family(e.mutation or "") for e in a)
    assert fams["truncate"] == 6 and fams["bitflip"] == 3 and fams["magic_only"] == 5 and fams["empty"] == 1
    assert fams["e_lfanew_past_end"] == 2 and fams["macho_cmdsize_past_end"] == 2
    by_sha = {p.sha256: p for p in parents}
    for e in a:
        if e.mutation and e.mutation.startswith("truncate@"):
            p = by_sha[e.parent]
            assert e.data == p.data[: int(len(p.data) * float(e.mutation.split("@")[1]))]
        if e.mutation and e.mutation.startswith("bitflip:"):
            seed, n = (int(kv.split("=")[1]) for kv in e.mutation.split(":")[1].split(","))
            assert e.data == mut.bitflip(by_sha[e.parent].data, seed, n)[0]


# -- generated files, selection and manifest -------------------------------------------------------
def test_generated_deterministic() -> None:
    cfg = {"random": 4, "zero": 3, "pdf": 2, "tar": 2, "zip": 2}
    a = generate(cfg, 5, [], Collection())
    b = generate(cfg, 5, [], Collection())
    assert [e.data for e in a] == [e.data for e in b]
    kinds = Counter(e.kind for e in a)
    assert kinds == {"random": 4, "zero": 3, "pdf": 2, "tar": 2, "zip": 2}
    for e in a:
        if e.kind == "zero":
            assert set(e.data) <= {0}
        if e.kind == "pdf":
            assert e.data.startswith(b"%PDF-") and e.data.rstrip().endswith(b"%%EOF")
        if e.kind == "tar":
            with tarfile.open(fileobj=io.BytesIO(e.data)) as tf:
                assert tf.getnames()
        if e.kind == "zip":
            assert zipfile.ZipFile(io.BytesIO(e.data)).testzip() is None
    assert generate(cfg, 6, [], Collection())[0].data != a[0].data


def test_manifest_sorted_and_stable() -> None:
    recs = [{"sha256": s, "size": 1, "b": None, "a": 2} for s in ("ff", "00", "7a")]
    text = manifest_text(recs)
    assert text == manifest_text(list(reversed(recs)))
    lines = text.splitlines()
    assert [json.loads(ln)["sha256"] for ln in lines] == ["00", "7a", "ff"]
    assert lines[0] == '{"a":2,"b":null,"sha256":"00","size":1}'


def test_select_from_wheel_is_deterministic(tmp_path: Path) -> None:
    whl = tmp_path / "demo-1.0-py3-none-win_amd64.whl"
    with zipfile.ZipFile(whl, "w") as zf:
        for i in range(10):
            zf.writestr(f"demo/m{i}.pyd", make_pe(0x8664, 0x20B, size=600 + i))
        zf.writestr("demo/README.txt", "hello\n")
        zf.writestr("demo/dup.pyd", make_pe(0x8664, 0x20B, size=600))
    pin = Pin("pypi", "demo", "1.0", platform="win_amd64", take={"small": 4}, as_zip={"small": 1})
    f = Fetched(pin, whl, "1.0", None)
    a = select_from(f, "small", 10_000, Collection())
    b = select_from(f, "small", 10_000, Collection())
    assert [e.origin for e in a] == [e.origin for e in b]
    assert Counter(e.kind for e in a) == {"pe32+": 4, "zip": 1}
    assert len({e.sha256 for e in a}) == 5


def test_write_out_layout_and_cleanup(tmp_path: Path) -> None:
    entries = [Entry(b"x" * i, "random", "s", "1", f"o{i}") for i in (1, 2, 3)]
    recs = [e.record() for e in entries]
    write_out(tmp_path, entries, manifest_text(recs))
    stale = tmp_path / "ab" / ("ab" * 32)
    stale.parent.mkdir(exist_ok=True)
    stale.write_bytes(b"old")
    write_out(tmp_path, entries[:2], manifest_text(recs[:2]))
    files = sorted(p.name for p in tmp_path.glob("??/*"))
    assert files == sorted(e.sha256 for e in entries[:2])
    assert len((tmp_path / "manifest.jsonl").read_text().splitlines()) == 2


def test_pins_file_is_consistent() -> None:
    profiles, pins = corpus.load_pins()
    assert set(profiles) == {"small", "full"}
    for pin in pins:
        assert pin.version and pin.registry in ("debian", "pypi")
        assert set(pin.take) <= {"small", "full"}


def test_cli_offline_error_is_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    def unreachable(*_a: object, **_k: object) -> None:
        raise corpus.RegistryUnreachable("cannot reach PyPI (https://pypi.org/simple): offline")

    monkeypatch.setattr(corpus.Fetcher, "fetch", unreachable)
    rc = corpus.cli(["--profile", "small", str(tmp_path / "out"), "--cache", str(tmp_path / "cache")])
    err = capsys.readouterr().err
    assert rc != 0 and err.count("\n") == 1 and "Traceback" not in err


# -- the real small corpus -------------------------------------------------------------------------
def _corpus_dir() -> Path:
    env = os.environ.get("BINFEAT_CORPUS")
    if not env or not (Path(env) / MANIFEST).is_file():
        pytest.skip("BINFEAT_CORPUS (a built small corpus) is unset or missing")
    return Path(env)


@pytest.fixture(scope="module")
def records() -> list[dict]:
    root = _corpus_dir()
    return [json.loads(ln) for ln in (root / MANIFEST).read_text().splitlines()]


@pytest.mark.corpus
def test_corpus_files_match_manifest(records: list[dict]) -> None:
    root = _corpus_dir()
    text = (root / MANIFEST).read_text()
    assert text == manifest_text(records)  # sorted, keys sorted, canonical
    on_disk = {p.name for p in root.glob("??/*")}
    assert on_disk == {r["sha256"] for r in records}
    for r in records:
        data = (root / r["sha256"][:2] / r["sha256"]).read_bytes()
        assert hashlib.sha256(data).hexdigest() == r["sha256"]
        assert len(data) == r["size"]
        assert detect_format(data) == r["format"]
        assert set(r) == set(MANIFEST_KEYS)


@pytest.mark.corpus
def test_corpus_covers_every_category(records: list[dict]) -> None:
    real = [r for r in records if r["mutation"] is None]
    have = {(r["kind"], r["arch"]) for r in real}
    for need in [("pe32", "x86"), ("pe32+", "x86_64"), ("pe32+", "arm64"), ("macho64", "arm64"),
                 ("macho64", "x86_64"), ("macho32", "x86")]:
        assert need in have, need
    kinds = Counter(r["kind"] for r in real)
    for k in ("dotnet", "elf32", "elf64", "macho-fat", "java-class", "pdf", "zip", "gzip", "tar", "text",
              "random", "zero"):
        assert kinds[k] >= 1, k
    elf = [r for r in real if r["format"] == "elf"]
    assert {r["endian"] for r in elf} == {"little", "big"}
    assert {"x86_64", "x86", "arm64", "arm", "s390x", "ppc64le", "mips64el"} <= {r["arch"] for r in elf}
    fams = Counter(mut.family(r["mutation"]) for r in records if r["mutation"])
    for f in ("truncate", "bitflip", "empty", "magic_only", "e_lfanew_past_end", "pe_nsections",
              "e_shoff_past_end", "e_phoff_past_end", "e_shnum", "macho_cmdsize_past_end",
              "macho_sizeofcmds_past_end", "fat_offset_past_end"):
        assert fams[f] >= 1, f
    assert {r["sha256"] for r in records if r["parent"]} <= {r["sha256"] for r in records} - {
        r["parent"] for r in records}
    parents = {r["parent"] for r in records if r["parent"]}
    assert parents <= {r["sha256"] for r in real}


@pytest.mark.corpus
def test_corpus_size_near_targets(records: list[dict]) -> None:
    """small: ~350 files / ~30 MB, files <= 8 MB; full (also accepted): ~1,000 files / ~300 MB, <= 25 MB."""
    n, total = len(records), sum(r["size"] for r in records)
    (lo_n, hi_n), (lo_b, hi_b), cap = ((250, 500), (15e6, 60e6), 8e6) if n < 600 else (
        (700, 1500), (150e6, 500e6), 25e6)
    assert lo_n <= n <= hi_n, n
    assert lo_b <= total <= hi_b, total
    assert max(r["size"] for r in records) <= cap
