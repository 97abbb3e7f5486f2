"""The report's Markdown pieces: numbers as text, tables, and a section's not-measured reason."""

from __future__ import annotations

from typing import Any


def num(x: Any, digits: int = 1) -> str:
    """A figure as the report prints it: thousands separated, ``digits`` decimals, ``—`` when missing."""
    if x is None:
        return "—"
    if isinstance(x, bool):
        return "yes" if x else "no"
    if isinstance(x, float | int):
        return f"{x:,.{digits}f}"
    return str(x)


def why_not_measured(d: Any) -> str | None:
    """The not-measured reason of a section (``missing`` when there is no section), else None."""
    return d.get("not_measured") if isinstance(d, dict) else "missing"


def table(head: list[str], rows: list[list[str]]) -> list[str]:
    """A Markdown table, one line per row."""
    return ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)] + ["| " + " | ".join(r) + " |" for r in rows]
