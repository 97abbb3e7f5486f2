"""PE groups on damaged files: the overlay's start rules and seeded mutants (parse raises ParseError
or every group returns a valid raw value; the overlay equals pefile's)."""

from __future__ import annotations

import random
import struct
import time

import pefile
import pytest

import extract.groups  # noqa: F401  (declares every group)
from extract.parsed import ParseError, general_for
from extract.registry import REGISTRY
from tests.extract import pe_expect
from tests.extract.pe_support import (
    FIXTURES,
    PE_GROUPS,
    VALID,
    check_raw,
    parse,
    raws,
)

# ---------------------------------------------------------------------------------------------
# Damaged files


def test_damaged_fixtures_values():
    # 65,535 sections: refused before LIEF builds them all (it would cost ~0.7 s on a 5 MB file)
    with pytest.raises(ParseError, match="NumberOfSections 65535 is absurd"):
        raws(FIXTURES["pe_absurd_sections"])
    r = raws(FIXTURES["pe_truncated"])
    assert (
        r["pe_overlay"]["offset"] == pefile.PE(data=FIXTURES["pe_truncated"]).get_overlay_data_start_offset()
    )


def _overlay_variant(*edits: tuple) -> bytes:
    """pe32plus_minimal (sections .text/.rdata/.data at RVA 0x1000/0x2000/0x3000, raw data at
    0x400/0x600/0x800, 0x200 bytes each; overlay 0xA00-0xC00) with (field, value...) edits."""
    base = FIXTURES["pe32plus_minimal"]
    opt = struct.unpack_from("<I", base, 0x3C)[0] + 24
    at = {"section_alignment": (opt + 32, "<I"), "debug_dir": (opt + 112 + 6 * 8, "<II")}
    for i in range(3):
        for field, off in (("vsize", 8), ("rva", 12), ("raw_size", 16), ("raw_ptr", 20)):
            at[f"{field}{i}"] = (opt + 240 + 40 * i + off, "<I")
    buf = bytearray(base)
    for field, *values in edits:
        where, fmt = at[field]
        struct.pack_into(fmt, buf, where, *values)
    return bytes(buf)


# Each case turns on one rule of the overlay start (docs/architecture.md, "PE rules that are not
# EMBER's"); the expected offset is worked out by hand, and pefile must agree
OVERLAY_CASES = {
    # a debug directory at RVA 0x3010 (.data, raw 0x800): offset 0x810, ends at 0x810 + 0x250
    "directory_ends_in_the_overlay": ([("debug_dir", 0x3010, 0x250)], 0xA60),
    # .data's raw pointer 0x810 is read from 0x800 (rounded down to 512): the directory still at 0x810
    "raw_pointer_rounded_down_to_512": ([("raw_ptr2", 0x810), ("debug_dir", 0x3010, 0x250)], 0xA60),
    # .data claims 64 KiB of raw data past the file's end: it maps its VirtualSize (0x20) only, so
    # RVA 0x3030 is in no section (and past the file: not located); .data's claim is ignored, .rdata ends the image
    "raw_size_past_eof_maps_the_virtual_size": ([("raw_size2", 0x10000), ("debug_dir", 0x3030, 0x250)], 0x800),
    # .rdata's VirtualSize 0x5000 would cover .data's RVAs: it is cut where .data starts
    "section_cut_where_the_next_starts": ([("vsize1", 0x5000), ("debug_dir", 0x3010, 0x250)], 0xA60),
    # SectionAlignment 0x200 (below the page): RVAs rounded to the FileAlignment; .data's raw pointer
    # equals its RVA (0x810) and is read there unrounded: RVA 0x820 -> 0x810 + (0x820 - 0x800)
    "low_alignment_reads_at_the_rva": ([("section_alignment", 0x200), ("rva0", 0x400), ("rva1", 0x600),
                                        ("rva2", 0x810), ("raw_ptr2", 0x810), ("debug_dir", 0x820, 0x250)], 0xA80),
    # an RVA in no section but inside the file is its own offset: 0x300 + 0x900 reaches the file's end
    "rva_in_the_headers_is_its_offset": ([("debug_dir", 0x300, 0x900)], None),
    "none": ([], 0xA00),
}


@pytest.mark.parametrize("case", sorted(OVERLAY_CASES))
def test_overlay_start_rules(case):
    edits, expected = OVERLAY_CASES[case]
    data = _overlay_variant(*edits)
    assert raws(data)["pe_overlay"]["offset"] == expected
    assert pe_expect.load(data).get_overlay_data_start_offset() == expected


def _mutants(seed: int, n: int) -> list[bytes]:
    rng = random.Random(seed)
    bases = [FIXTURES[k] for k in VALID]
    out = []
    for i in range(n):
        buf = bytearray(bases[i % len(bases)])
        kind = i % 3
        if kind == 0:  # bit flips, mostly in the headers
            for _ in range(rng.randrange(1, 16)):
                pos = rng.randrange(min(len(buf), 0x400)) if rng.random() < 0.8 else rng.randrange(len(buf))
                buf[pos] ^= 1 << rng.randrange(8)
        elif kind == 1:  # truncation
            del buf[rng.randrange(2, len(buf)) :]
        else:  # absurd 32-bit values over random header fields
            for _ in range(rng.randrange(1, 6)):
                pos = rng.randrange(0, min(len(buf), 0x400) - 4)
                struct.pack_into(
                    "<I", buf, pos, rng.choice([0xFFFFFFFF, 0x7FFFFFFF, 0x80000000, 0xFFFF, 1 << 20])
                )
        out.append(bytes(buf))
    return out


def test_mutants_parse_or_raise_parse_error_and_groups_never_fail():
    failures = []
    t0 = time.perf_counter()
    for i, data in enumerate(_mutants(20261123, 300)):
        try:
            p = parse(data)
        except ParseError:
            continue
        general_for("pe")(p)
        for g in PE_GROUPS:
            try:
                check_raw(g, g.compute(p))
            except Exception as exc:
                failures.append(f"mutant {i} {g.name}: {type(exc).__name__}: {exc}")
    assert not failures, failures[:5]
    assert time.perf_counter() - t0 < 60


def test_mutants_overlay_equals_pefile():
    """Bit flips, truncations and absurd header values: where both parse, the overlay start is pefile's."""
    compared = 0
    for i, data in enumerate(_mutants(20261123, 300)):
        try:
            p = parse(data)
            pe = pe_expect.load(data)
        except (ParseError, pefile.PEFormatError):
            continue
        compared += 1
        assert REGISTRY["pe_overlay"].compute(p)["offset"] == pe.get_overlay_data_start_offset(), f"mutant {i}"
    assert compared >= 250


