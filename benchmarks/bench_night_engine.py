"""`binfeat corpus update` end to end, local engine against Spark: a night of N new files, and a re-run
of it that finds nothing new (no commit).

Each measurement is the whole command as the user (not the DAG, which always spark-submits) runs
it: a fresh process, a fresh store for each first night, the embedded catalog. The engines are
interleaved round after round and reported as medians; CPU is the whole process tree's (JVM,
Python workers, pool and parser workers), measured as :mod:`benchmarks.bench_engine` does.

Run: ``python -m benchmarks.bench_night_engine --corpus corpus/small --out DIR [--files 20] [--repeat 3]``.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
from pathlib import Path

from benchmarks.bench_engine import REPO, corpus_files, measure, write_report
from benchmarks.child_process import installed_env
from benchmarks.reaping import become_subreaper

DATE = "2026-12-01"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.bench_night_engine", description=__doc__.split("\n")[0])
    p.add_argument("--corpus", type=Path, default=Path(os.environ.get("BINFEAT_CORPUS", REPO / "corpus" / "small")))
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--files", type=int, default=20)
    p.add_argument("--repeat", type=int, default=3)
    args = p.parse_args(argv)
    become_subreaper()
    args.out.mkdir(parents=True, exist_ok=True)
    env = {**installed_env(), "SPARK_LOCAL_IP": "127.0.0.1"}  # commands as a user runs them
    results: dict[str, list[dict]] = {}
    loads = [os.getloadavg()[0]]
    with tempfile.TemporaryDirectory(prefix="bench-night-") as tmp:
        work = Path(tmp)
        incoming = work / "incoming"
        incoming.mkdir()
        files = corpus_files(args.corpus)[: args.files]
        for src in files:
            shutil.copyfile(src, incoming / src.name)
        n_bytes = sum(f.stat().st_size for f in files)

        def night(engine: str, store: Path) -> list[str]:
            return [sys.executable, "-m", "binfeat", "corpus", "update", "--date", DATE, "--incoming", str(incoming),
                    "--store", str(store), "--engine", engine, "--max-error-share", "1"]  # fmt: skip

        for r in range(args.repeat + 1):  # round 0 warms the page cache and numba's cache: not reported
            for kind in ("night", "rerun"):
                for engine in ("local", "spark"):
                    store = work / f"store-{engine}"
                    if kind == "night":
                        shutil.rmtree(store, ignore_errors=True)
                    sample = measure(night(engine, store), env)
                    if r:
                        results.setdefault(f"{kind} {engine}", []).append(sample)
                    print(f"[{r}/{args.repeat}] {kind} {engine}: {sample}", file=sys.stderr, flush=True)
            loads.append(os.getloadavg()[0])
    machine = {"cores": os.cpu_count(), "load_avg_1min": loads, "repeat": args.repeat, "files": len(files),
               "bytes": n_bytes, "corpus": str(args.corpus)}  # fmt: skip
    write_report(results, machine, args.out, "night_engine")
    return 0


if __name__ == "__main__":
    sys.exit(main())
