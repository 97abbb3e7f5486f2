"""EMBER's general fields for (the chosen slice of) a Mach-O (the ``general`` group's Mach-O side)."""

from __future__ import annotations

from extract.groups.macho.image import segments_sections
from extract.groups.macho.linking import symbol_table
from extract.groups.macho.loader_view import has_relocations, virtual_size
from extract.groups.macho.spec import (
    LC_CODE_SIGNATURE,
    S_THREAD_LOCAL_REGULAR,
    S_THREAD_LOCAL_VARIABLES,
    S_THREAD_LOCAL_ZEROFILL,
)
from extract.parsed import Parsed, register_general

_TLS_TYPES = (S_THREAD_LOCAL_REGULAR, S_THREAD_LOCAL_VARIABLES, S_THREAD_LOCAL_ZEROFILL)


def macho_general(parsed: Parsed) -> dict[str, int]:
    """EMBER's general fields for (the chosen slice of) a Mach-O.

    vsize: the mapped range rounded up to pages (rule in extract.groups.macho.loader_view, as LIEF 1.0
    computes it); has_debug: a __DWARF segment or section; exports / imports: as
    macho_exports / macho_imports; has_relocations: a section with relocation entries (nreloc, as LIEF 1.0
    lists sections);
    has_resources: 0; has_signature: LC_CODE_SIGNATURE; has_tls: a thread-local section;
    symbols: nsyms of LC_SYMTAB.
    """
    segs, secs = segments_sections(parsed)
    s = symbol_table(parsed)
    vsize = virtual_size(parsed)
    return {
        "vsize": vsize if 0 <= vsize < 2**63 else 0,
        "has_debug": int(any(g["name"] == "__DWARF" for g in segs)
                         or any(c["segment"] == "__DWARF" for c in secs)),
        "exports": s["n_exports"],
        "imports": s["n_imports"],
        "has_relocations": int(has_relocations(parsed)),
        "has_resources": 0,
        "has_signature": int(any(c == LC_CODE_SIGNATURE for c, _, _ in parsed.extra["cmds"])),
        "has_tls": int(any(c["flags"] & 0xFF in _TLS_TYPES for c in secs)),
        "symbols": int(s["nsyms"]),
    }


register_general("macho", macho_general)
