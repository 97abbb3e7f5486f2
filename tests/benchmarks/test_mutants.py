"""The fuzz's mutants: rebuilt from (seed, index) alone, the edits they claim, the fields they target
(checked against LIEF, an independent parser, on unmodified executables)."""

from __future__ import annotations

import hashlib
import json
import os
import struct
import subprocess
import sys
from collections import Counter

import pytest

from benchmarks.binary_fields import Field, elf_fields, fat_fields, header_fields, macho_fields, pe_fields
from benchmarks.corpus_mutate import Mutator
from tests.conftest import REPO, corpus_dir
from tests.fixtures import all_fixtures

VALID = ["pe32_minimal", "pe32plus_minimal", "pe_arm64_minimal", "dotnet_minimal", "elf64_le_minimal",
         "elf32_be_minimal", "elf_arm64_minimal", "macho64_minimal", "macho32_minimal", "macho_arm64_minimal",
         "macho_ppc_minimal", "macho_fat_minimal"]


def fixture_parents() -> list[bytes]:
    fixtures = all_fixtures()
    return [fixtures[n] for n in VALID]


def test_a_mutant_is_rebuilt_from_its_seed_and_index_alone():
    parents = fixture_parents()
    made_in_order = [Mutator(parents).mutant(7, i) for i in range(300)]
    alone = Mutator(parents)  # a fresh mutator, mutants asked for in another order
    for i in reversed(range(300)):
        assert alone.mutant(7, i).data == made_in_order[i].data
        assert alone.mutant(7, i).operations == made_in_order[i].operations
    assert len({m.data for m in made_in_order}) > 290  # mutants differ from each other
    assert sum(Mutator(parents).mutant(8, i).data != made_in_order[i].data for i in range(300)) > 290


def test_mutants_are_the_same_in_another_process_and_hash_seed():
    """No dependence on str hashing, dict order or anything of the process: another interpreter with
    another PYTHONHASHSEED makes the same bytes."""
    code = (
        "import hashlib, sys\n"
        "from benchmarks.corpus_mutate import Mutator\n"
        "from tests.benchmarks.test_mutants import fixture_parents\n"
        "m = Mutator(fixture_parents())\n"
        "digests = b''.join(hashlib.sha256(m.mutant(3, i).data).digest() for i in range(200))\n"
        "print(hashlib.sha256(digests).hexdigest())\n"
    )
    here = Mutator(fixture_parents())
    expected = hashlib.sha256(b"".join(hashlib.sha256(here.mutant(3, i).data).digest() for i in range(200))).hexdigest()
    for hash_seed in ("0", "12345"):
        env = {**os.environ, "PYTHONHASHSEED": hash_seed, "PYTHONPATH": str(REPO)}
        out = subprocess.run([sys.executable, "-c", code], env=env, cwd=REPO, capture_output=True, text=True,
                             check=True, timeout=120)
        assert out.stdout.strip() == expected


def test_every_operation_and_every_header_area_is_exercised():
    parents = fixture_parents()
    mutator = Mutator(parents)
    mutants = [mutator.mutant(11, i) for i in range(1500)]
    assert set(Counter(f for m in mutants for f in m.families)) == {"field", "bitflip", "overwrite", "splice",
                                                                     "truncate"}
    areas = Counter(op.split(":", 1)[1].split("=")[0].split("[")[0].split(".")[0]
                    for m in mutants for op in m.operations if op.startswith("field:"))
    for area in ("dos", "coff", "optional", "directory", "section", "ehdr", "phdr", "shdr", "header", "lc", "fat",
                 "slice", "clr"):
        assert areas[area] > 0, (area, areas)
    names = {op.split(":", 1)[1].split("=")[0] for m in mutants for op in m.operations if op.startswith("field:")}
    for wanted in ("dos.e_lfanew", "coff.NumberOfSections", "coff.SizeOfOptionalHeader", "ehdr.e_shnum",
                   "ehdr.e_phoff", "ehdr.e_shstrndx", "header.ncmds", "header.sizeofcmds", "fat.nfat_arch"):
        assert wanted in names, wanted


def test_each_operation_does_what_its_description_says():
    parents = fixture_parents()
    mutator = Mutator(parents)
    checked = Counter()
    for i in range(2000):
        m = mutator.mutant(5, i)
        if len(m.operations) != 1:
            continue
        parent = parents[m.parent]
        family, what = m.operations[0].split(":", 1)
        if family == "field":
            name, value = what.split("=")
            f = next(f for f in mutator.fields(m.parent) if f.name == name)
            assert struct.unpack_from(f.fmt, m.data, f.offset)[0] == int(value, 16)
            end = f.offset + f.width
            assert m.data[: f.offset] == parent[: f.offset] and m.data[end:] == parent[end:]
        elif family == "truncate":
            assert m.data == parent[: int(what)]
        elif family == "bitflip":
            n = int(what.split("=")[1])
            flipped = sum(bin(a ^ b).count("1") for a, b in zip(m.data, parent, strict=True))
            assert len(m.data) == len(parent) and 0 < flipped <= n and flipped % 2 == n % 2
        elif family == "splice" and what.startswith("insert"):
            at, rest = what[len("insert@") :].split("+")
            n = int(rest.split("<")[0])
            donor, start = rest.split("<")[1].split("@")
            chunk = parents[int(donor)][int(start, 16) : int(start, 16) + n]
            assert m.data == parent[: int(at, 16)] + chunk + parent[int(at, 16) :]
        checked[family] += 1
    assert set(checked) == {"field", "bitflip", "overwrite", "splice", "truncate"}, checked


# -- the fields, against LIEF ---------------------------------------------------------------------


def _values(fields: list[Field], data: bytes) -> dict[str, int]:
    return {f.name: struct.unpack_from(f.fmt, data, f.offset)[0] for f in fields}


def _executables() -> list[bytes]:
    root = corpus_dir()
    if root is None:
        return fixture_parents()
    with open(root / "manifest.jsonl", encoding="utf-8") as f:
        records = [json.loads(line) for line in f if line.strip()]
    picked = sorted(r["sha256"] for r in records if r["kind"] in ("pe32", "pe32+", "dotnet", "elf32", "elf64",
                                                                      "macho32", "macho64", "macho-fat")
                    and not r["mutation"] and r["size"] <= 2 << 20)
    return [(root / s[:2] / s).read_bytes() for s in picked[::3]]


def test_fields_equal_lief_on_unmodified_executables():
    lief = pytest.importorskip("lief")
    lief.logging.disable()
    seen = Counter()
    for data in _executables():
        if data[:2] == b"MZ":
            v, pe = _values(pe_fields(data), data), lief.PE.parse(list(data))
            assert v["dos.e_lfanew"] == pe.dos_header.addressof_new_exeheader
            assert v["coff.NumberOfSections"] == pe.header.numberof_sections == len(pe.sections)
            assert v["coff.SizeOfOptionalHeader"] == pe.header.sizeof_optional_header
            assert v["optional.SizeOfHeaders"] == pe.optional_header.sizeof_headers
            for i, s in enumerate(pe.sections):
                assert (v[f"section[{i}].PointerToRawData"], v[f"section[{i}].SizeOfRawData"],
                        v[f"section[{i}].VirtualAddress"]) == (s.pointerto_raw_data, s.sizeof_raw_data,
                                                               s.virtual_address)
            for d in pe.data_directories:
                name = str(d.type).rsplit(".", 1)[-1].lower()
                key = {"export_table": "export", "import_table": "import", "clr_runtime_header": "clr",
                       "base_relocation_table": "basereloc", "certificate_table": "security"}.get(name)
                if key:
                    assert (v[f"directory[{key}].VirtualAddress"], v[f"directory[{key}].Size"]) == (d.rva, d.size)
            seen["pe"] += 1
        elif data[:4] == b"\x7fELF":
            v, elf = _values(elf_fields(data), data), lief.ELF.parse(list(data))
            h = elf.header
            assert (v["ehdr.e_phoff"], v["ehdr.e_shoff"], v["ehdr.e_phnum"], v["ehdr.e_shnum"],
                    v["ehdr.e_shstrndx"]) == (h.program_header_offset, h.section_header_offset,
                                              h.numberof_segments, h.numberof_sections, h.section_name_table_idx)
            for i, seg in enumerate(list(elf.segments)[:48]):
                assert (v[f"phdr[{i}].p_offset"], v[f"phdr[{i}].p_filesz"]) == (seg.file_offset, seg.physical_size)
            for i, sec in enumerate(list(elf.sections)[:48]):
                assert (v[f"shdr[{i}].sh_offset"], v[f"shdr[{i}].sh_size"]) == (sec.file_offset, sec.original_size)
            # LIEF tags processor-specific entries with an architecture in the upper bits
            tags = [v[f"dynamic[{k}].d_tag"] & 0xFFFFFFFF for k in range(64) if f"dynamic[{k}].d_tag" in v]
            lief_tags = [int(e.tag) & 0xFFFFFFFF for e in elf.dynamic_entries]
            assert tags[: len(lief_tags)] == lief_tags[:48] and len(tags) >= min(len(lief_tags), 48)
            seen["elf"] += 1
        else:
            fat = lief.MachO.parse(list(data))
            base = 0
            if data[:4] in (b"\xca\xfe\xba\xbe", b"\xca\xfe\xba\xbf"):
                v = _values(fat_fields(data), data)
                assert v["fat.nfat_arch"] == fat.size
                for i in range(fat.size):
                    assert v[f"fat.arch[{i}].offset"] == fat.at(i).fat_offset
                base = v["fat.arch[0].offset"]
                seen["fat"] += 1
            binary = fat.at(0)
            v = _values(macho_fields(data, base), data)
            assert (v["header.ncmds"], v["header.sizeofcmds"]) == (binary.header.nb_cmds, binary.header.sizeof_cmds)
            for i, cmd in enumerate(list(binary.commands)[:48]):
                assert v[f"lc[{i}].cmdsize"] == cmd.size
            seen["macho"] += 1
    assert seen["pe"] and seen["elf"] and seen["macho"] and seen["fat"], seen


def test_a_damaged_table_ends_the_walk_without_error():
    for data in fixture_parents():
        for cut in (0, 1, 3, 40, 64, 100, 300, len(data) // 2):
            assert isinstance(header_fields(data[:cut]), list)
        huge = bytearray(data)
        if data[:4] == b"\x7fELF":
            struct.pack_into("<H" if data[5] == 1 else ">H", huge, 60 if data[4] == 2 else 48, 0xFFFF)
            assert len(elf_fields(bytes(huge))) < 48 * 10 + 200  # capped tables
