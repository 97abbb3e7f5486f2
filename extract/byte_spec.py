"""The byte scan's shared numbers: EMBER v2's entropy window and step, the margin below which a
window is re-binned with EMBER's own float32 arithmetic, and the pattern counts' order.

Both the Python driver (:mod:`extract.kernels`) and the compiled kernels (:mod:`extract.byte_kernels`)
read them from here, so neither imports the other at module level, and importing the driver never
imports numba. This module imports nothing of binfeat.
"""

from __future__ import annotations

BLOCK = 1024  # EMBER's entropy step; a window is two adjacent blocks
WINDOW = 2 * BLOCK
# A window whose 4*entropy lies this close to an integer is re-binned with EMBER's own float32 numpy
# code, so the bin is exactly EMBER's (float32 rounding can move a value across a row boundary).
UNCERTAIN = 1e-4
# EMBER's whole-file pattern counts, in the order the kernels write them: c:\ and https?:// in any
# case, HKEY_, MZ
PATTERNS = ("paths", "urls", "registry", "MZ")
