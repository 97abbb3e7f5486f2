"""Shared test set-up: the sample corpus (when built) and fixture files on disk."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
# py4j logs at INFO while the interpreter shuts down, after pytest has closed its capture streams
logging.getLogger("py4j").setLevel(logging.WARNING)


def corpus_dir() -> Path | None:
    """The small sample corpus, when it has been built (``make test`` builds it when it can)."""
    candidate = Path(os.environ.get("BINFEAT_CORPUS", REPO / "corpus" / "small"))
    return candidate if (candidate / "manifest.jsonl").is_file() else None


def corpus_manifest() -> list[dict]:
    root = corpus_dir()
    if root is None:
        return []
    with open(root / "manifest.jsonl", encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


@pytest.fixture(scope="session")
def small_corpus() -> Path:
    root = corpus_dir()
    if root is None:
        pytest.skip("the small sample corpus is not built (make test builds it when the registries are reachable)")
    return root


@pytest.fixture(scope="session")
def fixture_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Every code-built fixture written to disk, by name."""
    from tests.fixtures import all_fixtures

    root = tmp_path_factory.mktemp("fixtures")
    out = {}
    for name, data in all_fixtures().items():
        path = root / name
        path.write_bytes(data)
        out[name] = path
    return out


@pytest.fixture(scope="session")
def system_binaries() -> list[Path]:
    """A deterministic handful of real ELF files from this machine (present on every Debian image)."""
    picks = []
    for d in (Path("/usr/bin"), Path("/usr/lib/x86_64-linux-gnu")):
        if d.is_dir():
            files = sorted(p for p in d.iterdir() if p.is_file() and not p.is_symlink())
            picks += [p for p in files if 0 < p.stat().st_size < 3_000_000][:: max(1, len(files) // 15)]
    if not picks:
        pytest.skip("no system binaries found")
    return picks[:30]
