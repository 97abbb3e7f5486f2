"""The ``binfeat`` scheme: one block per feature group, in the order of ``extract.groups.LAYOUT``.

A group's block is the group's own vectoriser: the numbers are the group's declared ones. Per row:
a group that does not apply to the row's format gives zeros; one that applies but has no raw value
(it failed, or the parse was skipped or failed) gives NaN, "missing" for tree learners, never silent
zeros. A group selection keeps the selected groups' blocks, in layout order.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from extract.registry import FeatureGroup
from extract.schemes.base import Block, RowBatch, Scheme
from extract.worker import one_line

NAME = "binfeat"
VERSION = 1  # how blocks are put together (zeros / NaN rules); the numbers are the groups' own


def _group_block(group: FeatureGroup) -> Block:
    name, formats, dims, fill_rows = group.name, group.formats, group.dims, group.fill

    def fill(rows: RowBatch, _context: object, out: np.ndarray, errors: list[list[str]]) -> None:
        out[:] = 0.0
        if not dims:
            return
        column = rows.raw[name]
        present: list[int] = []
        missing: list[int] = []
        for i, fmt in enumerate(rows.format):
            if fmt in formats:
                (missing if column[i] is None else present).append(i)
        if missing:
            out[missing] = np.nan
        if not present:
            return
        block = np.zeros((len(present), dims), dtype=np.float32)
        try:
            fill_rows([column[i] for i in present], block)
        except Exception:  # find the rows it fails on: each costs only this group of that row
            block[:] = 0.0
            for k, i in enumerate(present):
                try:
                    fill_rows([column[i]], block[k:k + 1])
                except Exception as exc:
                    block[k] = np.nan
                    errors[i].append(f"{name}: vectorise: {one_line(exc)}")
        out[present] = block

    return Block(name=group.name, labels=group.dim_names, reads=(group.name,), fill=fill, doc=group.doc)


def binfeat_scheme(groups: Sequence[FeatureGroup]) -> Scheme:
    """The scheme over ``groups`` (in the registry's layout order)."""
    return Scheme(name=NAME, version=VERSION, blocks=tuple(_group_block(g) for g in groups),
                  groups=tuple(g.name for g in groups), doc=__doc__.split("\n\n")[0])
