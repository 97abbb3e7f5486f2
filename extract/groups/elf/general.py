"""EMBER's general fields for ELF (the ``general`` group's ELF side)."""

from __future__ import annotations

import math

from extract.groups.elf.dynsym import dynamic_symbols
from extract.groups.elf.parse import debug_sections, dynamic, sections, segments, symtab_entries
from extract.groups.elf.spec import DT_JMPREL, DT_REL, DT_RELA, PT_TLS, SHT_REL, SHT_RELA
from extract.parsed import Parsed, register_general

_REL_TAGS = (DT_RELA, DT_REL, DT_JMPREL)


def elf_general(parsed: Parsed) -> dict[str, int]:
    """EMBER's general fields for ELF.

    vsize: LIEF's virtual_size (span of PT_LOAD segments, page-aligned); has_debug: any .debug_* /
    .zdebug_* section; exports / imports: counts as in elf_exports / elf_imports; has_relocations:
    a SHT_REL/SHT_RELA section or a DT_REL/DT_RELA/DT_JMPREL entry; has_resources, has_signature: 0
    (ELF has neither); has_tls: a PT_TLS segment; symbols: dynamic symbols plus .symtab entries.
    """
    d = dynamic_symbols(parsed)
    has_rel = any(s["type"] in (SHT_REL, SHT_RELA) for s in sections(parsed)) or any(
        t in _REL_TAGS for t, _ in dynamic(parsed))
    try:
        vsize = int(parsed.binary.virtual_size)
    except Exception:
        vsize = 0
    return {
        "vsize": vsize if 0 <= vsize < 2**63 and not math.isnan(vsize) else 0,
        "has_debug": int(debug_sections(parsed) > 0),
        "exports": int(d["n_exports"]),
        "imports": int(d["n_imports"]),
        "has_relocations": int(has_rel),
        "has_resources": 0,
        "has_signature": 0,
        "has_tls": int(any(s["type"] == PT_TLS for s in segments(parsed))),
        "symbols": int(d["total"] + symtab_entries(parsed)),
    }


register_general("elf", elf_general)
