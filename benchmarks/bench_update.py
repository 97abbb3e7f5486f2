"""Stage ``update``: the daily corpus update with ~1% new files, against a full run.

Measured inside the last Spark master's child process, on the session already up
(``spark_runner.update_bench``, ``jobs.corpus.night.run_night``): this stage asks the Spark stage
for it (:func:`wanted`) and takes its figures from there, so it needs the ``spark`` stage.
"""

from __future__ import annotations

import argparse
from typing import Any

from benchmarks.markdown import num, table
from benchmarks.stage import Context, Stage

NOT_REACHED = "the Spark run did not reach it"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--no-update", action="store_true", help="skip the corpus-update measurement")


def wanted(args: argparse.Namespace) -> bool:
    """Whether the Spark stage should measure the update (not with --no-update or --quick)."""
    return not (args.no_update or args.quick)


def skip(ctx: Context) -> str | None:
    return None if wanted(ctx.args) else "skipped (--no-update or --quick)"


def run(ctx: Context) -> dict[str, Any]:
    """The figures the Spark stage measured (they leave its section for this one)."""
    spark = ctx.results.get("spark")
    for master in spark.values() if isinstance(spark, dict) else ():
        if isinstance(master, dict) and "update" in master:
            return master.pop("update")
    return {"not_measured": NOT_REACHED}


def render(u: dict[str, Any], results: dict[str, Any]) -> list[str]:
    f_, d_ = u["full_run"], u["daily_1pct"]
    lines = table(
        ["run", "files", "wall s", "CPU s (tree)"],
        [
            ["full run (day 1, empty store)", str(f_["files"]), num(f_["wall_s"], 2), num(f_["cpu_s"], 2)],
            [f"daily update ({u['new_files_per_day']} new files, {u['share_new'] * 100:.1f}%)", str(d_["files"]),
             num(d_["wall_s"], 2), num(d_["cpu_s"], 2)],
        ],
    )
    return [
        *lines,
        "",
        f"Day / full run: wall {num(u.get('wall_ratio_day_over_full'), 3)}, CPU "
        f"{num(u.get('cpu_ratio_day_over_full'), 3)} (JVM start excluded; the update carries the known rows "
        "from the previous snapshot and extracts only the new files).",
        "",
    ]


STAGE = Stage(
    "update",
    "Corpus update: a day with 1% new files against a full run",
    run,
    render,
    add_arguments=add_arguments,
    skip=skip,
    needs=("spark",),
    notes=(
        "- **Corpus update**: `jobs.corpus.night.run_night` on the session already up: day 1 ingests the corpus "
        "minus held-out files into an empty Iceberg store (a full run); each later day ingests ~1% new files. "
        "The store's own benchmarks (1M rows, a 100,000-file night, a year of nights) are the `store` stage.",
    ),
)
