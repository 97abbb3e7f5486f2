"""`binfeat corpus sample`: build a sample corpus of real executables from pinned public packages.

Layout of OUT: every file is stored as OUT/<sha256[:2]>/<sha256>, and OUT/manifest.jsonl holds one
JSON object per file (keys sorted, lines sorted by sha256; no timestamps), so the same pins always
give a byte-identical manifest. Files come from Debian packages (several architectures) and PyPI
wheels (several platforms), plus seeded generated non-executables and seeded damage to the real
executables. Only hash lists and scripts are committed: several sources are GPL.
"""

from __future__ import annotations

import argparse
import fnmatch
import hashlib
import io
import json
import os
import random
import re
import struct
import sys
import tarfile
import time
import zipfile
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from benchmarks import corpus_mutate as mut
from benchmarks.corpus_fetch import CorpusError, Fetched, Fetcher, Pin, RegistryUnreachable
from benchmarks.corpus_sniff import MACHO_THIN_MAGICS, detect_format, fat_slices, sniff, sniff_nonexec

PINS_FILE = Path(__file__).with_name("corpus_pins.json")
MANIFEST = "manifest.jsonl"
GENERATED = "binfeat-generated"
EXEC_KINDS = {"pe32", "pe32+", "dotnet", "elf32", "elf64", "macho32", "macho64", "macho-fat"}
MANIFEST_KEYS = ("arch", "endian", "format", "kind", "mutation", "origin", "parent", "sha256", "size",
                 "source", "version", "warning")
_SHARDED = re.compile(r"^[0-9a-f]{2}$")
_SHA = re.compile(r"^[0-9a-f]{64}$")

__all__ = ["CorpusError", "RegistryUnreachable", "build", "cli", "default_cache", "detect_format",
           "load_pins"]


def default_cache() -> Path:
    """Downloads live outside the repository: $BINFEAT_CACHE or ~/.cache/binfeat/corpus."""
    env = os.environ.get("BINFEAT_CACHE")
    return Path(env) if env else Path.home() / ".cache" / "binfeat" / "corpus"


def load_pins(path: Path = PINS_FILE) -> tuple[dict, list[Pin]]:
    """The pins file: profile settings and the pinned packages."""
    doc = json.loads(path.read_text())
    pins = []
    for raw in doc["packages"]:
        raw = dict(raw)
        for key in ("include", "exclude"):
            raw[key] = tuple(raw.get(key, ()))
        pins.append(Pin(**raw))
    keys = [p.key for p in pins]
    if len(set(keys)) != len(keys):
        raise CorpusError(f"duplicate pins in {path.name}")
    return doc["profiles"], pins


# -- entries -----------------------------------------------------------------------------------
@dataclass
class Entry:
    data: bytes
    kind: str
    source: str
    version: str
    origin: str
    mutation: str | None = None
    parent: str | None = None
    warning: str | None = None

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()

    def record(self) -> dict:
        s = sniff(self.data)
        return {
            "sha256": self.sha256, "size": len(self.data), "format": s.format, "kind": self.kind,
            "arch": s.arch, "endian": s.endian, "source": self.source, "version": self.version,
            "origin": self.origin, "mutation": self.mutation, "parent": self.parent, "warning": self.warning,
        }


class Collection:
    """Entries deduplicated by content: the first one to claim a sha256 keeps it."""

    def __init__(self) -> None:
        self.entries: dict[str, Entry] = {}

    def add(self, entry: Entry) -> bool:
        sha = entry.sha256
        if sha in self.entries:
            return False
        self.entries[sha] = entry
        return True


def manifest_text(records: list[dict]) -> str:
    """One JSON object a line, keys sorted, lines sorted by sha256: stable bytes for equal input."""
    lines = sorted((r["sha256"], json.dumps(r, sort_keys=True, separators=(",", ":"))) for r in records)
    return "".join(line + "\n" for _, line in lines)


# -- candidates from fetched packages ------------------------------------------------------------
def _order(pin: Pin, origin: str) -> str:
    """Deterministic, spread-out order: by a hash of the path, not alphabetically."""
    return hashlib.sha256(f"{pin.key}|{origin}".encode("utf-8", "surrogateescape")).hexdigest()


def _head(path: Path, size: int) -> bytes:
    with path.open("rb") as fh:
        head = fh.read(4096)
        if head[:2] == b"MZ" and len(head) >= 0x40:
            e_lfanew = int.from_bytes(head[0x3C:0x40], "little")
            if 4096 - 512 < e_lfanew < size:
                fh.seek(0)
                head = fh.read(e_lfanew + 512)
    return head


def _files(fetched: Fetched) -> Iterator[tuple[str, int, Callable[[], bytes], Callable[[], bytes]]]:
    """(origin, size, head(), read()) for every regular file in the package."""
    if fetched.pin.registry == "debian":
        root = fetched.path
        for dirpath, dirnames, filenames in os.walk(root):
            dirnames.sort()
            for name in sorted(filenames):
                p = Path(dirpath) / name
                if p.is_symlink() or not p.is_file():
                    continue
                size = p.stat().st_size
                yield (str(p.relative_to(root)), size,
                       lambda p=p, size=size: _head(p, size), lambda p=p: p.read_bytes())
        return
    with zipfile.ZipFile(fetched.path) as zf:
        for info in sorted(zf.infolist(), key=lambda i: i.filename):
            if info.is_dir():
                continue
            data = zf.read(info)
            yield info.filename, len(data), lambda d=data: d, lambda d=data: d


def _jar_classes(origin: str, data: bytes) -> Iterator[tuple[str, bytes]]:
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            for info in sorted(zf.infolist(), key=lambda i: i.filename):
                if info.filename.endswith(".class"):
                    yield f"{origin}!{info.filename}", zf.read(info)
    except zipfile.BadZipFile:
        return


def _matches(pin: Pin, origin: str) -> bool:
    if pin.include and not any(fnmatch.fnmatchcase(origin, g) for g in pin.include):
        return False
    return not any(fnmatch.fnmatchcase(origin, g) for g in pin.exclude)


def select_from(fetched: Fetched, profile: str, cap: int, coll: Collection) -> list[Entry]:
    """Pick `take[profile]` distinct files of the wanted kind from one package."""
    pin = fetched.pin
    want = pin.take.get(profile, 0)
    base = {"source": pin.name, "version": fetched.version, "warning": fetched.warning}
    picked: list[Entry] = []
    if want:
        cands: list[tuple[str, str, Callable[[], bytes]]] = []
        for origin, size, head, read in _files(fetched):
            if not _matches(pin, origin) or size == 0:
                continue
            if pin.select == "java-class":
                if origin.endswith(".jar"):
                    for sub, data in _jar_classes(origin, read()):
                        if len(data) <= cap and sniff_nonexec(data) == "java-class":
                            cands.append((_order(pin, sub), sub, lambda d=data: d))
                continue
            if size > cap:
                continue
            s = sniff(head())
            if s.kind in EXEC_KINDS:
                cands.append((_order(pin, origin), origin, read))
        for _, origin, read in sorted(cands):
            if len(picked) >= want:
                break
            data = read()
            kind = sniff(data).kind or "unknown"
            entry = Entry(data, kind, origin=origin, **base)
            if coll.add(entry):
                picked.append(entry)
    if pin.slices:
        for e in [e for e in picked if e.kind == "macho-fat"]:
            for i, (arch, off, size) in enumerate(fat_slices(e.data)):
                part = e.data[off : off + size]
                if len(part) == size and part[:4] in MACHO_THIN_MAGICS:
                    entry = Entry(part, sniff(part).kind or "unknown", origin=f"{e.origin}#slice={i}:{arch}",
                                  **base)
                    if coll.add(entry):
                        picked.append(entry)
    if pin.as_zip.get(profile, 0) and fetched.path.is_file():
        data = fetched.path.read_bytes()
        if len(data) <= cap:
            entry = Entry(data, "zip", origin=fetched.path.name, **base)
            if coll.add(entry):
                picked.append(entry)
    return picked


def select_docs(fetched: list[Fetched], counts: dict[str, int], cap: int, coll: Collection) -> list[Entry]:
    """Real non-executables from the Debian packages' doc folders: text and gzip."""
    cands: dict[str, list[tuple[str, Fetched, str, Callable[[], bytes]]]] = {"text": [], "gzip": []}
    for f in fetched:
        if f.pin.registry != "debian":
            continue
        for origin, size, _head_fn, read in _files(f):
            if not origin.startswith("usr/share/doc/") or not 0 < size <= min(cap, 1 << 18):
                continue
            kind = "gzip" if origin.endswith(".gz") else "text"
            cands[kind].append((_order(f.pin, origin), f, origin, read))
    picked: list[Entry] = []
    for kind, items in cands.items():
        n = 0
        for _, f, origin, read in sorted(items, key=lambda t: t[0]):
            if n >= counts.get(kind, 0):
                break
            data = read()
            if sniff_nonexec(data) != kind:
                continue
            entry = Entry(data, kind, f.pin.name, f.version, origin, warning=f.warning)
            if coll.add(entry):
                picked.append(entry)
                n += 1
    return picked


# -- generated non-executables --------------------------------------------------------------------
def make_pdf(seed: int) -> bytes:
    """A small valid PDF (one page of seeded text), with a correct xref table."""
    rng = random.Random(seed)
    words = ["binfeat", "sample", "corpus", "feature", "entropy", "section", "header", "import", "string"]
    text = " ".join(rng.choice(words) for _ in range(rng.randint(5, 40)))
    stream = f"BT /F1 12 Tf 72 720 Td ({text}) Tj ET".encode()
    objs = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
        b"/Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length %d >>\nstream\n%s\nendstream" % (len(stream), stream),
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for i, body in enumerate(objs, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n%s\nendobj\n" % (i, body)
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objs) + 1)
    out += b"".join(b"%010d 00000 n \n" % o for o in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objs) + 1, xref)
    return bytes(out)


def make_tar(members: list[tuple[str, bytes]]) -> bytes:
    """Uncompressed ustar archive with fixed metadata (mtime 0, root:root, 0644)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.USTAR_FORMAT) as tf:
        for name, data in members:
            info = tarfile.TarInfo(name[-99:])
            info.size, info.mtime, info.mode = len(data), 0, 0o644
            info.uname = info.gname = "root"
            tf.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def make_zip(members: list[tuple[str, bytes]]) -> bytes:
    """Stored (uncompressed, so independent of the zlib version) zip with a fixed date."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as zf:
        for name, data in members:
            info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
            info.external_attr = 0o644 << 16
            zf.writestr(info, data)
    return buf.getvalue()


def generate(cfg: dict, seed: int, texts: list[Entry], coll: Collection) -> list[Entry]:
    """Seeded random and zero-filled data, PDFs, tar and zip archives."""
    rng = random.Random(f"{seed}:generated")
    out: list[Entry] = []
    ver = f"seed={seed}"

    def add(data: bytes, kind: str, origin: str) -> None:
        e = Entry(data, kind, GENERATED, ver, origin)
        if coll.add(e):
            out.append(e)

    sizes = [1, 16, 512, 4096, 65536, 1 << 20]
    for i in range(cfg.get("random", 0)):
        n = sizes[i % len(sizes)] + rng.randrange(1024)
        add(random.Random(f"{seed}:random:{i}").randbytes(n), "random", f"random/{i}:{n}")
    for i in range(cfg.get("zero", 0)):
        n = sizes[i % len(sizes)] * (1 + i // len(sizes))
        add(bytes(n), "zero", f"zero/{i}:{n}")
    for i in range(cfg.get("pdf", 0)):
        add(make_pdf(rng.randrange(1 << 32)), "pdf", f"pdf/{i}")
    members = [(e.origin, e.data) for e in sorted(texts, key=lambda e: e.sha256)]
    if not members:
        members = [(f"lorem{i}.txt", (b"lorem ipsum %d\n" % i) * 50) for i in range(4)]
    for i in range(cfg.get("tar", 0)):
        chosen = random.Random(f"{seed}:tar:{i}").sample(members, min(len(members), 1 + i % 4))
        add(make_tar(chosen), "tar", f"tar/{i}")
    for i in range(cfg.get("zip", 0)):
        chosen = random.Random(f"{seed}:zip:{i}").sample(members, min(len(members), 1 + i % 4))
        add(make_zip(chosen), "zip", f"zip/{i}")
    return out


# -- malformed ------------------------------------------------------------------------------------
def _group(e: Entry) -> str | None:
    if e.kind in ("pe32", "pe32+", "dotnet"):
        return "pe"
    if e.kind in ("elf32", "elf64"):
        return "elf"
    if e.kind in ("macho32", "macho64"):
        return "macho"
    return "macho-fat" if e.kind == "macho-fat" else None


def mutate(parents: list[Entry], cfg: dict, seed: int, coll: Collection) -> list[Entry]:
    """Seeded damage to real executables: structural, truncation, bit flips, empty, magic-only."""
    parents = sorted(parents, key=lambda e: e.sha256)
    out: list[Entry] = []

    def add(parent: Entry | None, data: bytes, desc: str) -> bool:
        if parent is None:
            e = Entry(data, "malformed", GENERATED, f"seed={seed}", desc, mutation=desc)
        else:
            e = Entry(data, "malformed", parent.source, parent.version, parent.origin, mutation=desc,
                      parent=parent.sha256, warning=parent.warning)
        if coll.add(e):
            out.append(e)
            return True
        return False

    per = cfg.get("structural", 0)
    for group, fns in mut.STRUCTURAL.items():
        pool = [p for p in parents if _group(p) == group]
        for fn in fns:
            order = pool[:]
            random.Random(f"{seed}:{fn.__name__}").shuffle(order)
            n = 0
            for p in order:
                if n >= per:
                    break
                try:
                    data, desc = fn(p.data)
                except (mut.MutationError, struct.error):
                    continue
                n += add(p, data, desc)
    rng = random.Random(f"{seed}:truncate")
    pool = [p for p in parents if len(p.data) > 256]
    for i, p in enumerate(rng.sample(pool, min(len(pool), cfg.get("truncate", 0)))):
        add(p, *mut.truncate(p.data, mut.TRUNCATE_FRACTIONS[i % len(mut.TRUNCATE_FRACTIONS)]))
    rng = random.Random(f"{seed}:bitflip")
    for p in rng.sample(pool, min(len(pool), cfg.get("bitflip", 0))):
        add(p, *mut.bitflip(p.data, rng.randrange(1 << 32), cfg.get("bitflip_bits", 16)))
    for name in sorted(mut.MAGIC_ONLY):
        data, desc = mut.magic_only(name)
        add(None, data, desc)
    add(None, *mut.empty())
    return out



# -- output ------------------------------------------------------------------------------------
def write_out(out: Path, entries: list[Entry], manifest: str) -> None:
    """Store files by sha256, drop files of an older corpus, then (atomically) the manifest."""
    out.mkdir(parents=True, exist_ok=True)
    keep = set()
    for e in entries:
        sha = e.sha256
        keep.add(sha)
        path = out / sha[:2] / sha
        if path.exists() and path.stat().st_size == len(e.data):
            continue
        path.parent.mkdir(exist_ok=True)
        tmp = path.with_name(sha + ".tmp")
        tmp.write_bytes(e.data)
        tmp.replace(path)
    for sub in out.iterdir():
        if sub.is_dir() and _SHARDED.match(sub.name):
            for f in sub.iterdir():
                if f.name not in keep and (_SHA.match(f.name) or f.name.endswith(".tmp")):
                    f.unlink()
            if not any(sub.iterdir()):
                sub.rmdir()
    path = out / MANIFEST
    if not path.exists() or path.read_text() != manifest:
        tmp = path.with_name(MANIFEST + ".tmp")
        tmp.write_text(manifest)
        tmp.replace(path)


def summarize(records: list[dict]) -> dict:
    def count(fn: Callable[[dict], str]) -> dict[str, int]:
        return dict(sorted(Counter(fn(r) for r in records).items()))

    return {
        "files": len(records),
        "bytes": sum(r["size"] for r in records),
        "by_format": count(lambda r: r["format"]),
        "by_arch": count(lambda r: r["arch"] or "-"),
        "by_kind": count(lambda r: r["kind"]),
        "by_format_arch": count(lambda r: f"{r['format']}/{r['arch'] or '-'}"),
        "by_mutation": count(lambda r: mut.family(r["mutation"]) if r["mutation"] else "-"),
        "warnings": sorted({r["warning"] for r in records if r["warning"]}),
    }


def build(profile: str, out: Path, *, cache: Path | None = None, quiet: bool = False,
          pins_file: Path = PINS_FILE) -> dict:
    """Build the `profile` corpus into `out`; returns the summary (counts, bytes, warnings).

    Warnings (pin fallbacks) always go to stderr; `quiet` only silences progress messages."""
    t0 = time.monotonic()
    profiles, pins = load_pins(pins_file)
    if profile not in profiles:
        raise CorpusError(f"unknown profile {profile!r} (choose from {', '.join(sorted(profiles))})")
    cfg = profiles[profile]
    cap, seed = int(cfg["max_file_bytes"]), int(cfg["seed"])
    cache = cache or default_cache()
    cache.mkdir(parents=True, exist_ok=True)
    used = [p for p in pins if p.used_in(profile)]

    def warn(msg: str) -> None:
        sys.stderr.write(f"binfeat corpus: warning: {msg}\n")

    def progress(msg: str) -> None:
        if not quiet:
            sys.stderr.write(f"binfeat corpus: {msg}\n")

    fetched = Fetcher(cache, lambda _msg: None, progress).fetch(used)
    for msg in sorted({f.warning for f in fetched.values() if f.warning}):
        warn(msg)  # on every run, not only the one that fell back
    coll = Collection()
    real: list[Entry] = []
    for pin in used:
        real += select_from(fetched[pin.key], profile, cap, coll)
    docs = select_docs([fetched[p.key] for p in used], cfg.get("docs", {}), cap, coll)
    gen = generate(cfg.get("generated", {}), seed, [d for d in docs if d.kind == "text"], coll)
    parents = [e for e in real if e.kind in EXEC_KINDS]
    bad = mutate(parents, cfg.get("mutations", {}), seed, coll)
    entries = real + docs + gen + bad
    records = [e.record() for e in entries]
    manifest = manifest_text(records)
    write_out(out, entries, manifest)
    summary = summarize(records)
    summary.update(profile=profile, out=str(out), seconds=round(time.monotonic() - t0, 1),
                   manifest_sha256=hashlib.sha256(manifest.encode()).hexdigest())
    return summary


def format_summary(s: dict) -> str:
    lines = [f"corpus {s['profile']} -> {s['out']}: {s['files']} files, {s['bytes']:,} bytes "
             f"({s['bytes'] / 1e6:.1f} MB) in {s['seconds']}s; manifest sha256 {s['manifest_sha256'][:16]}"]
    for key in ("by_format", "by_arch", "by_kind", "by_mutation"):
        lines.append(f"  {key[3:]}: " + ", ".join(f"{k}={v}" for k, v in s[key].items()))
    lines += [f"  warning: {w}" for w in s["warnings"]]
    return "\n".join(lines) + "\n"


def cli(argv: list[str]) -> int:
    """`binfeat corpus sample --profile small|full OUT [--quiet] [--cache DIR]`."""
    ap = argparse.ArgumentParser(
        prog="binfeat corpus sample",
        description="Build a sample corpus of real executables from pinned packages.")
    ap.add_argument("--profile", choices=("small", "full"), default="small")
    ap.add_argument("out", type=Path, metavar="OUT")
    ap.add_argument("--quiet", action="store_true", help="print nothing but warnings and errors")
    ap.add_argument("--cache", type=Path, default=None,
                    help="download cache (default $BINFEAT_CACHE or ~/.cache/binfeat/corpus)")
    ap.add_argument("--pins", type=Path, default=PINS_FILE, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    try:
        summary = build(args.profile, args.out, cache=args.cache, quiet=args.quiet, pins_file=args.pins)
    except CorpusError as exc:
        sys.stderr.write(f"binfeat corpus: error: {exc}\n")
        return 3 if isinstance(exc, RegistryUnreachable) else 2
    except OSError as exc:
        sys.stderr.write(f"binfeat corpus: error: {exc}\n")
        return 2
    if not args.quiet:
        sys.stdout.write(format_summary(summary))
    return 0


if __name__ == "__main__":
    sys.exit(cli(sys.argv[1:]))

