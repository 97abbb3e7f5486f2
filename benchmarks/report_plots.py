"""The suite's three plots, drawn from several stages' figures: throughput per group, scaling with
cores, cost against file size. A plot without data is skipped (and not listed).

A stage's own plots come from its ``Stage.plots`` hook instead (see :mod:`benchmarks.stage`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from benchmarks.goals import GOALS

PLOTS = ("throughput_per_group.png", "scaling_with_cores.png", "cost_vs_file_size.png")
FORMAT_COLORS = (("pe", "tab:blue"), ("elf", "tab:green"), ("macho", "tab:purple"), ("unknown", "tab:gray"))


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save(fig: Any, out: Path, name: str) -> str:
    """Write ``fig`` as ``out/name`` and close it; the name, for the report's list."""
    fig.tight_layout()
    fig.savefig(out / name, dpi=110)
    _pyplot().close(fig)
    return name


def _cores(master: str) -> int:
    """The core count of a ``local[N]`` master (0 when it does not say)."""
    inside = master.split("[")[1].rstrip("]") if "[" in master else ""
    return int(inside) if inside.isdigit() else 0


def _throughput(r: dict[str, Any], out: Path) -> str | None:
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
    if not bars:
        return None
    fig, ax = _pyplot().subplots(figsize=(9, 0.35 * len(bars) + 1.5))
    names, vals = zip(*bars, strict=True)
    colors = ["tab:red" if n.startswith("ember") else "tab:green" if "whole" in n else "tab:blue" for n in names]
    ax.barh(range(len(vals)), vals, color=colors)
    ax.set_yticks(range(len(vals)), names)
    ax.invert_yaxis()
    ax.set_xscale("log")
    ax.set_xlabel("MB per CPU-second (log scale)")
    whole_goal, trio_goal = GOALS["core_whole_mb_s"], GOALS["core_trio_mb_s"]
    ax.axvline(whole_goal, ls="--", color="gray", lw=0.8, label=f"{whole_goal:g} MB/s goal (whole)")
    ax.axvline(trio_goal, ls=":", color="gray", lw=0.8, label=f"{trio_goal:g} MB/s goal (trio)")
    ax.legend(fontsize=7, loc="lower right")
    ax.set_title("Single-core throughput per group (blue: binfeat, red: EMBER v2 code)")
    return save(fig, out, PLOTS[0])


def _scaling(r: dict[str, Any], out: Path) -> str | None:
    whole = (r.get("whole") or {}).get("one_core") or {}
    pts: list[tuple[str, int, float | None, float | None]] = []
    if whole.get("mb_per_s_wall"):
        pts.append(("plain loop", 1, whole["mb_per_s_wall"], whole["mb_per_s_cpu"]))
    pool = (r.get("whole") or {}).get("pool") or {}
    if pool.get("mb_per_s_wall"):
        pts.append((f"Pool({pool.get('processes')})", int(pool.get("processes") or 2), pool["mb_per_s_wall"],
                    pool["mb_per_s_cpu"]))
    spark = r.get("spark") if isinstance(r.get("spark"), dict) else {}
    for master, d in spark.items():
        for mode, label in (("binfeat", "Spark"), ("naive", "naive")):
            x = d.get(mode) if isinstance(d, dict) else None
            if isinstance(x, dict) and "spark" in x:
                pts.append((f"{label} {master}", _cores(master), x["spark"]["mb_per_s_wall"],
                            x["spark"]["mb_per_s_cpu"]))
    if not pts:
        return None
    fig, ax = _pyplot().subplots(figsize=(8, 4.5))
    xs = range(len(pts))
    ax.bar([i - 0.2 for i in xs], [p[2] or 0 for p in pts], 0.4, label="MB/s (wall)")
    ax.bar([i + 0.2 for i in xs], [(p[3] or 0) * max(p[1], 1) for p in pts], 0.4,
           label="MB per CPU-s × cores (CPU-bound ceiling)")
    if whole.get("mb_per_s_wall"):
        for cores in (1, 2):
            ax.axhline(whole["mb_per_s_wall"] * cores, ls=":", color="gray", lw=0.8)
        share = GOALS["spark_scaling"]
        ax.axhline(whole["mb_per_s_wall"] * 2 * share, ls="--", color="tab:red", lw=0.8,
                   label=f"{share:.0%} of 2× single core (issue 4 goal)")
    ax.set_xticks(list(xs), [p[0] for p in pts], rotation=20, ha="right")
    ax.set_ylabel("MB/s")
    ax.set_title("Scaling with cores (whole extraction; naive = byte-level groups only)")
    ax.legend(fontsize=8)
    return save(fig, out, PLOTS[1])


def _cost_vs_size(r: dict[str, Any], out: Path) -> str | None:
    per_file = (r.get("whole") or {}).get("per_file") or []
    # older results measured per-file CPU with 10 ms ticks: plot their (high-resolution) wall time instead
    fine = bool((r.get("whole") or {}).get("per_file_cpu_clock"))
    key = "cpu_s" if fine else "wall_s"
    pf = [p for p in per_file if p.get(key) is not None and p.get("size", 0) > 0]
    if not pf:
        return None
    fig, ax = _pyplot().subplots(figsize=(8, 5))
    for fmt, color in FORMAT_COLORS:
        sel = [p for p in pf if p["format"] == fmt]
        if sel:
            ax.scatter([p["size"] for p in sel], [max(p[key], 1e-5) * 1e3 for p in sel], s=8, alpha=0.6,
                       color=color, label=fmt)
    lo, hi = min(p["size"] for p in pf), max(p["size"] for p in pf)
    speed = GOALS["core_whole_mb_s"] * 1e6
    ax.plot([lo, hi], [lo / speed * 1e3, hi / speed * 1e3], ls="--", color="tab:red", lw=0.8,
            label=f"{GOALS['core_whole_mb_s']:g} MB/s per core")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("file size (bytes)")
    ax.set_ylabel("CPU ms per file (extractor + parser worker)" if fine else "wall ms per file")
    ax.set_title("Cost against file size (one core, whole feature set)")
    ax.legend(fontsize=8)
    return save(fig, out, PLOTS[2])


def make_plots(r: dict[str, Any], out: Path) -> list[str]:
    """The three plots that were drawn (their file names in ``out``)."""
    return [name for plot in (_throughput, _scaling, _cost_vs_size) if (name := plot(r, out))]
