"""Seeded damage to real executables: the malformed part of the sample corpus, and the fuzz's mutants.

Every named mutation is a pure function of (bytes, parameters), and its description string (the
manifest's `mutation` field) carries those parameters, so the file can be re-derived from its
parent and a test can check the damage is exactly what the description says.

:class:`Mutator` makes the fuzz's mutants: mutant ``(seed, index)`` of a list of parents is rebuilt
from those two numbers alone (its random choices come from a generator seeded with both, never from
the mutants made before it). Each stacks one to three operations: bit flips, overwrites, truncations,
splices with another parent, and edits of header fields (PE, ELF, Mach-O and fat headers, found by
:mod:`benchmarks.binary_fields`), biased towards the first pages where the headers are.
"""

from __future__ import annotations

import random
import struct
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from benchmarks.binary_fields import Field, header_fields
from benchmarks.corpus_sniff import FAT_MAGICS, MACHO_THIN_MAGICS, detect_format

MAGIC_ONLY = {
    "MZ": b"MZ",
    "ELF": b"\x7fELF",
    "MH_MAGIC_64": b"\xcf\xfa\xed\xfe",
    "MH_MAGIC": b"\xce\xfa\xed\xfe",
    "FAT_MAGIC": b"\xca\xfe\xba\xbe",
}
# How far past the end of the file the damaged offsets point.
PAST_END = 0x1000


class MutationError(ValueError):
    """The parent file does not have the structure this mutation damages."""


def truncate(data: bytes, fraction: float) -> tuple[bytes, str]:
    n = int(len(data) * fraction)
    return data[:n], f"truncate@{fraction:g}"


def bitflip(data: bytes, seed: int, n: int) -> tuple[bytes, str]:
    """Flip n distinct bits chosen by a seeded RNG (never bits of the first 4 bytes, so the magic,
    and with it the ground-truth format, survives)."""
    if len(data) <= 4:
        raise MutationError("too short to flip bits past the magic")
    rng = random.Random(seed)
    buf = bytearray(data)
    for bit in rng.sample(range(32, len(data) * 8), min(n, len(data) * 8 - 32)):
        buf[bit // 8] ^= 1 << (bit % 8)
    return bytes(buf), f"bitflip:seed={seed},n={n}"


def _put(data: bytes, off: int, fmt: str, value: int) -> bytes:
    if off < 0 or off + struct.calcsize(fmt) > len(data):
        raise MutationError(f"field at {off} lies outside the file")
    buf = bytearray(data)
    struct.pack_into(fmt, buf, off, value)
    return bytes(buf)


def _pe_header(data: bytes) -> int:
    if detect_format(data) != "pe" or len(data) < 0x40:
        raise MutationError("not a PE file")
    (e_lfanew,) = struct.unpack_from("<I", data, 0x3C)
    if data[e_lfanew : e_lfanew + 4] != b"PE\0\0":
        raise MutationError("no PE signature")
    return e_lfanew


def pe_lfanew_past_end(data: bytes) -> tuple[bytes, str]:
    _pe_header(data)
    return _put(data, 0x3C, "<I", len(data) + PAST_END), "e_lfanew_past_end"


def pe_nsections_absurd(data: bytes) -> tuple[bytes, str]:
    e_lfanew = _pe_header(data)
    return _put(data, e_lfanew + 6, "<H", 0xFFFF), "pe_nsections=65535"


def pe_section_raw_past_end(data: bytes) -> tuple[bytes, str]:
    """First section's PointerToRawData beyond EOF."""
    e_lfanew = _pe_header(data)
    (nsect,) = struct.unpack_from("<H", data, e_lfanew + 6)
    (opt_size,) = struct.unpack_from("<H", data, e_lfanew + 20)
    if nsect == 0:
        raise MutationError("no sections")
    first = e_lfanew + 24 + opt_size
    return _put(data, first + 20, "<I", len(data) + PAST_END), "pe_section_raw_past_end"


def _elf(data: bytes) -> tuple[str, bool]:
    if detect_format(data) != "elf" or len(data) < 52 or data[4] not in (1, 2) or data[5] not in (1, 2):
        raise MutationError("not an ELF file")
    return ("<" if data[5] == 1 else ">"), data[4] == 2


def elf_shoff_past_end(data: bytes) -> tuple[bytes, str]:
    e, wide = _elf(data)
    off = 40 if wide else 32
    return _put(data, off, e + ("Q" if wide else "I"), len(data) + PAST_END), "e_shoff_past_end"


def elf_phoff_past_end(data: bytes) -> tuple[bytes, str]:
    e, wide = _elf(data)
    off = 32 if wide else 28
    return _put(data, off, e + ("Q" if wide else "I"), len(data) + PAST_END), "e_phoff_past_end"


def elf_shnum_absurd(data: bytes) -> tuple[bytes, str]:
    e, wide = _elf(data)
    return _put(data, 60 if wide else 48, e + "H", 0xFFFF), "e_shnum=65535"


def elf_phnum_absurd(data: bytes) -> tuple[bytes, str]:
    e, wide = _elf(data)
    return _put(data, 56 if wide else 44, e + "H", 0xFFFF), "e_phnum=65535"


def _macho_thin(data: bytes) -> tuple[str, int]:
    if data[:4] not in MACHO_THIN_MAGICS:
        raise MutationError("not a thin Mach-O file")
    bits, endian = MACHO_THIN_MAGICS[data[:4]]
    return ("<" if endian == "little" else ">"), (32 if bits == 64 else 28)


def macho_cmdsize_past_end(data: bytes) -> tuple[bytes, str]:
    """First load command's cmdsize reaches beyond EOF."""
    e, header = _macho_thin(data)
    return _put(data, header + 4, e + "I", len(data) + PAST_END), "macho_cmdsize_past_end"


def macho_sizeofcmds_past_end(data: bytes) -> tuple[bytes, str]:
    e, _ = _macho_thin(data)
    return _put(data, 20, e + "I", len(data) + PAST_END), "macho_sizeofcmds_past_end"


def macho_ncmds_absurd(data: bytes) -> tuple[bytes, str]:
    e, _ = _macho_thin(data)
    return _put(data, 16, e + "I", 0xFFFFFFFF), "macho_ncmds=4294967295"


def fat_offset_past_end(data: bytes) -> tuple[bytes, str]:
    """First slice's offset beyond EOF (the slice count stays, so the format stays macho)."""
    if data[:4] not in FAT_MAGICS or detect_format(data) != "macho":
        raise MutationError("not a fat Mach-O file")
    if FAT_MAGICS[data[:4]] == 64:
        return _put(data, 16, ">Q", len(data) + PAST_END), "fat_offset_past_end"
    return _put(data, 16, ">I", len(data) + PAST_END), "fat_offset_past_end"


def magic_only(name: str) -> tuple[bytes, str]:
    return MAGIC_ONLY[name], f"magic_only:{name}"


def empty() -> tuple[bytes, str]:
    return b"", "empty"


# Structural mutations by the parent format they apply to ("macho" = thin, "macho-fat" = fat).
STRUCTURAL: dict[str, list[Callable[[bytes], tuple[bytes, str]]]] = {
    "pe": [pe_lfanew_past_end, pe_nsections_absurd, pe_section_raw_past_end],
    "elf": [elf_shoff_past_end, elf_phoff_past_end, elf_shnum_absurd, elf_phnum_absurd],
    "macho": [macho_cmdsize_past_end, macho_sizeofcmds_past_end, macho_ncmds_absurd],
    "macho-fat": [fat_offset_past_end],
}
TRUNCATE_FRACTIONS = (0.01, 0.1, 0.25, 0.5, 0.75, 0.99)


def family(mutation: str) -> str:
    """The mutation's family, e.g. truncate@0.5 -> truncate, magic_only:MZ -> magic_only."""
    for sep in ("@", ":", "="):
        mutation = mutation.split(sep, 1)[0]
    return mutation


# -- the fuzz's mutants ---------------------------------------------------------------------------

# Values that break parsers: zero, one, sign and width edges.
INTERESTING = (0, 1, 2, 0x7F, 0x80, 0xFF, 0x100, 0x7FFF, 0x8000, 0xFFFF, 0x10000, 0x7FFFFFFF, 0x80000000,
               0xFFFFFFFF, 0x7FFFFFFFFFFFFFFF, 0x8000000000000000, 0xFFFFFFFFFFFFFFFF)
HEAD = 4096  # where the headers are: half of the byte-level damage lands there
OPERATIONS = (("field", 45), ("bitflip", 15), ("overwrite", 15), ("splice", 15), ("truncate", 10))


@dataclass(frozen=True)
class Mutant:
    seed: int
    index: int
    parent: int  # position in the mutator's parents
    data: bytes
    operations: tuple[str, ...]  # what was done, in order (e.g. "field:elf.ehdr.e_shnum=0xffff")

    @property
    def families(self) -> tuple[str, ...]:
        return tuple(op.split(":", 1)[0] for op in self.operations)


class Mutator:
    """Mutants of a fixed, ordered list of parents; the same (seed, index) always gives the same bytes."""

    def __init__(self, parents: Sequence[bytes]) -> None:
        if not parents:
            raise ValueError("a mutator needs at least one parent")
        self.parents = list(parents)
        self._fields: dict[int, list[Field]] = {}

    def fields(self, parent: int) -> list[Field]:
        if parent not in self._fields:
            self._fields[parent] = header_fields(self.parents[parent])
        return self._fields[parent]

    def mutant(self, seed: int, index: int) -> Mutant:
        rng = random.Random(f"binfeat-fuzz/{seed}/{index}")  # str seeds hash with SHA-512: stable everywhere
        parent = rng.randrange(len(self.parents))
        buf = bytearray(self.parents[parent])
        ops = []
        names, weights = zip(*OPERATIONS, strict=True)
        for _ in range(1 + (rng.random() < 0.35) + (rng.random() < 0.15)):
            op = rng.choices(names, weights)[0]
            ops.append(getattr(self, f"_{op}")(rng, buf, parent))
        return Mutant(seed, index, parent, bytes(buf), tuple(ops))

    # Each operation changes buf in place and returns its description.

    def _field(self, rng: random.Random, buf: bytearray, parent: int) -> str:
        fields = [f for f in self.fields(parent) if f.offset + f.width <= len(buf)]
        if not fields:
            return self._overwrite(rng, buf, parent)
        headers = [f for f in fields if _is_header(f.name)]
        # the few header fields (counts, table offsets) would drown in the tables' many entries
        f = rng.choice(headers if headers and rng.random() < 0.4 else fields)
        (old,) = struct.unpack_from(f.fmt, buf, f.offset)
        value = _field_value(rng, old, f.width, len(buf))
        struct.pack_into(f.fmt, buf, f.offset, value)
        return f"field:{f.name}={value:#x}"

    def _bitflip(self, rng: random.Random, buf: bytearray, parent: int) -> str:
        if not buf:
            return "bitflip:n=0"
        n = rng.choice((1, 2, 4, 8, 16, 32))
        for _ in range(n):
            at = _position(rng, len(buf))
            buf[at] ^= 1 << rng.randrange(8)
        return f"bitflip:n={n}"

    def _overwrite(self, rng: random.Random, buf: bytearray, parent: int) -> str:
        if not buf:
            return "overwrite:none"
        at = _position(rng, len(buf))
        kind = rng.choice(("random", "zeros", "ones", "value"))
        if kind == "value":
            chunk = rng.choice(INTERESTING).to_bytes(8, rng.choice(("little", "big")))[: rng.choice((1, 2, 4, 8))]
        else:
            n = rng.randint(1, 64)
            chunk = rng.randbytes(n) if kind == "random" else (b"\0" if kind == "zeros" else b"\xff") * n
        chunk = chunk[: len(buf) - at]
        buf[at : at + len(chunk)] = chunk
        return f"overwrite:{kind}@{at:#x}+{len(chunk)}"

    def _truncate(self, rng: random.Random, buf: bytearray, parent: int) -> str:
        r = rng.random()
        if r < 0.4:
            n = rng.randrange(min(len(buf), HEAD) + 1)
        elif r < 0.8:
            n = rng.randrange(len(buf) + 1)
        else:
            n = max(0, len(buf) - rng.randint(1, 64))
        del buf[n:]
        return f"truncate:{n}"

    def _splice(self, rng: random.Random, buf: bytearray, parent: int) -> str:
        donor_index = rng.randrange(len(self.parents))
        donor = self.parents[donor_index]
        if not donor:
            return "splice:none"
        n = min(rng.randint(1, 4096), len(donor))
        start = rng.randrange(len(donor) - n + 1)
        chunk = donor[start : start + n]
        at = _position(rng, len(buf) + 1) if buf else 0
        if rng.random() < 0.3:  # inserted: every later offset moves
            buf[at:at] = chunk
            return f"splice:insert@{at:#x}+{n}<{donor_index}@{start:#x}"
        buf[at : at + n] = chunk
        return f"splice:overwrite@{at:#x}+{n}<{donor_index}@{start:#x}"


def _is_header(name: str) -> bool:
    """A file header's field (or a fat header's, or a fat slice's Mach-O header's), not a table entry's."""
    if name.startswith("slice["):
        name = name.split(".", 1)[1]
    return "[" not in name or name.startswith("fat.")


def _position(rng: random.Random, size: int) -> int:
    """A byte position: half in the headers' first page; rarely in the magic (the format would go)."""
    at = rng.randrange(min(size, HEAD)) if rng.random() < 0.5 else rng.randrange(size)
    if at < 4 and size > 4 and rng.random() < 0.9:
        at = rng.randrange(4, min(size, HEAD))
    return at


def _field_value(rng: random.Random, old: int, width: int, size: int) -> int:
    """A new value for an integer field: an edge value, a near miss, a flipped bit, the file's size
    or just past it, an offset inside the file, or any value."""
    bits = 8 * width
    mask = (1 << bits) - 1
    kind = rng.randrange(7)
    if kind == 0:
        value = rng.choice(INTERESTING)
    elif kind == 1:
        value = old + rng.choice((-1, 1)) * rng.randint(1, 16)
    elif kind == 2:
        value = old ^ (1 << rng.randrange(bits))
    elif kind == 3:
        value = size + rng.choice((-1, 0, 1, 16, 4096, 1 << 20))
    elif kind == 4:
        value = rng.randrange(size + 1)
    elif kind == 5:
        value = old * rng.choice((2, 16, 256)) if rng.random() < 0.5 else old // rng.choice((2, 16))
    else:
        value = rng.getrandbits(bits)
    return value & mask
