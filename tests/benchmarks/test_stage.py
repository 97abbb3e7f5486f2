"""The suite's stage registry: declarations checked when made, run order from ``needs``, guarded runs."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from benchmarks.stage import Context, Stage, check_registry, run_order, run_stage
from benchmarks.stage_registry import STAGES


def _stage(key: str, needs: tuple[str, ...] = (), run=None) -> Stage:
    return Stage(key, f"title of {key}", run or (lambda ctx: {"ran": key}), lambda section, results: [], needs=needs)


def test_the_registry_in_report_order_and_in_run_order() -> None:
    report = ["kernels", "ember_baseline", "structure", "whole", "per_file", "startup", "spark", "update", "planning",
              "rss", "fuzz"]
    assert [s.key for s in STAGES] == report
    # structure reads which files crashed in whole; update is measured inside the Spark session
    assert [s.key for s in run_order(STAGES)] == [
        "kernels", "ember_baseline", "whole", "structure", "per_file", "startup", "spark", "update", "planning", "rss",
        "fuzz"]


def test_run_order_puts_needs_first_and_keeps_the_rest() -> None:
    stages = [_stage("a", ("c",)), _stage("b"), _stage("c", ("d",)), _stage("d")]
    assert [s.key for s in run_order(stages)] == ["d", "c", "a", "b"]


@pytest.mark.parametrize(
    ("stages", "message"),
    [
        ([_stage("a"), _stage("a")], r"stage keys listed twice: \['a'\]"),
        ([_stage("a", ("nope",))], r"stage a needs \['nope'\], which no stage provides"),
        ([_stage("a", ("b",)), _stage("b", ("c",)), _stage("c", ("a",))],
         "need each other in a circle: a -> b -> c -> a"),
    ],
)
def test_a_bad_registry_is_refused(stages: list[Stage], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        check_registry(stages)


@pytest.mark.parametrize("key", ["machine", "corpus", "goals_check", "Kernels", "two words", ""])
def test_a_stage_cannot_take_a_suite_key_or_an_odd_one(key: str) -> None:
    with pytest.raises(ValueError, match="stage key"):
        _stage(key)


def test_a_stage_that_raises_is_recorded_and_the_one_skipped_says_why(tmp_path: Path) -> None:
    lines: list[str] = []

    def boom(ctx: Context) -> dict:
        raise OSError("disk on fire")

    ctx = Context(argparse.Namespace(), tmp_path, [], tmp_path, 1, True, lines.append, {})
    run_stage(_stage("broken", run=boom), ctx)
    run_stage(Stage("later", "t", lambda c: {"n": 1}, lambda s, r: [], skip=lambda c: "skipped (no reason)"), ctx)
    run_stage(_stage("fine"), ctx)
    broken = ctx.results["broken"]
    assert broken["not_measured"] == "OSError: disk on fire" and "Traceback" in broken["traceback"]
    assert ctx.results["later"] == {"not_measured": "skipped (no reason)"}
    assert ctx.results["fine"] == {"ran": "fine"}
    assert set(ctx.results["section_seconds"]) == {"broken", "fine"}  # a skipped stage is not timed
    assert lines[:2] == ["== broken", "   broken: not measured (OSError: disk on fire)"]
