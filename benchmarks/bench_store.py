"""The corpus store's benchmarks (issue 13): ``python -m benchmarks.bench_store --out DIR [--only ...]``.

* ``full``: a full run (the small sample corpus into an empty store) as spark-submit runs it;
* ``build``: stores of 1,000, 100,000 and 1,000,000 rows made of the full run's real rows under
  distinct sha256s, committed cheaply (written with pyarrow, one commit each);
* ``antijoin``: the anti-join against each (10,000 candidates, half of them stored), in a fresh
  process: time, CPU, peak memory, and the bytes of the two columns it reads against the files';
* ``night``: nights adding 1% new files (10,170 seeded mutants of the corpus) to the 1M store,
  interleaved with full runs; the full run over the same files is computed from them;
* ``big``: one night of 100,000 new files (seeded mutants) with default memory settings;
* ``year``: a year of nights without and with the maintenance pass (file counts, planning, commits);
* ``storage``: 30 nights against the old full-copy design, computed from the measured bytes per row.

Medians where repeated; CPU is the whole process tree's (reaped children included); memory is
PSS by process kind (the driver, the Spark JVM, pyspark's Python workers, extract's parser workers).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from benchmarks import bench_store_data as data

SECTIONS = ("full", "build", "antijoin", "night", "big", "year", "storage")
DAY0 = "2026-11-01"
SIZES = {"1k": 3, "100k": 295, "1m": 2950}  # copies of the 339-row sample corpus


def _progress(msg: str) -> None:
    print(f"[bench store] {msg}", file=sys.stderr, flush=True)


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYSPARK_", "AWS_"))}
    env.update(PYTHONPATH=str(data.REPO), SPARK_LOCAL_IP="127.0.0.1")
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    return env


def _night(store: Path, date: str, incoming: Path, log: Path) -> dict[str, Any]:
    """One night as spark-submit runs it (a fresh interpreter and JVM, default memory settings)."""
    summary = log.with_suffix(".summary.json")
    argv = [sys.executable, "-m", "jobs.corpus_update", "--date", date, "--incoming", str(incoming), "--store",
            str(store), "--master", "local[2]", "--run-id", f"bench-{date}", "--summary-out", str(summary)]  # fmt: skip
    got = data.run_measured(argv, _env(), log)
    if got["rc"] != 0:
        raise RuntimeError(f"night {date} failed (rc {got['rc']}): see {log}")
    s = json.loads(summary.read_text())
    got.update(files=s["files"], phases_s=s["phases_s"], commit=s["commit"], anti_join=s["anti_join"])
    return got


def full_run(out: Path, corpus: Path, k: int) -> dict[str, Any]:
    store = out / f"full-{k}"
    shutil.rmtree(store, ignore_errors=True)
    got = _night(store, DAY0, corpus / "manifest.jsonl", out / f"full-{k}.log")
    return {**got, "store": str(store)}


def build(out: Path, full_store: Path) -> dict[str, Any]:
    from jobs.corpus.catalog import StoreConfig, open_tables
    from jobs.corpus.extraction import load_contract
    from jobs.corpus.schema import features_schema

    base = data.first_rows(full_store, DAY0)
    res = {"base_rows": base.num_rows}
    for name, copies in SIZES.items():
        store = out / f"store-{name}"
        shutil.rmtree(store, ignore_errors=True)
        tables = open_tables(StoreConfig(store=str(store)), features_schema=features_schema(load_contract().schema))
        _progress(f"build {name}: {copies} copies of {base.num_rows} real rows")
        res[name] = data.replicate(tables, base, copies, 30, "2026-07-01", "2026-10-31")
    return res


def antijoin_child(store: str, n_candidates: int) -> dict[str, Any]:
    """In a fresh process: split 10,000 candidates (half stored) against the store; time, CPU, memory."""
    import hashlib
    import resource

    import pyarrow as pa

    from jobs.corpus.antijoin import split_candidates
    from jobs.corpus.catalog import StoreConfig, open_tables
    from jobs.corpus.hashing import Candidate
    from jobs.corpus.read import plan_as_of

    tables = open_tables(StoreConfig(store=store))
    head = tables.features.metadata.current_snapshot_id
    stored = tables.features.scan(selected_fields=("sha256",), limit=n_candidates // 2).to_arrow()
    shas = stored.column("sha256").to_pylist() + [hashlib.sha256(f"new{i}".encode()).hexdigest()
                                                 for i in range(n_candidates - stored.num_rows)]  # fmt: skip
    unique = {s: Candidate(f"/x/{s}", 1, s, "2026-12-01") for s in shas}
    version = tables.features.metadata.properties["binfeat.feature-version.complete"]
    pool = pa.default_memory_pool()
    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    arrow0 = pool.max_memory()
    t0, c0 = time.perf_counter(), time.process_time()
    split = split_candidates(tables.features, head, unique, version, complete_version=version)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    rss1 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    files = plan_as_of("2026-10-31", tables=tables).features_files
    return {"rows_scanned": split.rows_scanned, "known": len(split.known), "new": len(split.new),
            "wall_s": round(wall, 3), "cpu_s": round(cpu, 3), "peak_rss_mb": round(rss1, 1),
            "rss_growth_mb": round(rss1 - rss0, 1), "arrow_peak_mb": round((pool.max_memory() - arrow0) / 2**20, 1),
            **data.key_bytes(files)}  # fmt: skip


def antijoin(out: Path, repeat: int) -> dict[str, Any]:
    runs: dict[str, list[dict]] = {n: [] for n in SIZES}
    for r in range(repeat):
        for name in SIZES:  # interleaved: 1k, 100k, 1m, 1k, ...
            _progress(f"anti-join {name} ({r + 1}/{repeat})")
            got = subprocess.run([sys.executable, "-m", "benchmarks.bench_store", "--antijoin-child",
                                  str(out / f"store-{name}")], cwd=data.REPO, env=_env(), capture_output=True,
                                 text=True, check=True)  # fmt: skip
            runs[name].append(json.loads(got.stdout.strip().splitlines()[-1]))
    res = {}
    for name, xs in runs.items():
        res[name] = {**xs[-1], **{k: round(statistics.median(x[k] for x in xs), 3) for k in
                                  ("wall_s", "cpu_s", "peak_rss_mb", "rss_growth_mb", "arrow_peak_mb")}}  # fmt: skip
        res[name]["runs"] = len(xs)
    return res


def nights(out: Path, corpus: Path, repeat: int) -> dict[str, Any]:
    """1% nights on the 1M store interleaved with full runs; the full run over the same files computed."""
    store = out / "store-1m"
    parents = data.corpus_files(corpus)
    fulls, days = [], []
    for r in range(repeat):
        _progress(f"full run ({r + 1}/{repeat})")
        fulls.append(full_run(out, corpus, r + 1))
        shutil.rmtree(fulls[-1].pop("store"), ignore_errors=True)
        incoming = out / f"incoming-1pct-{r}"
        shutil.rmtree(incoming, ignore_errors=True)
        before = data.data_files(store)
        # seeded by the store's state: a re-run on the same store gets new samples, not known ones
        made = data.mutants(parents, incoming, 30, seed=f"1pct-{r}-{len(before)}")
        _progress(f"1% night: {made['files']} new files into the 1M store ({r + 1}/{repeat})")
        night = _night(store, f"2026-12-{r + 1:02d}", incoming, out / f"night-1pct-{r}.log")
        after = data.data_files(store)
        night.update(input=made, earlier_files_unchanged=all(after.get(p) == v for p, v in before.items()),
                     files_added=len(set(after) - set(before)),
                     bytes_added=sum(after[p][0] for p in set(after) - set(before)))  # fmt: skip
        days.append(night)
        shutil.rmtree(incoming, ignore_errors=True)
    return full_run_model(fulls, days)


def full_run_model(fulls: list[dict], days: list[dict]) -> dict[str, Any]:
    """The full run over the store's files, computed from the measured full runs and nights.

    A full run over the store's files (a million copies of the corpus's files plus the night's)
    cannot run here; it is computed from two measured runs over the same file mix: the full run of
    the corpus (its files into an empty store) and the 1% night (new files into the big store).
    Cost = fixed + per_file * files; the night's extra fixed work (the anti-join over the whole
    store, the commit's label count) lands in per_file, which only makes the full run dearer.
    """
    med = lambda xs, k: round(statistics.median(x[k] for x in xs), 2)  # noqa: E731
    full_wall, full_cpu = med(fulls, "wall_s"), med(fulls, "cpu_s")
    night_wall, night_cpu = med(days, "wall_s"), med(days, "cpu_s")
    n_small = fulls[0]["files"]["new"]
    n_new = days[0]["files"]["new"]
    stored = min(d["anti_join"]["rows_scanned"] for d in days)  # the rows each night anti-joined against
    total = stored + n_new
    per_wall = (night_wall - full_wall) / (n_new - n_small)
    per_cpu = (night_cpu - full_cpu) / (n_new - n_small)
    est_wall = full_wall + per_wall * (total - n_small)
    est_cpu = full_cpu + per_cpu * (total - n_small)
    return {"full_run_small_corpus": {"files": n_small, "wall_s": full_wall, "cpu_s": full_cpu, "runs": fulls},
            "night_1pct": {"wall_s": night_wall, "cpu_s": night_cpu, "runs": days, "new_files": n_new,
                           "store_rows_before": stored},
            "full_run_same_files_computed": {"files": total, "wall_s": round(est_wall, 1), "cpu_s": round(est_cpu, 1),
                                             "per_file_wall_ms": round(per_wall * 1000, 3),
                                             "per_file_cpu_ms": round(per_cpu * 1000, 3)},
            "ratio_wall": round(night_wall / est_wall, 4), "ratio_cpu": round(night_cpu / est_cpu, 4)}  # fmt: skip


def big_night(out: Path, corpus: Path) -> dict[str, Any]:
    store = out / "store-1m"
    incoming = out / "incoming-100k"
    shutil.rmtree(incoming, ignore_errors=True)
    parents = data.corpus_files(corpus, max_size=256 * 1024)
    per = -(-100_000 // len(parents))
    made = data.mutants(parents, incoming, per, seed=f"100k-{len(data.data_files(store))}")
    _progress(f"100k night: {made['files']} files, {made['bytes'] / 1e9:.2f} GB")
    night = _night(store, "2026-12-20", incoming, out / "night-100k.log")
    shutil.rmtree(incoming, ignore_errors=True)
    return {**night, "input": made}


def storage(results: dict[str, Any], nights_n: int = 30, keep: int = 14) -> dict[str, Any]:
    """30 nights of 1% new files on the 1M store: Iceberg (each row once) against the old full copies."""
    b = results["build"]["1m"]
    per_row = b["bytes"] / b["rows"]
    start, per_night = b["rows"], 10_170
    rows = [start + k * per_night for k in range(1, nights_n + 1)]
    year = results.get("year", {}).get("with_maintenance", {}).get("checkpoints", {})
    meta = (year.get(30) or year.get("30") or {}).get("metadata_bytes", 0)  # both tables, after 30 nights
    iceberg = rows[-1] * per_row + meta
    return {"bytes_per_row": round(per_row, 1), "rows_after": rows[-1],
            "metadata_bytes": meta, "iceberg_bytes": round(iceberg),
            "old_keep_14_bytes": round(sum(rows[-keep:]) * per_row),
            "old_keep_all_bytes": round(sum(rows) * per_row),
            "ratio_old14_over_iceberg": round(sum(rows[-keep:]) * per_row / iceberg, 2)}  # fmt: skip


def run(out: Path, corpus: Path, only: list[str], repeat: int = 3,
        progress=_progress) -> dict[str, Any]:  # fmt: skip
    """Run the chosen sections in order; results.json in ``out`` is updated after each (and resumed from).

    The suite's hook: ``results["store"] = bench_store.run(out / "store", corpus, ["full", ...])``.
    """
    out.mkdir(parents=True, exist_ok=True)
    path = out / "results.json"
    results: dict[str, Any] = json.loads(path.read_text()) if path.exists() else {}
    steps = {
        "full": lambda: full_run(out, corpus, 0),
        "build": lambda: build(out, Path(results["full"]["store"])),
        "antijoin": lambda: antijoin(out, repeat),
        "night": lambda: nights(out, corpus, repeat),
        "big": lambda: big_night(out, corpus),
        "year": lambda: {
            "without_maintenance": _year(out / "year-plain", False),
            "with_maintenance": _year(out / "year-maint", True),
        },
        "storage": lambda: storage(results),
    }
    for name in SECTIONS:
        if name in only:
            progress(f"section {name}")
            t0 = time.perf_counter()
            results[name] = steps[name]()
            results[name + "_section_s"] = round(time.perf_counter() - t0, 1)
            path.write_text(json.dumps(results, indent=1, default=str))
    return results


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.bench_store", description=__doc__.split("\n")[0])
    p.add_argument("--out", type=Path, default=data.REPO / "out" / "bench-store")
    p.add_argument("--corpus", type=Path, default=Path(os.environ.get("BINFEAT_CORPUS", data.REPO / "corpus/small")))
    p.add_argument("--only", default=",".join(SECTIONS), help=f"comma-separated sections of {', '.join(SECTIONS)}")
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--clean", action="store_true", help="remove the stores (several GB) when done")
    p.add_argument("--antijoin-child", metavar="STORE", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.antijoin_child:
        print(json.dumps(antijoin_child(args.antijoin_child, 10_000)))
        return 0
    results = run(args.out, args.corpus, [s.strip() for s in args.only.split(",") if s.strip()], args.repeat)
    if args.clean:
        for d in args.out.glob("store-*"):
            shutil.rmtree(d, ignore_errors=True)
    print(json.dumps(results, indent=1, default=str))
    return 0


def _year(root: Path, maintain: bool) -> dict[str, Any]:
    from benchmarks.bench_store_year import simulate

    shutil.rmtree(root, ignore_errors=True)
    _progress(f"a year of nights, maintenance {'on' if maintain else 'off'}")
    res = simulate(root, maintain=maintain)
    shutil.rmtree(root, ignore_errors=True)
    return res


if __name__ == "__main__":
    sys.exit(main())

