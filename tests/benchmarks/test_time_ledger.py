"""The per-file breakdown's accounting: exclusive time per category with nested calls, shares scaled
to a CPU figure with waits left out, and patches put back."""

from __future__ import annotations

import types

import pytest

from benchmarks import time_ledger
from benchmarks.time_ledger import Ledger, Patches, delta, scaled


class _Clock:
    """perf_counter_ns stand-in: each function below advances it by what its work costs."""

    def __init__(self) -> None:
        self.now = 0

    def __call__(self) -> int:
        return self.now


def test_nested_calls_book_exclusive_time(monkeypatch):
    clock = _Clock()
    monkeypatch.setattr(time_ledger.time, "perf_counter_ns", clock)
    ledger = Ledger()

    def leaf(cost: int) -> None:
        clock.now += cost

    leaf_t = ledger.wrap(leaf, "hashing")

    def middle() -> None:
        clock.now += 10
        leaf_t(100)
        clock.now += 5
        leaf_t(50)

    middle_t = ledger.wrap(middle, "vectorising")

    def outer() -> None:
        clock.now += 1
        middle_t()
        leaf_t(7)  # the same category at two depths

    ledger.wrap(outer, "rest")()
    assert ledger.ns == {"hashing": 157, "vectorising": 15, "rest": 1}
    assert ledger.calls == {"hashing": 3, "vectorising": 1, "rest": 1}


def test_a_call_that_raises_is_booked_and_the_stack_stays_sound(monkeypatch):
    clock = _Clock()
    monkeypatch.setattr(time_ledger.time, "perf_counter_ns", clock)
    ledger = Ledger()

    def boom() -> None:
        clock.now += 30
        raise ValueError("x")

    boom_t = ledger.wrap(boom, "parse")

    def outer() -> None:
        clock.now += 2
        with pytest.raises(ValueError):
            boom_t()

    ledger.wrap(outer, "glue")()
    assert ledger.ns == {"parse": 30, "glue": 2}


def test_shares_scale_to_cpu_and_waits_keep_their_wall():
    ns = {"a": 300, "b": 100, "wait": 4_000_000_000}
    assert scaled(ns, 0.2, waiting=("wait",)) == {"a": pytest.approx(0.15), "b": pytest.approx(0.05), "wait": 4.0}
    before = {"ns": {"a": 1}, "calls": {"a": 1}}
    after = {"ns": {"a": 5, "b": 2}, "calls": {"a": 3, "b": 1}}
    assert delta(after, before) == {"ns": {"a": 4, "b": 2}, "calls": {"a": 2, "b": 1}}


def test_patches_are_put_back_on_modules_classes_and_frozen_instances():
    from dataclasses import dataclass

    @dataclass(frozen=True)
    class Group:
        compute: object

    class Thing:
        def method(self) -> int:
            return 1

    module = types.SimpleNamespace(fn=len)
    group = Group(compute=abs)
    patches = Patches()
    patches.set(module, "fn", max)
    patches.set(Thing, "method", lambda self: 2)
    patches.set(group, "compute", min)
    assert (module.fn, Thing().method(), group.compute) == (max, 2, min)
    patches.undo()
    assert (module.fn, Thing().method(), group.compute) == (len, 1, abs)
