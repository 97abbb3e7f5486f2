"""What a stage of the benchmark suite is, and how the suite runs one.

A stage is one measurement with its own key in results.json and its own section in report.md. It
lives in one module, ``benchmarks/bench_<what>.py``, that ends with ``STAGE = Stage(...)``, and it
takes part once that ``STAGE`` is listed in ``benchmarks.stage_registry.STAGES``.

How to add a stage (one module, one entry):

1. Write ``benchmarks/bench_thing.py``::

       def run(ctx: Context) -> dict[str, Any]:             # the figures (JSON-able)
           ...
       def render(section: dict, results: dict) -> list[str]:  # report lines under the heading
           ...
       STAGE = Stage("thing", "Thing per core (what it measures)", run, render)

   Optional fields: ``add_arguments(parser)``, the stage's own ``binfeat bench`` options;
   ``prepare(args)``, which checks them before anything runs (raise :class:`BenchError` with one
   line: exit 2) and whose return value the run reads as ``ctx.prepared["thing"]``; ``skip(ctx)``,
   a reason not to run (recorded as not measured); ``needs``, the keys of the stages whose figures
   it reads from ``ctx.results`` (they run first, whatever the report order); ``notes``, bullets for
   "How the figures are taken"; ``plots(section, results, out)``, PNGs it draws into ``out``.
2. Add ``bench_thing.STAGE`` to ``STAGES`` in ``stage_registry.py``, at the place its section
   should stand in the report.

The suite writes ``## <title>`` and, when the stage was not measured, the reason instead of
calling ``render``. A stage that raises costs only its own figures: they become
``{"not_measured": why, "traceback": ...}``. Work that could crash the interpreter or that needs a
fresh process (peak memory, a JVM) runs through :func:`benchmarks.child_process.run_json`.
"""

from __future__ import annotations

import argparse
import re
import sys
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchmarks.input_files import FileEntry

# results.json keys the suite itself writes: no stage may take them
RESERVED_KEYS = frozenset({"started_at", "finished_at", "command", "repeat", "quick", "goals", "goals_check",
                           "machine", "corpus", "section_seconds"})
_KEY = re.compile(r"^[a-z][a-z0-9_]*$")


class BenchError(RuntimeError):
    """The suite cannot run at all (no input, bad arguments); one line why."""


class Progress:
    """One line on stderr per step: which measurement is running, and how long the suite has run."""

    def __init__(self, quiet: bool = False) -> None:
        self.t0 = time.monotonic()
        self.quiet = quiet

    def __call__(self, msg: str) -> None:
        if not self.quiet:
            sys.stderr.write(f"[bench {time.monotonic() - self.t0:7.1f}s] {msg}\n")
            sys.stderr.flush()


@dataclass
class Context:
    """What a stage's ``run`` gets: the arguments, the input files, where to write, the figures so far."""

    args: argparse.Namespace
    root: Path  # the corpus folder (or the --input folder)
    entries: list[FileEntry]
    out: Path  # the output folder (results.json, report.md, plots; scratch space below it)
    repeat: int
    quick: bool
    progress: Callable[[str], None]
    results: dict[str, Any]  # every figure so far, by stage key
    prepared: dict[str, Any] = field(default_factory=dict)  # what each stage's prepare() returned


@dataclass(frozen=True)
class Stage:
    """One measurement of the suite (see the module docstring for each field's role)."""

    key: str
    title: str
    run: Callable[[Context], dict[str, Any]]
    render: Callable[[dict[str, Any], dict[str, Any]], list[str]]
    add_arguments: Callable[[argparse.ArgumentParser], None] | None = None
    prepare: Callable[[argparse.Namespace], Any] | None = None
    skip: Callable[[Context], str | None] | None = None
    needs: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()
    plots: Callable[[dict[str, Any], dict[str, Any], Path], list[str]] | None = None

    def __post_init__(self) -> None:
        if not _KEY.match(self.key) or self.key in RESERVED_KEYS:
            raise ValueError(f"stage key {self.key!r}: lower-case letters, digits and _, not one of the suite's own")
        if not self.title.strip():
            raise ValueError(f"stage {self.key}: its report section needs a title")
        if self.key in self.needs:
            raise ValueError(f"stage {self.key} cannot need itself")


def check_registry(stages: Sequence[Stage]) -> tuple[Stage, ...]:
    """The registry as given, once its keys are unique and every ``needs`` names a stage (no cycle)."""
    keys = [s.key for s in stages]
    if len(set(keys)) != len(keys):
        raise ValueError(f"stage keys listed twice: {sorted({k for k in keys if keys.count(k) > 1})}")
    for s in stages:
        if missing := [k for k in s.needs if k not in keys]:
            raise ValueError(f"stage {s.key} needs {missing}, which no stage provides")
    run_order(stages)
    return tuple(stages)


def run_order(stages: Sequence[Stage]) -> list[Stage]:
    """The registry's order, except that each stage runs after the stages it needs."""
    by_key = {s.key: s for s in stages}
    order: list[Stage] = []
    placed: set[str] = set()

    def place(stage: Stage, waiting: tuple[str, ...]) -> None:
        if stage.key in placed:
            return
        if stage.key in waiting:
            raise ValueError(f"stages need each other in a circle: {' -> '.join([*waiting, stage.key])}")
        for key in stage.needs:
            place(by_key[key], (*waiting, stage.key))
        placed.add(stage.key)
        order.append(stage)

    for stage in stages:
        place(stage, ())
    return order


def not_measured(exc: BaseException) -> dict[str, str]:
    """A failed measurement's figures: why, and where."""
    return {
        "not_measured": f"{type(exc).__name__}: {str(exc).strip()[:600]}",
        "traceback": traceback.format_exc()[-3000:],
    }


def guarded(name: str, progress: Callable[[str], None], fn: Callable[[], Any]) -> tuple[Any, float]:
    """Run one measurement: (its figures, seconds taken); a failure is recorded, never fatal to the suite."""
    t0 = time.monotonic()
    progress(f"== {name}")
    try:
        value = fn()
    except Exception as exc:
        value = not_measured(exc)
        progress(f"   {name}: not measured ({type(exc).__name__}: {str(exc).strip()[:200]})")
    return value, round(time.monotonic() - t0, 1)


def run_stage(stage: Stage, ctx: Context) -> None:
    """Skip, or run (guarded and timed), one stage; its figures land in ``ctx.results[stage.key]``."""
    reason = stage.skip(ctx) if stage.skip is not None else None
    if reason is not None:
        ctx.results[stage.key] = {"not_measured": reason}
        return
    seconds = ctx.results.setdefault("section_seconds", {})
    ctx.results[stage.key], seconds[stage.key] = guarded(stage.key, ctx.progress, lambda: stage.run(ctx))
