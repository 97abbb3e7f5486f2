"""COFF symbol count: exact counts on crafted symbol tables, equal to what LIEF lists, and the PE
groups unchanged whether or not LIEF is shown the table."""

from __future__ import annotations

import struct

import lief
import pytest

import extract.groups  # noqa: F401  (declares every group)
from extract import coff_symbols
from extract.coff_symbols import RECORD, symbol_count
from extract.groups import pe_parse
from extract.parsed import general_for
from extract.registry import REGISTRY
from tests.fixtures import pe_builder as fx

BASE = fx.pe32plus_minimal()
LFANEW = struct.unpack_from("<I", BASE, 0x3C)[0]


def _record(name: bytes, aux: int) -> bytes:
    # IMAGE_SYMBOL: short name, value, section number, type, storage class (2: external), aux count
    return struct.pack("<8sIhHBB", name, 0, 1, 0x20, 2, aux)


def with_table(aux_counts: list[int], nsym: int | None = None, ptr: int | None = None,
               cut: int = 0) -> tuple[bytes, int, int]:
    """BASE with a symbol table appended: one primary record per aux count, each followed by that
    many auxiliary records, then an empty string table; header fields ``nsym`` (default: every
    record) and ``ptr`` (default: the table); ``cut`` bytes dropped from the end."""
    table = b"".join(_record(b"sym%d" % i, a) + bytes(RECORD) * a for i, a in enumerate(aux_counts))
    at = len(BASE)
    data = bytearray(BASE + table + struct.pack("<I", 4))
    ptr = at if ptr is None else ptr
    nsym = len(table) // RECORD if nsym is None else nsym
    struct.pack_into("<II", data, LFANEW + 12, ptr, nsym)
    return bytes(data[: len(data) - cut]), ptr, nsym


# (aux counts, header NumberOfSymbols or None, bytes cut from the end, symbols LIEF lists)
CASES = [
    ([0, 1, 0, 2, 0], None, 0, 5),  # 9 records, 5 of them primary
    ([0, 1, 0, 2, 0], 3, 0, 2),  # the index passes NumberOfSymbols inside the second symbol's aux
    ([0, 1, 0, 2, 0], 4, 0, 3),
    ([0, 0, 0], 100, 0, 3),  # NumberOfSymbols too large: stops at the end of the file
    ([0, 3], None, 4 + RECORD, 2),  # the last aux record is cut: the symbol still counts
    ([0, 0, 0], None, 4 + 1, 2),  # the last record is one byte short
    ([255], None, 0, 1),  # an aux count running past the end
    ([0, 0], 0, 0, 0),  # NumberOfSymbols 0
]


@pytest.mark.parametrize(("aux", "nsym", "cut", "want"), CASES)
def test_count_matches_lief_on_crafted_tables(aux, nsym, cut, want):
    data, ptr, n = with_table(aux, nsym, cut=cut)
    assert symbol_count(data, ptr, n) == want
    assert coff_symbols._count_py(memoryview(data), len(data), ptr, n) == want  # the fallback loop
    assert len(lief.PE.parse(data).symbols) == want


def test_pointer_outside_the_file_or_zero():
    data, _, n = with_table([0, 0, 0])
    for ptr in (0, len(data) - RECORD + 1, len(data), len(data) + 1000, 2**32 - 1):
        patched = bytearray(data)
        struct.pack_into("<I", patched, LFANEW + 12, ptr)
        assert symbol_count(bytes(patched), ptr, n) == 0
        assert len(lief.PE.parse(bytes(patched)).symbols) == 0
    # the last whole record of the file is read
    at = len(data) - RECORD
    patched = bytearray(data)
    struct.pack_into("<I", patched, LFANEW + 12, at)
    assert symbol_count(bytes(patched), at, n) == 1 == len(lief.PE.parse(bytes(patched)).symbols)


def _structural(data: bytes) -> tuple[dict, dict]:
    parsed = pe_parse.parse_pe(data)
    groups = {g.name: g.compute(parsed) for g in REGISTRY.by_stage("structure") if g.applies_to("pe")}
    return general_for("pe")(parsed), groups


def test_hidden_table_gives_the_same_groups(monkeypatch):
    data, _, _ = with_table([0, 1, 0, 2, 0] * 40)
    monkeypatch.setattr(pe_parse, "BYTES_PER_SYMBOL_TO_HIDE", 0)  # never hidden
    shown = _structural(data)
    seen, count = pe_parse._without_symbols(data)
    assert (seen, count) == (data, 200)
    monkeypatch.setattr(pe_parse, "BYTES_PER_SYMBOL_TO_HIDE", 10**12)  # always hidden
    seen, count = pe_parse._without_symbols(data)
    assert seen != data and len(seen) == len(data) and count == 200
    assert struct.unpack_from("<II", seen, LFANEW + 12) == (0, 0)
    hidden = _structural(data)
    assert hidden[0]["symbols"] == shown[0]["symbols"] == 200
    assert hidden == shown
