"""The suite's outputs: results.json (every figure), report.md (the tables) and the PNG plots.

The report is the suite's own header (command, machine, corpus, speed goals), then one section per
stage in the registry's order (``## <title>``: the stage's ``render``, or why it was not measured),
the plots, how the figures are taken, and what was not measured. Kept apart from the measuring, so
a results.json can be re-rendered without re-measuring: ``python -m benchmarks.report OUT_DIR``.
"""

from __future__ import annotations

import json
import os
import re
import sys
from pathlib import Path
from typing import Any

from benchmarks.goals import render_goals
from benchmarks.markdown import num, table, why_not_measured
from benchmarks.report_plots import make_plots
from benchmarks.stage import Stage
from benchmarks.stage_registry import STAGES

GENERAL_NOTES = (
    "- **CPU time** is user + system of the whole process tree from psutil (10 ms ticks), reaped children "
    "included: the extractor, its isolated parser worker (LIEF runs there), pool workers, the Spark JVM, "
    "pyspark's daemon and workers and their parser workers. Kernel rows use `time.process_time` in-process; "
    "per-file costs use `process_time` plus the parser worker's `/proc/PID/schedstat` (nanoseconds).",
    "- **Medians** over the repeated runs; every ratio (binfeat vs EMBER, Spark vs plain loop, naive vs plain "
    "loop, pool vs loop) comes from variants interleaved A, B, A, B in the same process and period.",
)


def _header(r: dict[str, Any]) -> list[str]:
    """Title, command, machine, corpus and the speed goals."""
    m = r.get("machine", {})
    c = r.get("corpus", {})
    lines = [
        "# binfeat benchmark report",
        "",
        f"Command: `{r.get('command')}` — started {r.get('started_at')}, finished {r.get('finished_at')}; "
        f"medians over {r.get('repeat')} "
        f"run(s){' (--quick: smoke sizes, not representative)' if r.get('quick') else ''}.",
        "",
        "## Machine",
        "",
    ]
    lines += table(
        ["cores", "CPU", "memory", "Python", "Spark", "Java", "numpy", "numba", "pyarrow", "LIEF"],
        [[f"{m.get('usable_cores')} usable / {m.get('logical_cores')} logical",
          f"{m.get('cpu_model')} ({', '.join(m.get('cpu_flags', []))})", f"{m.get('memory_gib')} GiB",
          *(str(m.get(k)) for k in ("python", "spark", "java", "numpy", "numba", "pyarrow", "lief"))]],
    )
    fmts = ", ".join(
        f"{k}: {v['files']} files / {v['bytes'] / 1e6:.1f} MB" for k, v in sorted((c.get("by_format") or {}).items())
    )
    return [
        *lines,
        "",
        f"**This machine is shared and noisy** (load average {m.get('load_average')} at the start, "
        f"{m.get('load_average_end')} at the end; other engineers run tests concurrently). Wall-clock figures "
        "include other tenants' interference; CPU-time figures (user + system of the whole process tree: "
        "extractor, isolated parser worker, pool workers, Spark JVM and Python workers) are the ones to "
        "compare. Every ratio comes from variants interleaved in the same run.",
        "",
        "## Corpus",
        "",
        f"{c.get('kind')} `{c.get('path')}`{' (profile ' + str(c.get('profile')) + ')' if c.get('profile') else ''}: "
        f"{c.get('files')} files, {num((c.get('bytes') or 0) / 1e6)} MB ({fmts}); largest file "
        f"{num((c.get('largest') or 0) / 1e6, 2)} MB.",
        "",
        "## Speed goals (issues 3, 4 and 16)",
        "",
        *render_goals(r.get("goals_check", {})),
    ]


def _section(stage: Stage, r: dict[str, Any]) -> list[str]:
    section = r.get(stage.key)
    lines = [f"## {stage.title}", ""]
    if why := why_not_measured(section):
        return [*lines, f"Not measured: {why}", ""]
    return [*lines, *stage.render(section, r)]


def _not_measured(r: dict[str, Any]) -> list[str]:
    """Every section not measured, and every part of a section (one level down, e.g. one Spark master)."""
    out = []
    for key, value in r.items():
        if not isinstance(value, dict):
            continue
        if "not_measured" in value:
            out.append(f"- {key}: {why_not_measured(value)}")
            continue
        out += [f"- {key} {part}: {why_not_measured(v)}" for part, v in value.items()
                if isinstance(v, dict) and "not_measured" in v]
    return out


def render_markdown(r: dict[str, Any], plots: list[str]) -> str:
    lines = _header(r)
    for stage in STAGES:
        lines += _section(stage, r)
    if plots:
        lines += ["## Plots", ""] + [f"![{p}]({p})" for p in plots] + [""]
    notes = [*GENERAL_NOTES, *(note for stage in STAGES for note in stage.notes)]
    lines += ["## How the figures are taken", "", *notes, ""]
    if missing := _not_measured(r):
        lines += ["## Not measured", "", *missing, ""]
    return "\n".join(lines)


def draw_plots(results: dict[str, Any], out: Path) -> list[str]:
    """The suite's plots, then each measured stage's own."""
    made = make_plots(results, out)
    for stage in STAGES:
        section = results.get(stage.key)
        if stage.plots is not None and not why_not_measured(section):
            made += stage.plots(section, results, out)
    return made


def write_outputs(results: dict[str, Any], out: Path, *, benchmarks_md: Path | None = None) -> list[Path]:
    """results.json, the plots, report.md and (when asked) a BENCHMARKS.md with the command to reproduce it."""
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(results, indent=1, sort_keys=False, default=str))
    plots = draw_plots(results, out)
    md = render_markdown(results, plots)
    (out / "report.md").write_text(md)
    files = [out / "results.json", out / "report.md", *(out / p for p in plots)]
    if benchmarks_md is not None:
        rel = os.path.relpath(out, benchmarks_md.parent)
        # the plots stay in the (uncommitted) output folder: name them instead of embedding them
        body = re.sub(r"!\[([^\]]+)\]\(([^)]+)\)", lambda m: f"- `{rel}/{m.group(2)}`", md)
        head = (
            "<!-- written by `binfeat bench --benchmarks-md`; re-run the command below to refresh -->\n"
            f"Reproduce: `{results.get('command')}` (from the repository root; the suite builds the sample "
            "corpus when it is missing, then writes results.json, report.md and the plots into the output "
            "folder).\n\n"
        )
        first, _, rest = body.partition("\n\n")
        benchmarks_md.write_text(f"{first}\n\n{head}{rest}")
        files.append(benchmarks_md)
    return files


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        sys.stderr.write("usage: python -m benchmarks.report OUT_DIR (re-renders report.md and plots)\n")
        return 2
    out = Path(argv[0])
    write_outputs(json.loads((out / "results.json").read_text()), out)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
