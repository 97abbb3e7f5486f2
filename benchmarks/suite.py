"""`binfeat bench`: the benchmark suite on a sample corpus (or any folder of files).

Measures, on the same files and in one run, each stage of :data:`benchmarks.stage_registry.STAGES`:
each feature group's single-core speed (kernels, hashes, structural parsing per format) against
EMBER's own byte-level code (from a checkout given with ``--ember-source DIR``, loaded at run time; not
measured without one); the whole extraction on one core, in a multiprocessing pool, and with Spark
local[1]/local[2] (JVM start excluded), next to the naive Spark way (binaryFile + a pickled Python
UDF); a corpus-update day with 1% new files; partition planning of a million entries; the peak memory
of a worker on big files; and, with ``--fuzz N``, N seeded mutants through ``extract_batch``. Writes
``results.json``, ``report.md`` and PNG plots into ``--out``.

Honesty rules: medians over ``--repeat`` runs; every ratio comes from variants interleaved in one run;
CPU time (of the whole process tree) is reported next to wall time, because these machines are shared.
A measurement that fails or cannot run is recorded as ``{"not_measured": "<why>"}``, never faked.
"""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from benchmarks.goals import GOALS, check_goals
from benchmarks.input_files import corpus_entries, describe
from benchmarks.machine import load_average, machine
from benchmarks.report import write_outputs
from benchmarks.stage import BenchError, Context, Progress, run_order, run_stage
from benchmarks.stage_registry import STAGES

REPO = Path(__file__).resolve().parent.parent


def build_parser() -> argparse.ArgumentParser:
    """The suite's own options, then each stage's (in registry order)."""
    p = argparse.ArgumentParser(
        prog="binfeat bench",
        description="Benchmark binfeat on a sample corpus: per-group speed, scaling, Spark, baselines.",
    )
    p.add_argument("--profile", choices=("small", "full"), default="small",
                   help="sample corpus to build or reuse (default small)")
    p.add_argument("--corpus", type=Path, default=None,
                   help="corpus folder (default corpus/PROFILE in the repository; built when missing)")
    p.add_argument("--input", type=Path, default=None,
                   help="benchmark this folder of files instead of a sample corpus (no manifest needed)")
    p.add_argument("--out", type=Path, default=None, help="output folder (default out/bench-PROFILE)")
    p.add_argument("--repeat", type=int, default=None, help="runs per measurement, medians reported (default 3)")
    p.add_argument("--quick", action="store_true",
                   help="small sizes everywhere (1 run, 10k planning entries, 256 MiB sparse file): a smoke run")
    p.add_argument("--benchmarks-md", type=Path, default=None,
                   help="also write the report, with the command that reproduces it, to this file")
    p.add_argument("--quiet", action="store_true", help="no progress lines")
    for stage in STAGES:
        if stage.add_arguments is not None:
            stage.add_arguments(p)
    return p


def _out_dir(args: argparse.Namespace) -> Path:
    return args.out or REPO / "out" / f"bench-{args.profile}"


def resolve_corpus(args: argparse.Namespace, progress: Progress) -> tuple[Path, dict[str, Any]]:
    """The folder to measure and what it is: --input as it is, else the sample corpus (built when missing)."""
    if args.input is not None:
        if not args.input.is_dir():
            raise BenchError(f"--input {args.input} is not a folder")
        return args.input, {"kind": "folder", "path": str(args.input.resolve())}
    root = args.corpus or REPO / "corpus" / args.profile
    info: dict[str, Any] = {"kind": "sample corpus", "profile": args.profile, "path": str(root.resolve())}
    if (root / "manifest.jsonl").exists():
        info["built"] = False
        return root, info
    progress(f"building the {args.profile} sample corpus into {root} (benchmarks.corpus.build)")
    from benchmarks.corpus import build

    summary = build(args.profile, root, quiet=True)
    info.update(built=True, build_summary={k: summary.get(k) for k in ("files", "bytes", "seconds")})
    return root, info


def run_suite(args: argparse.Namespace, progress: Progress) -> dict[str, Any]:
    """Every stage on the corpus; the figures (results.json). BenchError before anything runs when an
    argument is wrong."""
    repeat = args.repeat or (1 if args.quick else 3)
    if repeat < 1:
        raise BenchError(f"--repeat must be >= 1, got {repeat}")
    prepared = {s.key: s.prepare(args) for s in STAGES if s.prepare is not None}
    out = _out_dir(args)
    out.mkdir(parents=True, exist_ok=True)
    results: dict[str, Any] = {
        "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": "binfeat bench " + " ".join(args.argv),
        "repeat": repeat,
        "quick": args.quick,
        "goals": GOALS,
    }
    progress("machine")
    results["machine"] = machine()
    root, results["corpus"] = resolve_corpus(args, progress)
    entries = corpus_entries(root)
    if not entries:
        raise BenchError(f"no files in {root}")
    results["corpus"].update(describe(entries))
    progress(f"corpus: {len(entries)} files, {sum(e.size for e in entries) / 1e6:.1f} MB from {root}")
    ctx = Context(args, root, entries, out, repeat, args.quick, progress, results, prepared)
    for stage in run_order(STAGES):
        run_stage(stage, ctx)
    results["machine"]["load_average_end"] = load_average()
    results["finished_at"] = datetime.now(UTC).isoformat(timespec="seconds")
    results["goals_check"] = check_goals(results)
    return results


def main(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    args.argv = list(argv)
    progress = Progress(args.quiet)
    try:
        results = run_suite(args, progress)
    except BenchError as exc:
        sys.stderr.write(f"binfeat bench: error: {exc}\n")
        return 2
    progress("writing results.json, report.md and plots")
    files = write_outputs(results, _out_dir(args), benchmarks_md=args.benchmarks_md)
    progress("done: " + ", ".join(str(f) for f in files))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
