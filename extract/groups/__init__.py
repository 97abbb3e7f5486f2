"""All feature groups, and binfeat's vector layout: the ordered list :data:`LAYOUT`.

Importing this package declares every group (plain imports, in any order) and then arranges the
registry in :data:`LAYOUT`, the one place that says where a group's dimensions sit in binfeat's
vector. Append new groups to it; never reorder (that moves numbers, and needs a new
``FEATURE_SCHEMA`` in :mod:`extract.version`).
"""

from __future__ import annotations

from extract.groups import bytelevel, elf, general, macho, pe  # noqa: F401  (each declares its groups)
from extract.registry import REGISTRY

LAYOUT: tuple[str, ...] = (
    # every format: EMBER v2's byte-level groups, the fuzzy hashes (no dimensions), EMBER's general group
    "byte_histogram", "byte_entropy_histogram", "strings", "hashes", "general",
    # PE: EMBER v2's structural groups, then binfeat's own
    "pe_header", "pe_section", "pe_imports", "pe_exports", "pe_data_directories",
    "pe_dotnet", "pe_rich", "pe_authenticode", "pe_overlay",
    # ELF
    "elf_header", "elf_segments", "elf_sections", "elf_libraries", "elf_imports", "elf_exports",
    "elf_interpreter", "elf_security",
    # Mach-O
    "macho_header", "macho_load_commands", "macho_sections", "macho_dylibs", "macho_imports",
    "macho_exports", "macho_security", "macho_platform", "macho_fat",
)
REGISTRY.arrange(LAYOUT)

__all__ = ["LAYOUT", "REGISTRY"]
