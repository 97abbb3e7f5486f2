"""The malformed part of the sample corpus: which real executables get which seeded damage.

The damage itself is :mod:`benchmarks.corpus_mutate` (pure functions whose description carries their
parameters); this module picks the parents, in a seeded order per mutation, and records each damaged
file with its parent's sha256.
"""

from __future__ import annotations

import random
import struct

from benchmarks import corpus_mutate as mut
from benchmarks.corpus_entry import GENERATED, Collection, Entry


def _group(e: Entry) -> str | None:
    if e.kind in ("pe32", "pe32+", "dotnet"):
        return "pe"
    if e.kind in ("elf32", "elf64"):
        return "elf"
    if e.kind in ("macho32", "macho64"):
        return "macho"
    return "macho-fat" if e.kind == "macho-fat" else None


def mutate(parents: list[Entry], cfg: dict, seed: int, coll: Collection) -> list[Entry]:
    """Seeded damage to real executables: structural, truncation, bit flips, empty, magic-only."""
    parents = sorted(parents, key=lambda e: e.sha256)
    out: list[Entry] = []

    def add(parent: Entry | None, data: bytes, desc: str) -> bool:
        if parent is None:
            e = Entry(data, "malformed", GENERATED, f"seed={seed}", desc, mutation=desc)
        else:
            e = Entry(data, "malformed", parent.source, parent.version, parent.origin, mutation=desc,
                      parent=parent.sha256, warning=parent.warning)
        if coll.add(e):
            out.append(e)
            return True
        return False

    per = cfg.get("structural", 0)
    for group, fns in mut.STRUCTURAL.items():
        pool = [p for p in parents if _group(p) == group]
        for fn in fns:
            order = pool[:]
            random.Random(f"{seed}:{fn.__name__}").shuffle(order)
            n = 0
            for p in order:
                if n >= per:
                    break
                try:
                    data, desc = fn(p.data)
                except (mut.MutationError, struct.error):
                    continue
                n += add(p, data, desc)
    rng = random.Random(f"{seed}:truncate")
    pool = [p for p in parents if len(p.data) > 256]
    for i, p in enumerate(rng.sample(pool, min(len(pool), cfg.get("truncate", 0)))):
        add(p, *mut.truncate(p.data, mut.TRUNCATE_FRACTIONS[i % len(mut.TRUNCATE_FRACTIONS)]))
    rng = random.Random(f"{seed}:bitflip")
    for p in rng.sample(pool, min(len(pool), cfg.get("bitflip", 0))):
        add(p, *mut.bitflip(p.data, rng.randrange(1 << 32), cfg.get("bitflip_bits", 16)))
    for name in sorted(mut.MAGIC_ONLY):
        data, desc = mut.magic_only(name)
        add(None, data, desc)
    add(None, *mut.empty())
    return out
