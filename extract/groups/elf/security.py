"""The elf_security group: hardening and stripping, from headers, program headers and dynamic entries."""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from extract.groups.elf.dynsym import dynamic_symbols
from extract.groups.elf.parse import debug_sections, dynamic, sections, segments, symtab_entries
from extract.groups.elf.spec import (
    DF_1_NOW,
    DF_1_PIE,
    DF_BIND_NOW,
    DF_TEXTREL,
    DT_BIND_NOW,
    DT_FLAGS,
    DT_FLAGS_1,
    DT_TEXTREL,
    ET_DYN,
    PF_X,
    PT_DYNAMIC,
    PT_GNU_RELRO,
    PT_GNU_STACK,
    PT_INTERP,
    SHT_SYMTAB,
)
from extract.parsed import Parsed
from extract.registry import REGISTRY, declare

_SEC_FLAGS = pa.struct([
    ("stripped", pa.bool_()), ("symtab_entries", pa.int64()), ("pie", pa.bool_()),
    ("nx_stack", pa.bool_()), ("relro", pa.int32()), ("bind_now", pa.bool_()),
    ("textrel", pa.bool_()), ("has_dynamic", pa.bool_()), ("has_interp", pa.bool_()),
    ("stack_protector", pa.bool_()), ("fortify", pa.bool_()), ("debug_sections", pa.int64()),
])
_SECURITY_DIMS = ["stripped", "symtab_entries", "pie", "nx_stack", "relro=partial", "relro=full",
                  "bind_now", "textrel", "has_dynamic", "has_interp", "stack_protector", "fortify",
                  "debug_sections"]


def _fill_security(raws: list[dict], out: np.ndarray) -> None:
    out[:] = np.array([[
        raw["stripped"], raw["symtab_entries"], raw["pie"], raw["nx_stack"], raw["relro"] == 1,
        raw["relro"] == 2, raw["bind_now"], raw["textrel"], raw["has_dynamic"], raw["has_interp"],
        raw["stack_protector"], raw["fortify"], raw["debug_sections"],
    ] for raw in raws], dtype=np.float32)


@declare(REGISTRY, name="elf_security", version=1, formats=["elf"], stage="structure",
         raw_type=_SEC_FLAGS, dim_names=_SECURITY_DIMS, fill=_fill_security)
def elf_security(parsed: Parsed) -> dict:
    """Hardening and stripping: computed from headers, program headers and dynamic entries.

    stripped: no SHT_SYMTAB section; symtab_entries: its size / entsize. pie: ET_DYN with a
    PT_INTERP or DF_1_PIE. nx_stack: a PT_GNU_STACK without PF_X. relro: 0 none, 1 PT_GNU_RELRO,
    2 PT_GNU_RELRO and bind-now. bind_now: DT_BIND_NOW, DF_BIND_NOW or DF_1_NOW. textrel: DT_TEXTREL
    or DF_TEXTREL. stack_protector / fortify: imports __stack_chk_fail / any ``__*_chk``.
    debug_sections: number of .debug_* / .zdebug_* sections.
    """
    segs = segments(parsed)
    types = {s["type"] for s in segs}
    flags = flags1 = 0
    tags = set()
    for tag, e in dynamic(parsed):
        tags.add(tag)
        if tag == DT_FLAGS:
            flags |= e.value
        elif tag == DT_FLAGS_1:
            flags1 |= e.value
    bind_now = DT_BIND_NOW in tags or bool(flags & DF_BIND_NOW) or bool(flags1 & DF_1_NOW)
    relro = (2 if bind_now else 1) if PT_GNU_RELRO in types else 0
    stack = [s for s in segs if s["type"] == PT_GNU_STACK]
    imports = dynamic_symbols(parsed)["imports"]
    return {
        "stripped": not any(s["type"] == SHT_SYMTAB for s in sections(parsed)),
        "symtab_entries": symtab_entries(parsed),
        "pie": parsed.extra["ehdr"]["type"] == ET_DYN and (PT_INTERP in types or bool(flags1 & DF_1_PIE)),
        "nx_stack": bool(stack) and not stack[0]["flags"] & PF_X,
        "relro": relro,
        "bind_now": bind_now,
        "textrel": DT_TEXTREL in tags or bool(flags & DF_TEXTREL),
        "has_dynamic": PT_DYNAMIC in types,
        "has_interp": PT_INTERP in types,
        "stack_protector": "__stack_chk_fail" in imports,
        "fortify": any(n.startswith("__") and n.endswith("_chk") and n != "__stack_chk_fail"
                       for n in imports),
        "debug_sections": debug_sections(parsed),
    }
