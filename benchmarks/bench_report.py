"""The suite's outputs: results.json (every figure), report.md (the tables) and the PNG plots.

Kept apart from the measuring code so a results.json can be re-rendered without re-measuring:
``python -m benchmarks.bench_report OUT_DIR``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

PLOTS = ("throughput_per_group.png", "scaling_with_cores.png", "cost_vs_file_size.png")


NOTES = [
    "- **CPU time** is user + system of the whole process tree from psutil (10 ms ticks), reaped children "
    "included: the extractor, its isolated parser worker (LIEF runs there), pool workers, the Spark JVM, "
    "pyspark's daemon and workers and their parser workers. Kernel rows use `time.process_time` in-process; "
    "per-file costs use `process_time` plus the parser worker's `/proc/PID/schedstat` (nanoseconds).",
    "- **Medians** over the repeated runs; every ratio (binfeat vs EMBER, Spark vs plain loop, naive vs plain "
    "loop, pool vs loop) comes from variants interleaved A, B, A, B in the same process and period.",
    "- **Kernels** run on files already in memory (whole-file calls, as the extractor does up to "
    "`whole_read_bytes`); the **whole extraction** reads from the page cache and pays the parser worker's "
    "IPC (a pickled request and reply per file), structural groups, vectorisation and row building.",
    "- **Spark**: a fresh JVM per master (its start is timed and excluded), one warm-up job reported apart, "
    "then timed jobs over the same `InputFile` list (`jobs.extract_features.run(..., spark=..., inputs=...)`, "
    "writing Parquet), each next to a plain single-process loop in the same driver process (JVM excluded "
    "from the loop's CPU). The issue-4 scaling goal is computed against that interleaved loop.",
    "- **Naive baseline**: `spark.read.format('binaryFile')` + a classic pickled `udf(useArrow=False)` "
    "computing the byte-level groups (binfeat's own kernels) and sha256, written to Parquet; it computes "
    "less than binfeat's job, so compare its CPU ratio against the same function in a plain loop.",
    "- **Corpus update**: `jobs.corpus.night.run_night` on the session already up: day 1 ingests the corpus "
    "minus held-out files into an empty Iceberg store (a full run); each later day ingests ~1% new files. "
    "The store's own benchmarks (1M rows, 100,000-file night, a year of nights) are `python -m "
    "benchmarks.bench_store`.",
    "- **Planning**: `jobs.planning.plan_partitions` on 1M log-normal sizes (median ~200 KB), time without "
    "tracemalloc, peak from one more run under tracemalloc. **Peak RSS**: VmHWM from /proc of a fresh "
    "extractor process and of its parser worker (`ru_maxrss` is inherited across fork+exec on Linux).",
]


def _f(x: Any, digits: int = 1) -> str:
    if x is None:
        return "—"
    if isinstance(x, bool):
        return "yes" if x else "no"
    if isinstance(x, float | int):
        return f"{x:,.{digits}f}"
    return str(x)


def _nm(d: Any) -> str | None:
    """The not-measured reason of a section, if it has one."""
    return d.get("not_measured") if isinstance(d, dict) else "missing"


def _table(head: list[str], rows: list[list[str]]) -> list[str]:
    return ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)] + ["| " + " | ".join(r) + " |" for r in rows]


def render_markdown(r: dict[str, Any], plots: list[str]) -> str:
    m = r.get("machine", {})
    c = r.get("corpus", {})
    L: list[str] = ["# binfeat benchmark report", ""]
    L += [
        f"Command: `{r.get('command')}` — started {r.get('started_at')}, finished {r.get('finished_at')}; "
        f"medians over {r.get('repeat')} "
        f"run(s){' (--quick: smoke sizes, not representative)' if r.get('quick') else ''}.",
        "",
    ]
    L += ["## Machine", ""]
    L += _table(
        ["cores", "CPU", "memory", "Python", "Spark", "Java", "numpy", "numba", "pyarrow", "LIEF"],
        [
            [
                f"{m.get('usable_cores')} usable / {m.get('logical_cores')} logical",
                f"{m.get('cpu_model')} ({', '.join(m.get('cpu_flags', []))})",
                f"{m.get('memory_gib')} GiB",
                str(m.get("python")),
                str(m.get("spark")),
                str(m.get("java")),
                str(m.get("numpy")),
                str(m.get("numba")),
                str(m.get("pyarrow")),
                str(m.get("lief")),
            ]
        ],
    )
    L += [
        "",
        f"**This machine is shared and noisy** (load average {m.get('load_average')} at the start, "
        f"{m.get('load_average_end')} at the end; other engineers run tests concurrently). "
        f"Wall-clock figures "
        "include other tenants' interference; CPU-time figures (user + system of the whole process tree: "
        "extractor, isolated parser worker, pool workers, Spark JVM and Python workers) are the ones to "
        "compare. Every ratio comes from variants interleaved in the same run.",
        "",
    ]
    L += ["## Corpus", ""]
    fmts = ", ".join(
        f"{k}: {v['files']} files / {v['bytes'] / 1e6:.1f} MB" for k, v in sorted((c.get("by_format") or {}).items())
    )
    L += [
        f"{c.get('kind')} "
        f"`{c.get('path')}`{' (profile ' + str(c.get('profile')) + ')' if c.get('profile') else ''}: "
        f"{c.get('files')} files, {_f((c.get('bytes') or 0) / 1e6)} MB ({fmts}); largest file "
        f"{_f((c.get('largest') or 0) / 1e6, 2)} MB.",
        "",
    ]

    # goals
    g = r.get("goals_check", {})
    L += ["## Speed goals (issues 3 and 4)", ""]
    rows = []
    for key, d in g.items():
        goal = d.get("goal")
        goal_s = (
            (("≥ " if d.get("higher_is_better") else "≤ ") + _f(goal, 2))
            if isinstance(goal, float | int)
            else str(goal)
        )
        met = d.get("met")
        rows.append(
            [
                key,
                d.get("what", ""),
                _f(d.get("value"), 3 if key.startswith("spark") else 1),
                goal_s,
                "**met**" if met else ("not measured" if met is None else "**not met**"),
                d.get("basis", ""),
            ]
        )
    L += [*_table(["goal", "what", "measured", "target", "result", "basis"], rows), ""]

    # kernels
    L += ["## Byte-level groups and hashes, one core (in memory)", ""]
    k = r.get("kernels", {})
    if _nm(k):
        L += [f"Not measured: {_nm(k)}", ""]
    else:
        inp = k.get("_inputs", {})
        L += [
            f"{inp.get('files')} files, {_f(inp.get('bytes', 0) / 1e6)} MB"
            f"{' (an evenly spread subset)' if inp.get('subset') else ''}, read into memory first.",
            "",
        ]
        rows = [
            [
                name,
                d["what"],
                _f(d["mb_per_s_cpu"]),
                _f(d["mb_per_s_wall"]),
                _f(d["files_per_s_cpu"]),
                _f(d["cpu_s"], 3),
                _f(d["wall_s"], 3),
            ]
            for name, d in k.items()
            if not name.startswith("_")
        ]
        L += _table(
            [
                "group / kernel",
                "implementation",
                "MB/s (CPU)",
                "MB/s (wall)",
                "files/s (CPU)",
                "CPU s",
                "wall s",
            ],
            rows,
        )
        L += [
            "",
            "sha256: the extractor feeds each chunk to `hashlib` itself (one read of the file feeds the "
            "kernels, sha256 and TLSH), so its speed *is* hashlib's. md5: the extractor hashes each window's "
            "whole-read files side by side with the multi-buffer kernel (`md5_lanes`, 16 files per AVX-512 "
            f"register; files streamed in chunks use hashlib): {k.get('md5_lanes', {}).get('vs_hashlib')}x "
            "hashlib's CPU speed on the same files, interleaved.",
            "",
        ]
    e = r.get("ember_baseline", {})
    L += ["## Against EMBER v2's byte-level code (same files, interleaved)", ""]
    if _nm(e):
        L += [f"Not measured: {_nm(e)}", ""]
    else:
        inp = e.get("_inputs", {})
        rows = [
            [name, d.get("what", ""), _f(d["mb_per_s_cpu"], 2), _f(d["mb_per_s_wall"], 2)]
            for name, d in e.items()
            if isinstance(d, dict) and "mb_per_s_cpu" in d
        ]
        L += [f"{inp.get('files')} files, {_f(inp.get('bytes', 0) / 1e6)} MB ({inp.get('note')}).", ""]
        L += _table(["variant", "implementation", "MB/s (CPU)", "MB/s (wall)"], rows)
        L += [
            "",
            f"**binfeat's byte trio is {_f(e.get('speedup_binfeat_over_ember_cpu'))}× EMBER's code** "
            "(median of per-run CPU-time ratios).",
            "",
        ]

    s = r.get("structure", {})
    L += ["## Structural parsing and groups per format, one core (in-process, no isolation)", ""]
    if _nm(s):
        L += [f"Not measured: {_nm(s)}", ""]
    else:
        for fmt, d in s.items():
            if fmt.startswith("_"):
                continue
            if _nm(d):
                L += [f"- {fmt}: not measured: {_nm(d)}"]
                continue
            L += [
                f"**{fmt}**: {d['files']} files, {_f(d['bytes'] / 1e6)} MB; parse errors "
                f"{d['errors'].get('parse')}; "
                f"all structural work {_f(d['total_mb_per_s_cpu'])} MB/s (CPU).",
                "",
            ]
            rows = [
                [
                    step,
                    _f(d["cpu_s"][step], 4),
                    _f(d["mb_per_s_cpu"][step]),
                    _f(d["files_per_s_cpu"][step]),
                    str(d["errors"].get(step, "")),
                ]
                for step in d["cpu_s"]
            ]
            L += [*_table(["step", "CPU s", "MB/s (CPU)", "files/s (CPU)", "errors"], rows), ""]
        if s.get("_excluded_files"):
            L += [
                f"{s['_excluded_files']} file(s) whose parse crashed or hung in the isolated "
                f"worker were left out "
                "of this in-process measurement.",
                "",
            ]

    w = r.get("whole", {})
    L += ["## Whole extraction: one core and a multiprocessing pool", ""]
    if _nm(w):
        L += [f"Not measured: {_nm(w)}", ""]
    else:
        o, p = w["one_core"], w["pool"]
        rows = [
            [
                "plain loop, one core (Extractor, isolated parser worker)",
                _f(o["mb_per_s_cpu"]),
                _f(o["mb_per_s_wall"]),
                _f(o["files_per_s_wall"]),
                _f(o["cpu_s"], 2),
                _f(o["wall_s"], 2),
            ],
            [
                f"multiprocessing.Pool({p['processes']})",
                _f(p["mb_per_s_cpu"]),
                _f(p["mb_per_s_wall"]),
                _f(p["files_per_s_wall"]),
                _f(p["cpu_s"], 2),
                _f(p["wall_s"], 2),
            ],
        ]
        L += _table(["engine", "MB/s per CPU-s", "MB/s (wall)", "files/s (wall)", "CPU s (tree)", "wall s"], rows)
        L += [
            "",
            f"Pool speed-up over one core (wall): {_f(w.get('pool_speedup_wall'), 2)}×; pool CPU / loop CPU: "
            f"{_f(w.get('pool_cpu_over_loop'), 3)}. Row statuses: {o.get('statuses')}.",
            "",
        ]
        for label, x in (("plain loop", o), ("pool", p)):
            by = x.get("cpu_s_by_process_last_run")
            if by:
                L += [
                    f"- CPU s by process, {label} (last run): "
                    + ", ".join(f"{k} {v:.2f}" for k, v in sorted(by.items()))
                ]
        L += [""]

    sp = r.get("spark", {})
    L += ["## Spark (JVM start excluded; each run interleaved with the plain loop in the same process)", ""]
    if _nm(sp) and "not_measured" in sp:
        L += [f"Not measured: {_nm(sp)}", ""]
    else:
        rows = []
        breakdown: list[str] = []
        for master, d in sp.items():
            if _nm(d):
                rows.append([master, "binfeat job", "not measured: " + str(_nm(d))[:200], *[""] * 7])
                continue
            for mode, label in (
                ("binfeat", "binfeat job (mapInArrow over planned paths)"),
                ("naive", "naive: binaryFile + pickled Python UDF (byte-level groups only)"),
            ):
                x = d.get(mode)
                if not isinstance(x, dict):
                    continue
                if _nm(x) and "not_measured" in x:
                    rows.append([master, label, "not measured: " + str(_nm(x))[:200], *[""] * 7])
                    continue
                rows.append(
                    [
                        master,
                        label,
                        _f(x["spark"]["mb_per_s_wall"]),
                        _f(x["spark"]["mb_per_s_cpu"]),
                        _f(x["plain_loop"]["mb_per_s_wall"]),
                        _f(x["cpu_ratio_spark_over_loop"], 3),
                        _f(x["spark"]["cpu_s"], 2),
                        _f(x["plain_loop"]["cpu_s"], 2),
                        f"{_f((x.get('warm_up_run') or {}).get('cpu_s'), 2)} / "
                        f"{_f((x.get('warm_up_run') or {}).get('wall_s'), 2)}",
                        f"{d.get('jvm_start_s')} s",
                    ]
                )
                by = x["spark"].get("cpu_s_by_process_last_run")
                if by:
                    breakdown.append(f"- {master}, {mode}: " + ", ".join(f"{k} {v:.2f}" for k, v in sorted(by.items())))
        L += _table(
            [
                "master",
                "job",
                "MB/s (wall)",
                "MB/s per CPU-s",
                "plain loop MB/s (wall, same run)",
                "CPU / plain loop",
                "CPU s (tree)",
                "plain loop CPU s",
                "warm-up run CPU s / wall s (not counted)",
                "JVM start (excluded)",
            ],
            rows,
        )
        L += [
            "",
            "The naive row's plain loop runs the same byte-level function (binfeat's kernels + "
            "sha256) in one "
            "process, so its CPU ratio is the cost of the naive Spark path itself. Each master first "
            "runs one untimed warm-up job (JIT, Python worker start, first imports), reported apart.",
            "",
        ]
        if breakdown:
            L += ["CPU seconds by process kind (last timed run; `reaped_children` = exited children):", ""]
            L += [*breakdown, ""]
    u = r.get("update", {})
    L += ["## Corpus update: a day with 1% new files against a full run", ""]
    if _nm(u):
        L += [f"Not measured: {_nm(u)}", ""]
    else:
        f_, d_ = u["full_run"], u["daily_1pct"]
        L += _table(
            ["run", "files", "wall s", "CPU s (tree)"],
            [
                ["full run (day 1, empty store)", str(f_["files"]), _f(f_["wall_s"], 2), _f(f_["cpu_s"], 2)],
                [
                    f"daily update ({u['new_files_per_day']} new files, {u['share_new'] * 100:.1f}%)",
                    str(d_["files"]),
                    _f(d_["wall_s"], 2),
                    _f(d_["cpu_s"], 2),
                ],
            ],
        )
        L += [
            "",
            f"Day / full run: wall {_f(u.get('wall_ratio_day_over_full'), 3)}, CPU "
            f"{_f(u.get('cpu_ratio_day_over_full'), 3)} (JVM start excluded; the update "
            f"carries the known rows "
            "from the previous snapshot and extracts only the new files).",
            "",
        ]
    pl = r.get("planning", {})
    L += ["## Partition planning", ""]
    if _nm(pl):
        L += [f"Not measured: {_nm(pl)}", ""]
    else:
        L += [
            f"{pl['entries']:,} synthetic (path, size) entries ({pl['total_bytes'] / 1e12:.2f} "
            f"TB, log-normal sizes), "
            f"{pl['cores']} cores → {pl['partitions']} partitions (heaviest / mean load "
            f"{pl['partition_load_max_over_mean']}): `plan_partitions` **{pl['plan_partitions_s']} s**, peak "
            f"{pl['plan_partitions_peak_mib']} MiB (tracemalloc); the job's full plan step "
            f"(InputFile → tuples) "
            f"{pl.get('job_make_plan_s', '—')} s, peak {pl.get('job_make_plan_peak_mib', '—')} "
            f"MiB; the process's "
            f"max RSS {pl['max_rss_mib']} MiB of which {pl['rss_after_inputs_mib']} MiB is the input list.",
            "",
        ]
    rs = r.get("rss", {})
    L += ["## Peak memory of an extraction worker", ""]
    if _nm(rs):
        L += [f"Not measured: {_nm(rs)}", ""]
    else:
        rows = []
        for label, key in (("largest corpus file", "largest_file"), ("generated sparse file", "sparse_file")):
            x = rs.get(key) or {}
            rows.append(
                [
                    label,
                    _f(x.get("size", 0) / 2**20),
                    str(x.get("format")),
                    str(x.get("status")),
                    _f(x.get("extractor_peak_rss_mib")),
                    _f(x.get("parser_worker_peak_rss_mib")),
                    _f(x.get("wall_s"), 2),
                    (x.get("error") or "")[:90],
                ]
            )
        L += _table(
            [
                "input",
                "size MiB",
                "format",
                "status",
                "extractor peak RSS MiB",
                "parser worker peak RSS MiB",
                "wall s",
                "error",
            ],
            rows,
        )
        L += [
            "",
            "Each in a fresh process (its baseline RSS with numba, pyarrow and LIEF loaded is "
            "~110 MiB); files "
            "above `whole_read_bytes` stream in chunks, files above `max_structural_bytes` are not parsed.",
            "",
        ]
    if plots:
        L += ["## Plots", ""] + [f"![{p}]({p})" for p in plots] + [""]
    L += ["## How the figures are taken", "", *NOTES, ""]
    nm = [f"- {k}: {_nm(v)}" for k, v in r.items() if isinstance(v, dict) and "not_measured" in v]
    if isinstance(sp, dict):
        nm += [f"- spark {k}: {_nm(v)}" for k, v in sp.items() if isinstance(v, dict) and "not_measured" in v]
    if nm:
        L += ["## Not measured", "", *nm, ""]
    return "\n".join(L)


def make_plots(r: dict[str, Any], out: Path) -> list[str]:
    """The three plots; a plot without data is skipped (and not listed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    made: list[str] = []
    # 1. throughput per group
    bars: list[tuple[str, float]] = []
    for name, d in (r.get("kernels") or {}).items():
        if isinstance(d, dict) and d.get("mb_per_s_cpu"):
            bars.append((name, d["mb_per_s_cpu"]))
    for name, d in (r.get("ember_baseline") or {}).items():
        if name.startswith("ember.") and isinstance(d, dict) and d.get("mb_per_s_cpu"):
            bars.append((name, d["mb_per_s_cpu"]))
    for fmt, d in (r.get("structure") or {}).items():
        if isinstance(d, dict) and isinstance(d.get("mb_per_s_cpu"), dict):
            if d["mb_per_s_cpu"].get("parse"):
                bars.append((f"{fmt} parse", d["mb_per_s_cpu"]["parse"]))
            if d.get("total_mb_per_s_cpu"):
                bars.append((f"{fmt} all structural", d["total_mb_per_s_cpu"]))
    whole = (r.get("whole") or {}).get("one_core") or {}
    if whole.get("mb_per_s_cpu"):
        bars.append(("whole extraction (1 core)", whole["mb_per_s_cpu"]))
    if bars:
        fig, ax = plt.subplots(figsize=(9, 0.35 * len(bars) + 1.5))
        names, vals = zip(*bars, strict=True)
        colors = ["tab:red" if n.startswith("ember") else "tab:green" if "whole" in n else "tab:blue" for n in names]
        ax.barh(range(len(vals)), vals, color=colors)
        ax.set_yticks(range(len(vals)), names)
        ax.invert_yaxis()
        ax.set_xscale("log")
        ax.set_xlabel("MB per CPU-second (log scale)")
        for goal, label in ((150, "150 MB/s goal (whole)"), (400, "400 MB/s goal (trio)")):
            ax.axvline(goal, ls="--" if goal == 150 else ":", color="gray", lw=0.8, label=label)
        ax.legend(fontsize=7, loc="lower right")
        ax.set_title("Single-core throughput per group (blue: binfeat, red: EMBER v2 code)")
        fig.tight_layout()
        fig.savefig(out / PLOTS[0], dpi=110)
        plt.close(fig)
        made.append(PLOTS[0])
    # 2. scaling with cores
    pts: list[tuple[str, int, float | None, float | None]] = []
    if whole.get("mb_per_s_wall"):
        pts.append(("plain loop", 1, whole["mb_per_s_wall"], whole["mb_per_s_cpu"]))
    pool = (r.get("whole") or {}).get("pool") or {}
    if pool.get("mb_per_s_wall"):
        pts.append(
            (
                f"Pool({pool.get('processes')})",
                int(pool.get("processes") or 2),
                pool["mb_per_s_wall"],
                pool["mb_per_s_cpu"],
            )
        )
    spark = r.get("spark") if isinstance(r.get("spark"), dict) else {}
    for master, d in spark.items():
        x = (d or {}).get("binfeat") if isinstance(d, dict) else None
        if isinstance(x, dict) and "spark" in x:
            n = (
                int(master.split("[")[1].rstrip("]"))
                if "[" in master and master.split("[")[1].rstrip("]").isdigit()
                else 0
            )
            pts.append((f"Spark {master}", n, x["spark"]["mb_per_s_wall"], x["spark"]["mb_per_s_cpu"]))
        y = (d or {}).get("naive") if isinstance(d, dict) else None
        if isinstance(y, dict) and "spark" in y:
            n = (
                int(master.split("[")[1].rstrip("]"))
                if "[" in master and master.split("[")[1].rstrip("]").isdigit()
                else 0
            )
            pts.append((f"naive {master}", n, y["spark"]["mb_per_s_wall"], y["spark"]["mb_per_s_cpu"]))
    if pts:
        fig, ax = plt.subplots(figsize=(8, 4.5))
        labels = [p[0] for p in pts]
        xs = range(len(pts))
        ax.bar([i - 0.2 for i in xs], [p[2] or 0 for p in pts], 0.4, label="MB/s (wall)")
        ax.bar(
            [i + 0.2 for i in xs],
            [(p[3] or 0) * max(p[1], 1) for p in pts],
            0.4,
            label="MB per CPU-s × cores (CPU-bound ceiling)",
        )
        if whole.get("mb_per_s_wall"):
            for cores in (1, 2):
                ax.axhline(whole["mb_per_s_wall"] * cores, ls=":", color="gray", lw=0.8)
            ax.axhline(
                whole["mb_per_s_wall"] * 2 * 0.85,
                ls="--",
                color="tab:red",
                lw=0.8,
                label="85% of 2× single core (issue 4 goal)",
            )
        ax.set_xticks(list(xs), labels, rotation=20, ha="right")
        ax.set_ylabel("MB/s")
        ax.set_title("Scaling with cores (whole extraction; naive = byte-level groups only)")
        ax.legend(fontsize=8)
        fig.tight_layout()
        fig.savefig(out / PLOTS[1], dpi=110)
        plt.close(fig)
        made.append(PLOTS[1])
    # 3. cost against file size
    per_file = (r.get("whole") or {}).get("per_file") or []
    # older results measured per-file CPU with 10 ms ticks: plot their (high-resolution) wall time instead
    fine = bool((r.get("whole") or {}).get("per_file_cpu_clock"))
    key = "cpu_s" if fine else "wall_s"
    pf = [p for p in per_file if p.get(key) is not None and p.get("size", 0) > 0]
    if pf:
        fig, ax = plt.subplots(figsize=(8, 5))
        for fmt, color in (
            ("pe", "tab:blue"),
            ("elf", "tab:green"),
            ("macho", "tab:purple"),
            ("unknown", "tab:gray"),
        ):
            sel = [p for p in pf if p["format"] == fmt]
            if sel:
                ax.scatter(
                    [p["size"] for p in sel],
                    [max(p[key], 1e-5) * 1e3 for p in sel],
                    s=8,
                    alpha=0.6,
                    color=color,
                    label=fmt,
                )
        lo, hi = min(p["size"] for p in pf), max(p["size"] for p in pf)
        ax.plot(
            [lo, hi],
            [lo / 150e6 * 1e3, hi / 150e6 * 1e3],
            ls="--",
            color="tab:red",
            lw=0.8,
            label="150 MB/s per core",
        )
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("file size (bytes)")
        ax.set_ylabel("CPU ms per file (extractor + parser worker)" if fine else "wall ms per file")
        ax.set_title("Cost against file size (one core, whole feature set)")
        ax.legend(fontsize=8)
        fig.tight_layout()
        fig.savefig(out / PLOTS[2], dpi=110)
        plt.close(fig)
        made.append(PLOTS[2])
    return made


def write_outputs(results: dict[str, Any], out: Path, *, benchmarks_md: Path | None = None) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(results, indent=1, sort_keys=False, default=str))
    plots = make_plots(results, out)
    md = render_markdown(results, plots)
    (out / "report.md").write_text(md)
    files = [out / "results.json", out / "report.md", *(out / p for p in plots)]
    if benchmarks_md is not None:
        import os
        import re

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
        sys.stderr.write("usage: python -m benchmarks.bench_report OUT_DIR (re-renders report.md and plots)\n")
        return 2
    out = Path(argv[0])
    results = json.loads((out / "results.json").read_text())
    write_outputs(results, out)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
