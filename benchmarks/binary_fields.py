"""Where the header fields of a PE, ELF, Mach-O or fat Mach-O file are: the fuzz's edit targets.

Written from the formats' specifications (the PE/COFF specification, the System V ELF ABI,
<mach-o/loader.h> and <mach-o/fat.h>), independently of ``extract`` and of any parser: a field that
a parser misreads must still be found here. Each finder walks what the file declares, tolerates any
damage (a table that runs past the end simply ends), and caps every table so a hostile count cannot
make the walk long.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

MAX_ENTRIES = 48  # per table (sections, program headers, load commands, dynamic entries, ...)


@dataclass(frozen=True)
class Field:
    """One integer field: ``fmt`` is its struct format with byte order (e.g. ``"<I"``)."""

    name: str
    offset: int
    fmt: str

    @property
    def width(self) -> int:
        return struct.calcsize(self.fmt)


class _Walk:
    """Reads fields of a possibly damaged file; collects the ones that lie inside it."""

    def __init__(self, data: bytes, endian: str, base: int = 0, prefix: str = "") -> None:
        self.data, self.endian, self.base, self.prefix = data, endian, base, prefix
        self.fields: list[Field] = []

    def get(self, off: int, code: str) -> int | None:
        fmt = self.endian + code
        at = self.base + off
        if off < 0 or at + struct.calcsize(fmt) > len(self.data):
            return None
        return struct.unpack_from(fmt, self.data, at)[0]

    def add(self, name: str, off: int, code: str) -> int | None:
        value = self.get(off, code)
        if value is not None:
            self.fields.append(Field(self.prefix + name, self.base + off, self.endian + code))
        return value

    def table(self, name: str, off: int, entries: list[tuple[str, int, str]]) -> dict[str, int | None]:
        return {f: self.add(f"{name}.{f}", off + rel, code) for f, rel, code in entries}


# -- PE -------------------------------------------------------------------------------------------

_COFF = [("Machine", 0, "H"), ("NumberOfSections", 2, "H"), ("PointerToSymbolTable", 8, "I"),
         ("NumberOfSymbols", 12, "I"), ("SizeOfOptionalHeader", 16, "H"), ("Characteristics", 18, "H")]
_OPTIONAL = [("Magic", 0, "H"), ("SizeOfCode", 4, "I"), ("AddressOfEntryPoint", 16, "I"), ("BaseOfCode", 20, "I"),
             ("SectionAlignment", 32, "I"), ("FileAlignment", 36, "I"), ("SizeOfImage", 56, "I"),
             ("SizeOfHeaders", 60, "I"), ("CheckSum", 64, "I"), ("Subsystem", 68, "H"),
             ("DllCharacteristics", 70, "H")]
_SECTION = [("VirtualSize", 8, "I"), ("VirtualAddress", 12, "I"), ("SizeOfRawData", 16, "I"),
            ("PointerToRawData", 20, "I"), ("PointerToRelocations", 24, "I"), ("NumberOfRelocations", 32, "H"),
            ("Characteristics", 36, "I")]
_DIRECTORIES = ["export", "import", "resource", "exception", "security", "basereloc", "debug", "architecture",
                "globalptr", "tls", "load_config", "bound_import", "iat", "delay_import", "clr", "reserved"]
_IMPORT = [("OriginalFirstThunk", 0, "I"), ("TimeDateStamp", 4, "I"), ("Name", 12, "I"), ("FirstThunk", 16, "I")]
_EXPORT = [("Name", 12, "I"), ("Base", 16, "I"), ("NumberOfFunctions", 20, "I"), ("NumberOfNames", 24, "I"),
           ("AddressOfFunctions", 28, "I"), ("AddressOfNames", 32, "I"), ("AddressOfNameOrdinals", 36, "I")]
_CLR = [("cb", 0, "I"), ("MetaData.RVA", 8, "I"), ("MetaData.Size", 12, "I"), ("Flags", 16, "I"),
        ("Resources.RVA", 24, "I"), ("Resources.Size", 28, "I"), ("StrongNameSignature.RVA", 32, "I")]
_RESOURCE_DIR = [("NumberOfNamedEntries", 12, "H"), ("NumberOfIdEntries", 14, "H")]
_DEBUG = [("Type", 12, "I"), ("SizeOfData", 16, "I"), ("AddressOfRawData", 20, "I"), ("PointerToRawData", 24, "I")]


def pe_fields(data: bytes) -> list[Field]:
    w = _Walk(data, "<")
    if data[:2] != b"MZ":
        return []
    lfanew = w.add("dos.e_lfanew", 0x3C, "I")
    if lfanew is None or data[lfanew : lfanew + 4] != b"PE\0\0":
        return w.fields
    coff = lfanew + 4
    head = w.table("coff", coff, _COFF)
    opt = coff + 20
    magic = w.get(opt, "H")
    w.table("optional", opt, _OPTIONAL)
    if magic in (0x10B, 0x20B):
        wide = magic == 0x20B
        count = w.add("optional.NumberOfRvaAndSizes", opt + (108 if wide else 92), "I") or 0
        directories = opt + (112 if wide else 96)
        dirs: dict[str, tuple[int, int]] = {}
        for i in range(min(count, 16)):
            rva = w.add(f"directory[{_DIRECTORIES[i]}].VirtualAddress", directories + 8 * i, "I")
            size = w.add(f"directory[{_DIRECTORIES[i]}].Size", directories + 8 * i + 4, "I")
            if rva is not None and size is not None:
                dirs[_DIRECTORIES[i]] = (rva, size)
    else:
        dirs = {}
    sections = []
    table = opt + (head["SizeOfOptionalHeader"] or 0)
    for i in range(min(head["NumberOfSections"] or 0, MAX_ENTRIES)):
        s = w.table(f"section[{i}]", table + 40 * i, _SECTION)
        if s["VirtualAddress"] is not None and s["PointerToRawData"] is not None:
            sections.append((s["VirtualAddress"], max(s["VirtualSize"] or 0, s["SizeOfRawData"] or 0),
                             s["PointerToRawData"]))

    def at(rva: int) -> int | None:
        for va, size, raw in sections:
            if va <= rva < va + size:
                return raw + rva - va
        return None

    for name, entries, step, limit in (("import", _IMPORT, 20, 16), ("export", _EXPORT, 0, 1),
                                       ("clr", _CLR, 0, 1), ("resource", _RESOURCE_DIR, 0, 1),
                                       ("debug", _DEBUG, 28, 4)):
        if name not in dirs or (off := at(dirs[name][0])) is None:
            continue
        for i in range(limit):
            values = w.table(f"{name}[{i}]", off + step * i, entries)
            if name == "import" and not any(values.values()):
                break
    return w.fields


# -- ELF ------------------------------------------------------------------------------------------

_EHDR = {  # (32-bit offset, 64-bit offset, 32-bit code, 64-bit code)
    "e_type": (16, 16, "H", "H"), "e_machine": (18, 18, "H", "H"), "e_entry": (24, 24, "I", "Q"),
    "e_phoff": (28, 32, "I", "Q"), "e_shoff": (32, 40, "I", "Q"), "e_flags": (36, 48, "I", "I"),
    "e_ehsize": (40, 52, "H", "H"), "e_phentsize": (42, 54, "H", "H"), "e_phnum": (44, 56, "H", "H"),
    "e_shentsize": (46, 58, "H", "H"), "e_shnum": (48, 60, "H", "H"), "e_shstrndx": (50, 62, "H", "H"),
}
_PHDR32 = [("p_type", 0, "I"), ("p_offset", 4, "I"), ("p_vaddr", 8, "I"), ("p_filesz", 16, "I"),
           ("p_memsz", 20, "I"), ("p_flags", 24, "I"), ("p_align", 28, "I")]
_PHDR64 = [("p_type", 0, "I"), ("p_flags", 4, "I"), ("p_offset", 8, "Q"), ("p_vaddr", 16, "Q"),
           ("p_filesz", 32, "Q"), ("p_memsz", 40, "Q"), ("p_align", 48, "Q")]
_SHDR32 = [("sh_name", 0, "I"), ("sh_type", 4, "I"), ("sh_flags", 8, "I"), ("sh_addr", 12, "I"),
           ("sh_offset", 16, "I"), ("sh_size", 20, "I"), ("sh_link", 24, "I"), ("sh_info", 28, "I"),
           ("sh_entsize", 36, "I")]
_SHDR64 = [("sh_name", 0, "I"), ("sh_type", 4, "I"), ("sh_flags", 8, "Q"), ("sh_addr", 16, "Q"),
           ("sh_offset", 24, "Q"), ("sh_size", 32, "Q"), ("sh_link", 40, "I"), ("sh_info", 44, "I"),
           ("sh_entsize", 56, "Q")]
_SYM32 = [("st_name", 0, "I"), ("st_value", 4, "I"), ("st_size", 8, "I"), ("st_shndx", 14, "H")]
_SYM64 = [("st_name", 0, "I"), ("st_shndx", 6, "H"), ("st_value", 8, "Q"), ("st_size", 16, "Q")]
PT_DYNAMIC, PT_NOTE = 2, 4
SHT_SYMTAB, SHT_DYNSYM = 2, 11


def elf_fields(data: bytes) -> list[Field]:
    if data[:4] != b"\x7fELF" or len(data) < 6 or data[4] not in (1, 2) or data[5] not in (1, 2):
        return []
    wide, endian = data[4] == 2, "<" if data[5] == 1 else ">"
    w = _Walk(data, endian)
    w.fields += [Field("ident.EI_CLASS", 4, "B"), Field("ident.EI_DATA", 5, "B")]
    h = {name: w.add(f"ehdr.{name}", o64 if wide else o32, c64 if wide else c32)
         for name, (o32, o64, c32, c64) in _EHDR.items()}
    phdr, ph_size = (_PHDR64, 56) if wide else (_PHDR32, 32)
    for i in range(min(h["e_phnum"] or 0, MAX_ENTRIES)):
        p = w.table(f"phdr[{i}]", (h["e_phoff"] or 0) + ph_size * i, phdr)
        if p["p_type"] == PT_DYNAMIC and p["p_offset"] is not None:
            entry = 16 if wide else 8
            for k in range(min((p["p_filesz"] or 0) // entry, MAX_ENTRIES)):
                tag = w.add(f"dynamic[{k}].d_tag", p["p_offset"] + entry * k, "Q" if wide else "I")
                w.add(f"dynamic[{k}].d_val", p["p_offset"] + entry * k + entry // 2, "Q" if wide else "I")
                if tag in (0, None):  # DT_NULL ends the table
                    break
        if p["p_type"] == PT_NOTE and p["p_offset"] is not None:
            w.table(f"note[{i}]", p["p_offset"], [("n_namesz", 0, "I"), ("n_descsz", 4, "I"), ("n_type", 8, "I")])
    shdr, sh_size = (_SHDR64, 64) if wide else (_SHDR32, 40)
    sym, sym_size = (_SYM64, 24) if wide else (_SYM32, 16)
    for i in range(min(h["e_shnum"] or 0, MAX_ENTRIES)):
        s = w.table(f"shdr[{i}]", (h["e_shoff"] or 0) + sh_size * i, shdr)
        if s["sh_type"] in (SHT_SYMTAB, SHT_DYNSYM) and s["sh_offset"] is not None:
            for k in range(1, 1 + min((s["sh_size"] or 0) // sym_size - 1, 8)):
                w.table(f"shdr[{i}].sym[{k}]", s["sh_offset"] + sym_size * k, sym)
    return w.fields


# -- Mach-O and fat -------------------------------------------------------------------------------

MACHO_MAGICS = {b"\xfe\xed\xfa\xce": (">", False), b"\xce\xfa\xed\xfe": ("<", False),
                b"\xfe\xed\xfa\xcf": (">", True), b"\xcf\xfa\xed\xfe": ("<", True)}
FAT_MAGICS = {b"\xca\xfe\xba\xbe": False, b"\xca\xfe\xba\xbf": True}
LC_SEGMENT, LC_SEGMENT_64, LC_SYMTAB, LC_DYSYMTAB = 0x1, 0x19, 0x2, 0xB
_DYLIB_LIKE = {0xC, 0xD, 0xE, 0xF, 0x80000018, 0x8000001C, 0x8000001F, 0x80000023}  # string at lc_str offset
_LINKEDIT = {0x1D, 0x1E, 0x26, 0x29, 0x2B, 0x80000033, 0x80000034}  # dataoff, datasize
_DYLD_INFO = {0x22, 0x80000022}
_SEGMENT = {False: (56, [("vmaddr", 24, "I"), ("vmsize", 28, "I"), ("fileoff", 32, "I"), ("filesize", 36, "I"),
                         ("nsects", 48, "I"), ("flags", 52, "I")]),
            True: (72, [("vmaddr", 24, "Q"), ("vmsize", 32, "Q"), ("fileoff", 40, "Q"), ("filesize", 48, "Q"),
                        ("nsects", 64, "I"), ("flags", 68, "I")])}
_SECTION_MACHO = {False: (68, [("addr", 32, "I"), ("size", 36, "I"), ("offset", 40, "I"), ("align", 44, "I"),
                               ("reloff", 48, "I"), ("nreloc", 52, "I"), ("flags", 56, "I")]),
                  True: (80, [("addr", 32, "Q"), ("size", 40, "Q"), ("offset", 48, "I"), ("align", 52, "I"),
                              ("reloff", 56, "I"), ("nreloc", 60, "I"), ("flags", 64, "I")])}
_SYMTAB = [("symoff", 8, "I"), ("nsyms", 12, "I"), ("stroff", 16, "I"), ("strsize", 20, "I")]
_DYSYMTAB = [("ilocalsym", 8, "I"), ("nlocalsym", 12, "I"), ("iextdefsym", 16, "I"), ("nextdefsym", 20, "I"),
             ("iundefsym", 24, "I"), ("nundefsym", 28, "I"), ("indirectsymoff", 56, "I"), ("nindirectsyms", 60, "I")]
_DYLD_INFO_FIELDS = [(f"{k}_{p}", 8 + 8 * i + 4 * j, "I") for i, k in
                     enumerate(("rebase", "bind", "weak_bind", "lazy_bind", "export")) for j, p in
                     enumerate(("off", "size"))]


def macho_fields(data: bytes, base: int = 0, prefix: str = "") -> list[Field]:
    """A thin Mach-O at ``base`` (a fat file's slice sits at its offset)."""
    magic = data[base : base + 4]
    if magic not in MACHO_MAGICS:
        return []
    endian, wide = MACHO_MAGICS[magic]
    w = _Walk(data, endian, base, prefix)
    h = w.table("header", 0, [("cputype", 4, "I"), ("filetype", 12, "I"), ("ncmds", 16, "I"),
                              ("sizeofcmds", 20, "I"), ("flags", 24, "I")])
    at = 32 if wide else 28
    for i in range(min(h["ncmds"] or 0, MAX_ENTRIES)):
        lc = w.table(f"lc[{i}]", at, [("cmd", 0, "I"), ("cmdsize", 4, "I")])
        cmd, size = lc["cmd"], lc["cmdsize"]
        if cmd is None or not size:
            break
        if cmd in (LC_SEGMENT, LC_SEGMENT_64):
            seg_wide = cmd == LC_SEGMENT_64
            head, fields = _SEGMENT[seg_wide]
            seg = w.table(f"lc[{i}].segment", at, fields)
            sect_size, sect_fields = _SECTION_MACHO[seg_wide]
            for k in range(min(seg["nsects"] or 0, MAX_ENTRIES)):
                w.table(f"lc[{i}].section[{k}]", at + head + sect_size * k, sect_fields)
        elif cmd == LC_SYMTAB:
            w.table(f"lc[{i}].symtab", at, _SYMTAB)
        elif cmd == LC_DYSYMTAB:
            w.table(f"lc[{i}].dysymtab", at, _DYSYMTAB)
        elif cmd in _DYLIB_LIKE:
            w.add(f"lc[{i}].name_offset", at + 8, "I")
        elif cmd in _LINKEDIT:
            w.table(f"lc[{i}].linkedit", at, [("dataoff", 8, "I"), ("datasize", 12, "I")])
        elif cmd in _DYLD_INFO:
            w.table(f"lc[{i}].dyld_info", at, _DYLD_INFO_FIELDS)
        at += size
    return w.fields


def fat_fields(data: bytes) -> list[Field]:
    if data[:4] not in FAT_MAGICS:
        return []
    wide = FAT_MAGICS[data[:4]]
    w = _Walk(data, ">")
    count = w.add("fat.nfat_arch", 4, "I") or 0
    arch_size = 32 if wide else 20
    entries = [("cputype", 0, "I"), ("offset", 8, "Q" if wide else "I"), ("size", 16 if wide else 12, "Q" if wide
               else "I"), ("align", 24 if wide else 16, "I")]
    out = w.fields
    for i in range(min(count, 8)):
        arch = w.table(f"fat.arch[{i}]", 8 + arch_size * i, entries)
        if arch["offset"] is not None and arch["offset"] < len(data):
            out += macho_fields(data, arch["offset"], f"slice[{i}].")
    return out


def header_fields(data: bytes) -> list[Field]:
    """Every field found in the file, whatever its format (none for other files)."""
    return pe_fields(data) or elf_fields(data) or fat_fields(data) or macho_fields(data)
