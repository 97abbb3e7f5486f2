"""The isolated parser worker: parses each file once and runs every structural group on the parse.

Runs as ``python -m extract.worker``, speaking length-prefixed pickles on stdin/stdout. A parser that
segfaults, hangs or balloons takes down only this process; the extractor turns that into the file's
error row and starts a fresh worker. Its protocol is internal.

The address-space limit is set once the worker is warm (LIEF loaded, kernels compiled: ~0.5 GiB of
address space, mostly LLVM's reservations, not resident memory) and is the parse's budget on top of
that footprint: compiling under a tight cap made LLVM abort at start-up.
"""

from __future__ import annotations

import functools
import importlib
import os
import pickle
import resource
import struct
import sys
from typing import BinaryIO

_HEADER = struct.Struct("<Q")


def read_message(stream: BinaryIO) -> object | None:
    head = stream.read(_HEADER.size)
    if len(head) < _HEADER.size:
        return None
    (n,) = _HEADER.unpack(head)
    body = stream.read(n)
    if len(body) < n:
        return None
    return pickle.loads(body)


def write_message(stream: BinaryIO, obj: object) -> None:
    body = pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)
    stream.write(_HEADER.pack(len(body)) + body)
    stream.flush()


def one_line(exc: BaseException) -> str:
    text = str(exc).strip().replace("\n", " ").replace("\r", " ")
    return f"{type(exc).__name__}: {text}"[:500] if text else type(exc).__name__


@functools.cache
def _structural_groups(fmt: str, declared: int, only: tuple[str, ...] | None = None) -> tuple:
    """The structural groups of a format, in registry order, for a registry of ``declared`` groups
    (a group declared later, e.g. by a plugin, makes a new entry); ``only``: a selection of groups."""
    from extract.groups import REGISTRY

    return tuple(g for g in REGISTRY.by_stage("structure") if g.applies_to(fmt) and (only is None or g.name in only))


def structural_raw(fmt: str, data: bytes | memoryview, size: int, groups: tuple[str, ...] | None = None) -> dict:
    """Parse once and run every structural group of the format (or those in ``groups``): raw values
    and per-group errors."""
    from extract.groups import REGISTRY
    from extract.parsed import ParseError, parser_for

    parse = parser_for(fmt)
    if parse is None:
        return {"parse_error": f"no parser registered for {fmt}", "raw": {}, "errors": {}}
    try:
        parsed = parse(data)
    except ParseError as exc:
        return {"parse_error": str(exc).replace("\n", " ")[:500] or "parser gave up", "raw": {}, "errors": {}}
    except MemoryError:
        raise
    except Exception as exc:
        return {"parse_error": one_line(exc), "raw": {}, "errors": {}}
    parsed.size = size
    raw: dict[str, object] = {}
    errors: dict[str, str] = {}
    for group in _structural_groups(fmt, len(REGISTRY), groups):
        try:
            raw[group.name] = group.compute(parsed)
        except MemoryError:
            raise
        except Exception as exc:
            errors[group.name] = one_line(exc)
    return {"parse_error": None, "raw": raw, "errors": errors}


def _handle(request: dict) -> dict:
    data = request.get("data")
    if data is None:
        with open(request["path"], "rb") as f:
            data = f.read()
    try:
        return structural_raw(request["format"], data, request["size"], request.get("groups"))
    except MemoryError:
        return {"fatal": "out of memory"}


def address_space_bytes() -> int:
    """This process's current address-space size (VmSize); 0 where /proc is not there."""
    try:
        with open("/proc/self/status", "rb") as f:
            for line in f:
                if line.startswith(b"VmSize:"):
                    return int(line.split()[1]) << 10
    except OSError:
        pass
    return 0


def cap_memory(budget_mb: int) -> None:
    """Limit the address space to what the process holds now plus ``budget_mb``."""
    limit = address_space_bytes() + (budget_mb << 20)
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))


def main() -> int:
    budget_mb = int(os.environ.get("BINFEAT_WORKER_MEMORY_MB", "0") or 0)
    # The protocol owns the real stdout; anything a library prints goes to stderr instead.
    out = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)
    inp = sys.stdin.buffer
    from extract.parsed import load_lief

    load_lief()  # the parser, imported now rather than inside the first file's time limit
    import extract.groups  # noqa: F401 - declares every group
    from extract import coff_symbols, entropy

    entropy.warm_up()  # compile or load the kernels now, not inside the first file's time limit
    coff_symbols.warm_up()

    for name in filter(None, os.environ.get("BINFEAT_WORKER_PRELOAD", "").split(",")):
        importlib.import_module(name)
    if budget_mb > 0:
        cap_memory(budget_mb)
    write_message(out, {"ready": True})
    while True:
        request = read_message(inp)
        if request is None:
            return 0
        for one in request if isinstance(request, list) else [request]:
            write_message(out, _handle(one))


if __name__ == "__main__":
    sys.exit(main())
