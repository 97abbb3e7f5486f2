"""Bad arguments and missing inputs: one line on stderr, exit code 2, and Spark never starts.

Each case runs the CLI in a subprocess whose JAVA_HOME points nowhere: had the job tried to start
Spark, it would fail differently (other message, other exit code, JVM output on stderr).
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.jobs._support import REPO, child_env


def _run(*args: str, cwd=None) -> subprocess.CompletedProcess:
    env = child_env(JAVA_HOME="/nonexistent-java-binfeat-test")
    return subprocess.run(
        [sys.executable, "-m", "jobs.extract_features", *args],
        cwd=cwd or REPO,
        env={**env, "PYTHONPATH": str(REPO)},
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture
def tree(tmp_path):
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "a.bin").write_bytes(b"\x7fELF" + b"\0" * 60)
    (tmp_path / "empty_dir").mkdir()
    (tmp_path / "not_ours").mkdir()
    (tmp_path / "not_ours" / "keep.txt").write_text("mine")
    (tmp_path / "bad.jsonl").write_text('{"label": "x"}\n')
    (tmp_path / "broken.jsonl").write_text("{not json\n")
    return tmp_path


def _cases(t):
    i, o = str(t / "in"), str(t / "out")
    return [
        ([], "the following arguments are required: INPUT, OUTPUT"),
        ([i], "the following arguments are required: OUTPUT"),
        ([str(t / "nope"), o], f"input not found: {t / 'nope'}"),
        ([str(t / "in" / "*.exe"), o], f"no files match {str(t / 'in' / '*.exe')!r}"),
        ([str(t / "empty_dir"), o], f"no input files found in {t / 'empty_dir'}"),
        ([i, str(t / "missing" / "out")], f"OUTPUT's parent directory does not exist: {t / 'missing'}"),
        (
            [i, str(t / "not_ours")],
            f"OUTPUT exists and is not a binfeat output, refusing to replace it: {t / 'not_ours'}",
        ),
        ([i, str(t / "in" / "a.bin")], f"OUTPUT exists and is not a directory: {t / 'in' / 'a.bin'}"),
        ([i, "s3://bucket/out"], "OUTPUT must be a local or shared-filesystem path, got 's3://bucket/out'"),
        ([i, o, "--partitions", "0"], "argument --partitions: expected a positive integer, got '0'"),
        (
            [i, o, "--per-file-cost", "lots"],
            "argument --per-file-cost: expected a size like 65536, 64k or 1m, got 'lots'",
        ),
        ([i, o, "--parse-timeout", "-1"], "argument --parse-timeout: expected a positive number, got '-1'"),
        ([i, o, "--conf", "novalue"], "argument --conf: expected KEY=VALUE, got 'novalue'"),
        ([i, o, "--bogus"], "unrecognized arguments: --bogus"),
        (
            [i, o, "--input-type", "zip"],
            "argument --input-type: invalid choice: 'zip' (choose from 'auto', 'files', 'manifest')",
        ),
        (
            [i, o, "--s3-endpoint-url", "localhost:9000"],
            "--s3-endpoint-url must start with http:// or https://, got 'localhost:9000'",
        ),
        ([str(t / "bad.jsonl"), o], f"manifest {t / 'bad.jsonl'}: entry 1 has no 'path' (nor 'sha256')"),
        (
            [str(t / "broken.jsonl"), o],
            f"manifest {t / 'broken.jsonl'} line 1: invalid JSON"
            " (Expecting property name enclosed in double quotes)",
        ),
        (["s3://", o], "bad S3 URI 's3://': expected s3://bucket/prefix"),
    ]


def test_argument_errors_are_one_line_exit_2_before_spark(tree):
    cases = _cases(tree)
    for argv, message in cases:
        proc = _run(*argv)
        assert proc.returncode == 2, (argv, proc.returncode, proc.stderr)
        assert proc.stderr == f"binfeat extract: error: {message}\n", argv
        assert proc.stdout == ""
    assert not (tree / "out").exists()
    assert (tree / "not_ours" / "keep.txt").read_text() == "mine"


def test_help_documents_every_option():
    proc = _run("--help")
    assert proc.returncode == 0
    from jobs.extract_features import build_parser

    for action in build_parser()._actions:
        for flag in action.option_strings:
            assert flag in proc.stdout, flag
        if action.help and action.option_strings:
            assert action.help.split()[0] in proc.stdout
    assert "INPUT" in proc.stdout and "OUTPUT" in proc.stdout
    assert "credentials" in proc.stdout


def test_help_touches_nothing(tree):
    proc = _run(str(tree / "in"), str(tree / "out"), "--help")
    assert proc.returncode == 0
    assert not (tree / "out").exists()
    with pytest.raises(json.JSONDecodeError):
        json.loads(proc.stdout)
