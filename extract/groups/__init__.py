"""All feature groups. Importing this package declares them, in the order that fixes the vector layout."""

from __future__ import annotations

import importlib

from extract.registry import REGISTRY

# The order of declaration is the vector layout: append new modules, never reorder.
MODULES = ("bytelevel", "general", "pe", "elf", "macho")
for _name in MODULES:
    importlib.import_module(f"extract.groups.{_name}")

__all__ = ["MODULES", "REGISTRY"]
