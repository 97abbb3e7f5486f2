"""The macho_security group: hardening flags, code signature, encryption and loader-relevant segments."""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from extract.groups.macho.image import segments_sections
from extract.groups.macho.parse import unpack
from extract.groups.macho.spec import (
    LC_CODE_SIGNATURE,
    LC_DYLD_ENVIRONMENT,
    LC_ENCRYPTION_INFO,
    LC_ENCRYPTION_INFO_64,
    MH_ALLOW_STACK_EXECUTION,
    MH_NO_HEAP_EXECUTION,
    MH_PIE,
)
from extract.parsed import Parsed
from extract.registry import REGISTRY, declare

_SECU_TYPE = pa.struct([
    ("pie", pa.bool_()), ("allow_stack_execution", pa.bool_()), ("no_heap_execution", pa.bool_()),
    ("has_code_signature", pa.bool_()), ("code_signature_offset", pa.int64()),
    ("code_signature_size", pa.int64()), ("code_signature_in_file", pa.bool_()),
    ("encrypted", pa.bool_()), ("cryptid", pa.int64()), ("cryptoff", pa.int64()),
    ("cryptsize", pa.int64()), ("has_pagezero", pa.bool_()), ("has_restrict", pa.bool_()),
    ("has_dyld_environment", pa.bool_()),
])
_SECU_NUMS = tuple(_SECU_TYPE.names)


def _fill_security(raws: list[dict], out: np.ndarray) -> None:
    out[:] = np.array([[float(raw[k]) for k in _SECU_NUMS] for raw in raws], dtype=np.float32)


@declare(REGISTRY, name="macho_security", version=1, formats=["macho"], stage="structure",
         raw_type=_SECU_TYPE, dim_names=list(_SECU_NUMS), fill=_fill_security)
def macho_security(parsed: Parsed) -> dict:
    """Code signature (LC_CODE_SIGNATURE offset/size, and whether it lies inside the image),
    encryption (LC_ENCRYPTION_INFO[_64]: cryptid, range), header flags PIE / stack-exec /
    no-heap-exec, a __PAGEZERO and a __RESTRICT segment, an LC_DYLD_ENVIRONMENT. Vector: each field.
    """
    x = parsed.extra
    out = {k: (False if _SECU_TYPE.field(k).type == pa.bool_() else 0) for k in _SECU_NUMS}
    f = x["flags"]
    out.update(pie=bool(f & MH_PIE), allow_stack_execution=bool(f & MH_ALLOW_STACK_EXECUTION),
               no_heap_execution=bool(f & MH_NO_HEAP_EXECUTION))
    for cmd, off, size in x["cmds"]:
        if cmd == LC_CODE_SIGNATURE and size >= 16 and not out["has_code_signature"]:
            dataoff, datasize = unpack(parsed, "II", off + 8)
            out.update(has_code_signature=True, code_signature_offset=dataoff,
                       code_signature_size=datasize,
                       code_signature_in_file=dataoff + datasize <= x["slice_size"])
        elif cmd in (LC_ENCRYPTION_INFO, LC_ENCRYPTION_INFO_64) and size >= 20 and not out["encrypted"]:
            cryptoff, cryptsize, cryptid = unpack(parsed, "III", off + 8)
            out.update(encrypted=cryptid != 0, cryptid=cryptid, cryptoff=cryptoff, cryptsize=cryptsize)
        elif cmd == LC_DYLD_ENVIRONMENT:
            out["has_dyld_environment"] = True
    segs, _ = segments_sections(parsed)
    names = {s["name"] for s in segs}
    out.update(has_pagezero="__PAGEZERO" in names, has_restrict="__RESTRICT" in names)
    return out
