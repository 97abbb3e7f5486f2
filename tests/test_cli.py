"""The binfeat command and the Makefile's prerequisite check: one clear line for what is wrong."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from binfeat.cli import SUBCOMMANDS, main

REPO = Path(__file__).resolve().parent.parent


def _binfeat(*args: str, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "binfeat", *args], capture_output=True, text=True, cwd=REPO,
                          timeout=120, **kwargs)


def test_help_lists_every_subcommand_and_imports_no_spark():
    code = ("import sys; from binfeat.cli import main; rc = main(['--help']); "
            "sys.stderr.write(repr(sorted(m for m in sys.modules if m.split('.')[0] in "
            "('pyspark', 'jobs', 'benchmarks', 'extract', 'pyarrow')))); sys.exit(rc)")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=120)
    assert proc.returncode == 0
    for sub in SUBCOMMANDS:
        assert re.search(rf"\n    {sub}\s", proc.stdout), sub  # a long name's help starts on the next line
    assert proc.stderr == "[]"  # the subcommands' modules are imported only when chosen


@pytest.mark.parametrize(
    ("argv", "line"),
    [
        (["frobnicate"], "binfeat: error: argument SUBCOMMAND: invalid choice: 'frobnicate' (choose from "
                         "'extract', 'corpus', 'bench', 'file', 'vectorize', 'matrix', 'layout', 'version')"),
        (["--bogus"], "binfeat: error: unrecognized arguments: --bogus"),
        (["corpus"], "binfeat corpus: error: choose a subcommand: sample, update, read or maintain "
                     "(binfeat corpus --help)"),
        (["corpus", "shuffle"], "binfeat corpus: error: argument {sample,update,read,maintain}: invalid choice: "
                                "'shuffle' (choose from 'sample', 'update', 'read', 'maintain')"),
        (["layout", "--markdown", "--names"], "binfeat layout: error: argument --names: not allowed with argument "
                                              "--markdown"),
        (["file"], "binfeat file: error: the following arguments are required: PATH"),
    ],
)
def test_bad_subcommand_is_one_line_exit_2(argv, line, capsys):
    code = main(argv)
    out, err = capsys.readouterr()
    assert (code, err, out) == (2, line + "\n", "")


def test_no_subcommand_prints_help_and_exits_2(capsys):
    assert main([]) == 2
    assert "SUBCOMMAND" in capsys.readouterr().err


def test_subcommand_help_reaches_the_subcommand(capsys):
    assert main(["extract", "--help"]) == 0
    assert capsys.readouterr().out.startswith("usage: binfeat extract ")
    assert main(["corpus", "--help"]) == 0
    assert "sample" in capsys.readouterr().out


def test_version_and_layout(capsys):
    import extract

    assert main(["version"]) == 0
    assert capsys.readouterr().out.splitlines()[1] == f"feature_version {extract.FEATURE_VERSION}"
    assert main(["layout", "--names"]) == 0
    names = capsys.readouterr().out.splitlines()
    assert len(names) == len(set(names)) == sum(r["length"] for r in extract.vector_layout())


def test_vector_layout_doc_is_current():
    from extract.layout import layout_markdown

    doc = (REPO / "docs" / "vector_layout.md").read_text(encoding="utf-8")
    assert doc == layout_markdown(), "stale: run `binfeat layout --markdown > docs/vector_layout.md`"


def test_a_closed_pipe_ends_quietly():
    """``binfeat layout | head``: no BrokenPipeError traceback, the status a shell tool killed by SIGPIPE gives."""
    read, write = os.pipe()
    os.close(read)  # the reader is gone before anything is written: every write fails with EPIPE
    try:
        proc = subprocess.run([sys.executable, "-m", "binfeat", "layout", "--names"], stdout=write,
                              stderr=subprocess.PIPE, text=True, cwd=REPO, timeout=120)
    finally:
        os.close(write)
    assert (proc.returncode, proc.stderr) == (141, "")


def test_file_prints_rows_for_names_that_are_not_utf8(tmp_path):
    bad = os.fsencode(tmp_path) + b"/bad\xff.bin"
    with open(bad, "wb") as f:
        f.write(Path("/bin/ls").read_bytes())
    (tmp_path / "back\\slash.bin").write_bytes(b"MZ" + bytes(200))
    proc = _binfeat("file", os.fsdecode(bad), str(tmp_path / "back\\slash.bin"))
    assert proc.returncode == 0, proc.stderr
    rows = [json.loads(line) for line in proc.stdout.splitlines()]
    assert [r["path"] for r in rows] == [f"{tmp_path}/bad\\xff.bin", f"{tmp_path}/back\\\\slash.bin"]
    import hashlib

    assert rows[0]["status"] == "ok" and rows[0]["format"] == "elf"
    assert rows[0]["sha256"] == hashlib.sha256(Path("/bin/ls").read_bytes()).hexdigest()
    assert rows[1]["format"] == "pe" and rows[1]["size"] == 202


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
