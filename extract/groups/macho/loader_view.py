"""Entry point, virtual size and "has relocations" of the (chosen) Mach-O image, by LIEF 1.0's rules.

These three values came from a LIEF parse of every image until binfeat's own reader became the only
Mach-O parse; they are computed here from the image's bytes by the rules LIEF 1.0 applies, so that
rows did not change (tests compare them with LIEF's on the corpus, the fixtures and mutants).

The commands, as LIEF walks them (differs from binfeat's walk only on malformed files): none when
the header's sizeofcmds reaches past the image; otherwise at most 65,535 in a row, each where the
previous cmdsize ends, until a command's 8-byte header would leave the image or states cmdsize < 8
(a command may run past sizeofcmds and the image). Of these:

- segments: every LC_SEGMENT or LC_SEGMENT_64 whose header, read with the image's class layout (56
  or 72 bytes), lies in the image; its sections: min(nsects, room in cmdsize), each while its header
  (68 or 80 bytes) lies in the image;
- image base: vmaddr of the first segment named ``__TEXT`` (0 if none);
- mapped range: lowest vmaddr to highest vmaddr + vmsize over segments not named ``__PAGEZERO``
  ((0, 0) if none, or if the lowest vmaddr is 2^64 - 1);
- virtual size: the range's length rounded up to the page size: 16 KiB for ARM and ARM64, 4 KiB for
  every other CPU type;
- entry point: with an LC_MAIN (the first whose 24 bytes lie in the image), image base + entryoff;
  else with an LC_THREAD / LC_UNIXTHREAD (the first whose 16-byte header lies in the image), the
  program counter of its thread state (which follows that header) for the image's CPU type: x86 eip
  (offset 40 of a 64-byte state), x86_64 rip (128 of 168), ARM r15 (60 of 68), ARM64 pc (256 of 272),
  all little-endian; PowerPC srr0 (0 of 160, big-endian 32-bit), PowerPC64 srr0 (0 of 312,
  big-endian 64-bit); 0 when the whole state does not lie in the image or the CPU type is another;
  that pc if it lies in the mapped range, else image base + pc. No entry point without either;
- has relocations: any of those sections with nreloc > 0.

All arithmetic wraps at 64 bits.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from extract.groups.macho.image import name16
from extract.groups.macho.spec import (
    CPU_ARM,
    CPU_ARM64,
    CPU_PPC,
    CPU_PPC64,
    CPU_X86,
    CPU_X86_64,
    LC_MAIN,
    LC_SEGMENT,
    LC_SEGMENT_64,
    LC_THREAD,
    LC_UNIXTHREAD,
)
from extract.groups.shared import cached
from extract.parsed import Parsed

MAX_WALK = 65_535  # LIEF's cap on the commands it reads
_U64 = (1 << 64) - 1
PAGE_16K_CPUS = (CPU_ARM, CPU_ARM64)
# CPU type -> (offset of the program counter in the thread state, its struct format, state size)
THREAD_PC = {
    CPU_X86: (40, "<I", 64), CPU_X86_64: (128, "<Q", 168), CPU_ARM: (60, "<I", 68),
    CPU_ARM64: (256, "<Q", 272), CPU_PPC: (0, ">I", 160), CPU_PPC64: (0, ">Q", 312),
}
# class -> (segment header: format after cmd/cmdsize, size, offset of nsects; section header size,
# offset of nreloc)
_LAYOUT = {
    True: ("16sQQ", 72, 64, 80, 60),
    False: ("16sII", 56, 48, 68, 52),
}


@dataclass(frozen=True)
class LoaderView:
    """What the three values need: (name, vmaddr, vmsize) per segment, the first LC_MAIN's entryoff,
    the offset of the first thread command, and whether a section has relocations."""

    segments: list[tuple[str, int, int]]
    main_entryoff: int | None
    thread_offset: int | None
    relocations: bool


def _walk(p: Parsed) -> LoaderView:
    img, end, is64 = p.extra["image"], p.extra["end"], p.extra["is64"]
    n = len(img)
    seg_fmt, seg_len, nsects_at, sec_len, nreloc_at = _LAYOUT[is64]
    segs: list[tuple[str, int, int]] = []
    main = thread = None
    relocations = False
    off = 32 if is64 else 28
    if off + p.extra["sizeofcmds"] > n:
        return LoaderView(segs, None, None, False)
    for _ in range(min(p.extra["ncmds"], MAX_WALK)):
        if off + 8 > n:
            break
        cmd, size = struct.unpack_from(end + "II", img, off)
        if size < 8:
            break
        if cmd in (LC_SEGMENT, LC_SEGMENT_64) and off + seg_len <= n:
            name, vmaddr, vmsize = struct.unpack_from(end + seg_fmt, img, off + 8)
            segs.append((name16(name), vmaddr, vmsize))
            if not relocations:
                (nsects,) = struct.unpack_from(end + "I", img, off + nsects_at)
                room = (size - seg_len) // sec_len if size >= seg_len else 0
                for k in range(min(nsects, room)):
                    sec = off + seg_len + k * sec_len
                    if sec + sec_len > n:
                        break
                    if struct.unpack_from(end + "I", img, sec + nreloc_at)[0]:
                        relocations = True
                        break
        elif cmd == LC_MAIN and main is None and off + 24 <= n:
            (main,) = struct.unpack_from(end + "Q", img, off + 8)
        elif cmd in (LC_THREAD, LC_UNIXTHREAD) and thread is None and off + 16 <= n:
            thread = off
        off += size
    return LoaderView(segs, main, thread, relocations)


def loader_view(p: Parsed) -> LoaderView:
    return cached(p, "loader_view", _walk)


def image_base(p: Parsed) -> int:
    return next((vmaddr for name, vmaddr, _ in loader_view(p).segments if name == "__TEXT"), 0)


def mapped_range(p: Parsed) -> tuple[int, int]:
    """(lowest vmaddr, highest vmaddr + vmsize) of the segments other than __PAGEZERO."""
    mapped = [(vmaddr, vmsize) for name, vmaddr, vmsize in loader_view(p).segments if name != "__PAGEZERO"]
    start = min((vmaddr for vmaddr, _ in mapped), default=_U64)
    if start == _U64:
        return 0, 0
    return start, max((vmaddr + vmsize) & _U64 for vmaddr, vmsize in mapped)


def virtual_size(p: Parsed) -> int:
    """The mapped range's length rounded up to the CPU type's page size."""
    start, end = mapped_range(p)
    length = (end - start) & _U64
    page = 0x4000 if p.extra["cputype"] in PAGE_16K_CPUS else 0x1000
    return (length + (-length % page)) & _U64


def _thread_pc(p: Parsed, off: int) -> int:
    spec = THREAD_PC.get(p.extra["cputype"])
    state = off + 16
    if spec is None or state + spec[2] > len(p.extra["image"]):
        return 0
    return struct.unpack_from(spec[1], p.extra["image"], state + spec[0])[0]


def entry_point(p: Parsed) -> int | None:
    """The entry point's virtual address (LC_MAIN or thread state), None without either command."""
    view = loader_view(p)
    if view.main_entryoff is not None:
        return (image_base(p) + view.main_entryoff) & _U64
    if view.thread_offset is None:
        return None
    pc = _thread_pc(p, view.thread_offset)
    start, end = mapped_range(p)
    return pc if start <= pc < end else (image_base(p) + pc) & _U64


def has_relocations(p: Parsed) -> bool:
    return loader_view(p).relocations
