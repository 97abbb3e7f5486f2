"""The Spark stage's child process, one per master: binfeat's job, the naive baseline, the corpus update.

Why a subprocess: each master gets a fresh JVM whose start is timed separately and excluded; the
process tree of the subprocess (driver, JVM, Python workers, parser workers) is exactly the cost of
the Spark way. Inside it, each Spark run is interleaved with the plain single-process loop over the
same files (JVM excluded from the loop's CPU), so ratios are measured side by side.

binfeat's job runs in a session configured as ``binfeat extract`` configures its own
(``spark_session(..., coordinator_jvm=True)``: the JVM only coordinates, C1 compiler only); the
naive baseline and the corpus update, whose JVMs do the heavy lifting, keep Spark's default JVM.
JVM options are fixed per process, so when both kinds of mode are asked for, the default-JVM modes
run in a child process of their own (``run_split``).

Entry: ``python -m benchmarks.spark_runner CONFIG.json RESULT.json`` (started by :mod:`benchmarks.bench_spark`).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

from benchmarks.bench_whole import extract_loop
from benchmarks.input_files import FileEntry
from benchmarks.measure import Sample, is_jvm, median_ratio, rate, summarize, timed
from benchmarks.spark_naive import naive_job, naive_loop

PROGRESS_PREFIX = "[bench spark]"


def _progress(msg: str) -> None:
    sys.stderr.write(f"{PROGRESS_PREFIX} {msg}\n")
    sys.stderr.flush()


# -- binfeat's job ------------------------------------------------------------------------------------


def binfeat_job(spark, entries: list[FileEntry], out: str) -> dict:
    from jobs.extract_features import run
    from jobs.inputs import InputFile

    inputs = [InputFile(e.path, e.size) for e in entries]
    return run("benchmark-corpus", out, spark=spark, inputs=inputs)


def _cleanup(path: str) -> None:
    shutil.rmtree(path, ignore_errors=True)
    for sibling in Path(path).parent.glob(Path(path).name + "*"):
        if sibling.is_file():
            sibling.unlink(missing_ok=True)
        else:
            shutil.rmtree(sibling, ignore_errors=True)


def interleaved(repeat: int, label: str, a: Callable[[], Sample], b: Callable[[int], Sample]) -> dict[str, Any]:
    """A (plain loop), B (Spark), A, B, ...: medians and the median of per-run ratios."""
    sa: list[Sample] = []
    sb: list[Sample] = []
    # one run before the timed ones, reported apart: the JVM's JIT, the Python workers' start and their
    # first imports belong to the session start-up (excluded), not to the steady state
    _progress(f"{label}: Spark warm-up run (reported apart)")
    warm = b(-1)
    for r in range(repeat):
        _progress(f"{label}: plain loop (run {r + 1}/{repeat})")
        sa.append(a())
        _progress(f"{label}: Spark (run {r + 1}/{repeat})")
        sb.append(b(r))
    return {
        "plain_loop": summarize(sa),
        "spark": {**summarize(sb), "runs_detail": [s.extra for s in sb]},
        "cpu_ratio_spark_over_loop": median_ratio(sb, sa, digits=4),
        "wall_ratio_spark_over_loop": median_ratio(sb, sa, "wall_s", digits=4),
        "warm_up_run": warm.as_dict(),
    }


# -- the corpus update -------------------------------------------------------------------------------


def _write_manifest(path: Path, entries: list[FileEntry]) -> None:
    path.write_text("".join(json.dumps({"path": e.path, "size": e.size}) + "\n" for e in entries))


def update_bench(spark, master: str, entries: list[FileEntry], work: Path, repeat: int) -> dict[str, Any]:
    """The ``update`` stage's figures (:mod:`benchmarks.bench_update`), in this session: day 1 is a full run
    on the corpus minus the held-out files, then days with ~1% new files each."""
    from jobs.corpus.cli import build_parser
    from jobs.corpus.night import run_night

    ordered = sorted(entries, key=lambda e: e.path)
    n_new = max(1, round(len(ordered) / 100))
    held = ordered[: n_new * repeat]
    base = ordered[n_new * repeat :]
    store = work / "store"
    _cleanup(str(store))

    def day(date: str, files: list[FileEntry]) -> Sample:
        mf = work / f"incoming-{date}.jsonl"
        _write_manifest(mf, files)
        args = build_parser().parse_args(["--date", date, "--incoming", str(mf), "--store", str(store), "--master",
                                          master, "--run-id", f"bench-{date}"])
        with timed(sum(e.size for e in files), len(files), tree=True) as s:
            summary = run_night(args, spark=spark)
        s.extra.update(phases_s=summary.get("phases_s"), files_summary=summary.get("files"))
        return s

    _progress(f"corpus update: day 1, full run on {len(base)} files")
    full = day("2026-11-01", base)
    days = []
    for r in range(repeat):
        _progress(f"corpus update: day {r + 2}, {n_new} new file(s) ({r + 1}/{repeat})")
        days.append(day(f"2026-11-{r + 2:02d}", held[r * n_new : (r + 1) * n_new]))
    _cleanup(str(store))
    inc = summarize(days)
    return {
        "full_run": {**full.as_dict(), "mb_per_s_wall": rate(full.nbytes, full.wall_s)},
        "daily_1pct": {**inc, "runs_detail": [d.extra for d in days]},
        "new_files_per_day": n_new,
        "share_new": round(n_new / max(1, len(ordered)), 4),
        "wall_ratio_day_over_full": round(inc["wall_s"] / full.wall_s, 4) if full.wall_s else None,
        "cpu_ratio_day_over_full": round(inc["cpu_s"] / full.cpu_s, 4) if full.cpu_s else None,
    }


EXTRACT_MODES = frozenset({"binfeat"})  # measured in a session set up like `binfeat extract`'s own


def run_split(cfg: dict[str, Any], out_path: Path) -> dict[str, Any]:
    """Run binfeat's job here and the default-JVM modes (naive, update) in a child process.

    Why a child: JVM options are fixed when the JVM starts, once per Python process; the child's
    session (and its JVM start) is its own, reported as ``jvm_start_s_default_jvm``.
    """
    modes = list(cfg["modes"])
    own = [m for m in modes if m in EXTRACT_MODES]
    other = [m for m in modes if m not in EXTRACT_MODES]
    if not own or not other:
        return run_config(cfg)
    child_cfg = out_path.with_name(out_path.name + ".default-jvm-config.json")
    child_out = out_path.with_name(out_path.name + ".default-jvm.json")
    child_cfg.write_text(json.dumps({**cfg, "modes": other}))
    _progress(f"{', '.join(other)}: in a child process with Spark's default JVM")
    try:
        subprocess.run([sys.executable, "-m", "benchmarks.spark_runner", str(child_cfg), str(child_out)], check=True)
        other_result = json.loads(child_out.read_text())
    finally:
        child_cfg.unlink(missing_ok=True)
        child_out.unlink(missing_ok=True)
    result = run_config({**cfg, "modes": own})
    result["jvm_start_s_default_jvm"] = other_result.pop("jvm_start_s", None)
    for key in ("master", "coordinator_jvm"):  # this process's: binfeat's job ran with the coordinator JVM
        other_result.pop(key, None)
    return {**result, **other_result}


def run_config(cfg: dict[str, Any]) -> dict[str, Any]:
    """Start the session (timed apart), then run the requested measurements."""
    from jobs.session import spark_session

    entries = [FileEntry(**d) for d in cfg["entries"]]
    master = cfg["master"]
    work = Path(cfg["workdir"])
    work.mkdir(parents=True, exist_ok=True)
    repeat = int(cfg["repeat"])
    coordinator = set(cfg["modes"]) <= EXTRACT_MODES  # binfeat's job only: as `binfeat extract` sets it up
    out: dict[str, Any] = {"master": master, "coordinator_jvm": coordinator}
    _progress(f"starting Spark {master} (JVM start is timed apart and excluded)")
    t0 = time.perf_counter()
    spark = spark_session(
        master,
        app_name=f"binfeat-bench-{master}",
        conf={
            "spark.ui.enabled": "false",
            "spark.driver.memory": cfg.get("driver_memory", "4g"),
            "spark.sql.shuffle.partitions": "4",
        },
        coordinator_jvm=coordinator,
    )
    spark.range(1).count()
    out["jvm_start_s"] = round(time.perf_counter() - t0, 3)
    nbytes = sum(e.size for e in entries)

    def timed_job(name: str, r: int, job: Callable[[str], dict[str, Any]]) -> Sample:
        """One timed Spark job writing to a fresh folder (removed after); ``job`` returns its details."""
        dest = str(work / f"{name}-{r}")
        _cleanup(dest)
        with timed(nbytes, len(entries), tree=True) as s:
            details = job(dest)
        s.extra.update(details)
        _cleanup(dest)
        return s

    try:
        if "binfeat" in cfg["modes"]:

            def job(dest: str) -> dict[str, Any]:
                summary = binfeat_job(spark, entries, dest)
                return {"rows": summary.get("rows"), "job_s": summary.get("job_s"),
                        "partitions": summary.get("partitions"), "statuses": summary.get("counts_by_status")}

            def loop() -> Sample:
                # pinned to one CPU: the single-core throughput the scaling goal doubles
                return extract_loop(entries, exclude=is_jvm, one_core=True)[0]

            out["binfeat"] = interleaved(repeat, f"binfeat job {master}", loop, lambda r: timed_job("binfeat", r, job))
        if "naive" in cfg["modes"]:
            paths = [e.path for e in entries]
            out["naive"] = interleaved(
                repeat,
                f"naive binaryFile + pickled UDF {master}",
                lambda: naive_loop(entries),
                lambda r: timed_job("naive", r, lambda dest: {"rows": naive_job(spark, paths, dest)}),
            )
        if "update" in cfg["modes"]:
            try:
                out["update"] = update_bench(spark, master, entries, work, int(cfg.get("update_repeat", repeat)))
            except Exception as exc:
                out["update"] = {
                    "not_measured": f"corpus update failed: {type(exc).__name__}: {exc}",
                    "traceback": traceback.format_exc()[-2000:],
                }
    finally:
        spark.stop()
    return out


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.spark_runner")
    p.add_argument("config", type=Path)
    p.add_argument("out", type=Path)
    args = p.parse_args(argv)
    cfg = json.loads(args.config.read_text())
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    result = run_split(cfg, args.out)
    args.out.write_text(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
