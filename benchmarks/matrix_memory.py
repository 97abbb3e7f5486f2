"""How much memory ``extract.training_matrix`` needs for a million rows: the matrix, not more.

``python -m benchmarks.matrix_memory CORPUS WORKDIR [--rows N]`` extracts CORPUS (its files'
byte-level groups: 616 dimensions, and the ember2 vectors), writes Parquet datasets of N rows
(the corpus's rows repeated) into WORKDIR, then measures, each in a fresh process, the peak resident
memory of:
- ``training_matrix`` with the stored vectors (X in memory, N x 616 float32);
- ``training_matrix`` from the raw columns (the vector computed again, batch by batch);
- ``write_matrix`` of the ember2 vectors (X.npy on disk, N x 2,381), whose memory is one batch.
Peak resident memory is the process's ``ru_maxrss``; the baseline is the resident memory after a
10-row warm-up call (every module the call needs imported).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

BYTES_ONLY = ("byte_histogram", "byte_entropy_histogram", "strings")
FILES = 20

MEASURE = r"""
import json, resource, sys, time
import numpy as np
import extract
from extract.matrix import write_matrix
kind, source, out = sys.argv[1], sys.argv[2], sys.argv[3]
import pathlib, pyarrow.parquet as pq
first = sorted(pathlib.Path(source).glob("*.parquet"))[0]
warm = next(pq.ParquetFile(first).iter_batches(batch_size=10))
extract.training_matrix(warm, scheme="ember2" if kind == "disk" else "binfeat")
base = int(open("/proc/self/statm").read().split()[1]) * resource.getpagesize()  # resident now: code, imports
t0 = time.process_time()
if kind == "disk":
    info = write_matrix(source, out, scheme="ember2")
    matrix = info["rows"] * info["dims"] * 4
else:
    x, y, names, ids = extract.training_matrix(source)
    matrix = x.nbytes
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
print(json.dumps({"kind": kind, "matrix_bytes": matrix, "baseline_rss": base, "peak_rss": peak,
                  "peak_minus_baseline": peak - base, "cpu_s": round(time.process_time() - t0, 1)}))
"""


def build(corpus: Path, work: Path, rows: int) -> dict[str, Path]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    import extract

    manifest = [json.loads(line) for line in (corpus / "manifest.jsonl").read_text().splitlines() if line]
    paths = [str(corpus / m["sha256"][:2] / m["sha256"]) for m in manifest]
    out = {}
    for name, options, drop in (("stored", extract.ExtractOptions(groups=BYTES_ONLY), False),
                                ("raw", extract.ExtractOptions(groups=BYTES_ONLY), True),
                                ("ember2", extract.ExtractOptions(scheme="ember2"), False)):
        batch = extract.extract_batch(pa.record_batch({"path": paths}), options)
        table = pa.Table.from_batches([batch])
        table = table.filter(pa.compute.not_equal(table.column("status"), "error"))
        if drop:
            table = table.drop_columns(["vector"]).replace_schema_metadata({})
        if name == "ember2":  # the stored vectors only: the matrix is what is measured
            table = table.select(["sha256", "format", "status", "error", "vector"]).replace_schema_metadata(
                batch.schema.metadata)
        folder = work / name
        folder.mkdir(parents=True, exist_ok=True)
        per_file = rows // FILES
        for f in range(FILES):
            with pq.ParquetWriter(folder / f"part-{f:05d}.parquet", table.schema) as writer:
                written = 0
                while written < per_file:
                    piece = table.slice(0, min(table.num_rows, per_file - written))
                    writer.write_table(piece)
                    written += piece.num_rows
        out[name] = folder
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.matrix_memory", description=__doc__.split("\n\n")[0])
    p.add_argument("corpus", type=Path)
    p.add_argument("work", type=Path)
    p.add_argument("--rows", type=int, default=1_000_000)
    p.add_argument("--reuse", action="store_true", help="measure the datasets WORKDIR already holds")
    args = p.parse_args(argv)
    sets = {k: args.work / k for k in ("stored", "raw", "ember2")} if args.reuse else build(args.corpus, args.work,
                                                                                            args.rows)
    for kind, source in (("stored", sets["stored"]), ("raw", sets["raw"]), ("disk", sets["ember2"])):
        proc = subprocess.run([sys.executable, "-c", MEASURE, kind, str(source), str(args.work / "matrix")],
                              capture_output=True, text=True, check=True)
        print(proc.stdout.strip(), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
