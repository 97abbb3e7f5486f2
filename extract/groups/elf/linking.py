"""ELF groups of dynamic linking: elf_libraries, elf_imports, elf_exports, elf_interpreter."""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa

from extract.groups.elf.dynsym import dynamic_symbols
from extract.groups.elf.parse import dynamic, segments
from extract.groups.elf.spec import DT_NEEDED, DT_RPATH, DT_RUNPATH, DT_SONAME, PT_INTERP
from extract.groups.shared import onehot
from extract.hashing import TokenBins, hashed_dim_names
from extract.parsed import Parsed
from extract.registry import REGISTRY, declare
from extract.text import clean

MAX_LIBRARIES = 1024
PATH_CAP = 1024

# ---------------------------------------------------------------------------------------------
# elf_libraries

_LIB_HASH = 256
_LIB_TYPE = pa.struct([
    ("count", pa.int64()), ("needed", pa.list_(pa.string())), ("soname", pa.string()),
    ("rpath", pa.string()), ("runpath", pa.string()), ("dynamic_entries", pa.int64()),
])
_LIB_NUMS = ("count", "has_soname", "has_rpath", "has_runpath", "dynamic_entries")
_LIB_DIMS = list(_LIB_NUMS) + hashed_dim_names("needed", _LIB_HASH)


def _fill_libraries(raws: list[dict], out: np.ndarray) -> None:
    bins = TokenBins(out)
    n = len(_LIB_NUMS)
    for i, raw in enumerate(raws):
        bins.add(i, n, raw["needed"], _LIB_HASH)
    out[:, :n] = np.array([[float(raw["count"]), float(bool(raw["soname"])), float(bool(raw["rpath"])),
                            float(bool(raw["runpath"])), float(raw["dynamic_entries"])] for raw in raws], np.float32)
    bins.write()


def _dyn_string(entry: Any, attr: str) -> str:
    return clean(getattr(entry, attr, "") or "", PATH_CAP)


@declare(REGISTRY, name="elf_libraries", version=1, formats=["elf"], stage="structure",
         raw_type=_LIB_TYPE, dim_names=_LIB_DIMS, fill=_fill_libraries)
def elf_libraries(parsed: Parsed) -> dict:
    """DT_NEEDED libraries in order (at most 1,024; ``count`` is the total), DT_SONAME, DT_RPATH,
    DT_RUNPATH (cut at 1,024 characters) and the number of dynamic entries.

    Vector: counts and presence flags, then the needed names hashed into 256 bins.
    """
    needed: list[str] = []
    count = 0
    soname = rpath = runpath = ""
    dyn = dynamic(parsed)
    for tag, e in dyn:
        if tag == DT_NEEDED:
            count += 1
            if len(needed) < MAX_LIBRARIES:
                needed.append(_dyn_string(e, "name"))
        elif tag == DT_SONAME and not soname:
            soname = _dyn_string(e, "name")
        elif tag == DT_RPATH and not rpath:
            rpath = _dyn_string(e, "rpath") or _dyn_string(e, "paths")
        elif tag == DT_RUNPATH and not runpath:
            runpath = _dyn_string(e, "runpath") or _dyn_string(e, "paths")
    return {"count": count, "needed": needed, "soname": soname, "rpath": rpath, "runpath": runpath,
            "dynamic_entries": len(dyn)}


# ---------------------------------------------------------------------------------------------
# elf_imports / elf_exports

_IMP_HASH = 1024
_EXP_HASH = 128
_SYM_TYPE = pa.struct([
    ("count", pa.int64()), ("functions", pa.int64()), ("objects", pa.int64()), ("weak", pa.int64()),
    ("names", pa.list_(pa.string())),
])
_SYM_NUMS = ("count", "functions", "objects", "weak")


def _sym_raw(d: dict, key: str) -> dict:
    functions, objects, weak = d["c_" + key]
    return {"count": d["n_" + key], "functions": functions, "objects": objects, "weak": weak,
            "names": d[key]}


def _fill_syms(dims: int):
    def fill(raws: list[dict], out: np.ndarray) -> None:
        bins = TokenBins(out)
        n = len(_SYM_NUMS)
        for i, raw in enumerate(raws):
            bins.add(i, n, raw["names"], dims)
        out[:, :n] = np.array([[float(raw[k]) for k in _SYM_NUMS] for raw in raws], np.float32)
        bins.write()

    return fill


@declare(REGISTRY, name="elf_imports", version=1, formats=["elf"], stage="structure",
         raw_type=_SYM_TYPE, dim_names=list(_SYM_NUMS) + hashed_dim_names("import", _IMP_HASH),
         fill=_fill_syms(_IMP_HASH))
def elf_imports(parsed: Parsed) -> dict:
    """Imported dynamic symbols: undefined (SHN_UNDEF), named, GLOBAL/WEAK/GNU_UNIQUE binding.

    At most 10,000 names (cut at 256 characters) in .dynsym order; ``count`` is the total, the
    function/object/weak counts are over the kept names. Names are without version suffixes.
    Vector: counts, then names hashed into 1,024 bins.
    """
    return _sym_raw(dynamic_symbols(parsed), "imports")


@declare(REGISTRY, name="elf_exports", version=1, formats=["elf"], stage="structure",
         raw_type=_SYM_TYPE, dim_names=list(_SYM_NUMS) + hashed_dim_names("export", _EXP_HASH),
         fill=_fill_syms(_EXP_HASH))
def elf_exports(parsed: Parsed) -> dict:
    """Exported dynamic symbols: defined, GLOBAL/WEAK/GNU_UNIQUE, DEFAULT/PROTECTED visibility, of
    type FUNC, GNU_IFUNC, OBJECT, COMMON or TLS.

    Same caps and vector layout as elf_imports, names hashed into 128 bins.
    """
    return _sym_raw(dynamic_symbols(parsed), "exports")


# ---------------------------------------------------------------------------------------------
# elf_interpreter

INTERPRETERS = (
    "/lib64/ld-linux-x86-64.so.2", "/lib/ld-linux.so.2", "/lib/ld-linux-aarch64.so.1",
    "/lib/ld-linux-armhf.so.3", "/lib/ld-linux.so.3", "/lib64/ld64.so.1", "/lib64/ld64.so.2",
    "/lib/ld64.so.1", "/lib/ld.so.1", "/lib/ld-linux-riscv64-lp64d.so.1",
    "/lib64/ld-linux-loongarch-lp64d.so.1", "/lib/ld-musl-x86_64.so.1", "/lib/ld-musl-aarch64.so.1",
    "/lib/ld-musl-i386.so.1", "/lib/ld-musl-armhf.so.1", "/system/bin/linker",
    "/system/bin/linker64", "/libexec/ld-elf.so.1", "/usr/libexec/ld.so", "/usr/libexec/ld.elf_so",
    "/usr/lib/ld.so.1", "/lib/ld-uClibc.so.0",
)
_INTERP_TYPE = pa.struct([("present", pa.bool_()), ("interpreter", pa.string())])
_INTERP_DIMS = ["present", *[f"interpreter={s}" for s in INTERPRETERS], "interpreter=other", "musl"]


def _fill_interp(raws: list[dict], out: np.ndarray) -> None:
    zeros = [0.0] * len(_INTERP_DIMS)
    out[:] = np.array([[1.0, *onehot(raw["interpreter"], INTERPRETERS), float("musl" in raw["interpreter"])]
                       if raw["present"] else zeros for raw in raws], np.float32)


@declare(REGISTRY, name="elf_interpreter", version=1, formats=["elf"], stage="structure",
         raw_type=_INTERP_TYPE, dim_names=_INTERP_DIMS, fill=_fill_interp)
def elf_interpreter(parsed: Parsed) -> dict:
    """The PT_INTERP path (cut at 1,024 characters).

    Vector: presence, one-hot over common dynamic loaders (glibc, musl, Android, BSD, Solaris) plus
    "other", and whether the path names musl.
    """
    seg = next((s for s in segments(parsed) if s["type"] == PT_INTERP), None)
    if seg is None:
        return {"present": False, "interpreter": ""}
    # Read from the file: LIEF's interpreter property raises on bytes that are not UTF-8.
    off = seg["offset"]
    raw = bytes(parsed.data[off:off + min(seg["filesz"], 4 * PATH_CAP)]) if off < parsed.size else b""
    return {"present": True, "interpreter": clean(raw.split(b"\0", 1)[0], PATH_CAP)}
