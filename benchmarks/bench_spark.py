"""Stage ``spark``: binfeat's Spark job per master (local[1], local[2]), each run interleaved with the
plain single-process loop, next to the naive Spark way (binaryFile + a pickled Python UDF).

Each master runs in a child process of its own (:mod:`benchmarks.spark_runner`), so it gets a fresh
JVM whose start is timed apart and excluded. The last master also runs the naive baseline and, when
the ``update`` stage wants it, the corpus update on the same session.
"""

from __future__ import annotations

import argparse
import json
import shutil
from dataclasses import asdict
from typing import Any

from benchmarks import bench_update
from benchmarks.bench_whole import by_process
from benchmarks.child_process import run_json
from benchmarks.markdown import num, table, why_not_measured
from benchmarks.spark_runner import PROGRESS_PREFIX
from benchmarks.stage import Context, Stage, guarded

TIMEOUT_S = 4 * 3600  # per master
MODES = (
    ("binfeat", "binfeat job (mapInArrow over planned paths)"),
    ("naive", "naive: binaryFile + pickled Python UDF (byte-level groups only)"),
)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--no-spark", action="store_true", help="skip the Spark measurements (recorded as not measured)")
    p.add_argument("--masters", default="local[1],local[2]", help="Spark masters to measure (comma-separated)")


def masters(args: argparse.Namespace) -> list[str]:
    return [m.strip() for m in args.masters.split(",") if m.strip()]


def skip(ctx: Context) -> str | None:
    return "skipped (--no-spark)" if ctx.args.no_spark else None


def run(ctx: Context) -> dict[str, Any]:
    """One child process per master; a master that fails is recorded as not measured, the others go on."""
    chosen = masters(ctx.args)
    out: dict[str, Any] = {}
    for master in chosen:
        modes = ["binfeat"]
        if master == chosen[-1]:
            modes.append("naive")
            if bench_update.wanted(ctx.args):
                modes.append("update")
        work = ctx.out / "work" / master.replace("[", "-").replace("]", "")
        work.mkdir(parents=True, exist_ok=True)
        config = work / "config.json"
        config.write_text(
            json.dumps({"master": master, "modes": modes, "entries": [asdict(e) for e in ctx.entries],
                   "workdir": str(work), "repeat": ctx.repeat, "update_repeat": min(ctx.repeat, 3)})
        )

        def one(master: str = master, modes: list[str] = modes, config: Any = config) -> Any:
            ctx.progress(f"Spark {master}: {', '.join(modes)} (subprocess)")
            return run_json("benchmarks.spark_runner", [str(config)], timeout=TIMEOUT_S,
                            what=f"Spark {master} subprocess", progress=ctx.progress,
                            progress_prefix=PROGRESS_PREFIX)

        out[master], _ = guarded(master, ctx.progress, one)
    shutil.rmtree(ctx.out / "work", ignore_errors=True)
    return out


def render(sp: dict[str, Any], results: dict[str, Any]) -> list[str]:
    rows: list[list[str]] = []
    breakdown: list[str] = []
    for master, d in sp.items():
        if why_not_measured(d):
            rows.append([master, "binfeat job", "not measured: " + str(why_not_measured(d))[:200], *[""] * 7])
            continue
        for mode, label in MODES:
            x = d.get(mode)
            if not isinstance(x, dict):
                continue
            if "not_measured" in x:
                rows.append([master, label, "not measured: " + str(why_not_measured(x))[:200], *[""] * 7])
                continue
            warm = x.get("warm_up_run") or {}
            rows.append([
                master,
                label,
                num(x["spark"]["mb_per_s_wall"]),
                num(x["spark"]["mb_per_s_cpu"]),
                num(x["plain_loop"]["mb_per_s_wall"]),
                num(x["cpu_ratio_spark_over_loop"], 3),
                num(x["spark"]["cpu_s"], 2),
                num(x["plain_loop"]["cpu_s"], 2),
                f"{num(warm.get('cpu_s'), 2)} / {num(warm.get('wall_s'), 2)}",
                f"{d.get('jvm_start_s')} s",
            ])
            if by := x["spark"].get("cpu_s_by_process_last_run"):
                breakdown.append(f"- {master}, {mode}: " + by_process(by))
    lines = table(
        ["master", "job", "MB/s (wall)", "MB/s per CPU-s", "plain loop MB/s (wall, same run)", "CPU / plain loop",
         "CPU s (tree)", "plain loop CPU s", "warm-up run CPU s / wall s (not counted)", "JVM start (excluded)"],
        rows,
    )
    lines += [
        "",
        "The naive row's plain loop runs the same byte-level function (binfeat's kernels + sha256) in one "
        "process, so its CPU ratio is the cost of the naive Spark path itself. Each master first "
        "runs one untimed warm-up job (JIT, Python worker start, first imports), reported apart.",
        "",
    ]
    if breakdown:
        lines += ["CPU seconds by process kind (last timed run; `reaped_children` = exited children):", "",
                  *breakdown, ""]
    return lines


STAGE = Stage(
    "spark",
    "Spark (JVM start excluded; each run interleaved with the plain loop in the same process)",
    run,
    render,
    add_arguments=add_arguments,
    skip=skip,
    notes=(
        "- **Spark**: a fresh JVM per master (its start is timed and excluded), one warm-up job reported apart, "
        "then timed jobs over the same `InputFile` list (`jobs.extract_features.run(..., spark=..., inputs=...)`, "
        "writing Parquet), each next to a plain single-process loop in the same driver process (JVM excluded "
        "from the loop's CPU). The issue-4 scaling goal is computed against that interleaved loop.",
        "- **Naive baseline**: `spark.read.format('binaryFile')` + a classic pickled `udf(useArrow=False)` "
        "computing the byte-level groups (binfeat's own kernels) and sha256, written to Parquet; it computes "
        "less than binfeat's job, so compare its CPU ratio against the same function in a plain loop.",
    ),
)
