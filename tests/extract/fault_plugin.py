"""A worker plugin (``ExtractOptions(worker_preload=...)``) that injects real faults into the ELF parse
step: a segfault, a hang and a memory balloon, triggered by markers in a file's first bytes."""

from __future__ import annotations

import ctypes
import time

import numpy as np

from extract import parsed

_original = parsed._PARSERS["elf"]


def _faulty(data):
    head = bytes(data[:64])
    if b"BINFEAT-CRASH" in head:
        ctypes.string_at(0)  # a real SIGSEGV in the parser process
    if b"BINFEAT-HANG" in head:
        time.sleep(3600)
    if b"BINFEAT-BALLOON" in head:
        # A parser that keeps taking memory: 64 MiB buffers, up to 64 GiB. numpy.empty reserves
        # address space without touching it, so the cap (an address-space limit) stops it after a
        # handful of allocations in microseconds, whatever the machine's load; a zero-filled bytearray
        # wrote every page and, on a busy machine, met the time limit first.
        hog = [np.empty(64 << 20, np.uint8) for _ in range(1024)]
        return hog
    if bytes(data[-15:]) == b"BINFEAT-TAKE200":
        held = bytearray(200 << 20)
        held[:: 1 << 12] = b"\x01" * len(held[:: 1 << 12])  # resident, not just reserved
        return _original(data)
    return _original(data)


parsed._PARSERS["elf"] = _faulty
