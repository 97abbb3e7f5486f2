"""All feature groups. Importing this package declares them, in the order that fixes the vector layout."""

from __future__ import annotations

from extract.groups import bytelevel, general, pe, elf, macho  # noqa: F401  (order = layout)
from extract.registry import REGISTRY

__all__ = ["REGISTRY"]
