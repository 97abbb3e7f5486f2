"""Bad arguments and unusable INPUT/OUTPUT/master: one line on stderr, exit code 2, Spark never starts.

Each case runs ``binfeat extract``'s main in this process with Spark's session factory replaced by one
that fails the test; two cases also run as real processes whose JAVA_HOME points nowhere (had the
job tried to start Spark, it would fail differently: other message, other exit code, JVM output).
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from extract.groups import LAYOUT
from jobs.extract_cli import build_parser, main
from tests.jobs._support import REPO, child_env


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    t = tmp_path_factory.mktemp("cli-args")
    (t / "in").mkdir()
    (t / "in" / "a.bin").write_bytes(b"\x7fELF" + b"\0" * 60)
    (t / "empty_dir").mkdir()
    (t / "not_ours").mkdir()
    (t / "not_ours" / "keep.txt").write_text("mine")
    (t / "bad.jsonl").write_text('{"label": "x"}\n')
    (t / "broken.jsonl").write_text('{"path": "a"}\n\n{not json\n')
    (t / "not-objects.jsonl").write_text('{"path": "a"}\n[1, 2]\n')
    (t / "mixed.jsonl").write_text('{"path": "a", "label": 1}\n{"path": "b", "label": "x"}\n')
    (t / "short.csv").write_text("path,label\na,1\nb\n")
    (t / "bad-size.csv").write_text("path,size\na,12\nb,lots\n")
    return t


def _cases():
    i = "{t}/in"
    o = "{t}/out"
    return {
        "no-args": ([], "the following arguments are required: INPUT, OUTPUT"),
        "no-output": ([i], "the following arguments are required: OUTPUT"),
        "missing-input": (["{t}/nope", o], "input not found: {t}/nope"),
        "empty-glob": (["{t}/in/*.exe", o], "no files match '{t}/in/*.exe'"),
        "empty-dir": (["{t}/empty_dir", o], "no input files found in {t}/empty_dir"),
        "no-parent": ([i, "{t}/missing/out"], "OUTPUT's parent directory does not exist: {t}/missing"),
        "not-ours": (
            [i, "{t}/not_ours"], "OUTPUT exists and is not a binfeat output, refusing to replace it: {t}/not_ours"
        ),
        "output-is-file": ([i, "{t}/in/a.bin"], "OUTPUT exists and is not a directory: {t}/in/a.bin"),
        "output-s3": ([i, "s3://bucket/out"], "OUTPUT must be a local or shared-filesystem path, got 's3://bucket/out'"),
        "output-proc": (
            [i, "/proc/binfeat-out"],
            "cannot create folders next to OUTPUT (No such file or directory): choose an OUTPUT on a writable "
            "filesystem: /proc/binfeat-out",
        ),
        "partitions-0": ([i, o, "--partitions", "0"], "argument --partitions: expected a positive integer, got '0'"),
        "scheme": ([i, o, "--scheme", "ember3"], "unknown vector scheme 'ember3': choose from binfeat, ember2"),
        "groups-unknown": (
            [i, o, "--groups", "strings,pe_nope"], f"unknown feature group(s) pe_nope: choose from {', '.join(LAYOUT)}"
        ),
        "groups-empty": ([i, o, "--groups", ","], "argument --groups: expected comma-separated group names, got ','"),
        "ember2-groups": (
            [i, o, "--scheme", "ember2", "--groups", "strings"],
            "scheme ember2 needs the group(s) byte_histogram, byte_entropy_histogram, general, pe_header, "
            "pe_section, pe_imports, pe_exports, pe_data_directories: add them to the selection",
        ),
        "per-file-cost": (
            [i, o, "--per-file-cost", "lots"],
            "argument --per-file-cost: expected a size like 65536, 64k or 1m, got 'lots'",
        ),
        "parse-timeout": (
            [i, o, "--parse-timeout", "-1"], "argument --parse-timeout: expected a positive number, got '-1'"
        ),
        "memory-limit": (
            [i, o, "--memory-limit-mb", "64"],
            "--memory-limit-mb must be >= 256, got 64: give a larger value (or leave the option out for the default)",
        ),
        "conf": ([i, o, "--conf", "novalue"], "argument --conf: expected KEY=VALUE, got 'novalue'"),
        "unknown-flag": ([i, o, "--bogus"], "unrecognized arguments: --bogus"),
        "input-type": (
            [i, o, "--input-type", "zip"],
            "argument --input-type: invalid choice: 'zip' (choose from 'auto', 'files', 'manifest')",
        ),
        "s3-endpoint": (
            [i, o, "--s3-endpoint-url", "localhost:9000"],
            "--s3-endpoint-url must start with http:// or https://, got 'localhost:9000'",
        ),
        "master-scheme": (
            [i, o, "--master", "bogus://x"],
            "unknown Spark master 'bogus://x': use local[N], spark://HOST:PORT, yarn or k8s://https://HOST:PORT",
        ),
        "master-local": (
            [i, o, "--master", "local[abc]"],
            "bad local master 'local[abc]': use local, local[N], local[*] or local[N,F] (N threads or *, F attempts "
            "per task; both positive integers)",
        ),
        "master-yarn": (
            [i, o, "--master", "yarn"],
            "--master yarn needs the cluster's Hadoop configuration: set HADOOP_CONF_DIR (or YARN_CONF_DIR) to the "
            "folder holding yarn-site.xml",
        ),
        "master-standalone": (
            [i, o, "--master", "spark://host"],
            "bad standalone master 'spark://host': use spark://HOST:PORT (e.g. spark://10.0.0.5:7077)",
        ),
        "manifest-no-path": (["{t}/bad.jsonl", o], "manifest {t}/bad.jsonl: entry 1 has no 'path' (nor 'sha256')"),
        "manifest-json": (
            ["{t}/broken.jsonl", o],
            "manifest {t}/broken.jsonl line 3: invalid JSON (Missing a name for object member.)",
        ),
        "manifest-not-object": (
            ["{t}/not-objects.jsonl", o], "manifest {t}/not-objects.jsonl line 2: expected a JSON object"
        ),
        "manifest-mixed-types": (
            ["{t}/mixed.jsonl", o],
            "manifest {t}/mixed.jsonl line 2: 'label' is a string here but a number on an earlier line: give it "
            "one type on every line",
        ),
        "manifest-csv-row": (
            ["{t}/short.csv", o],
            "manifest {t}/short.csv: CSV parse error: Row #3: Expected 2 columns, got 1: b",
        ),
        "manifest-size": (
            ["{t}/bad-size.csv", o], "manifest {t}/bad-size.csv: entry 2 has size 'lots', not a number of bytes"
        ),
        "manifest-with-include": (
            ["{t}/bad.jsonl", o, "--include", "*.exe"],
            "--include/--exclude choose among the files of a folder, glob or S3 prefix; a manifest lists exactly "
            "its inputs (use --input-type files to extract the manifest file itself)",
        ),
        "include-nothing": ([i, o, "--include", "*.exe"], "no input files found in {t}/in"),
        "s3-uri": (["s3://", o], "bad S3 URI 's3://': expected s3://bucket/prefix"),
    }


CASES = _cases()


@pytest.fixture
def no_spark(monkeypatch):
    """Starting Spark fails the test; yarn's Hadoop configuration is absent."""
    import jobs.session

    def refuse(*args, **kwargs):
        raise AssertionError("Spark would have started")

    monkeypatch.setattr(jobs.session, "spark_session", refuse)
    monkeypatch.delenv("HADOOP_CONF_DIR", raising=False)
    monkeypatch.delenv("YARN_CONF_DIR", raising=False)


@pytest.mark.parametrize("name", sorted(CASES))
def test_bad_argument_is_one_line_exit_2_before_spark(name, tree, no_spark, capsys):
    argv, message = CASES[name]
    code = main([a.format(t=tree) for a in argv])
    out, err = capsys.readouterr()
    assert (code, err, out) == (2, f"binfeat extract: error: {message.format(t=tree)}\n", "")
    assert not (tree / "out").exists()
    assert (tree / "not_ours" / "keep.txt").read_text() == "mine"
    assert [p.name for p in tree.iterdir() if p.name.startswith(".")] == []  # no probe or run folder left


def _process(*args: str) -> subprocess.CompletedProcess:
    env = child_env(JAVA_HOME="/nonexistent-java-binfeat-test")
    env.pop("HADOOP_CONF_DIR", None)
    env.pop("YARN_CONF_DIR", None)
    return subprocess.run(
        [sys.executable, "-m", "binfeat", "extract", *args],
        cwd=REPO,
        env={**env, "PYTHONPATH": str(REPO)},
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.parametrize("name", ["master-scheme", "memory-limit", "output-proc", "manifest-json"])
def test_a_real_process_prints_one_line_and_exits_2(name, tree):
    argv, message = CASES[name]
    proc = _process(*[a.format(t=tree) for a in argv])
    assert (proc.returncode, proc.stderr, proc.stdout) == (2, f"binfeat extract: error: {message.format(t=tree)}\n", "")


def test_help_documents_every_option(capsys):
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    for action in build_parser()._actions:
        for flag in action.option_strings:
            assert flag in out, flag
        if action.help and action.option_strings:
            assert action.help.split()[0] in out
    assert "INPUT" in out and "OUTPUT" in out and "credentials" in out
    # what a folder input takes, and how to choose
    assert "EVERY file below it" in out and "--include" in out and "manifest.jsonl" in out


def test_help_touches_nothing(tree, no_spark, capsys):
    assert main([str(tree / "in"), str(tree / "out"), "--help"]) == 0
    out = capsys.readouterr().out
    assert not (tree / "out").exists()
    with pytest.raises(json.JSONDecodeError):
        json.loads(out)
