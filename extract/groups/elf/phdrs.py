"""The program header table as LIEF lists it, read from the file's bytes with ``struct``.

LIEF builds one Python object per segment, ~1.5 us each, and a hostile e_phnum makes it thousands
(65,535 announced: LIEF reads every whole entry the file holds); ``struct`` reads one in ~0.3 us.
LIEF's rule (ELF parser, ``parse_segments``): min(e_phnum, its cap) entries of the class's Elf_Phdr
size (not e_phentsize) from e_phoff, read one after the other until one does not fit in the file;
each keeps the header's values, except: a processor-specific type (PT_LOPROC..PT_HIPROC) is LIEF's "unknown" (0xFFFFFFFF
once masked to 32 bits) unless the machine is ARM, AArch64, MIPS, RISC-V or IA-64; the flags keep
PF_X, PF_W and PF_R only (the binding's flag enum); a segment of 1 byte to 3 GiB whose bytes lie in
the file up to min(p_filesz, file size) has that as its physical size (what LIEF read).

The count LIEF reached is taken from LIEF (``len``, no objects built), and the first two and the last
entries are compared with LIEF's: when anything disagrees the caller reads LIEF's objects instead.
Tests compare every entry with LIEF's on the sample corpus, the fixtures and damaged variants.
"""

from __future__ import annotations

import struct
from typing import Any

# Elf32_Phdr: type, offset, vaddr, paddr, filesz, memsz, flags, align; Elf64_Phdr: type, flags, offset,
# vaddr, paddr, filesz, memsz, align
_LAYOUT = {1: "IIIIIIII", 2: "IIQQQQQQ"}
PT_LOPROC, PT_HIPROC = 0x70000000, 0x7FFFFFFF
LIEF_UNKNOWN_TYPE = 0xFFFFFFFF  # LIEF's TYPE::UNKNOWN (uint64 -1) masked to 32 bits
# e_machine values whose processor-specific segment types LIEF names: ARM, AArch64, MIPS, RISC-V, IA-64
_PROC_TYPE_MACHINES = frozenset({40, 183, 8, 243, 50})
_PF_KNOWN = 0x7  # PF_X | PF_W | PF_R: LIEF's binding keeps only the flags it names
MAX_SEGMENT_SIZE = 3 << 30  # LIEF's cap on a segment's content
_M32 = 0xFFFFFFFF


def read_table(data: bytes | memoryview, ehdr: dict[str, int], count: int) -> list[dict[str, int]] | None:
    """The first ``count`` program headers as binfeat's segment dicts, or None when the file does
    not hold that many whole entries at e_phoff (LIEF then stopped elsewhere: not this rule)."""
    is64 = ehdr["ei_class"] == 2
    fmt = ("<" if ehdr["ei_data"] == 1 else ">") + _LAYOUT[ehdr["ei_class"]]
    at, end = ehdr["phoff"], ehdr["phoff"] + count * struct.calcsize(fmt)
    if end > len(data):
        return None
    names_proc = ehdr["machine"] in _PROC_TYPE_MACHINES
    size = len(data)
    out = []
    for rec in struct.iter_unpack(fmt, data[at:end]):
        if is64:
            t, flags, offset, vaddr, _paddr, filesz, memsz, align = rec
        else:
            t, offset, vaddr, _paddr, filesz, memsz, flags, align = rec
        if not names_proc and PT_LOPROC <= t <= PT_HIPROC:
            t = LIEF_UNKNOWN_TYPE
        if 0 < filesz < MAX_SEGMENT_SIZE:  # LIEF's physical size: what it read, when it could read it
            read = filesz if filesz < size else size
            if offset <= size - read:
                filesz = read
        out.append({"type": t, "flags": flags & _PF_KNOWN, "offset": offset, "vaddr": vaddr, "filesz": filesz,
                    "memsz": memsz, "align": align})
    return out


def lief_segment(seg: Any, val) -> dict[str, int]:
    """One LIEF segment as binfeat's dict (type and flags as the file's 32-bit numbers)."""
    return {"type": val(seg.type) & _M32, "flags": val(seg.flags) & _M32, "offset": seg.file_offset,
            "vaddr": seg.virtual_address, "filesz": seg.physical_size, "memsz": seg.virtual_size,
            "align": seg.alignment}
