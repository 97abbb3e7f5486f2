"""Stage ``ember_whole``: binfeat's whole extraction against EMBER v2's whole extractor, per core.

EMBER's side is its own ``PEFeatureExtractor(feature_version=2).feature_vector(bytes)`` (every group,
LIEF parse, vectorising) from the checkout the ``ember_baseline`` stage loaded, running on LIEF 1.0
through the run-time shim :mod:`benchmarks.lief09_shim` (never committed code of EMBER's). binfeat's
side is one :class:`extract.extractor.Extractor` over the same PE files' bytes (the ``content``
column: neither side reads a disk inside the timing), every group, in both vector schemes. The
figure is CPU time of this process and its live children (binfeat's parser worker), at nanosecond resolution, variants
interleaved run by run; the ratio is the median of the per-run ratios.
"""

from __future__ import annotations

import argparse
import contextlib
import io
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any

import pyarrow as pa

from benchmarks import ember_checkout
from benchmarks.bench_ember import NO_EMBER_HINT
from benchmarks.input_files import FileEntry, subset
from benchmarks.markdown import num, table
from benchmarks.measure import Sample, interleave, median_ratio, summarize, timed
from benchmarks.stage import Context, Stage

SCHEMES = ("binfeat", "ember2")
GOAL_RATIO = 10.0  # issue 16: >= 10x EMBER's whole extractor per core


def _ember_once(ember: Any, bufs: Sequence[bytes]) -> Sample:
    """EMBER's feature_vector over every buffer; a file its code refuses still costs what it spent."""
    with timed(sum(len(b) for b in bufs), len(bufs), fine=True) as s:
        failed = 0
        with contextlib.redirect_stdout(io.StringIO()):  # EMBER's code prints LIEF's failures
            for data in bufs:
                try:
                    ember.feature_vector(data)
                except Exception:  # EMBER's code raises on some damaged PE files: counted, not fatal
                    failed += 1
    s.extra["failed"] = failed
    return s


def _binfeat_once(ex: Any, batch: pa.RecordBatch, nbytes: int) -> Sample:
    with timed(nbytes, batch.num_rows, fine=True) as s:
        out = ex.extract_batch(batch)
    s.extra["statuses"] = dict(sorted(Counter(out.column("status").to_pylist()).items()))
    return s


def bench_ember_whole(
    entries: Sequence[FileEntry], repeat: int, progress: Callable[[str], None], source: str
) -> dict[str, Any]:
    """Both extractors on the same PE files, interleaved ``repeat`` rounds."""
    from extract import ExtractOptions
    from extract.extractor import Extractor

    ember = ember_checkout.load_extractor(source)
    bufs = []
    for e in entries:
        with open(e.path, "rb") as f:
            bufs.append(f.read())
    nbytes = sum(len(b) for b in bufs)
    batch = pa.record_batch({"path": [e.path for e in entries], "content": pa.array(bufs, pa.binary())})
    extractors = {scheme: Extractor(ExtractOptions(scheme=scheme)) for scheme in SCHEMES}
    try:
        for ex in extractors.values():  # worker started, kernels loaded: outside the timing
            ex.extract_batch(batch.slice(0, min(4, batch.num_rows)))
            # the worker's too: it starts light and would load them inside a timed run once it had
            # been sent enough bytes (extract.isolation.WARM_BYTES)
            ex._parser_worker().warm()
        if bufs:
            _ember_once(ember, bufs[:1])
        variants: dict[str, Callable[[], Sample]] = {"ember": lambda: _ember_once(ember, bufs)}
        for scheme, ex in extractors.items():
            variants[f"binfeat.{scheme}"] = lambda ex=ex: _binfeat_once(ex, batch, nbytes)
        samples = interleave(variants, repeat, progress, "EMBER whole extractor")
    finally:
        for ex in extractors.values():
            ex.close()
    out: dict[str, Any] = {name: summarize(s) for name, s in samples.items()}
    out["ember"]["failed"] = samples["ember"][-1].extra["failed"]
    for scheme in SCHEMES:
        key = f"binfeat.{scheme}"
        out[key]["statuses"] = samples[key][-1].extra["statuses"]
        out[f"ratio_cpu_{scheme}"] = median_ratio(samples["ember"], samples[key], digits=2)
    out["cpu_us_per_file"] = {name: round(out[name]["cpu_s"] / max(1, len(bufs)) * 1e6) for name in samples}
    out["goal_ratio"] = GOAL_RATIO
    out["ember_source"] = str(source)
    out["_inputs"] = {"files": len(bufs), "bytes": nbytes}
    return out


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--ember-whole-mb", type=float, default=None,
                   help="MB of the corpus's PE files for EMBER's whole extractor (default 16; quick 2)")


def skip(ctx: Context) -> str | None:
    if ctx.prepared.get("ember_baseline") is None:
        return f"skipped: no EMBER checkout given ({NO_EMBER_HINT})"
    if not any(e.format == "pe" for e in ctx.entries):
        return "skipped: the corpus has no PE files"
    return None


def run(ctx: Context) -> dict[str, Any]:
    mb = ctx.args.ember_whole_mb if getattr(ctx.args, "ember_whole_mb", None) is not None else (
        2.0 if ctx.quick else 16.0)
    pe = subset([e for e in ctx.entries if e.format == "pe"], int(mb * 1e6))
    return bench_ember_whole(pe, ctx.repeat, ctx.progress, str(ctx.prepared["ember_baseline"].source))


def render(e: dict[str, Any], results: dict[str, Any]) -> list[str]:
    inp = e.get("_inputs", {})
    per_file = e.get("cpu_us_per_file", {})
    rows = [[name, num(d["cpu_s"], 3), num(per_file.get(name), 0), num(d["mb_per_s_cpu"], 2)]
            for name, d in e.items() if isinstance(d, dict) and "cpu_s" in d]
    lines = [f"{inp.get('files')} PE files, {num(inp.get('bytes', 0) / 1e6)} MB, bytes in memory on both sides; "
             f"EMBER's code failed on {e.get('ember', {}).get('failed')} of them (their CPU counted).", ""]
    lines += table(["extractor", "CPU s (median)", "CPU µs per file", "MB/s (CPU)"], rows)
    met = [f"{s}: {num(e.get(f'ratio_cpu_{s}'))}×" for s in SCHEMES]
    lines += ["", f"**binfeat over EMBER's whole extractor, per core (CPU of this process and the parser worker):** "
              f"{', '.join(met)} (goal ≥ {num(e.get('goal_ratio'))}×; EMBER's code from {e.get('ember_source')}, "
              "on LIEF 1.0 through the run-time shim).", ""]
    return lines


STAGE = Stage(
    "ember_whole",
    "Against EMBER v2's whole extractor (same PE files, per core)",
    run,
    render,
    add_arguments=add_arguments,
    skip=skip,
)
