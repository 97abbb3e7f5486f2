"""Golden rows: digests of the rows of a few fixtures, to catch numbers that drift without a new
feature_version, and of their vectors under each scheme (``vector_digest``: binfeat's,
``ember2_digest``): a raw value may gain a field (new version, new row digest) while the vector
digests show that no number moved. Regenerate (after checking why they changed) with
``python -m tests.extract.golden``."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

GOLDEN = Path(__file__).with_name("golden.json")
NAMES = ("empty", "text", "random_64k", "pe32_minimal", "pe32plus_minimal", "dotnet_minimal",
         "elf64_le_minimal", "elf32_be_minimal", "macho64_minimal", "macho_fat_minimal", "pe_truncated")


def row_digests(paths: dict[str, Path]) -> dict[str, dict]:
    import pyarrow as pa

    import extract
    from tests.rows import canonical_rows

    batch = extract.extract_batch(pa.record_batch({"path": [str(paths[n]) for n in NAMES]}))
    ember = extract.extract_batch(pa.record_batch({"path": [str(paths[n]) for n in NAMES]}),
                                  extract.ExtractOptions(scheme="ember2"))
    out = {}
    rows = canonical_rows(batch, drop=("path",))
    for name, row, v, e in zip(NAMES, rows, batch.column("vector").to_pylist(), ember.column("vector").to_pylist(),
                               strict=True):
        text = json.dumps(row, sort_keys=True, default=lambda b: b.hex())
        out[name] = {"status": row["status"], "format": row["format"], "sha256": row["sha256"],
                     "row_digest": hashlib.sha256(text.encode()).hexdigest(),
                     "vector_digest": vector_digest(v), "ember2_digest": vector_digest(e)}
    return out


def vector_digest(vector: list[float] | None) -> str | None:
    """sha256 of a vector's float32 bytes (None for no vector)."""
    import numpy as np

    return None if vector is None else hashlib.sha256(np.asarray(vector, np.float32).tobytes()).hexdigest()


def main() -> None:
    import tempfile

    import extract
    from tests.fixtures import all_fixtures

    with tempfile.TemporaryDirectory() as d:
        paths = {}
        for name, data in all_fixtures().items():
            paths[name] = Path(d) / name
            paths[name].write_bytes(data)
        doc = {"feature_version": extract.FEATURE_VERSION, "rows": row_digests(paths)}
    GOLDEN.write_text(json.dumps(doc, indent=1, sort_keys=True) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
