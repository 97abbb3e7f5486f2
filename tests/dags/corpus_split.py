"""A corpus split over two days, with late labels, for the corpus-update and DAG tests.

With ``$BINFEAT_CORPUS`` set to a built sample corpus (``make test`` sets it), EVERY file of the
corpus takes part: its manifest lists sha256 (no path; a file lives at
``<corpus>/<sha256[:2]>/<sha256>``), the files are ordered by sha256, day 1 ingests the first half
and day 2 the rest. Without it, a crafted set of 12 files stands in (real ELF programs from
/usr/bin plus seeded random bytes; 7 on day 1, 5 on day 2). ``build_split(root, few=True)`` takes
a handful instead (6 on day 1, 3 new on day 2): small PE, ELF and Mach-O files of the corpus, or
crafted ones without it, for tests whose subject is not the extraction (the DAG runs).

Either way day 2 also brings copies of two day-1 files under new names (already known), the same
new file twice (an in-day duplicate), and a labels feed with two late labels for day-1 files, a
changed label, a label for a sample not in the corpus and an invalid row. ``Split.expected``
holds what the corpus as of each date and each run summary must contain, derived from the split itself.
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
# The crafted fallback's sizes (no sample corpus).
CRAFTED_DAY1 = 7
CRAFTED_DAY2_NEW = 5
# Fewer usable corpus files than this and the crafted set is used: the labels below need at least
# six day-1 files and two new day-2 files.
MIN_CORPUS_FILES = CRAFTED_DAY1 + CRAFTED_DAY2_NEW
# The few-files split: as few as the labels need, plus one more new file on day 2.
FEW_DAY1 = 6
FEW_DAY2_NEW = 3
FEW_FORMATS = ("pe", "elf", "macho")
FEW_SIZES = (10_000, 300_000)  # bytes: small, but real programs


@dataclass
class Split:
    incoming: Path  # incoming/<date>/...
    labels: Path  # labels/<date>/...
    source: str = "crafted"  # "corpus" (every file of $BINFEAT_CORPUS) or "crafted"
    day1: list[str] = field(default_factory=list)  # sha256 of day-1 files, in file-name order
    day2_new: list[str] = field(default_factory=list)  # sha256 of day 2's new files
    expected: dict = field(default_factory=dict)  # date -> what the corpus as of that date holds

    @property
    def n_day1(self) -> int:
        return len(self.day1)

    @property
    def n_day2_new(self) -> int:
        return len(self.day2_new)


def _sha(path: Path) -> str:
    with open(path, "rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


def _is_elf(path: Path) -> bool:
    try:
        with open(path, "rb") as fh:
            return fh.read(4) == b"\x7fELF"
    except OSError:
        return False


def corpus_root() -> Path | None:
    """``$BINFEAT_CORPUS`` when it names a built corpus (one with a manifest.jsonl), else None."""
    corpus = os.environ.get("BINFEAT_CORPUS", "")
    if corpus and (Path(corpus) / "manifest.jsonl").is_file():
        return Path(corpus)
    return None


def corpus_files(root: Path) -> list[Path]:
    """Every file the corpus manifest lists, at ``<root>/<sha256[:2]>/<sha256>``, ordered by sha256.

    Entries whose file is missing are left out (a partly built corpus still works); so is a second
    entry with the same sha256.
    """
    by_sha: dict[str, Path] = {}
    with open(root / "manifest.jsonl", encoding="utf-8") as fh:
        for line in fh:
            if not line.strip():
                continue
            sha = str(json.loads(line).get("sha256") or "").lower()
            if len(sha) != 64:
                continue
            path = root / sha[:2] / sha
            if sha not in by_sha and path.is_file():
                by_sha[sha] = path
    return [by_sha[sha] for sha in sorted(by_sha)]


def crafted_files(n: int, staging: Path) -> list[Path]:
    """n distinct files: ELF programs from /usr/bin, topped up with seeded random bytes (at least 3)."""
    picked: list[Path] = []
    seen: set[str] = set()
    for p in sorted(Path("/usr/bin").iterdir()):
        if len(picked) >= n - 3:
            break
        if p.is_file() and not p.is_symlink() and 16_000 <= p.stat().st_size <= 200_000 and _is_elf(p):
            digest = _sha(p)
            if digest not in seen:
                seen.add(digest)
                picked.append(p)
    rnd = random.Random(20261120)
    staging.mkdir(parents=True, exist_ok=True)
    i = 0
    while len(picked) < n:
        p = staging / f"random-{i}.bin"
        p.write_bytes(rnd.randbytes(rnd.randint(4096, 65536)))
        picked.append(p)
        i += 1
    return picked


def small_executables(root: Path, n: int) -> list[Path]:
    """n files of the corpus at ``root``, PE, ELF and Mach-O in turn, each of FEW_SIZES bytes, the
    first by sha256 (deterministic); fewer when the corpus lacks them."""
    with open(root / "manifest.jsonl", encoding="utf-8") as fh:
        entries = sorted((json.loads(line) for line in fh if line.strip()), key=lambda e: e.get("sha256", ""))
    by_format: dict[str, list[Path]] = {fmt: [] for fmt in FEW_FORMATS}
    for e in entries:
        sha = str(e.get("sha256") or "").lower()
        path = root / sha[:2] / sha
        if e.get("format") in by_format and FEW_SIZES[0] <= int(e.get("size") or 0) <= FEW_SIZES[1] and path.is_file():
            by_format[e["format"]].append(path)
    picked: list[Path] = []
    while len(picked) < n and any(by_format.values()):
        for fmt in FEW_FORMATS:
            if by_format[fmt] and len(picked) < n:
                picked.append(by_format[fmt].pop(0))
    return picked


def source_files(staging: Path, few: bool = False) -> tuple[str, list[Path], int]:
    """(source, files, how many go to day 1): the whole sample corpus when present (a few of its
    files with ``few``), else crafted files."""
    root = corpus_root()
    if few:
        n = FEW_DAY1 + FEW_DAY2_NEW
        files = small_executables(root, n) if root else []
        if len(files) == n:
            return "corpus", files, FEW_DAY1
        return "crafted", crafted_files(n, staging), FEW_DAY1
    files = corpus_files(root) if root else []
    if len(files) >= MIN_CORPUS_FILES:
        return "corpus", files, len(files) // 2  # day 1: the first half by sha256
    return "crafted", crafted_files(CRAFTED_DAY1 + CRAFTED_DAY2_NEW, staging), CRAFTED_DAY1


def build_split(root: Path, *, few: bool = False) -> Split:
    """Write incoming/ and labels/ for DAY1 and DAY2 under root; return what each date holds."""
    source, files, n1 = source_files(root / "_random", few)
    split = Split(incoming=root / "incoming", labels=root / "labels", source=source)
    d1 = split.incoming / DAY1
    d2 = split.incoming / DAY2
    d1.mkdir(parents=True)
    d2.mkdir(parents=True)
    sizes: dict[str, int] = {}
    # Names sort in list order, so day1[0] is the first file of the day-1 folder.
    for k, src in enumerate(files[:n1]):
        dst = d1 / f"sample-{k:04d}-{src.name}"
        shutil.copyfile(src, dst)
        split.day1.append(_sha(dst))
        sizes[split.day1[-1]] = dst.stat().st_size
    for k, src in enumerate(files[n1:]):
        dst = d2 / f"new-{k:04d}-{src.name}"
        shutil.copyfile(src, dst)
        split.day2_new.append(_sha(dst))
        sizes[split.day2_new[-1]] = dst.stat().st_size
    assert len(set(split.day1) | set(split.day2_new)) == len(files), "the split's files must be distinct"
    # Two day-1 files again under new names (known: not extracted again)...
    shutil.copyfile(d1 / sorted(os.listdir(d1))[0], d2 / "again-a.bin")
    shutil.copyfile(d1 / sorted(os.listdir(d1))[1], d2 / "again-b.bin")
    # ...and one new file twice in the same day (an in-day duplicate; the smaller path is kept).
    shutil.copyfile(d2 / sorted(p for p in os.listdir(d2) if p.startswith("new-"))[0], d2 / "zz-dup.bin")
    repeats = {"known": 2, "duplicates_in_day": 1}

    day1_feed = [  # day 1 (JSONL): the first four day-1 files
        {"sha256": sha, "label": "benign", "family": f"fam{k}", "source": "feed-a",
         "first_seen": f"{DAY1}T0{k}:00:00Z"}
        for k, sha in enumerate(split.day1[:4])
    ]  # fmt: skip
    unknown = hashlib.sha256(b"not in the corpus").hexdigest()
    day2_feed = [  # day 2 (CSV): sha256, label, family, source, first_seen
        [split.day2_new[0].upper(), "malicious", "emotet", "feed-b", f"{DAY2}T01:00:00Z"],  # upper-case hex
        [split.day2_new[1], "benign", "", "feed-b", f"{DAY2}T01:00:00Z"],
        [split.day1[4], "malicious", "late-1", "feed-b", f"{DAY1}T05:00:00Z"],  # late label
        [split.day1[5], "benign", "late-2", "feed-b", f"{DAY1}T06:00:00Z"],  # late label
        [split.day1[0], "malicious", "relabelled", "feed-b", f"{DAY2}T02:00:00Z"],  # changed
        [unknown, "malicious", "elsewhere", "feed-b", f"{DAY2}T03:00:00Z"],  # not in the corpus
    ]  # fmt: skip
    invalid_day2 = [["not-a-hash", "benign", "", "feed-b", ""]]  # dropped
    l1 = split.labels / DAY1
    l2 = split.labels / DAY2
    l1.mkdir(parents=True)
    l2.mkdir(parents=True)
    with open(l1 / "labels.jsonl", "w") as fh:
        for row in day1_feed:
            fh.write(json.dumps(row) + "\n")
    with open(l2 / "labels.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["sha256", "label", "family", "source", "first_seen"])
        w.writerows(day2_feed + invalid_day2)

    # What each date holds: the label state is every label seen so far, the newest day winning.
    state1 = {r["sha256"]: r["label"] for r in day1_feed}
    state2 = {**state1, **{r[0].lower(): r[1] for r in day2_feed}}
    corpus1 = set(split.day1)
    corpus2 = corpus1 | set(split.day2_new)
    n2 = split.n_day2_new
    bytes1 = sum(sizes[s] for s in split.day1)
    bytes2_new = sum(sizes[s] for s in split.day2_new)
    bytes2_in = sum(p.stat().st_size for p in d2.iterdir())
    split.expected = {
        DAY1: {
            "rows": n1, "carried": 0, "extracted": n1, "partitions": [(DAY1, n1)],
            "labels": {s: lab for s, lab in state1.items() if s in corpus1},
            "labelled": sum(1 for s in state1 if s in corpus1), "known_labels": len(state1),
            "invalid_labels": 0,
            "files": {"discovered": n1, "unreadable": 0, "duplicates_in_day": 0, "known": 0, "new": n1,
                      "reextracted": 0, "extracted": n1, "rows": n1},
            "bytes": {"discovered": bytes1, "extracted": bytes1},
        },
        DAY2: {
            "rows": n1 + n2, "carried": n1, "extracted": n2, "partitions": [(DAY1, n1), (DAY2, n2)],
            "labels": {s: lab for s, lab in state2.items() if s in corpus2},
            "labelled": sum(1 for s in state2 if s in corpus2), "known_labels": len(state2),
            "invalid_labels": len(invalid_day2),
            "files": {"discovered": n2 + repeats["known"] + repeats["duplicates_in_day"], "unreadable": 0,
                      **repeats, "new": n2, "reextracted": 0, "extracted": n2, "rows": n1 + n2},
            "bytes": {"discovered": bytes2_in, "extracted": bytes2_new},
        },
    }  # fmt: skip
    return split
