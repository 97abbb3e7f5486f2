"""Mach-O structural feature groups (all named ``macho_*``) and the Mach-O parse step.

- :mod:`.parse`: the fat header, the choice of one slice, the load-command walk (rules there);
- :mod:`.image`: segments, sections (with entropy) and the entry point of the chosen image;
- :mod:`.headers`: macho_header, macho_load_commands, macho_sections;
- :mod:`.linking`: macho_dylibs, macho_imports, macho_exports (the LC_SYMTAB table read with numpy);
- :mod:`.security`: macho_security; :mod:`.platform`: macho_platform; :mod:`.fat`: macho_fat;
- :mod:`.general`: EMBER's general fields for Mach-O;
- :mod:`.spec`: the <mach-o/loader.h> numbers.

Importing this package declares the groups; their place in the vector is declared in one list,
``extract.groups.LAYOUT``, not by the order of the imports below.
"""

from __future__ import annotations

from extract.groups.macho import fat, general, headers, linking, parse, platform, security  # noqa: F401  (each declares its groups)
