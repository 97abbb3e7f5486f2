"""The binfeat command and the Makefile's prerequisite check: one clear line for what is wrong."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def _binfeat(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "jobs.cli", *args], capture_output=True, text=True,
                          cwd=REPO, timeout=120)


def test_help_lists_every_subcommand():
    proc = _binfeat("--help")
    assert proc.returncode == 0
    for sub in ("extract", "corpus", "bench", "file", "layout", "version"):
        assert f"\n  {sub} " in proc.stdout, sub


def test_unknown_subcommand_is_one_line():
    proc = _binfeat("frobnicate")
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        "binfeat: unknown subcommand 'frobnicate': choose from extract, corpus, bench, file, layout, version"]


def test_corpus_needs_a_known_subcommand():
    proc = _binfeat("corpus", "shuffle")
    assert proc.returncode == 2 and "choose sample, update, read, maintain" in proc.stderr


def test_version_and_layout():
    import extract

    proc = _binfeat("version")
    assert proc.stdout.splitlines()[1] == f"feature_version {extract.FEATURE_VERSION}"
    names = _binfeat("layout", "--names").stdout.splitlines()
    assert len(names) == len(set(names)) == sum(r["length"] for r in extract.vector_layout())


def test_vector_layout_doc_is_current():
    from extract.layout import layout_markdown

    doc = (REPO / "docs" / "vector_layout.md").read_text(encoding="utf-8")
    assert doc == layout_markdown(), "stale: run `binfeat layout --markdown > docs/vector_layout.md`"


def _fake_java(tmp_path: Path, version_line: str | None) -> dict[str, str]:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("python3",):
        (bin_dir / tool).symlink_to(sys.executable)
    for tool in ("awk", "cut", "bash", "env"):
        for d in ("/usr/bin", "/bin"):
            if os.path.exists(f"{d}/{tool}"):
                (bin_dir / tool).symlink_to(f"{d}/{tool}")
                break
    if version_line is not None:
        java = bin_dir / "java"
        java.write_text(f"#!/bin/sh\necho '{version_line}' >&2\n")
        java.chmod(0o755)
    env = {"PATH": str(bin_dir), "HOME": str(tmp_path)}
    return env


def test_prereqs_without_java(tmp_path):
    env = _fake_java(tmp_path, None)
    proc = subprocess.run(["bash", str(REPO / "scripts" / "check-prereqs"), sys.executable], env=env,
                          capture_output=True, text=True)
    assert proc.returncode == 1
    assert proc.stderr.splitlines() == [
        "binfeat needs Java 17 or newer for Spark: install it (Debian/Ubuntu: sudo apt-get install "
        "openjdk-17-jre-headless) or set JAVA_HOME"]


def test_prereqs_with_old_java(tmp_path):
    env = _fake_java(tmp_path, 'openjdk version "11.0.2" 2019-01-15')
    proc = subprocess.run(["bash", str(REPO / "scripts" / "check-prereqs"), sys.executable], env=env,
                          capture_output=True, text=True)
    assert proc.returncode == 1
    assert len(proc.stderr.splitlines()) == 1 and "found Java 11.0.2" in proc.stderr


def test_prereqs_with_java8_style_version(tmp_path):
    env = _fake_java(tmp_path, 'java version "1.8.0_292"')
    proc = subprocess.run(["bash", str(REPO / "scripts" / "check-prereqs"), sys.executable], env=env,
                          capture_output=True, text=True)
    assert proc.returncode == 1 and "found Java 1.8.0_292" in proc.stderr


def test_prereqs_pass_with_java17(tmp_path):
    env = _fake_java(tmp_path, 'openjdk version "17.0.15" 2025-04-15')
    proc = subprocess.run(["bash", str(REPO / "scripts" / "check-prereqs"), sys.executable], env=env,
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


def test_make_stops_with_one_line_without_java(tmp_path):
    env = _fake_java(tmp_path, None)
    for tool in ("make", "sh"):
        for d in ("/usr/bin", "/bin"):
            if os.path.exists(f"{d}/{tool}") and not (tmp_path / "bin" / tool).exists():
                (tmp_path / "bin" / tool).symlink_to(f"{d}/{tool}")
    proc = subprocess.run(["make", "-s", "test", f"PYTHON={sys.executable}", "VENV=/nonexistent-venv"],
                          cwd=REPO, env=env, capture_output=True, text=True)
    assert proc.returncode != 0
    lines = [ln for ln in proc.stderr.splitlines() if not ln.startswith("make")]
    assert lines == ["binfeat needs Java 17 or newer for Spark: install it (Debian/Ubuntu: sudo apt-get "
                     "install openjdk-17-jre-headless) or set JAVA_HOME"]
