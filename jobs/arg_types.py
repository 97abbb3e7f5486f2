"""argparse types shared by the job commands: a bad value is one line naming what was expected."""

from __future__ import annotations

import argparse
from collections.abc import Callable


def _number(text: str, kind: Callable[[str], float], ok: Callable[[float], bool], expected: str):
    try:
        value = kind(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}") from None
    if not ok(value):
        raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}")
    return value


def positive_int(text: str) -> int:
    return _number(text, int, lambda v: v >= 1, "a positive integer")


def positive_float(text: str) -> float:
    return _number(text, float, lambda v: v > 0, "a positive number")


def share(text: str) -> float:
    """A fraction within [0, 1] (NaN is refused: it compares false)."""
    return _number(text, float, lambda v: 0.0 <= v <= 1.0, "a number within [0, 1]")


def conf_pair(text: str) -> tuple[str, str]:
    """``KEY=VALUE`` (a Spark configuration entry): the key stripped, the value as given."""
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    return key.strip(), value
