"""A small corpus split over two days, with late labels, for the corpus-update and DAG tests.

Files come from the small sample corpus (``$BINFEAT_CORPUS/manifest.jsonl``) when it exists, else
from real ELF programs in /usr/bin plus a few seeded random-bytes files. Day 1 ingests part of
them; day 2 brings the rest, copies of two day-1 files under new names (already known), the same
new file twice (an in-day duplicate), a labels feed with two late labels for day-1 files, a changed
label, a label for a sample not in the corpus and an invalid row.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import random
import shutil
from dataclasses import dataclass, field
from pathlib import Path

DAY1 = "2026-11-20"
DAY2 = "2026-11-21"
N_DAY1 = 7
N_DAY2_NEW = 5


@dataclass
class Split:
    incoming: Path  # incoming/<date>/...
    labels: Path  # labels/<date>/...
    day1: list[str] = field(default_factory=list)  # sha256 of day-1 files
    day2_new: list[str] = field(default_factory=list)
    expected: dict = field(default_factory=dict)


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _is_elf(path: Path) -> bool:
    try:
        with open(path, "rb") as fh:
            return fh.read(4) == b"\x7fELF"
    except OSError:
        return False


def source_files(n: int) -> list[Path]:
    """n distinct files: sample-corpus entries when available, else /usr/bin ELF + random bytes."""
    corpus = os.environ.get("BINFEAT_CORPUS", "")
    manifest = Path(corpus) / "manifest.jsonl" if corpus else None
    picked: list[Path] = []
    seen: set[str] = set()
    if manifest and manifest.is_file():
        for line in manifest.read_text().splitlines():
            if not line.strip():
                continue
            p = Path(json.loads(line)["path"])
            p = p if p.is_absolute() else manifest.parent / p
            if p.is_file() and 4096 <= p.stat().st_size <= 400_000:
                digest = _sha(p)
                if digest not in seen:
                    seen.add(digest)
                    picked.append(p)
            if len(picked) >= n:
                return picked
    n_random = 3 if len(picked) < n - 3 else 0
    for p in sorted(Path("/usr/bin").iterdir()):
        if len(picked) >= n - n_random:
            break
        if p.is_file() and not p.is_symlink() and 16_000 <= p.stat().st_size <= 200_000 and _is_elf(p):
            digest = _sha(p)
            if digest not in seen:
                seen.add(digest)
                picked.append(p)
    return picked


def build_split(root: Path) -> Split:
    """Write incoming/ and labels/ for DAY1 and DAY2 under root; return what the snapshots hold."""
    total = N_DAY1 + N_DAY2_NEW
    files = source_files(total)
    rnd = random.Random(20261120)
    staging = root / "_random"
    staging.mkdir(parents=True, exist_ok=True)
    i = 0
    while len(files) < total:
        p = staging / f"random-{i}.bin"
        p.write_bytes(rnd.randbytes(rnd.randint(4096, 65536)))
        files.append(p)
        i += 1
    split = Split(incoming=root / "incoming", labels=root / "labels")
    d1 = split.incoming / DAY1
    d2 = split.incoming / DAY2
    d1.mkdir(parents=True)
    d2.mkdir(parents=True)
    for k, src in enumerate(files[:N_DAY1]):
        dst = d1 / f"sample-{k:02d}-{src.name}"
        shutil.copyfile(src, dst)
        split.day1.append(_sha(dst))
    for k, src in enumerate(files[N_DAY1:total]):
        dst = d2 / f"new-{k:02d}-{src.name}"
        shutil.copyfile(src, dst)
        split.day2_new.append(_sha(dst))
    # Two day-1 files again under new names (known: not extracted again)...
    shutil.copyfile(d1 / sorted(os.listdir(d1))[0], d2 / "again-a.bin")
    shutil.copyfile(d1 / sorted(os.listdir(d1))[1], d2 / "again-b.bin")
    # ...and one new file twice in the same day (an in-day duplicate).
    shutil.copyfile(d2 / sorted(p for p in os.listdir(d2) if p.startswith("new-"))[0], d2 / "zz-dup.bin")

    l1 = split.labels / DAY1
    l2 = split.labels / DAY2
    l1.mkdir(parents=True)
    l2.mkdir(parents=True)
    with open(l1 / "labels.jsonl", "w") as fh:  # day 1: four of the seven day-1 files
        for k, sha in enumerate(split.day1[:4]):
            row = {"sha256": sha, "label": "benign", "family": f"fam{k}", "source": "feed-a",
                   "first_seen": f"{DAY1}T0{k}:00:00Z"}  # fmt: skip
            fh.write(json.dumps(row) + "\n")
    unknown = hashlib.sha256(b"not in the corpus").hexdigest()
    with open(l2 / "labels.csv", "w", newline="") as fh:  # day 2: CSV
        w = csv.writer(fh)
        w.writerow(["sha256", "label", "family", "source", "first_seen"])
        w.writerow([split.day2_new[0].upper(), "malicious", "emotet", "feed-b", f"{DAY2}T01:00:00Z"])
        w.writerow([split.day2_new[1], "benign", "", "feed-b", f"{DAY2}T01:00:00Z"])
        w.writerow([split.day1[4], "malicious", "late-1", "feed-b", f"{DAY1}T05:00:00Z"])  # late label
        w.writerow([split.day1[5], "benign", "late-2", "feed-b", f"{DAY1}T06:00:00Z"])  # late label
        w.writerow([split.day1[0], "malicious", "relabelled", "feed-b", f"{DAY2}T02:00:00Z"])  # changed
        w.writerow([unknown, "malicious", "elsewhere", "feed-b", f"{DAY2}T03:00:00Z"])  # not in corpus
        w.writerow(["not-a-hash", "benign", "", "feed-b", ""])  # invalid: dropped
    split.expected = {
        DAY1: {
            "rows": N_DAY1, "labelled": 4, "partitions": {DAY1: N_DAY1}, "new": N_DAY1,
            "discovered": N_DAY1, "known": 0, "duplicates_in_day": 0, "known_labels": 4,
        },
        DAY2: {
            "rows": total, "labelled": 8, "partitions": {DAY1: N_DAY1, DAY2: N_DAY2_NEW}, "new": N_DAY2_NEW,
            "discovered": N_DAY2_NEW + 3, "known": 2, "duplicates_in_day": 1, "known_labels": 9,
            "labels": {split.day1[0]: "malicious", split.day1[4]: "malicious", split.day1[5]: "benign",
                       split.day1[1]: "benign", split.day2_new[0]: "malicious", split.day2_new[1]: "benign"},
        },
    }  # fmt: skip
    return split
