"""The ELF numbers binfeat reads (System V gABI and the GNU extensions), named once for every ELF module."""

from __future__ import annotations

# e_type
ET_DYN = 3

# Program header types and flags.
PT_LOAD, PT_DYNAMIC, PT_INTERP, PT_TLS = 1, 2, 3, 7
PT_GNU_STACK, PT_GNU_RELRO = 0x6474E551, 0x6474E552
PF_X, PF_W, PF_R = 1, 2, 4

# Section header types and flags.
SHT_SYMTAB, SHT_RELA, SHT_NOBITS, SHT_REL, SHT_DYNSYM = 2, 4, 8, 9, 11
SHF_WRITE, SHF_ALLOC, SHF_EXECINSTR = 1, 2, 4
SECTION_FLAG_NAMES = {0x1: "WRITE", 0x2: "ALLOC", 0x4: "EXECINSTR", 0x10: "MERGE", 0x20: "STRINGS",
                      0x40: "INFO_LINK", 0x80: "LINK_ORDER", 0x100: "OS_NONCONFORMING", 0x200: "GROUP",
                      0x400: "TLS", 0x800: "COMPRESSED"}

# Dynamic tags and flags.
DT_NEEDED, DT_HASH, DT_STRTAB, DT_SYMTAB, DT_RELA, DT_STRSZ = 1, 4, 5, 6, 7, 10
DT_SONAME, DT_RPATH, DT_REL, DT_TEXTREL, DT_JMPREL, DT_BIND_NOW = 14, 15, 17, 22, 23, 24
DT_RUNPATH, DT_FLAGS, DT_FLAGS_1 = 29, 30, 0x6FFFFFFB
DF_TEXTREL, DF_BIND_NOW, DF_1_NOW, DF_1_PIE = 0x4, 0x8, 0x1, 0x08000000

# Dynamic symbol binding, type and visibility.
STB_GLOBAL, STB_WEAK, STB_GNU_UNIQUE = 1, 2, 10
STT_OBJECT, STT_FUNC, STT_COMMON, STT_TLS, STT_GNU_IFUNC = 1, 2, 5, 6, 10
STV_DEFAULT, STV_PROTECTED = 0, 3


def symbol_size(ei_class: int) -> int:
    """Bytes per symbol table entry (Elf32_Sym / Elf64_Sym)."""
    return 24 if ei_class == 2 else 16
