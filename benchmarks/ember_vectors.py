"""ember2 against EMBER's own ``feature_vector``, block by block, on a corpus's PE files.

EMBER's code runs from a checkout (``--ember-source DIR`` or ``BINFEAT_EMBER_SOURCE``) on LIEF 1.0
through :mod:`benchmarks.lief09_shim`; binfeat's ember2 vectors come from ``extract`` itself. Run:
``python -m benchmarks.ember_vectors CORPUS [--ember-source DIR]`` (CORPUS: a sample corpus folder
with its manifest.jsonl); prints, per EMBER block, the dimensions equal over all files compared.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import numpy as np

from benchmarks import ember_checkout

BLOCKS = {"histogram": (0, 256), "byteentropy": (256, 256), "strings": (512, 104), "general": (616, 10),
          "header": (626, 62), "section": (688, 255), "imports": (943, 1280), "exports": (2223, 128),
          "datadirectories": (2351, 30)}


def pe_paths(corpus: Path) -> list[Path]:
    manifest = [json.loads(line) for line in (corpus / "manifest.jsonl").read_text().splitlines() if line.strip()]
    return [corpus / m["sha256"][:2] / m["sha256"] for m in manifest if m.get("format") == "pe"]


def compare(paths: list[Path], source: str | Path) -> dict:
    """Per block: equal dimensions / dimensions compared; files EMBER's code failed on; per file, the
    blocks that differ."""
    import pyarrow as pa

    import extract

    ember = ember_checkout.load_extractor(source)
    batch = extract.extract_batch(pa.record_batch({"path": [str(p) for p in paths]}),
                                  extract.ExtractOptions(scheme="ember2"))
    equal = dict.fromkeys(BLOCKS, 0)
    total = dict.fromkeys(BLOCKS, 0)
    failed: dict[str, str] = {}
    differing: dict[str, list[str]] = {}
    for path, row in zip(paths, batch.to_pylist(), strict=True):
        try:
            theirs = np.asarray(ember.feature_vector(path.read_bytes()), np.float32)
        except Exception as exc:
            failed[path.name] = f"{type(exc).__name__}: {exc}"[:200]
            continue
        mine = np.asarray(row["vector"], np.float32)
        for name, (offset, n) in BLOCKS.items():
            a, b = mine[offset:offset + n], theirs[offset:offset + n]
            same = (a == b) | (np.isnan(a) & np.isnan(b))
            equal[name] += int(same.sum())
            total[name] += n
            if not same.all():
                differing.setdefault(path.name, []).append(f"{name}:{int((~same).sum())}")
    return {"files": len(paths) - len(failed), "equal_dims": {k: f"{equal[k]}/{total[k]}" for k in BLOCKS},
            "ember_failed": failed, "differing": differing}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.ember_vectors", description=__doc__.split("\n\n")[0])
    p.add_argument("corpus", type=Path)
    p.add_argument("--ember-source", default=None)
    args = p.parse_args(argv)
    source = args.ember_source or os.environ.get(ember_checkout.ENV, "").strip()
    if not source:
        sys.stderr.write(f"give --ember-source DIR or {ember_checkout.ENV}\n")
        return 2
    json.dump(compare(pe_paths(args.corpus), source), sys.stdout, indent=1)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
