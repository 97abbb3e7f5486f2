"""Exclusive time per category for a breakdown: wrap functions, each call's time goes to its category
minus the time of wrapped calls nested inside it (those go to theirs).

Why wall time (``perf_counter_ns``, ~50 ns a read) and not a CPU clock: a CPU clock is a system call
here (~600 ns a read), and a file's row makes some thirty wrapped calls, so CPU clocks would cost a
tenth of what they measure. The breakdown scales the wall shares to the process's CPU time, measured
apart (:func:`scaled`); time spent blocked (waiting for another process) is its own category, left
out of the scaling.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Iterable
from typing import Any


class Ledger:
    """Exclusive nanoseconds and calls per category."""

    def __init__(self) -> None:
        self.ns: dict[str, int] = {}
        self.calls: dict[str, int] = {}
        self._nested: list[int] = []  # per open call: the time of the wrapped calls inside it

    def wrap(self, fn: Callable[..., Any], category: str) -> Callable[..., Any]:
        """``fn`` with its calls' exclusive time booked to ``category``."""
        clock, nested, ns, calls = time.perf_counter_ns, self._nested, self.ns, self.calls
        ns.setdefault(category, 0)
        calls.setdefault(category, 0)

        @functools.wraps(fn)
        def timed(*args: Any, **kwargs: Any) -> Any:
            nested.append(0)
            t0 = clock()
            try:
                return fn(*args, **kwargs)
            finally:
                dt = clock() - t0
                ns[category] += dt - nested.pop()
                calls[category] += 1
                if nested:
                    nested[-1] += dt

        timed.__wrapped_by_ledger__ = fn  # type: ignore[attr-defined]
        return timed

    def snapshot(self) -> dict[str, Any]:
        return {"ns": dict(self.ns), "calls": dict(self.calls)}


def delta(after: dict[str, Any], before: dict[str, Any]) -> dict[str, Any]:
    """What happened between two snapshots."""
    return {part: {k: v - before[part].get(k, 0) for k, v in after[part].items()} for part in ("ns", "calls")}


def scaled(ns: dict[str, int], cpu_s: float, waiting: Iterable[str] = ()) -> dict[str, float]:
    """Each category's share of the busy wall time (``waiting`` categories left out), as CPU seconds
    of a process that spent ``cpu_s``; the waiting categories keep their wall seconds."""
    waits = set(waiting)
    busy = sum(v for k, v in ns.items() if k not in waits)
    out = {k: (v / busy * cpu_s if busy else 0.0) for k, v in ns.items() if k not in waits}
    out.update({k: ns[k] / 1e9 for k in waits if k in ns})
    return out


class Patches:
    """Attributes replaced for a measurement, put back by :meth:`undo` (last first). Works on modules,
    classes and frozen dataclass instances (the feature groups)."""

    def __init__(self) -> None:
        self._undo: list[tuple[Any, str, Any]] = []

    def set(self, owner: Any, name: str, value: Any) -> None:
        old = owner.__dict__[name] if isinstance(owner, type) else getattr(owner, name)
        self._undo.append((owner, name, old))
        _assign(owner, name, value)

    def undo(self) -> None:
        while self._undo:
            _assign(*self._undo.pop())


def _assign(owner: Any, name: str, value: Any) -> None:
    if isinstance(owner, type):
        setattr(owner, name, value)
    else:
        object.__setattr__(owner, name, value)  # a frozen dataclass too
