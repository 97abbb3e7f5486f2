"""The fuzz: seeded mutants of real executables through ``extract.extract_batch``, every row checked.

    python -m benchmarks.fuzz --count 10000 --seed 1             # corpus/small (or $BINFEAT_CORPUS)
    python -m benchmarks.fuzz --count 500 --corpus DIR            # a sample corpus, or any folder
    python -m benchmarks.fuzz --seed 1 --index 4711 --write m.bin # rebuild one mutant

Mutant ``(seed, index)`` is rebuilt from those two numbers and the parents (the corpus's undamaged
executables up to ``--max-parent-bytes``, in sha256 order; the run prints their fingerprint). A folder
without a manifest gives as parents every file up to that size whose magic says executable. Each
row must hold the contract: one per input, in order, the right path, a known status, a one-line
non-empty ``error`` unless ok, the sha256, md5 and size of the mutant's bytes, the format an
independent sniff gives, a full vector without NaN when ok, none when error. A sample of mutants is
extracted a second time, in another order and with the bytes given in the batch's ``content`` column
instead of read from the paths, and must give the same rows. Parser crashes, hangs and
out-of-memory kills, and exceptions raised inside feature groups, are counted and listed with the
(seed, index) that reproduces them. Exit status: 0 when no invariant broke, 1 otherwise.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import resource
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa

from benchmarks.corpus_mutate import Mutant, Mutator
from benchmarks.corpus_sniff import EXECUTABLE_KINDS, detect_format, sniff

STATUSES = {"ok", "partial", "error"}
FAULTS = {  # the parser worker's failures, by the start of their message
    "crashed": "parser crashed", "timed out": "parser timed out", "out of memory": "parser ran out of memory",
    "worker died": "parser worker",
}
REPEAT_EVERY = 50  # every 50th mutant is extracted twice


@dataclass
class Parents:
    names: list[str]
    datas: list[bytes]
    source: str

    @property
    def fingerprint(self) -> str:
        return hashlib.sha256("\n".join(self.names).encode()).hexdigest()[:16]


def corpus_parents(root: Path, max_bytes: int = 256 << 10) -> Parents:
    """The sample corpus's undamaged executables of at most ``max_bytes``, in sha256 order."""
    with open(root / "manifest.jsonl", encoding="utf-8") as f:
        records = [json.loads(line) for line in f if line.strip()]
    picked = sorted(r["sha256"] for r in records
                    if r.get("kind") in EXECUTABLE_KINDS and not r.get("mutation") and r["size"] <= max_bytes)
    datas = [(root / sha[:2] / sha).read_bytes() for sha in picked]
    return Parents(picked, datas, str(root))


def folder_parents(root: Path, max_bytes: int = 256 << 10) -> Parents:
    """A folder's files of at most ``max_bytes`` that sniff as executables, in sha256 order (each
    content once), for a folder without a corpus manifest."""
    found: dict[str, bytes] = {}
    for path in sorted(root.rglob("*")):
        if path.is_file() and not path.is_symlink() and path.stat().st_size <= max_bytes:
            data = path.read_bytes()
            if sniff(data).kind in EXECUTABLE_KINDS:
                found.setdefault(hashlib.sha256(data).hexdigest(), data)
    names = sorted(found)
    return Parents(names, [found[n] for n in names], str(root))


def parents_of(root: Path, max_bytes: int = 256 << 10) -> Parents:
    """The parents of a sample corpus (by its manifest), else of a plain folder."""
    if (root / "manifest.jsonl").is_file():
        return corpus_parents(root, max_bytes)
    return folder_parents(root, max_bytes)


def write_mutants(mutants: Sequence[Mutant], folder: Path) -> list[str]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for m in mutants:
        path = folder / f"mutant-{m.seed}-{m.index}"
        path.write_bytes(m.data)
        paths.append(str(path))
    return paths


def check_rows(rows: list[dict], paths: Sequence[str], datas: Sequence[bytes],
               vector_length: int) -> list[tuple[int, str]]:
    """Every way the rows break the contract: (input position, one line), empty when they hold it."""
    if len(rows) != len(paths):
        return [(0, f"{len(rows)} rows for {len(paths)} inputs")]
    problems = []
    for i, (row, path, data) in enumerate(zip(rows, paths, datas, strict=True)):
        status, error, vector = row["status"], row["error"], row["vector"]
        expected = {"path": path, "sha256": hashlib.sha256(data).hexdigest(), "md5": hashlib.md5(data).hexdigest(),
                    "size": len(data), "format": detect_format(data)}
        wrong = [f"{k}={row[k]!r} (expected {v!r})" for k, v in expected.items() if row[k] != v]
        if status not in STATUSES:
            wrong.append(f"status {status!r}")
        if (error is None) != (status == "ok") or (error is not None and (not error.strip() or "\n" in error)):
            wrong.append(f"status {status} with error {error!r}")
        if status == "error" and vector is not None:
            wrong.append("an error row with a vector")
        if status != "error" and (vector is None or len(vector) != vector_length):
            wrong.append(f"vector of {None if vector is None else len(vector)} numbers")
        elif status == "ok" and any(math.isnan(x) for x in vector):
            wrong.append("NaN in an ok row's vector")
        problems += [(i, f"{os.path.basename(path)}: {w}") for w in wrong]
    return problems


def row_digest(row: dict) -> str:
    """The row without its path, as one hash (NaN equals NaN, -0.0 differs from 0.0)."""
    return hashlib.sha256(repr(sorted((k, v) for k, v in row.items() if k != "path")).encode()).hexdigest()


def fault_of(error: str | None) -> str | None:
    for name, start in FAULTS.items():
        if error and error.startswith(start):
            return name
    return None


def group_exceptions(error: str | None) -> list[tuple[str, str]]:
    """(``group: ExceptionType``, the message) for each group that raised (the parse's own failures
    and the parser worker's excluded)."""
    out = []
    for part in (error or "").split("; "):
        group, _, message = part.partition(": ")
        stage = ""
        if message.startswith("vectorise: "):
            stage, message = "vectorise ", message[len("vectorise: "):]
        kind = message.split(":", 1)[0]
        if group and not group.startswith(("parse(", "structure", "parser")) and kind.endswith(("Error", "Exception")):
            out.append((f"{group}: {stage}{kind}", part))
    return out


@dataclass
class Report:
    seed: int
    parents: str
    fingerprint: str
    parent_count: int = 0
    rows: int = 0
    mutants: int = 0
    statuses: Counter = field(default_factory=Counter)
    formats: Counter = field(default_factory=Counter)
    operations: Counter = field(default_factory=Counter)
    reasons: Counter = field(default_factory=Counter)  # what the error messages name (parse(pe), a group, ...)
    faults: dict[str, list[int]] = field(default_factory=dict)
    group_exceptions: dict[str, list[int]] = field(default_factory=dict)
    examples: dict[str, str] = field(default_factory=dict)  # the first message of each exception kind
    problems: list[str] = field(default_factory=list)
    repeated: int = 0
    wall_s: float = 0.0
    cpu_s: float = 0.0
    worker_cpu_s: float = 0.0


def run(parents: Parents, seed: int, count: int, *, start: int = 0, batch: int = 256, options=None,
        workdir: Path | None = None, progress=None) -> Report:
    """Extract ``count`` mutants from ``start`` in batches; the report holds every count and problem."""
    import extract
    from extract.extractor import extractor_for
    from extract.output_contract import vector_length

    mutator = Mutator(parents.datas)
    report = Report(seed, parents.source, parents.fingerprint, len(parents.names))
    digests: dict[int, str] = {}
    wall0, self0, kids0 = time.monotonic(), _cpu(resource.RUSAGE_SELF), _cpu(resource.RUSAGE_CHILDREN)
    with tempfile.TemporaryDirectory(prefix="binfeat-fuzz-", dir=workdir) as tmp:
        folder = Path(tmp)

        def extract_mutants(indices: list[int], with_content: bool = False) -> tuple[list[Mutant], list[dict]]:
            mutants = [mutator.mutant(seed, i) for i in indices]
            paths = write_mutants(mutants, folder)
            columns = {"path": pa.array(paths, pa.string())}
            if with_content:  # the bytes given by the caller (as the job does for S3), not read from paths
                columns["content"] = pa.array([m.data for m in mutants], pa.binary())
            try:
                rows = extract.extract_batch(pa.record_batch(columns), options)
                listed = rows.to_pylist()
            except Exception as exc:  # the contract says never: a broken invariant, not a crash of the fuzz
                report.problems.append(f"mutants {indices[0]}..{indices[-1]}: extract_batch raised {exc!r}")
                listed = []
            report.problems += [f"mutant {seed}/{mutants[i].index}: {p}"
                                for i, p in check_rows(listed, paths, [m.data for m in mutants], vector_length())]
            for path in paths:
                os.unlink(path)
            return mutants, listed

        for at in range(start, start + count, batch):
            indices = list(range(at, min(at + batch, start + count)))
            mutants, rows = extract_mutants(indices)
            report.mutants += len(mutants)
            report.rows += len(rows)
            for m, row in zip(mutants, rows, strict=False):
                report.statuses[row["status"]] += 1
                report.formats[row["format"]] += 1
                report.operations.update(m.families)
                report.reasons.update(part.split(": ", 1)[0] for part in (row["error"] or "").split("; ") if part)
                if (fault := fault_of(row["error"])) is not None:
                    report.faults.setdefault(fault, []).append(m.index)
                for kind, message in group_exceptions(row["error"]):
                    report.group_exceptions.setdefault(kind, []).append(m.index)
                    report.examples.setdefault(kind, message[:300])
                if m.index % REPEAT_EVERY == 0:
                    digests[m.index] = row_digest(row)
            if progress:
                progress(report)
        again = sorted(digests, reverse=True)  # another order, other batch neighbours, bytes given inline
        for i in range(0, len(again), batch):
            mutants, rows = extract_mutants(again[i : i + batch], with_content=True)
            report.repeated += len(rows)
            report.problems += [f"mutant {seed}/{m.index}: a second extraction gave another row"
                                for m, row in zip(mutants, rows, strict=False) if row_digest(row) != digests[m.index]]
    extractor_for(options).close()  # the parser worker exits: its CPU time joins the children's
    report.wall_s = time.monotonic() - wall0
    report.worker_cpu_s = _cpu(resource.RUSAGE_CHILDREN) - kids0
    report.cpu_s = _cpu(resource.RUSAGE_SELF) - self0 + report.worker_cpu_s
    return report


def _cpu(who: int) -> float:
    r = resource.getrusage(who)
    return r.ru_utime + r.ru_stime


def summary(report: Report, parents: Parents, mutator: Mutator | None = None) -> str:
    def counts(c: Counter) -> str:
        return ", ".join(f"{k} {v}" for k, v in sorted(c.items(), key=lambda kv: (-kv[1], kv[0]))) or "none"

    def where(indices: list[int]) -> str:
        shown = ", ".join(str(i) for i in indices[:8])
        return f"{len(indices)} (index {shown}{', ...' if len(indices) > 8 else ''})"

    lines = [
        f"fuzz: seed {report.seed}, {report.mutants} mutants of {len(parents.names)} parents "
        f"({parents.source}, fingerprint {parents.fingerprint})",
        f"rows {report.rows} for {report.mutants} inputs; status: {counts(report.statuses)}",
        f"formats: {counts(report.formats)}",
        f"operations: {counts(report.operations)}",
        f"what the errors name: {counts(report.reasons)}",
        "parser faults: " + (", ".join(f"{k} {where(v)}" for k, v in sorted(report.faults.items())) or "none"),
        "exceptions inside groups: " + ("none" if not report.group_exceptions else ""),
        *[f"  {k} {where(v)}: {report.examples[k]}" for k, v in sorted(report.group_exceptions.items())],
        f"second extraction of {report.repeated} mutants in another order, bytes given inline: "
        + ("same rows" if not any("second extraction" in p for p in report.problems) else "DIFFERENT rows"),
        f"invariants broken: {len(report.problems)}",
        *[f"  {p}" for p in report.problems[:50]],
        f"wall {report.wall_s:.1f} s, CPU {report.cpu_s:.1f} s (parser workers {report.worker_cpu_s:.1f} s), "
        f"{report.mutants / max(report.wall_s, 1e-9):.1f} mutants/s",
    ]
    if mutator is not None:
        listed = sorted({i for v in [*report.faults.values(), *report.group_exceptions.values()] for i in v[:3]})
        lines += [f"  mutant {i}: parent {parents.names[mutator.mutant(report.seed, i).parent][:16]}, "
                  f"{'; '.join(mutator.mutant(report.seed, i).operations)}" for i in listed[:40]]
    lines.append(f"rebuild one: python -m benchmarks.fuzz --seed {report.seed} --index I --write FILE")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.fuzz", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--count", type=int, default=10_000, help="mutants to extract (default 10000)")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--start", type=int, default=0, help="first mutant index")
    p.add_argument("--corpus", type=Path, default=None,
                   help="sample corpus or folder of files (default $BINFEAT_CORPUS or corpus/small)")
    p.add_argument("--max-parent-bytes", type=int, default=256 << 10)
    p.add_argument("--batch", type=int, default=256, help="files per extract_batch call")
    p.add_argument("--parse-timeout", type=float, default=None, help="ExtractOptions.parse_timeout_s")
    p.add_argument("--index", type=int, default=None, help="with --write: rebuild this one mutant")
    p.add_argument("--write", type=Path, default=None, help="where to write the mutant given by --index")
    p.add_argument("--json", type=Path, default=None, help="also write the report as JSON")
    a = p.parse_args(argv)
    if a.count < 1 or a.batch < 1:
        p.error("--count and --batch must be at least 1")
    if (a.index is None) != (a.write is None):
        p.error("--index and --write go together")
    root = a.corpus or Path(os.environ.get("BINFEAT_CORPUS") or "corpus/small")
    if not root.is_dir():
        print(f"fuzz: no sample corpus at {root}: build one with `binfeat corpus sample --profile small {root}` "
              "or pass --corpus", file=sys.stderr)
        return 2
    parents = parents_of(root, a.max_parent_bytes)
    if not parents.names:
        print(f"fuzz: no executable of at most {a.max_parent_bytes} bytes in {root}", file=sys.stderr)
        return 2
    mutator = Mutator(parents.datas)
    if a.index is not None:
        m = mutator.mutant(a.seed, a.index)
        a.write.write_bytes(m.data)
        print(f"mutant {a.seed}/{a.index}: parent {parents.names[m.parent]}, {'; '.join(m.operations)}, "
              f"{len(m.data)} bytes -> {a.write}")
        return 0
    from extract.extractor import ExtractOptions

    options = ExtractOptions(**({"parse_timeout_s": a.parse_timeout} if a.parse_timeout else {}))

    def progress(r: Report) -> None:
        print(f"[fuzz] {r.mutants}/{a.count} mutants, {time.monotonic() - t0:.0f} s", file=sys.stderr, flush=True)

    t0 = time.monotonic()
    report = run(parents, a.seed, a.count, start=a.start, batch=a.batch, options=options, progress=progress)
    print(summary(report, parents, mutator))
    if a.json:
        a.json.write_text(json.dumps({k: (dict(v) if isinstance(v, Counter) else v)
                                      for k, v in report.__dict__.items()}, indent=1) + "\n")
    return 1 if report.problems or report.rows != report.mutants else 0


if __name__ == "__main__":
    sys.exit(main())
