"""binfeat's byte kernels against EMBER v2's own byte-level code: speed (interleaved) and agreement.

EMBER's code comes from a checkout the user points to (``binfeat bench --ember-source DIR``), loaded
at run time by :mod:`benchmarks.ember_checkout`; without one the suite records this measurement as
not measured.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from benchmarks.bench_core import byte_trio, run_over
from benchmarks.bench_sys import Sample, summarize
from benchmarks.ember_checkout import Ember

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
    samples: dict[str, list[Sample]] = {k: [] for k in variants}
    for r in range(repeat):
        for name, fn in variants.items():
            progress(f"EMBER baseline: {name} (run {r + 1}/{repeat})")
            samples[name].append(run_over(fn, bufs))
    out: dict[str, Any] = {name: summarize(s) for name, s in samples.items()}
    for name, what in EMBER.items():
        out[name]["what"] = what
    out["byte_trio"]["what"] = "binfeat ByteScanner (same buffers)"
    # speed-up of binfeat over EMBER: per run, then the median of the per-run ratios
    speedups = [
        e.cpu_s / b.cpu_s for e, b in zip(samples["ember.byte_trio"], samples["byte_trio"], strict=True) if b.cpu_s > 0
    ]
    out["speedup_binfeat_over_ember_cpu"] = round(statistics.median(speedups), 2) if speedups else None
    progress("EMBER baseline: agreement of the raw values")
    out["agreement"] = agreement(bufs, ember)
    out["ember_source"] = str(ember.source)
    return out
