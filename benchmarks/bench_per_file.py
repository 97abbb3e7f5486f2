"""Stage ``per_file``: where one file's CPU goes in the whole extraction (``extract.extract_batch`` on
every file at once), in the extractor's process and in its parser worker, in microseconds per file.

Issue 16's goal is per-file cost beyond the byte work. The breakdown: in the extractor, planning and
reading, the byte kernels, md5/sha256, the byte groups, token hashing, vectorising, the IPC with the
worker (sharing the bytes, pickling requests, reading and unpickling replies; the time blocked on the
worker apart, as wall time) and the rest (row assembly: the rows as dicts, then one Arrow batch); in
the worker, the IPC, the parse, the byte kernel of the section and overlay entropies (the byte-value
counts of each range: byte work, counted with the extractor's scan kernels and digests) and each
structural group (less that kernel).

How: plain runs (nothing wrapped) give each process's CPU time; instrumented runs, interleaved with
them, book each step's exclusive wall time (:mod:`benchmarks.time_ledger`; in the worker through the
plugin :mod:`benchmarks.worker_probe`), and each process's CPU time is split in those proportions.
Medians over the runs, after one untimed run that warms everything (kernels, worker, cost models).

Run it alone: ``python -m benchmarks.bench_per_file --corpus corpus/small --repeat 7`` prints the
section (``--json FILE`` also writes the figures). In the suite it runs in a child process, because
it patches extract's functions while it measures.
"""

from __future__ import annotations

import argparse
import json
import os
import select
import statistics
import sys
import tempfile
import time
import types
from collections.abc import Callable, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from benchmarks.child_process import run_json
from benchmarks.input_files import FileEntry, corpus_entries
from benchmarks.markdown import num, table
from benchmarks.stage import Context, Stage
from benchmarks.time_ledger import Ledger, Patches, delta, scaled

# report order; "ipc wait" and "pipe" are time blocked on the other process (wall, not CPU)
EXTRACTOR_STEPS = ("read", "byte kernels", "md5/sha256", "byte groups", "token hashing", "vectorising",
                   "ipc: bytes into the shared buffer", "ipc: requests (pickle, write)",
                   "ipc: replies (read, unpickle)", "row assembly: Arrow batch", "row assembly and glue (the rest)")
EXTRACTOR_WAIT = "ipc wait"
WORKER_WAIT = "pipe"
BYTE_WORK = ("byte kernels", "md5/sha256")
WORKER_BYTE_WORK = ("byte kernels: section histograms",)  # benchmarks.worker_probe.BYTE_KERNELS
REST = "row assembly and glue (the rest)"


def _probe_extractor(ledger: Ledger, patches: Patches, sent: list[int]) -> list[str]:
    """Wrap the extractor's steps; returns the probe points not found (renamed by later work)."""
    import extract.extractor as xm
    from extract import hashing, isolation, kernels, md5_lanes
    from extract.groups import REGISTRY
    from extract.registry import FeatureGroup

    missing: list[str] = []

    def wrap(owner: Any, name: str, category: str) -> None:
        if name in getattr(owner, "__dict__", {}):
            patches.set(owner, name, ledger.wrap(getattr(owner, name), category))
        else:
            missing.append(f"{getattr(owner, '__name__', owner)}.{name}")

    # planning and reading: on the extractor (before its split) or on extract.file_plans (after)
    planner = getattr(sys.modules.get("extract.file_plans"), "FilePlanner", None)
    if planner is not None:
        for name in ("plan", "read_whole", "feed"):
            wrap(planner, name, "read")
    else:
        for name in ("_plan", "_read_whole"):
            wrap(xm.Extractor, name, "read")
    wrap(xm.Extractor, "to_record_batch", "row assembly: Arrow batch")
    wrap(kernels.ByteScanner, "update", "byte kernels")
    wrap(kernels.ByteScanner, "finish", "byte kernels")
    # hashlib's sha256 (and md5 of a streamed file), beside the kernels
    byte_state = getattr(sys.modules.get("extract.byte_pass"), "ByteState", None) or getattr(xm, "_ByteState", None)
    if byte_state is not None:
        wrap(byte_state, "update", "md5/sha256")
    wrap(md5_lanes, "md5_many", "md5/sha256")
    # the window's bytes go into the shared buffer file by file (share_one) or, before, at once (share)
    by_file = "share_one" in isolation.ParserWorker.__dict__
    for name in ("share_one", "share_start", "share_end") if by_file else ("share",):
        wrap(isolation.ParserWorker, name, "ipc: bytes into the shared buffer")
    wrap(isolation.ParserWorker, "result", "ipc: replies (read, unpickle)")
    if "submit_many" in isolation.ParserWorker.__dict__:
        submit = isolation.ParserWorker.submit_many

        def counted(self: Any, requests: list, *args: Any, **kwargs: Any) -> Any:
            sent[0] += len(requests)
            return submit(self, requests, *args, **kwargs)

        patches.set(isolation.ParserWorker, "submit_many", ledger.wrap(counted, "ipc: requests (pickle, write)"))
    else:
        missing.append("ParserWorker.submit_many")
    patches.set(isolation, "select", types.SimpleNamespace(select=ledger.wrap(select.select, EXTRACTOR_WAIT)))
    # the window's vectors (the scheme's blocks, the row batch they read) and any per-row vector call
    wrap(xm.Extractor, "_vectorise", "vectorising")
    wrap(FeatureGroup, "vector", "vectorising")
    for g in REGISTRY.by_stage("bytes"):
        patches.set(g, "compute", ledger.wrap(g.compute, "byte groups"))
    # token hashing: the hashing functions as the groups' modules call them (their internal calls to
    # one another stay unwrapped: one booking per call from a group)
    public = {id(f): f for f in vars(hashing).values() if isinstance(f, types.FunctionType)
              and f.__module__ == hashing.__name__}
    for mod_name, mod in list(sys.modules.items()):
        if mod is None or mod is hashing or not mod_name.startswith("extract."):
            continue
        for attr, value in list(vars(mod).items()):
            if id(value) in public:
                patches.set(mod, attr, ledger.wrap(value, "token hashing"))
    return missing


def _worker_state(path: Path, pid: int, files: int | None, timeout_s: float = 10.0) -> dict[str, Any]:
    """The worker's last ledger dump, once it has handled ``files`` requests in all (None: any)."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            state = json.loads(path.read_text())
            if state["pid"] == pid and (files is None or state["calls"].get("glue", 0) >= files):
                return state
        except (OSError, ValueError, KeyError):
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"the parser worker's ledger did not reach {files} files in {timeout_s:g} s")
        time.sleep(0.002)


def _schedstat_s(pid: int) -> float:
    with open(f"/proc/{pid}/schedstat", encoding="ascii") as f:
        return int(f.read().split()[0]) / 1e9


def _batch(paths: list[str]) -> Any:
    import pyarrow as pa

    return pa.record_batch({"path": paths})


def _plain_run(ex: Any, paths: list[str]) -> dict[str, float]:
    """One uninstrumented run: each process's CPU seconds and the wall time."""
    pid = ex._worker._proc.pid
    c0, k0, w0 = time.process_time(), _schedstat_s(pid), time.perf_counter()
    ex.extract_batch(_batch(paths))
    wall, cpu = time.perf_counter() - w0, time.process_time() - c0
    if ex._worker._proc is None or ex._worker._proc.pid != pid:
        raise RuntimeError("the parser worker was restarted during a timed run (a crash?): figures void")
    return {"extractor": cpu, "worker": _schedstat_s(pid) - k0, "wall": wall}


def _probed_run(ex: Any, paths: list[str], ledger_path: Path) -> dict[str, Any]:
    """One instrumented run: each step's CPU seconds (wall shares scaled to each process's CPU)."""
    ledger, patches, sent = Ledger(), Patches(), [0]
    pid = ex._worker._proc.pid
    before = _worker_state(ledger_path, pid, None)
    done_before = before["calls"].get("glue", 0)
    missing = _probe_extractor(ledger, patches, sent)
    try:
        c0, w0 = time.process_time(), time.perf_counter_ns()
        ex.extract_batch(_batch(paths))
        wall_ns, cpu = time.perf_counter_ns() - w0, time.process_time() - c0
    finally:
        patches.undo()
    after = _worker_state(ledger_path, pid, done_before + sent[0])
    mine = dict(ledger.ns)
    mine[REST] = max(0, wall_ns - sum(mine.values()))
    theirs = delta(after, before)
    worker_cpu = (after["cpu_ns"] - before["cpu_ns"]) / 1e9
    return {
        "extractor": scaled(mine, cpu, waiting=(EXTRACTOR_WAIT,)),
        "worker": scaled(theirs["ns"], worker_cpu, waiting=(WORKER_WAIT,)),
        "extractor_cpu_s": cpu,
        "worker_cpu_s": worker_cpu,
        "calls": {**ledger.calls, **{f"worker {k}": v for k, v in theirs["calls"].items()}},
        "missing_probes": missing,
    }


def per_file_breakdown(entries: Sequence[FileEntry], repeat: int,
                       progress: Callable[[str], None] = lambda _: None) -> dict[str, Any]:
    """Plain and instrumented runs interleaved; medians in microseconds per file."""
    from extract.extractor import ExtractOptions, Extractor

    paths = [e.path for e in entries]
    n = len(paths)
    with tempfile.TemporaryDirectory(prefix="binfeat-per-file-") as tmp:
        ledger_path = Path(tmp) / "worker-ledger.json"
        os.environ["BINFEAT_BENCH_WORKER_LEDGER"] = str(ledger_path)  # the probed worker's env
        plain = Extractor(ExtractOptions())
        probed = Extractor(ExtractOptions(worker_preload=("benchmarks.worker_probe",)))
        try:
            progress("per-file breakdown: one untimed run each (kernels, workers, cost models)")
            for ex in (plain, probed):
                ex.extract_batch(_batch(paths))
                warm = getattr(ex._parser_worker(), "warm", None)  # the worker's kernels, whatever was sent
                if warm is not None:
                    warm()
            plains, probes = [], []
            for r in range(repeat):
                progress(f"per-file breakdown: plain and instrumented runs ({r + 1}/{repeat})")
                plains.append(_plain_run(plain, paths))
                probes.append(_probed_run(probed, paths, ledger_path))
        finally:
            plain.close()
            probed.close()
            os.environ.pop("BINFEAT_BENCH_WORKER_LEDGER", None)

    def us(values: list[float]) -> float:
        return round(statistics.median(values) / n * 1e6, 1)

    steps = {side: sorted({k for p in probes for k in p[side]}) for side in ("extractor", "worker")}
    out: dict[str, Any] = {
        "files": n,
        "bytes": sum(e.size for e in entries),
        "runs": repeat,
        "plain_us_per_file": {side: us([p[side] for p in plains]) for side in ("extractor", "worker")},
        "plain_wall_us_per_file": us([p["wall"] for p in plains]),
        "instrumented_us_per_file": {"extractor": us([p["extractor_cpu_s"] for p in probes]),
                                     "worker": us([p["worker_cpu_s"] for p in probes])},
        "extractor_us_per_file": {k: us([p["extractor"].get(k, 0.0) for p in probes]) for k in steps["extractor"]},
        "worker_us_per_file": {k: us([p["worker"].get(k, 0.0) for p in probes]) for k in steps["worker"]},
        "calls_per_run": probes[-1]["calls"],
        "missing_probes": probes[-1]["missing_probes"],
    }
    total = out["plain_us_per_file"]["extractor"] + out["plain_us_per_file"]["worker"]
    shares = out["extractor_us_per_file"]
    instrumented = out["instrumented_us_per_file"]["extractor"] or 1.0
    # the byte work's share of each instrumented process, applied to its plain run's CPU
    byte_us = sum(shares.get(k, 0.0) for k in BYTE_WORK) * out["plain_us_per_file"]["extractor"] / instrumented
    worker_instrumented = out["instrumented_us_per_file"]["worker"] or 1.0
    byte_us += sum(out["worker_us_per_file"].get(k, 0.0) for k in WORKER_BYTE_WORK) * \
        out["plain_us_per_file"]["worker"] / worker_instrumented
    out["byte_work_us_per_file"] = round(byte_us, 1)
    out["beyond_byte_work_us_per_file"] = round(total - byte_us, 1)
    return out


def run(ctx: Context) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="binfeat-bench-") as tmp:
        listed = Path(tmp) / "entries.json"
        listed.write_text(json.dumps([asdict(e) for e in ctx.entries]))
        return run_json("benchmarks.bench_per_file", ["--entries", str(listed), "--repeat", str(ctx.repeat)],
                        timeout=3600, what="per-file breakdown subprocess", progress=ctx.progress,
                        progress_prefix="[per_file]")


def render(d: dict[str, Any], results: dict[str, Any]) -> list[str]:
    plain = d["plain_us_per_file"]
    ex, wk = d["extractor_us_per_file"], d["worker_us_per_file"]
    busy = {"extractor": sum(v for k, v in ex.items() if k != EXTRACTOR_WAIT) or 1.0,
            "worker": sum(v for k, v in wk.items() if k != WORKER_WAIT) or 1.0}
    others = sorted(k for k in ex if k not in (*EXTRACTOR_STEPS, EXTRACTOR_WAIT))
    order = [k for k in EXTRACTOR_STEPS if k in ex] + others
    rows = [[f"extractor: {k}", num(ex[k], 1), f"{100 * ex[k] / busy['extractor']:.0f}%"] for k in order]
    rows += [[f"worker: {k}", num(wk[k], 1), f"{100 * wk[k] / busy['worker']:.0f}%"]
             for k in sorted(wk, key=lambda k: -wk[k]) if k != WORKER_WAIT]
    lines = [
        f"{d['files']} files, {num(d['bytes'] / 1e6)} MB, `extract.extract_batch` on all of them at once; "
        f"medians of {d['runs']} run(s), µs of CPU per file.",
        "",
        f"**Per file: extractor {num(plain['extractor'])} µs + parser worker {num(plain['worker'])} µs = "
        f"{num(plain['extractor'] + plain['worker'])} µs of CPU; beyond the byte work (scan kernels, md5, "
        f"sha256, section histograms: {num(d['byte_work_us_per_file'])} µs) "
        f"{num(d['beyond_byte_work_us_per_file'])} µs** "
        f"(issue 16's goal: ≤ 300). Wall {num(d['plain_wall_us_per_file'])} µs per file.",
        "",
        *table(["step", "µs per file (CPU)", "share of its process"], rows),
        "",
        f"The extractor waited (blocked, wall time) {num(ex.get(EXTRACTOR_WAIT))} µs per file for the worker's "
        f"replies. Instrumented runs took "
        f"{num(d['instrumented_us_per_file']['extractor'])} + {num(d['instrumented_us_per_file']['worker'])} µs "
        "per file (the wrappers' own cost is spread over the steps in proportion).",
    ]
    if d.get("missing_probes"):
        lines += ["", "Probe points not found (their time is in the rest): " + ", ".join(d["missing_probes"]) + "."]
    return [*lines, ""]


STAGE = Stage(
    "per_file",
    "Per-file CPU breakdown: extractor and parser worker (extract_batch on the whole corpus)",
    run,
    render,
    notes=("- **Per-file breakdown**: plain runs give each process's CPU (the extractor's `process_time`, the "
           "worker's `/proc/PID/schedstat`); interleaved instrumented runs book each step's exclusive wall time "
           "(`benchmarks/time_ledger.py`, the worker through the plugin `benchmarks/worker_probe.py`) and the "
           "process's CPU is split in those proportions; time blocked on the other process is shown apart.",),
)


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.bench_per_file",
                                description="Per-file CPU breakdown of extract_batch (extractor and parser worker).")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--corpus", type=Path, help="a sample corpus (manifest.jsonl) or any folder of files")
    src.add_argument("--entries", type=Path, help="a JSON list of FileEntry (the suite's child process)")
    p.add_argument("--repeat", type=int, default=5, help="interleaved plain + instrumented runs (default 5)")
    p.add_argument("--json", type=Path, help="also write the figures here")
    p.add_argument("result", nargs="?", type=Path, help=argparse.SUPPRESS)  # the suite's RESULT file
    args = p.parse_args(argv)
    if args.repeat < 1:
        p.error(f"--repeat must be >= 1, got {args.repeat}")
    if args.corpus is not None:
        entries = corpus_entries(args.corpus)
    else:
        entries = [FileEntry(**e) for e in json.loads(args.entries.read_text())]
    if not entries:
        p.error("no input files")

    def progress(msg: str) -> None:
        print(f"[per_file] {msg}", flush=True)

    figures = per_file_breakdown(entries, args.repeat, progress)
    for out in (args.json, args.result):
        if out is not None:
            out.write_text(json.dumps(figures, indent=1))
    if args.result is None:
        sys.stdout.write("\n".join(render(figures, {})) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
