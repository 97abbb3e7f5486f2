"""Stage ``fuzz`` (optional, ``binfeat bench --fuzz N``): N seeded mutants of the corpus's executables
through ``extract.extract_batch``, every row checked against the contract.

It runs ``python -m benchmarks.fuzz`` (:mod:`benchmarks.fuzz`) in a child process, so a fault that
takes the interpreter down costs this section only, and reports what that command prints: rows by
status, parser faults, exceptions inside groups, and every broken invariant with the
``(seed, index)`` that rebuilds its mutant. Without ``--fuzz`` it is not measured.
"""

from __future__ import annotations

import argparse
from typing import Any

from benchmarks.child_process import run_json
from benchmarks.markdown import num, table
from benchmarks.stage import BenchError, Context, Stage

SHOWN = 20  # faults' indices and broken invariants listed in the report (results.json has them all)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--fuzz", type=int, default=None, metavar="N",
                   help="also extract N seeded mutants of the corpus's executables and check every row "
                   "(python -m benchmarks.fuzz; default: not run)")
    p.add_argument("--fuzz-seed", type=int, default=1, metavar="S", help="the mutants' seed (default 1)")


def prepare(args: argparse.Namespace) -> None:
    if args.fuzz is not None and args.fuzz < 1:
        raise BenchError(f"--fuzz takes the number of mutants, at least 1 (got {args.fuzz})")


def skip(ctx: Context) -> str | None:
    return None if ctx.args.fuzz else "skipped (give --fuzz N to extract N seeded mutants)"


def run(ctx: Context) -> dict[str, Any]:
    n, seed = ctx.args.fuzz, ctx.args.fuzz_seed
    ctx.progress(f"fuzz: {n} seeded mutants (seed {seed}) through extract_batch (subprocess)")
    # exit 1 means broken invariants: figures to report, not a failed measurement
    report = run_json(
        "benchmarks.fuzz",
        ["--count", str(n), "--seed", str(seed), "--corpus", str(ctx.root), "--json"],
        timeout=max(1800.0, 2.0 * n),
        what="fuzz subprocess",
        progress=ctx.progress,
        progress_prefix="[fuzz]",
        ok_exit_codes=(0, 1),
    )
    report["invariants_broken"] = len(report["problems"]) + (report["rows"] != report["mutants"])
    return report


def _where(indices: list[int]) -> str:
    shown = ", ".join(str(i) for i in indices[:SHOWN])
    return f"{len(indices)} (index {shown}{', ...' if len(indices) > SHOWN else ''})"


def render(f: dict[str, Any], results: dict[str, Any]) -> list[str]:
    statuses = sorted(f["statuses"].items(), key=lambda kv: (-kv[1], kv[0]))
    lines = [
        f"{f['mutants']} mutants (seed {f['seed']}) of {f.get('parent_count')} executables of `{f['parents']}` "
        f"(fingerprint {f['fingerprint']}), {f['rows']} rows; wall {num(f['wall_s'])} s, CPU {num(f['cpu_s'])} s "
        f"(parser workers {num(f['worker_cpu_s'])} s).",
        "",
        *table(["status", "rows"], [[k, str(v)] for k, v in statuses]),
        "",
        "- parser faults: "
        + (", ".join(f"{k} {_where(v)}" for k, v in sorted(f["faults"].items())) or "none"),
        "- exceptions inside groups: "
        + ("; ".join(f"{k} {_where(v)}" for k, v in sorted(f["group_exceptions"].items())) or "none"),
        f"- second extraction of {f['repeated']} mutants in another order, bytes given inline: "
        + ("DIFFERENT rows" if any("second extraction" in p for p in f["problems"]) else "same rows"),
        f"- **invariants broken: {f['invariants_broken']}**",
        *[f"  - {p}" for p in f["problems"][:SHOWN]],
        "",
        f"Rebuild a mutant: `python -m benchmarks.fuzz --corpus {f['parents']} --seed {f['seed']} --index I "
        "--write FILE`.",
        "",
    ]
    return lines


STAGE = Stage(
    "fuzz",
    "Fuzz: seeded mutants through extract_batch",
    run,
    render,
    add_arguments=add_arguments,
    prepare=prepare,
    skip=skip,
    notes=(
        "- **Fuzz** (`--fuzz N`): `python -m benchmarks.fuzz` in a child process: mutants (seed, index) of the "
        "corpus's undamaged executables up to 256 KiB (bit flips, overwrites, truncations, splices, header-field "
        "edits) extracted in batches of 256; every row checked (one per input, identity hashes, format, status, "
        "error, vector); every 50th mutant extracted again in another order with its bytes given inline.",
    ),
)
