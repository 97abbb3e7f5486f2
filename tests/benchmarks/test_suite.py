"""Smoke test of `binfeat bench`: a tiny crafted input, --quick, no Spark, a short fuzz.

Asserts that the JSON, the report and the plots are produced with sane values (positive speeds, counts
equal to the input); never asserts a timing (the machines are shared and noisy). The EMBER comparison
runs when ``BINFEAT_EMBER_SOURCE`` names a checkout of elastic/ember, and is reported as not measured
otherwise.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tests.fixtures import all_fixtures

FILES = (
    "pe32_minimal",
    "dotnet_minimal",
    "elf64_le_minimal",
    "macho_fat_minimal",
    "random_64k",
    "empty",
    "pe_bitflip",
    "text",
)


EMBER_SOURCE = os.environ.get("BINFEAT_EMBER_SOURCE", "").strip()
FUZZ = 40
# the crafted files whose magic says executable: the fuzz's parents (a folder has no manifest)
FUZZ_PARENTS = ("pe32_minimal", "dotnet_minimal", "elf64_le_minimal", "macho_fat_minimal", "pe_bitflip")
# the report's sections, in order: the structure BENCHMARKS.md has
HEADINGS = [
    "# binfeat benchmark report",
    "## Machine",
    "## Corpus",
    "## Speed goals (issues 3, 4 and 16)",
    "## Byte-level groups and hashes, one core (in memory)",
    "## Against EMBER v2's byte-level code (same files, interleaved)",
    "## Against EMBER v2's whole extractor (same PE files, per core)",
    "## Structural parsing and groups per format, one core (in-process, no isolation)",
    "## Whole extraction: one core and a multiprocessing pool",
    "## Per-file CPU breakdown: extractor and parser worker (extract_batch on the whole corpus)",
    "## Start-up: `binfeat file` on one PE",
    "## Spark (JVM start excluded; each run interleaved with the plain loop in the same process)",
    "## Corpus update: a day with 1% new files against a full run",
    "## Partition planning",
    "## Peak memory of an extraction worker",
    "## Fuzz: seeded mutants through extract_batch",
    "## Plots",
    "## How the figures are taken",
    "## Not measured",
]


@pytest.fixture(scope="module")
def bench_run(tmp_path_factory) -> tuple[Path, dict, int]:
    from benchmarks.suite import main

    root = tmp_path_factory.mktemp("bench")
    inp = root / "in"
    inp.mkdir()
    fx = all_fixtures()
    for name in FILES:
        (inp / name).write_bytes(fx[name])
    # one bigger file so that every kernel has something to chew on
    (inp / "big_random").write_bytes(os.urandom(1 << 20))
    out = root / "out"
    md = root / "BENCHMARKS.md"
    code = main(
        [
            "--input",
            str(inp),
            "--out",
            str(out),
            "--quick",
            "--no-spark",
            "--plan-entries",
            "2000",
            "--sparse-gib",
            "0.02",
            "--quiet",
            "--benchmarks-md",
            str(md),
            "--fuzz",
            str(FUZZ),
            *(["--ember-source", EMBER_SOURCE] if EMBER_SOURCE else []),
        ]
    )
    results = json.loads((out / "results.json").read_text())
    return out, results, code


def test_exit_code_and_files(bench_run) -> None:
    out, _, code = bench_run
    assert code == 0
    for name in (
        "results.json",
        "report.md",
        "throughput_per_group.png",
        "scaling_with_cores.png",
        "cost_vs_file_size.png",
    ):
        path = out / name
        assert path.exists() and path.stat().st_size > 0, name
    assert (out / "throughput_per_group.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (out.parent / "BENCHMARKS.md").read_text().startswith("# binfeat benchmark report")


def test_counts_match_input(bench_run) -> None:
    _, r, _ = bench_run
    n = len(FILES) + 1
    assert r["corpus"]["files"] == n
    whole = r["whole"]
    assert whole["one_core"]["files"] == n
    assert sum(whole["one_core"]["statuses"].values()) == n
    assert sum(whole["pool"]["statuses"].values()) == n
    assert len(whole["per_file"]) == n
    assert r["kernels"]["_inputs"]["files"] == n


def test_speeds_are_positive(bench_run) -> None:
    _, r, _ = bench_run
    for name in ("byte_trio", "sha256", "md5", "md5_lanes", "tlsh", "ssdeep", "bytes_stage"):
        d = r["kernels"][name]
        assert d["mb_per_s_cpu"] is None or d["mb_per_s_cpu"] > 0, name  # None: too fast for the clock
        assert d["wall_s"] > 0 and d["mb_per_s_wall"] > 0, name
    assert r["kernels"]["md5_lanes"]["vs_hashlib"] > 0 and r["kernels"]["md5_lanes"]["windows"] >= 1
    assert r["goals_check"]["core_md5"]["value"] == r["kernels"]["md5_lanes"]["mb_per_s_cpu"]
    assert r["whole"]["one_core"]["mb_per_s_wall"] > 0
    assert r["whole"]["pool"]["mb_per_s_wall"] > 0
    for fmt in ("pe", "elf", "macho"):
        assert r["structure"][fmt]["files"] >= 1


def test_per_file_and_startup_figures(bench_run) -> None:
    out, r, _ = bench_run
    d = r["per_file"]
    assert d["files"] == len(FILES) + 1 and d["runs"] == 1
    assert d["plain_us_per_file"]["extractor"] > 0 and d["plain_us_per_file"]["worker"] > 0
    assert d["missing_probes"] == []  # every step the breakdown names was found
    for step in ("read", "byte kernels", "md5/sha256", "vectorising", "ipc: replies (read, unpickle)", "parse"):
        assert step in d["extractor_us_per_file"] or step in d["worker_us_per_file"], step
    assert any(k.startswith("group:pe_") for k in d["worker_us_per_file"])
    # every structural file's request went to the worker once per instrumented run
    assert d["calls_per_run"]["worker glue"] == sum(1 for n in FILES if n not in ("random_64k", "empty", "text"))
    s = r["startup"]
    assert s["runs"] == 3 and Path(s["file"]).name in FILES
    assert s["binfeat file"]["wall_s"] > 0 and s["binfeat file"]["cpu_s"] > 0
    report = (out / "report.md").read_text()
    assert "beyond the byte work" in report and "binfeat file" in report


def test_scale_figures(bench_run) -> None:
    _, r, _ = bench_run
    plan = r["planning"]
    assert plan["entries"] == 2000 and plan["partitions"] >= 1 and plan["plan_partitions_peak_mib"] > 0
    rss = r["rss"]
    assert rss["largest_file"]["size"] == 1 << 20
    assert rss["largest_file"]["extractor_peak_rss_mib"] > 0
    assert rss["sparse_file"]["size"] == int(0.02 * 2**30)
    assert rss["sparse_file"]["status"] in ("ok", "partial")


def test_not_measured_is_said(bench_run) -> None:
    out, r, _ = bench_run
    assert "not_measured" in r["spark"]
    assert r["goals_check"]["spark_cpu_ratio"]["met"] is None
    assert r["goals_check"]["per_file_cpu"]["value"] == r["per_file"]["beyond_byte_work_us_per_file"]
    report = (out / "report.md").read_text()
    assert "## Machine" in report and "shared and noisy" in report
    assert "Not measured" in report


def test_report_sections_in_order(bench_run) -> None:
    out, _, _ = bench_run
    headings = [line for line in (out / "report.md").read_text().splitlines() if line.startswith("#")]
    assert headings == HEADINGS
    md = (out.parent / "BENCHMARKS.md").read_text()
    assert [line for line in md.splitlines() if line.startswith("#")] == HEADINGS
    assert "- `out/throughput_per_group.png`" in md  # plots named, not embedded


def test_fuzz_stage(bench_run) -> None:
    out, r, _ = bench_run
    f = r["fuzz"]
    assert f["mutants"] == f["rows"] == FUZZ and f["seed"] == 1
    assert f["parent_count"] == len(FUZZ_PARENTS)
    assert sum(f["statuses"].values()) == FUZZ and set(f["statuses"]) <= {"ok", "partial", "error"}
    assert f["invariants_broken"] == 0 and f["problems"] == []
    assert f["repeated"] == len(range(0, FUZZ, 50))  # every 50th mutant extracted a second time
    report = (out / "report.md").read_text()
    section = report.split("## Fuzz: seeded mutants through extract_batch\n", 1)[1].split("\n## ", 1)[0]
    assert f"{FUZZ} mutants (seed 1) of {len(FUZZ_PARENTS)} executables" in section
    assert "- **invariants broken: 0**" in section and "| status | rows |" in section
    assert "python -m benchmarks.fuzz --corpus" in section


def test_ember_baseline(bench_run) -> None:
    out, r, _ = bench_run
    e = r["ember_baseline"]
    if not EMBER_SOURCE:
        assert e["not_measured"].startswith("skipped: no EMBER checkout given")
        assert r["ember_whole"]["not_measured"].startswith("skipped: no EMBER checkout given")
        assert "--ember-source" in (out / "report.md").read_text()
        return
    assert e["ember.byte_trio"]["mb_per_s_wall"] > 0 and e["speedup_binfeat_over_ember_cpu"] > 0
    agree = e["agreement"]
    assert agree["files"] == r["corpus"]["files"]
    assert agree["equal"] == dict.fromkeys(("byte_histogram", "byte_entropy_histogram", "strings_counts",
                                            "strings_entropy"), agree["files"])


def test_bad_ember_source_is_one_line_and_exit_2(tmp_path, capsys) -> None:
    from benchmarks.suite import main

    (tmp_path / "in").mkdir()
    code = main(["--input", str(tmp_path / "in"), "--out", str(tmp_path / "out"), "--quiet", "--no-spark",
                 "--ember-source", str(tmp_path / "nothing-here")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1
    assert "is not an EMBER checkout: ember/features.py is missing there" in err[0]
    assert not (tmp_path / "out").exists()


def test_bad_fuzz_count_is_one_line_and_exit_2(tmp_path, capsys) -> None:
    from benchmarks.suite import main

    (tmp_path / "in").mkdir()
    code = main(["--input", str(tmp_path / "in"), "--out", str(tmp_path / "out"), "--quiet", "--fuzz", "0"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and err == ["binfeat bench: error: --fuzz takes the number of mutants, at least 1 (got 0)"]
    assert not (tmp_path / "out").exists()
