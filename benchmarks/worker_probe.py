"""A parser-worker plugin (``ExtractOptions(worker_preload=("benchmarks.worker_probe",))``) that books
the worker's time per category for the per-file breakdown (:mod:`benchmarks.bench_per_file`).

Categories: ``parse`` (the format's parse step), ``group:<name>`` (each structural group's compute,
less the byte kernel it calls), ``byte kernels: section histograms`` (the byte-value counts of
sections and overlays that the entropy features need: byte work, like the extractor's scan),
``ipc: ...`` (unpickling requests, pickling replies, reading the bytes out of the shared buffer),
``glue`` (the rest of a file's handling), and ``pipe`` (reading and writing the pipes, mostly
blocked on the extractor: not CPU). Before the worker waits for its next message it writes its
ledger and its own CPU time to the file named by ``BINFEAT_BENCH_WORKER_LEDGER``.

It patches the module run as ``__main__`` (``python -m extract.worker``), whose loop looks these
names up at each call. Never imported by binfeat itself.
"""

from __future__ import annotations

import json
import os
import pickle
import sys
import time
import types
from typing import Any

from benchmarks.time_ledger import Ledger
from extract import entropy, parsed

ENV = "BINFEAT_BENCH_WORKER_LEDGER"
BYTE_KERNELS = "byte kernels: section histograms"
LEDGER = Ledger()


class _TimedGroup:
    """A structural group whose compute is booked to ``group:<name>``."""

    def __init__(self, group: Any) -> None:
        self.name = group.name
        self.compute = LEDGER.wrap(group.compute, f"group:{group.name}")


def _dump(path: str) -> None:
    state = {**LEDGER.snapshot(), "cpu_ns": time.process_time_ns(), "pid": os.getpid()}
    tmp = f"{path}.{os.getpid()}.tmp"
    with open(tmp, "w", encoding="ascii") as f:
        json.dump(state, f)
    os.replace(tmp, path)


def install(main: types.ModuleType, path: str) -> None:
    """Wrap the worker's steps (names as ``extract/worker.py`` has them; a missing one is skipped)."""
    for fmt, fn in list(parsed._PARSERS.items()):
        parsed._PARSERS[fmt] = LEDGER.wrap(fn, "parse")
    if hasattr(entropy, "_counts"):  # every range histogram goes through it (a module-level name)
        entropy._counts = LEDGER.wrap(entropy._counts, BYTE_KERNELS)
    if hasattr(main, "_structural_groups"):
        original, cache = main._structural_groups, {}

        def groups(*key: Any) -> tuple:
            if key not in cache:
                cache[key] = tuple(_TimedGroup(g) for g in original(*key))
            return cache[key]

        main._structural_groups = groups
    main.pickle = types.SimpleNamespace(
        loads=LEDGER.wrap(pickle.loads, "ipc: unpickle requests"),
        dumps=LEDGER.wrap(pickle.dumps, "ipc: pickle replies"),
        HIGHEST_PROTOCOL=pickle.HIGHEST_PROTOCOL,
    )
    steps = (("_request_bytes", "ipc: bytes from the shared buffer"), ("handle_request", "glue"),
             ("write_message", "pipe"), ("write_replies", "pipe"))
    for name, category in steps:
        if hasattr(main, name):
            setattr(main, name, LEDGER.wrap(getattr(main, name), category))
    read = LEDGER.wrap(main.read_message, "pipe")

    def read_message(*args: Any, **kwargs: Any) -> Any:
        _dump(path)  # every reply of the last message is written: the extractor may look now
        return read(*args, **kwargs)

    main.read_message = read_message


_PATH = os.environ.get(ENV, "")
_MAIN = sys.modules.get("__main__")
if _PATH and _MAIN is not None and hasattr(_MAIN, "read_message"):
    install(_MAIN, _PATH)
