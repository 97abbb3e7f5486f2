"""Mach-O groups of dynamic linking: macho_dylibs, and macho_imports / macho_exports from LC_SYMTAB."""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from extract.groups.macho.parse import command_string, unpack
from extract.groups.macho.spec import (
    DYLIB_CMDS,
    LC_ID_DYLIB,
    LC_RPATH,
    LC_SYMTAB,
    N_EXT,
    N_PEXT,
    N_SECT,
    N_STAB,
    N_TYPE,
    N_UNDF,
    N_WEAK_DEF,
    N_WEAK_REF,
)
from extract.groups.shared import cached, symbol_names
from extract.hashing import TokenBins, hashed_dim_names
from extract.parsed import Parsed
from extract.registry import REGISTRY, declare

MAX_DYLIBS = 1024
MAX_RPATHS = 64
MAX_SYMBOLS = 10_000
PATH_CAP = 1024

# ---------------------------------------------------------------------------------------------
# macho_dylibs

_LIB_HASH = 256
_DYLIB_TYPE = pa.struct([
    ("count", pa.int64()), ("id", pa.string()),
    ("dylibs", pa.list_(pa.struct([("name", pa.string()), ("cmd", pa.int64())]))),
    ("rpaths", pa.list_(pa.string())),
])
_DYLIB_NUMS = ("count", "load", "weak", "reexport", "lazy", "upward", "rpaths", "has_id")
_DYLIB_DIMS = list(_DYLIB_NUMS) + hashed_dim_names("dylib", _LIB_HASH)


def _fill_dylibs(raws: list[dict], out: np.ndarray) -> None:
    bins = TokenBins(out)
    heads = []
    for i, raw in enumerate(raws):
        kinds = [d["cmd"] for d in raw["dylibs"]]
        heads.append([raw["count"]] + [kinds.count(c) for c in DYLIB_CMDS] + [len(raw["rpaths"]), bool(raw["id"])])
        bins.add(i, len(heads[-1]), [d["name"] for d in raw["dylibs"]], _LIB_HASH)
    out[:, :out.shape[1] - _LIB_HASH] = np.array(heads, dtype=np.float32)
    bins.write()


def _dylibs(p: Parsed) -> dict:
    dylibs, rpaths, ident, count = [], [], "", 0
    for cmd, off, size in p.extra["cmds"]:
        if cmd in DYLIB_CMDS:
            count += 1
            if len(dylibs) < MAX_DYLIBS and size >= 12:
                (rel,) = unpack(p, "I", off + 8)
                dylibs.append({"name": command_string(p, off, size, rel, PATH_CAP), "cmd": cmd})
        elif cmd == LC_ID_DYLIB and not ident and size >= 12:
            ident = command_string(p, off, size, unpack(p, "I", off + 8)[0], PATH_CAP)
        elif cmd == LC_RPATH and len(rpaths) < MAX_RPATHS and size >= 12:
            rpaths.append(command_string(p, off, size, unpack(p, "I", off + 8)[0], PATH_CAP))
    return {"count": count, "id": ident, "dylibs": dylibs, "rpaths": rpaths}


@declare(REGISTRY, name="macho_dylibs", version=1, formats=["macho"], stage="structure",
         raw_type=_DYLIB_TYPE, dim_names=_DYLIB_DIMS, fill=_fill_dylibs)
def macho_dylibs(parsed: Parsed) -> dict:
    """Linked dylibs in load order with their command (LOAD, LOAD_WEAK, REEXPORT, LAZY_LOAD,
    LOAD_UPWARD), at most 1,024 (``count`` is the total); the LC_ID_DYLIB install name; LC_RPATH
    paths (at most 64). Paths cut at 1,024 characters.

    Vector: counts per kind, rpaths, has install name, then the dylib paths hashed into 256 bins.
    """
    return cached(parsed, "dylibs", _dylibs)


# ---------------------------------------------------------------------------------------------
# macho_imports / macho_exports (from the LC_SYMTAB nlist table)

_IMP_HASH, _EXP_HASH = 1024, 128
_SYM_TYPE = pa.struct([("count", pa.int64()), ("weak", pa.int64()), ("names", pa.list_(pa.string()))])


def _nlist_dtype(end: str, is64: bool) -> np.dtype:
    val = "u8" if is64 else "u4"
    return np.dtype([("strx", end + "u4"), ("type", "u1"), ("sect", "u1"), ("desc", end + "u2"),
                     ("value", end + val)])


def _symbols(p: Parsed) -> dict:
    out = {"imports": [], "exports": [], "n_imports": 0, "n_exports": 0, "w_imports": 0,
           "w_exports": 0, "nsyms": 0}
    cmd = next(((o, s) for c, o, s in p.extra["cmds"] if c == LC_SYMTAB and s >= 24), None)
    if cmd is None:
        return out
    symoff, nsyms, stroff, strsize = unpack(p, "IIII", cmd[0] + 8)
    out["nsyms"] = nsyms
    img = p.extra["image"]
    dt = _nlist_dtype(p.extra["end"], p.extra["is64"])
    n = max(0, min(nsyms, (len(img) - symoff) // dt.itemsize)) if symoff < len(img) else 0
    if n == 0:
        return out
    syms = np.frombuffer(img, dtype=dt, count=n, offset=symoff)
    strtab = bytes(img[stroff:stroff + strsize]) if stroff < len(img) else b""
    t = syms["type"]
    ext = ((t & N_STAB) == 0) & ((t & N_EXT) != 0) & (syms["strx"] != 0)
    imp = np.flatnonzero(ext & ((t & N_TYPE) == N_UNDF) & (syms["value"] == 0))
    exp = np.flatnonzero(ext & ((t & N_TYPE) == N_SECT) & ((t & N_PEXT) == 0))
    desc = syms["desc"]
    for key, idx, wbit in (("imports", imp, N_WEAK_REF), ("exports", exp, N_WEAK_DEF)):
        kept = idx[:MAX_SYMBOLS]
        out[key] = symbol_names(strtab, syms["strx"][kept].tolist())
        out["n_" + key] = int(idx.size)
        out["w_" + key] = int(((desc[kept] & wbit) != 0).sum())
    return out


def symbol_table(p: Parsed) -> dict:
    """The LC_SYMTAB nlist table read with numpy, once per parse. Imports: external, undefined, not
    stabs, value 0 (commons excluded); exports: external, defined in a section, not private extern.
    Names as in the string table (with the leading _); ``nsyms`` as LC_SYMTAB states it."""
    return cached(p, "symbols", _symbols)


def _fill_syms(dims: int):
    def fill(raws: list[dict], out: np.ndarray) -> None:
        bins = TokenBins(out)
        for i, raw in enumerate(raws):
            bins.add(i, 2, raw["names"], dims)
        out[:, :2] = np.array([[raw["count"], raw["weak"]] for raw in raws], dtype=np.float32)
        bins.write()

    return fill


@declare(REGISTRY, name="macho_imports", version=1, formats=["macho"], stage="structure",
         raw_type=_SYM_TYPE, dim_names=["count", "weak", *hashed_dim_names("import", _IMP_HASH)],
         fill=_fill_syms(_IMP_HASH))
def macho_imports(parsed: Parsed) -> dict:
    """Imported symbols from LC_SYMTAB: external, undefined, not stabs, value 0 (commons excluded).

    At most 10,000 names (cut at 256 characters) in table order; ``count`` is the total, ``weak``
    counts kept names marked N_WEAK_REF. Vector: count, weak, names hashed into 1,024 bins.
    """
    s = symbol_table(parsed)
    return {"count": s["n_imports"], "weak": s["w_imports"], "names": s["imports"]}


@declare(REGISTRY, name="macho_exports", version=1, formats=["macho"], stage="structure",
         raw_type=_SYM_TYPE, dim_names=["count", "weak", *hashed_dim_names("export", _EXP_HASH)],
         fill=_fill_syms(_EXP_HASH))
def macho_exports(parsed: Parsed) -> dict:
    """Exported symbols from LC_SYMTAB: external, defined in a section, not private extern.

    Same caps as macho_imports; ``weak`` counts N_WEAK_DEF. Vector: count, weak, 128 hashed bins.
    """
    s = symbol_table(parsed)
    return {"count": s["n_exports"], "weak": s["w_exports"], "names": s["exports"]}
