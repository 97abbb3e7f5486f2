"""ELF structural feature groups (all named ``elf_*``) and the ELF parse step.

- :mod:`.parse`: the one LIEF parse (symbols, relocations, notes, versions, overlay skipped), the
  ELF header read with ``struct``, and the views (segments, sections, dynamic entries) groups share;
- :mod:`.dynsym`: the dynamic symbol table read with numpy, split into imports and exports;
- :mod:`.headers`: elf_header, elf_segments, elf_sections;
- :mod:`.linking`: elf_libraries, elf_imports, elf_exports, elf_interpreter;
- :mod:`.security`: elf_security;
- :mod:`.general`: EMBER's general fields for ELF;
- :mod:`.spec`: the gABI numbers.

Importing this package declares the groups in the order above, which is their place in the vector.
"""

from __future__ import annotations

import importlib

# The import order is the declaration order, hence the vector layout: append, never reorder.
PARTS = ("parse", "headers", "linking", "security", "general")
for _part in PARTS:
    importlib.import_module(f"{__name__}.{_part}")
