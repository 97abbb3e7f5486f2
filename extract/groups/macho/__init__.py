"""Mach-O structural feature groups (all named ``macho_*``) and the Mach-O parse step.

- :mod:`.parse`: the fat header, the choice of one slice, the load-command walk (rules there);
- :mod:`.image`: segments, sections (with entropy) and the entry point of the chosen image;
- :mod:`.headers`: macho_header, macho_load_commands, macho_sections;
- :mod:`.linking`: macho_dylibs, macho_imports, macho_exports (the LC_SYMTAB table read with numpy);
- :mod:`.security`: macho_security; :mod:`.platform`: macho_platform; :mod:`.fat`: macho_fat;
- :mod:`.general`: EMBER's general fields for Mach-O;
- :mod:`.spec`: the <mach-o/loader.h> numbers.

Importing this package declares the groups in the order above, which is their place in the vector.
"""

from __future__ import annotations

import importlib

# The import order is the declaration order, hence the vector layout: append, never reorder.
PARTS = ("parse", "headers", "linking", "security", "platform", "fat", "general")
for _part in PARTS:
    importlib.import_module(f"{__name__}.{_part}")
