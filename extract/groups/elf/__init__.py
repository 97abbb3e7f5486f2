"""ELF structural feature groups (all named ``elf_*``) and the ELF parse step.

- :mod:`.parse`: the one LIEF parse (symbols, relocations, notes, versions, overlay skipped), the
  ELF header read with ``struct``, and the views (segments, sections, dynamic entries) groups share;
- :mod:`.dynsym`: the dynamic symbol table read with numpy, split into imports and exports;
- :mod:`.headers`: elf_header, elf_segments, elf_sections;
- :mod:`.linking`: elf_libraries, elf_imports, elf_exports, elf_interpreter;
- :mod:`.security`: elf_security;
- :mod:`.general`: EMBER's general fields for ELF;
- :mod:`.spec`: the gABI numbers.

Importing this package declares the groups; their place in the vector is declared in one list,
``extract.groups.LAYOUT``, not by the order of the imports below.
"""

from __future__ import annotations

from extract.groups.elf import general, headers, linking, parse, security  # noqa: F401  (each declares its groups)
