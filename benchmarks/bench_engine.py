"""`binfeat extract` end to end, local engine against Spark, on 1, 100 and 1,000 files of a sample corpus.

Each measurement is the whole command as a user runs it (a fresh process: interpreter, imports,
the engine's start, listing, extraction, the atomic write, the summary), interleaved across the
variants round after round, reported as medians. CPU is the whole process tree's: this process
adopts orphaned descendants (``PR_SET_CHILD_SUBREAPER``) and reaps them, so the JVM, the Python
workers and the parser workers all count, whoever their parent was. The reference for one file is
``binfeat file`` on the same file (the interpreter, the kernels and the parser worker's start: what
any extraction pays before its first row).

Run: ``python -m benchmarks.bench_engine --corpus corpus/small --out bench-engine [--repeat 5]``.
The 1,000-file set is the corpus's files copied as needed, each copy with a distinct last byte.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.child_process import installed_env
from benchmarks.reaping import become_subreaper, reap_descendants

REPO = Path(__file__).resolve().parent.parent


def _children_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def measure(cmd: list[str], env: dict[str, str]) -> dict:
    """Wall seconds until the command exits; CPU seconds of its whole tree."""
    c0 = _children_cpu()
    t0 = time.monotonic()
    proc = subprocess.run(cmd, env=env, cwd=REPO, capture_output=True, text=True)
    wall = time.monotonic() - t0
    reap_descendants()
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd[:4])} ... failed ({proc.returncode}): {proc.stderr[-2000:]}")
    out = {"wall_s": round(wall, 3), "cpu_s": round(_children_cpu() - c0, 3)}
    if cmd[3:4] == ["extract"]:
        summary = json.loads(proc.stdout)
        out |= {"rows": summary["rows"], "engine": summary["engine"], "job_s": summary["job_s"]}
    return out


def corpus_files(corpus: Path) -> list[Path]:
    """The corpus's files (by its manifest, else every file), sorted."""
    manifest = corpus / "manifest.jsonl"
    if manifest.is_file():
        entries = [json.loads(line) for line in manifest.read_text().splitlines() if line.strip()]
        paths = [corpus / e["sha256"][:2] / e["sha256"] for e in entries if e.get("sha256")]
    else:
        paths = [p for p in corpus.rglob("*") if p.is_file()]
    return sorted(p for p in paths if p.is_file())


def build_sets(corpus: Path, work: Path) -> dict[str, Path]:
    """Folders of 1, 100 and 1,000 files (the 100 spread over the corpus, the 1,000 with copies)."""
    files = corpus_files(corpus)
    if len(files) < 100:
        raise SystemExit(f"bench_engine: {corpus} has {len(files)} files, needs at least 100")
    sets = {}
    one = next((p for p in files if p.read_bytes()[:2] == b"MZ"), files[0])  # a PE: the parser starts
    step = len(files) / 100
    chosen = {"1": [one], "100": [files[int(i * step)] for i in range(100)]}
    chosen["1000"] = [files[i % len(files)] for i in range(1000)]
    for name, paths in chosen.items():
        folder = work / f"files-{name}"
        folder.mkdir()
        for i, src in enumerate(paths):
            dst = folder / f"{i:04d}-{src.name}"
            shutil.copyfile(src, dst)
            if i >= len(files):  # a copy: distinct content, same structure
                with open(dst, "ab") as f:
                    f.write(i.to_bytes(2, "little"))
        sets[name] = folder
    return sets


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.bench_engine", description=__doc__.split("\n")[0])
    p.add_argument("--corpus", type=Path, default=Path(os.environ.get("BINFEAT_CORPUS", REPO / "corpus" / "small")))
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--repeat", type=int, default=5)
    p.add_argument("--sizes", default="1,100,1000")
    p.add_argument("--engines", default="local,spark")
    args = p.parse_args(argv)
    become_subreaper()
    args.out.mkdir(parents=True, exist_ok=True)
    env = {**installed_env(), "SPARK_LOCAL_IP": "127.0.0.1"}  # commands as a user runs them
    binfeat = [sys.executable, "-m", "binfeat"]
    results: dict[str, list[dict]] = {}
    with tempfile.TemporaryDirectory(prefix="bench-engine-") as tmp:
        work = Path(tmp)
        sets = build_sets(args.corpus, work)
        variants: list[tuple[str, list[str]]] = []
        for size in args.sizes.split(","):
            folder = sets[size]
            if size == "1":
                (one,) = folder.iterdir()
                variants.append(("file 1", [*binfeat, "file", str(one)]))
            for engine in args.engines.split(","):
                out = work / f"out-{engine}-{size}"
                variants.append((f"{engine} {size}", [*binfeat, "extract", str(folder), str(out), "--quiet",
                                                      "--engine", engine]))  # fmt: skip
        for cmd in (v[1] for v in variants):  # warm the page cache and numba's cache once
            measure(cmd, env)
        loads = [os.getloadavg()[0]]
        for r in range(args.repeat):
            for name, cmd in variants:
                sample = measure(cmd, env)
                results.setdefault(name, []).append(sample)
                print(f"[{r + 1}/{args.repeat}] {name}: {sample}", file=sys.stderr, flush=True)
            loads.append(os.getloadavg()[0])
    machine = {"cores": os.cpu_count(), "load_avg_1min": loads, "repeat": args.repeat, "corpus": str(args.corpus)}
    write_report(results, machine, args.out, "engine")
    return 0


def write_report(results: dict[str, list[dict]], machine: dict, out: Path, stem: str) -> None:
    """Medians per run kind into ``out/stem.json`` (with every sample) and a table into ``out/stem.md``
    (also printed)."""
    report: dict = {
        name: {
            "wall_s_median": statistics.median(s["wall_s"] for s in samples),
            "cpu_s_median": statistics.median(s["cpu_s"] for s in samples),
            "samples": samples,
        }
        for name, samples in results.items()
    }
    report["_machine"] = machine
    (out / f"{stem}.json").write_text(json.dumps(report, indent=2) + "\n")
    lines = ["| run | wall s (median) | CPU s, whole tree (median) |", "|---|---|---|"]
    for name in results:
        lines.append(f"| {name} | {report[name]['wall_s_median']:.2f} | {report[name]['cpu_s_median']:.2f} |")
    (out / f"{stem}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    sys.exit(main())
