"""Stage ``kernels``: each byte-level kernel and hash alone, one core, on files already in memory.

Why in-process and in memory: a kernel's own speed is what the issue-3 goals are about, and reading
from disk is not a kernel's cost. Every variant runs over the same buffers, interleaved per run;
CPU time is this process's (``time.process_time``), quoted next to wall time.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from functools import partial
from typing import Any

import numpy as np

from benchmarks.input_files import in_memory_subset, inputs_note, load
from benchmarks.markdown import num, table
from benchmarks.measure import Sample, interleave, median_ratio, summarize, timed
from benchmarks.stage import Context, Stage

# -- the variants -------------------------------------------------------------------------------------


def _scan_kernel(data: bytes) -> None:
    """The single-pass kernel alone: histogram, entropy windows, string runs and patterns."""
    from extract.kernels import BLOCK, PATTERNS, kernels

    scan = kernels()[0]
    a = np.frombuffer(data, dtype=np.uint8)
    n_full = (a.shape[0] // BLOCK) * BLOCK
    unc = np.empty((max(n_full // BLOCK, 1), 16), np.int64)
    z = np.zeros
    scan(a, n_full, z(4, np.uint8), a.shape[0], 0, z(256, np.int64), z(256, np.int64), z(256, np.int64),
         z(16, np.int64), z(1, np.int64), z(2, np.int64), z(len(PATTERNS), np.int64), unc)


def byte_trio(data: bytes) -> None:
    """binfeat's byte kernels over one buffer (histogram, entropy grid, strings, patterns)."""
    from extract.kernels import scan_bytes

    scan_bytes(data)


def _trio_groups(data: bytes) -> None:
    """ByteScanner plus the three groups' compute and vectorize, as the extractor runs them."""
    from extract.groups import REGISTRY
    from extract.groups.bytelevel import ByteContext
    from extract.kernels import scan_bytes

    ctx = ByteContext(size=len(data), scan=scan_bytes(data), fuzzy={})
    for name in ("byte_histogram", "byte_entropy_histogram", "strings"):
        g = REGISTRY[name]
        g.vector(g.compute(ctx))


def _sha256(data: bytes) -> None:
    hashlib.sha256(data).hexdigest()


def _md5(data: bytes) -> None:
    hashlib.md5(data).hexdigest()


def _fuzzy(hasher: str, data: bytes) -> None:
    """One of extract.fuzzy's hashers over one buffer."""
    from extract import fuzzy

    h = getattr(fuzzy, hasher)()
    h.update(data)
    h.hexdigest()


def windows(bufs: Sequence[bytes]) -> list[list[bytes]]:
    """The buffers cut into the extractor's windows."""
    from extract.file_windows import windows as cut

    return list(cut(bufs, len))


def _md5_lanes(window: Sequence[bytes]) -> None:
    from extract.md5_lanes import md5_many

    for d in md5_many(window):
        d.hex()


def _bytes_stage(window: Sequence[bytes]) -> None:
    """Everything the extractor computes from the bytes with default options: the window's md5s side
    by side, then one pass per file for the byte kernels and sha256."""
    from extract.byte_pass import ByteState
    from extract.options import ExtractOptions

    _md5_lanes(window)
    options = ExtractOptions()
    for data in window:
        bs = ByteState(options, md5=False)
        bs.update(data, last=True)
        bs.scanner.finish()
        bs.sha256.hexdigest()
        bs.fuzzy.digests()


KERNELS: dict[str, tuple[str, Callable[[bytes], None]]] = {
    "scan_kernel": ("binfeat scan kernel alone: one pass for histogram, entropy, strings, patterns", _scan_kernel),
    "byte_trio": ("ByteScanner: histogram + entropy + strings", byte_trio),
    "byte_trio+groups": ("ByteScanner + the 3 groups' compute/vectorize", _trio_groups),
    "sha256": ("hashlib.sha256 (what the extractor uses)", _sha256),
    "md5": ("hashlib.md5, one file at a time", _md5),
    "tlsh": ("extract.fuzzy.TlshHasher (py-tlsh)", partial(_fuzzy, "TlshHasher")),
    "ssdeep": ("extract.fuzzy.SsdeepHasher", partial(_fuzzy, "SsdeepHasher")),
}
# Kernels that take a whole window of files at once, as the extractor calls them.
WINDOWED: dict[str, tuple[str, Callable[[Sequence[bytes]], None]]] = {
    "md5_lanes": ("extract.md5_lanes.md5_many over the extractor's windows (what the extractor uses)", _md5_lanes),
    "bytes_stage": ("extractor byte pass: window md5s + trio + sha256 (fuzzy hashes off, the default)",
                    _bytes_stage),
}


# -- the measurement ----------------------------------------------------------------------------------


def run_over(fn: Callable[[bytes], None], bufs: Sequence[bytes]) -> Sample:
    """One timed pass of ``fn`` over every buffer."""
    with timed(sum(len(b) for b in bufs), len(bufs), tree=False) as s:
        for b in bufs:
            fn(b)
    return s


def _run_windows(fn: Callable[[Sequence[bytes]], None], wins: Sequence[Sequence[bytes]]) -> Sample:
    with timed(sum(len(b) for w in wins for b in w), sum(len(w) for w in wins), tree=False) as s:
        for w in wins:
            fn(w)
    return s


def bench_kernels(bufs: Sequence[bytes], repeat: int, progress: Callable[[str], None]) -> dict[str, Any]:
    """Every byte-level kernel and hash over the same buffers, interleaved A/B/C... per repeat."""
    for _, fn in KERNELS.values():  # compile / load numba's cache outside the timing
        fn(b"warm-up" * 1000)
    wins = windows(bufs)
    for _, wfn in WINDOWED.values():
        wfn([b"warm-up" * 1000] * 20)
    variants: dict[str, Callable[[], Sample]] = {name: partial(run_over, fn, bufs) for name, (_, fn) in KERNELS.items()}
    variants |= {name: partial(_run_windows, wfn, wins) for name, (_, wfn) in WINDOWED.items()}
    samples = interleave(variants, repeat, progress, "kernels")
    what = {k: v[0] for k, v in [*KERNELS.items(), *WINDOWED.items()]}
    out = {name: {"what": what[name], **summarize(s)} for name, s in samples.items()}
    out["sha256"]["vs_hashlib"] = 1.0  # the extractor calls hashlib itself: the same code
    # md5: the multi-buffer kernel against hashlib on the same buffers, per run (interleaved)
    out["md5_lanes"]["vs_hashlib"] = median_ratio(samples["md5"], samples["md5_lanes"])
    out["md5_lanes"]["windows"] = len(wins)
    return out


def run(ctx: Context) -> dict[str, Any]:
    chosen = in_memory_subset(ctx.entries, ctx.quick)
    bufs = load(chosen)
    res = bench_kernels(bufs, ctx.repeat, ctx.progress)
    res["_inputs"] = inputs_note(bufs, subset=len(chosen) < len(ctx.entries))
    return res


def render(k: dict[str, Any], results: dict[str, Any]) -> list[str]:
    inp = k.get("_inputs", {})
    lines = [
        f"{inp.get('files')} files, {num(inp.get('bytes', 0) / 1e6)} MB"
        f"{' (an evenly spread subset)' if inp.get('subset') else ''}, read into memory first.",
        "",
    ]
    rows = [
        [name, d["what"], num(d["mb_per_s_cpu"]), num(d["mb_per_s_wall"]), num(d["files_per_s_cpu"]),
         num(d["cpu_s"], 3), num(d["wall_s"], 3)]
        for name, d in k.items()
        if not name.startswith("_")
    ]
    lines += table(
        ["group / kernel", "implementation", "MB/s (CPU)", "MB/s (wall)", "files/s (CPU)", "CPU s", "wall s"], rows
    )
    return [
        *lines,
        "",
        "sha256: the extractor feeds each chunk to `hashlib` itself (one read of the file feeds the "
        "kernels, sha256 and TLSH), so its speed *is* hashlib's. md5: the extractor hashes each window's "
        "whole-read files side by side with the multi-buffer kernel (`md5_lanes`, 16 files per AVX-512 "
        f"register; files streamed in chunks use hashlib): {k.get('md5_lanes', {}).get('vs_hashlib')}x "
        "hashlib's CPU speed on the same files, interleaved.",
        "",
    ]


STAGE = Stage(
    "kernels",
    "Byte-level groups and hashes, one core (in memory)",
    run,
    render,
    notes=(
        "- **Kernels** run on files already in memory (whole-file calls, as the extractor does up to "
        "`whole_read_bytes`); the **whole extraction** reads from the page cache and pays the parser worker's "
        "IPC (one request message per window, replies a few files per message), structural groups, vectorisation "
        "and row building.",
    ),
)
