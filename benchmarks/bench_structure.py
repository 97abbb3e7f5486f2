"""Stage ``structure``: per format, the one parse and each structural group's compute and vectorize,
one core, CPU seconds, in-process (no parser isolation).

Why in a child process (``python -m benchmarks.bench_structure ENTRIES.json REPEAT RESULT``): the
parse runs in-process here, so a parser that crashes the interpreter costs this figure only. Files
whose parse crashed or hung in the isolated worker during the ``whole`` stage are left out.
"""

from __future__ import annotations

import contextlib
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from benchmarks.child_process import child_entry, run_json
from benchmarks.input_files import FileEntry, in_memory_subset, load
from benchmarks.markdown import num, table, why_not_measured
from benchmarks.measure import rate
from benchmarks.stage import Context, Stage


def structure_bench(entries: Sequence[FileEntry], repeat: int) -> dict[str, Any]:
    """Per format: the one parse, then each structural group's compute and vectorize, CPU seconds."""
    try:
        import lief

        lief.logging.disable()
    except Exception:
        pass
    from extract.groups import REGISTRY
    from extract.parsed import ParseError, parser_for

    by_fmt: dict[str, list[FileEntry]] = {}
    for e in entries:
        if e.format != "unknown":
            by_fmt.setdefault(e.format, []).append(e)
    out: dict[str, Any] = {}
    for fmt, files in sorted(by_fmt.items()):
        parse = parser_for(fmt)
        if parse is None:
            out[fmt] = {"not_measured": f"no parser registered for {fmt}"}
            continue
        bufs = load(files)
        groups = [g for g in REGISTRY.by_stage("structure") if g.applies_to(fmt)]
        runs: list[dict[str, float]] = []
        errors = {"parse": 0, **{g.name: 0 for g in groups}}
        for _ in range(repeat):
            cpu = {"parse": 0.0, **{g.name: 0.0 for g in groups}, "vectorize": 0.0}
            errors = dict.fromkeys(errors, 0)
            for data in bufs:
                t0 = time.process_time()
                try:
                    parsed = parse(data)
                except (ParseError, Exception):
                    cpu["parse"] += time.process_time() - t0
                    errors["parse"] += 1
                    continue
                cpu["parse"] += time.process_time() - t0
                parsed.size = len(data)
                for g in groups:
                    t0 = time.process_time()
                    try:
                        raw = g.compute(parsed)
                    except Exception:
                        errors[g.name] += 1
                        cpu[g.name] += time.process_time() - t0
                        continue
                    t1 = time.process_time()
                    cpu[g.name] += t1 - t0
                    with contextlib.suppress(Exception):
                        g.vector(raw)
                    cpu["vectorize"] += time.process_time() - t1
            runs.append(cpu)
        nbytes = sum(len(b) for b in bufs)
        med = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
        total = sum(med.values())
        out[fmt] = {
            "files": len(bufs),
            "bytes": nbytes,
            "errors": errors,
            "cpu_s": {k: round(v, 5) for k, v in med.items()},
            "mb_per_s_cpu": {k: rate(nbytes, v) for k, v in med.items()},
            "files_per_s_cpu": {k: rate(len(bufs) * 1e6, v) for k, v in med.items()},
            "total_cpu_s": round(total, 5),
            "total_mb_per_s_cpu": rate(nbytes, total),
        }
    return out


def crashed_in_whole(ctx: Context) -> set[str]:
    """Files whose parse crashed or hung in the isolated worker during the ``whole`` stage."""
    per_file = (ctx.results.get("whole") or {}).get("per_file") or []
    if not per_file:
        return set()
    return {
        e.path
        for e, row in zip(ctx.entries, per_file, strict=True)
        if row["status"] == "error" and e.format != "unknown"
    }


def run(ctx: Context) -> dict[str, Any]:
    crashed = crashed_in_whole(ctx)
    chosen = [e for e in in_memory_subset(ctx.entries, ctx.quick) if e.path not in crashed]
    with tempfile.TemporaryDirectory(prefix="binfeat-bench-") as tmp:
        listed = Path(tmp) / "entries.json"
        listed.write_text(json.dumps([asdict(e) for e in chosen]))
        ctx.progress("structural parsing and groups per format (subprocess)")
        res = run_json(
            "benchmarks.bench_structure",
            [str(listed), str(ctx.repeat)],
            timeout=3600,
            what="structure subprocess (a parser crash?)",
        )
    res["_excluded_files"] = len(crashed)
    return res


def render(s: dict[str, Any], results: dict[str, Any]) -> list[str]:
    lines: list[str] = []
    for fmt, d in s.items():
        if fmt.startswith("_"):
            continue
        if why_not_measured(d):
            lines += [f"- {fmt}: not measured: {why_not_measured(d)}"]
            continue
        lines += [
            f"**{fmt}**: {d['files']} files, {num(d['bytes'] / 1e6)} MB; parse errors {d['errors'].get('parse')}; "
            f"all structural work {num(d['total_mb_per_s_cpu'])} MB/s (CPU).",
            "",
        ]
        rows = [
            [step, num(d["cpu_s"][step], 4), num(d["mb_per_s_cpu"][step]), num(d["files_per_s_cpu"][step]),
             str(d["errors"].get(step, ""))]
            for step in d["cpu_s"]
        ]
        lines += [*table(["step", "CPU s", "MB/s (CPU)", "files/s (CPU)", "errors"], rows), ""]
    if s.get("_excluded_files"):
        lines += [
            f"{s['_excluded_files']} file(s) whose parse crashed or hung in the isolated worker were left out "
            "of this in-process measurement.",
            "",
        ]
    return lines


STAGE = Stage(
    "structure",
    "Structural parsing and groups per format, one core (in-process, no isolation)",
    run,
    render,
    needs=("whole",),
)


def main(argv: list[str]) -> int:
    """Child entry: ``python -m benchmarks.bench_structure ENTRIES.json REPEAT RESULT.json``."""
    return child_entry(argv, "python -m benchmarks.bench_structure ENTRIES.json REPEAT RESULT.json", 2,
                       lambda a: structure_bench([FileEntry(**d) for d in json.loads(Path(a[0]).read_text())],
                                                 int(a[1])))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
