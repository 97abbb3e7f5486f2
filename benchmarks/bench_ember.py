"""Stage ``ember_baseline``: binfeat's byte kernels against EMBER v2's own byte-level code, speed
(interleaved) and agreement of the raw values.

EMBER's code comes from a checkout the user points to (``binfeat bench --ember-source DIR``, else
``$BINFEAT_EMBER_SOURCE``), loaded at run time by :mod:`benchmarks.ember_checkout`; without one this
stage is recorded as not measured. A folder that is not a loadable checkout stops the suite before
it starts (exit 2).
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks import ember_checkout
from benchmarks.bench_kernels import byte_trio, run_over
from benchmarks.ember_checkout import Ember
from benchmarks.input_files import inputs_note, load, subset
from benchmarks.markdown import num, table
from benchmarks.measure import interleave, median_ratio, summarize
from benchmarks.stage import BenchError, Context, Stage

EMBER: dict[str, str] = {
    "ember.byte_histogram": "EMBER v2 ByteHistogram.raw_features",
    "ember.byte_entropy_histogram": "EMBER v2 ByteEntropyHistogram.raw_features",
    "ember.strings": "EMBER v2 StringExtractor.raw_features",
    "ember.byte_trio": "EMBER v2, all three",
}
# EMBER's own code computes the string entropy in float64 under numpy 2, binfeat in float32 as EMBER
# did under numpy 1 (docs/architecture.md, "Byte-level rules"): compared to this relative tolerance
STRING_ENTROPY_RTOL = 1e-6
BYTE_GROUPS = ("byte_histogram", "byte_entropy_histogram", "strings")
NO_EMBER_HINT = f"binfeat bench --ember-source DIR, or {ember_checkout.ENV}=DIR, DIR a checkout of elastic/ember"


def _ember_variants(ember: Ember) -> dict[str, Callable[[bytes], None]]:
    def trio(data: bytes) -> None:
        ember.byte_histogram(data)
        ember.byte_entropy_histogram(data)
        ember.string_features(data)

    return {
        "ember.byte_histogram": ember.byte_histogram,
        "ember.byte_entropy_histogram": ember.byte_entropy_histogram,
        "ember.strings": ember.string_features,
        "ember.byte_trio": trio,
    }


def agreement(bufs: Sequence[bytes], ember: Ember) -> dict[str, Any]:
    """On how many buffers binfeat's byte groups give EMBER's raw values: histogram, entropy grid and
    every string count exactly, the string entropy within ``STRING_ENTROPY_RTOL``."""
    from extract.groups import REGISTRY
    from extract.groups.bytelevel import ByteContext
    from extract.kernels import scan_bytes

    equal = dict.fromkeys(("byte_histogram", "byte_entropy_histogram", "strings_counts", "strings_entropy"), 0)
    worst = 0.0
    for data in bufs:
        ctx = ByteContext(size=len(data), scan=scan_bytes(data), fuzzy={})
        ours = {name: REGISTRY[name].compute(ctx) for name in BYTE_GROUPS}
        equal["byte_histogram"] += ours["byte_histogram"].tolist() == ember.byte_histogram(data)
        equal["byte_entropy_histogram"] += ours["byte_entropy_histogram"].tolist() == ember.byte_entropy_histogram(data)
        theirs = ember.string_features(data)
        equal["strings_counts"] += all(
            np.array_equal(ours["strings"][key], value) for key, value in theirs.items() if key != "entropy"
        )
        gap = abs(ours["strings"]["entropy"] - theirs["entropy"]) / max(abs(theirs["entropy"]), 1e-300)
        worst = max(worst, gap)
        equal["strings_entropy"] += gap <= STRING_ENTROPY_RTOL
    return {"files": len(bufs), "equal": equal, "strings_entropy_max_relative_difference": worst}


def bench_ember(
    bufs: Sequence[bytes], repeat: int, progress: Callable[[str], None], ember: Ember
) -> dict[str, Any]:
    """EMBER's byte-level code next to binfeat's ByteScanner on the same buffers, interleaved per run;
    then :func:`agreement` (outside the timing)."""
    variants: dict[str, Callable[[bytes], None]] = {"byte_trio": byte_trio, **_ember_variants(ember)}
    byte_trio(b"warm-up" * 1000)
    samples = interleave({k: partial(run_over, fn, bufs) for k, fn in variants.items()}, repeat, progress,
                         "EMBER baseline")
    out: dict[str, Any] = {name: summarize(s) for name, s in samples.items()}
    for name, what in EMBER.items():
        out[name]["what"] = what
    out["byte_trio"]["what"] = "binfeat ByteScanner (same buffers)"
    # speed-up of binfeat over EMBER: per run, then the median of the per-run ratios
    out["speedup_binfeat_over_ember_cpu"] = median_ratio(samples["ember.byte_trio"], samples["byte_trio"], digits=2)
    progress("EMBER baseline: agreement of the raw values")
    out["agreement"] = agreement(bufs, ember)
    out["ember_source"] = str(ember.source)
    return out


# -- the stage ---------------------------------------------------------------------------------------


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--ember-source",
        type=Path,
        default=None,
        help="a checkout of github.com/elastic/ember whose byte-level code is measured next to binfeat's "
        f"(default: ${ember_checkout.ENV}; without one that comparison is not measured)",
    )
    p.add_argument(
        "--ember-mb",
        type=float,
        default=None,
        help="MB of the corpus for the (slow) EMBER code (default 48; quick 4)",
    )


def prepare(args: argparse.Namespace) -> Ember | None:
    """EMBER's byte-level code from --ember-source (else the environment), or None; BenchError when
    the folder given is not a loadable checkout."""
    try:
        if args.ember_source is not None:
            return ember_checkout.load(args.ember_source)
        return ember_checkout.from_environment()
    except ember_checkout.EmberSourceError as exc:
        raise BenchError(f"{exc} (give a checkout of github.com/elastic/ember, or leave it out)") from exc


def skip(ctx: Context) -> str | None:
    if ctx.prepared.get("ember_baseline") is None:
        return f"skipped: no EMBER checkout given ({NO_EMBER_HINT})"
    return None


def run(ctx: Context) -> dict[str, Any]:
    ember_mb = ctx.args.ember_mb if ctx.args.ember_mb is not None else (4.0 if ctx.quick else 48.0)
    bufs = load(subset(ctx.entries, int(ember_mb * 1e6)))
    res = bench_ember(bufs, ctx.repeat, ctx.progress, ctx.prepared["ember_baseline"])
    res["_inputs"] = inputs_note(bufs, note="an evenly spread subset: EMBER's code runs at a few MB/s")
    return res


def render(e: dict[str, Any], results: dict[str, Any]) -> list[str]:
    inp = e.get("_inputs", {})
    rows = [
        [name, d.get("what", ""), num(d["mb_per_s_cpu"], 2), num(d["mb_per_s_wall"], 2)]
        for name, d in e.items()
        if isinstance(d, dict) and "mb_per_s_cpu" in d
    ]
    lines = [f"{inp.get('files')} files, {num(inp.get('bytes', 0) / 1e6)} MB ({inp.get('note')}).", ""]
    lines += table(["variant", "implementation", "MB/s (CPU)", "MB/s (wall)"], rows)
    lines += [
        "",
        f"**binfeat's byte trio is {num(e.get('speedup_binfeat_over_ember_cpu'))}× EMBER's code** "
        f"(median of per-run CPU-time ratios; EMBER's code from the checkout {e.get('ember_source')}).",
        "",
    ]
    agree = e.get("agreement") or {}
    if agree:
        eq = agree.get("equal", {})
        lines += [
            f"Same raw values on {agree.get('files')} files: byte histogram {eq.get('byte_histogram')}, "
            f"byte-entropy histogram {eq.get('byte_entropy_histogram')}, string counts "
            f"{eq.get('strings_counts')}, string entropy {eq.get('strings_entropy')} (to 1e-6 relative; "
            f"largest difference {agree.get('strings_entropy_max_relative_difference'):.2g}: EMBER's code "
            "computes it in float64 under numpy 2, binfeat in float32 as EMBER did under numpy 1).",
            "",
        ]
    return lines


STAGE = Stage(
    "ember_baseline",
    "Against EMBER v2's byte-level code (same files, interleaved)",
    run,
    render,
    add_arguments=add_arguments,
    prepare=prepare,
    skip=skip,
)
