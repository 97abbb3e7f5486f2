"""How many COFF symbol records LIEF reads from a PE, counted without LIEF building them.

LIEF has no switch to skip a PE's COFF symbol table, and building one object per symbol (and one per
string of the string table) was over half the PE parse time on the sample corpus: MinGW-built DLLs
carry tens of thousands of symbols. EMBER's general group only needs their number, so the PE parse
hides the table from LIEF (see :mod:`extract.groups.pe_parse`) and counts here what LIEF would count.

LIEF 1.0's rule (``PE::Parser::parse_symbols`` with ``COFF::Symbol::parse``): nothing when the
header's PointerToSymbolTable or NumberOfSymbols is 0; otherwise, from the pointer, read an 18-byte
record, count it, skip its auxiliary records (byte 17) and go on while the running index (each record
plus its auxiliaries) is below NumberOfSymbols; stop at the first record that does not fit in the file.
The kernel compiles on first use (numba, cached on disk), never at import; a plain loop stands in
when numba is unavailable.
"""

from __future__ import annotations

from typing import Any

import numpy as np

RECORD = 18  # IMAGE_SYMBOL: name[8], value u32, section i16, type u16, storage class u8, aux count u8
_KERNEL: Any = None  # compiled counter, or False when numba is unavailable
_DEFERRED = False  # True: the plain loop until warm_up() (a light parser worker, see extract.worker)


def _count_py(a: Any, size: int, ptr: int, nsym: int) -> int:
    count, idx, pos = 0, 0, ptr
    while idx < nsym and pos + RECORD <= size:
        count += 1
        skip = 1 + a[pos + RECORD - 1]
        idx += skip
        pos += RECORD * skip
    return count


def _compile() -> Any:
    global _KERNEL
    if _KERNEL is None:
        try:
            from numba import njit

            _KERNEL = njit(cache=True, nogil=True)(_count_py)
            # read-only uint8 input, as every later call (one specialisation only)
            _KERNEL(np.frombuffer(bytes(RECORD), dtype=np.uint8), RECORD, 0, 1)
        except Exception:
            _KERNEL = False
    return _KERNEL


def defer_kernel() -> None:
    """Count with the plain loop (the same count) until :func:`warm_up` is called: for a process that
    may extract only a file or two, where loading numba would cost more."""
    global _DEFERRED
    _DEFERRED = True


def warm_up() -> None:
    """Compile (or load from numba's cache) now, e.g. when the parser worker starts."""
    _compile()


def symbol_count(data: bytes | memoryview, ptr: int, nsym: int) -> int:
    """The number of symbols LIEF lists for a PE whose COFF header has these PointerToSymbolTable
    and NumberOfSymbols values."""
    if ptr == 0 or nsym == 0 or ptr + RECORD > len(data):
        return 0
    kernel = _KERNEL if _DEFERRED else _compile()
    if kernel:
        a = np.frombuffer(data, dtype=np.uint8)
        return int(kernel(a, a.size, ptr, nsym))
    view = memoryview(data).cast("B")  # indexing gives Python ints (a numpy array's are slow scalars)
    return _count_py(view, len(view), ptr, nsym)
