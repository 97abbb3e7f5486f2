"""`binfeat corpus sample`: build a sample corpus of real executables from pinned public packages.

Layout of OUT: every file is stored as OUT/<sha256[:2]>/<sha256>, and OUT/manifest.jsonl holds one
JSON object per file (keys sorted, lines sorted by sha256; no timestamps), so the same pins always
give a byte-identical manifest. Files come from Debian packages (several architectures) and PyPI
wheels (several platforms), plus seeded generated non-executables and seeded damage to the real
executables. Only hash lists and scripts are committed: several sources are GPL.

The pieces: :mod:`~benchmarks.corpus_fetch` (downloads), :mod:`~benchmarks.corpus_select` (which
files), :mod:`~benchmarks.corpus_generate` (non-executables), :mod:`~benchmarks.corpus_malformed`
(damage, with :mod:`~benchmarks.corpus_mutate`), :mod:`~benchmarks.corpus_layout` (files and manifest).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

from benchmarks import corpus_mutate as mut
from benchmarks.corpus_entry import Collection, Entry
from benchmarks.corpus_fetch import CorpusError, Fetcher, Pin, RegistryUnreachable
from benchmarks.corpus_generate import generate
from benchmarks.corpus_layout import manifest_text, write_out
from benchmarks.corpus_malformed import mutate
from benchmarks.corpus_select import select_docs, select_from
from benchmarks.corpus_sniff import EXECUTABLE_KINDS

PINS_FILE = Path(__file__).with_name("corpus_pins.json")

__all__ = ["CorpusError", "RegistryUnreachable", "build", "cli", "default_cache", "load_pins"]


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
    parents = [e for e in real if e.kind in EXECUTABLE_KINDS]
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

