"""Golden rows: digests of the rows of a few fixtures, to catch numbers that drift without a new
feature_version. Regenerate (after checking why they changed) with ``python -m tests.extract.golden``."""

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
    out = {}
    for name, row in zip(NAMES, canonical_rows(batch, drop=("path",)), strict=True):
        text = json.dumps(row, sort_keys=True, default=lambda b: b.hex())
        out[name] = {"status": row["status"], "format": row["format"], "sha256": row["sha256"],
                     "row_digest": hashlib.sha256(text.encode()).hexdigest()}
    return out


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
