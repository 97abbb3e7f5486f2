"""macho feature groups (being written)."""

from __future__ import annotations
