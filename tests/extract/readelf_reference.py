"""Compare the ELF groups' raw values with GNU readelf's reading of the same file (an independent
reader, present wherever binutils is)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess

import pytest

from tests.extract.elf_reference import shannon

READELF = shutil.which("readelf")
_PT = {"NULL": 0, "LOAD": 1, "DYNAMIC": 2, "INTERP": 3, "NOTE": 4, "SHLIB": 5, "PHDR": 6, "TLS": 7,
       "GNU_EH_FRAME": 0x6474E550, "GNU_STACK": 0x6474E551, "GNU_RELRO": 0x6474E552,
       "GNU_PROPERTY": 0x6474E553}


def _readelf(args: list[str], path: str) -> str:
    return subprocess.run([READELF, "-W", *args, path], capture_output=True, text=True, check=False,
                          env={**os.environ, "LC_ALL": "C"}).stdout


def _field(text: str, label: str) -> str:
    m = re.search(rf"^\s*{re.escape(label)}:\s*(.*)$", text, re.M)
    assert m, label
    return m.group(1).strip()


def assert_matches_readelf(path: str, data: bytes, raw: dict) -> None:
    """Header, program headers, interpreter, section headers (and entropies), DT_NEEDED / DT_SONAME
    and the dynamic symbols' import / export split, as readelf prints them."""
    hdr = _readelf(["-h"], path)
    h = raw["elf_header"]
    assert h["ei_class"] == {"ELF64": 2, "ELF32": 1}[_field(hdr, "Class")]
    assert h["type"] == {"EXEC": 2, "DYN": 3, "REL": 1, "CORE": 4}[_field(hdr, "Type").split()[0]]
    assert h["entry"] == int(_field(hdr, "Entry point address"), 16)
    assert h["phoff"] == int(_field(hdr, "Start of program headers").split()[0])
    assert h["shoff"] == int(_field(hdr, "Start of section headers").split()[0])
    assert h["flags"] == int(_field(hdr, "Flags").split()[0].rstrip(","), 16)
    assert h["phnum"] == int(_field(hdr, "Number of program headers").split()[0])
    assert h["shnum"] == int(_field(hdr, "Number of section headers").split()[0])
    assert h["shstrndx"] == int(_field(hdr, "Section header string table index").split()[0])

    text = _readelf(["-l"], path)
    rows = re.findall(r"^\s+([A-Z_]+|LOOS\+0x[0-9a-f]+|0x[0-9a-f]+)\s+0x([0-9a-f]+)\s+0x([0-9a-f]+)\s+"
                      r"0x[0-9a-f]+\s+0x([0-9a-f]+)\s+0x([0-9a-f]+)\s+([RWE ]{3})\s+0x([0-9a-f]+)$", text, re.M)
    segs = raw["elf_segments"]["segments"]
    assert raw["elf_segments"]["count"] == len(rows)
    for s, (typ, off, va, fs, ms, flg, al) in zip(segs, rows, strict=True):
        assert (s["offset"], s["vaddr"], s["filesz"], s["memsz"], s["align"]) == (
            int(off, 16), int(va, 16), int(fs, 16), int(ms, 16), int(al, 16))
        assert s["flags"] & 7 == (4 * (flg[0] == "R")) | (2 * (flg[1] == "W")) | (flg[2] == "E")
        if typ in _PT:
            assert s["type"] == _PT[typ]
    m = re.search(r"\[Requesting program interpreter: (.*)\]", text)
    assert raw["elf_interpreter"] == {"present": bool(m), "interpreter": m.group(1) if m else ""}

    text = _readelf(["-S"], path)
    secs = raw["elf_sections"]["sections"]
    lines = [ln for ln in text.splitlines() if re.match(r"^\s*\[\s*\d+\]", ln)]
    assert raw["elf_sections"]["count"] == len(lines)
    for s, ln in zip(secs, lines, strict=True):
        f = ln.split("]", 1)[1].split()
        if len(f) == 8:  # index 0: no name, no flags
            f = ["", *f[:5], "", *f[5:]]
        elif len(f) == 9:  # no flags
            f = [*f[:6], "", *f[6:]]
        name, addr, off, size = f[0], int(f[2], 16), int(f[3], 16), int(f[4], 16)
        assert (s["name"], s["addr"], s["offset"], s["size"]) == (name[:256], addr, off, size)
        assert ("X" in f[6]) == bool(s["flags"] & 4) and ("W" in f[6]) == bool(s["flags"] & 1)
        if f[1] == "NOBITS":
            assert s["entropy"] == 0.0
        elif size and off + size <= len(data):
            assert s["entropy"] == pytest.approx(shannon(data[off:off + size]), abs=1e-9)
    assert raw["elf_security"]["stripped"] == (" SYMTAB " not in text)

    text = _readelf(["-d"], path)
    needed = re.findall(r"\(NEEDED\)\s+Shared library: \[(.*)\]", text)
    assert raw["elf_libraries"]["needed"] == needed and raw["elf_libraries"]["count"] == len(needed)
    son = re.findall(r"\(SONAME\)\s+Library soname: \[(.*)\]", text)
    assert raw["elf_libraries"]["soname"] == (son[0] if son else "")

    text = _readelf(["--dyn-syms"], path)
    imports, exports = [], []
    for ln in text.splitlines():
        f = ln.split()
        if len(f) < 8 or not f[0].rstrip(":").isdigit():
            continue
        typ, bind, vis, ndx, name = f[3], f[4], f[5], f[6], f[7].split("@")[0]
        if bind not in ("GLOBAL", "WEAK", "UNIQUE") or not name:
            continue
        if ndx == "UND":
            imports.append(name[:256])
        elif typ in ("FUNC", "IFUNC", "OBJECT", "COMMON", "TLS") and vis in ("DEFAULT", "PROTECTED"):
            exports.append(name[:256])
    assert raw["elf_imports"]["names"] == imports[:10_000]
    assert raw["elf_exports"]["names"] == exports[:10_000]
    assert raw["elf_imports"]["count"] == len(imports) and raw["elf_exports"]["count"] == len(exports)
