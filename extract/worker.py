"""The isolated parser worker: parses each file once and runs every structural group on the parse.

Runs as ``python -m extract.worker``, speaking length-prefixed pickles on stdin/stdout. A parser that
segfaults, hangs or balloons takes down only this process; the extractor turns that into the file's
error row and starts a fresh worker. Its protocol is internal.

A request carries the bytes the extractor read (in the shared buffer the extractor fills for each
window, or inline), so the parse and the byte-level groups always describe the same contents. A
file too large for the extractor to hold (it streams it) is read here by path, and its identity
(device, inode, size, modification and change times) is checked against what the extractor saw: a
file that changed or vanished in between gets a reply that says so, never a dead worker.

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


Identity = tuple[int, int, int, int, int]


def file_identity(st: os.stat_result) -> Identity:
    """What says a file is still the one that was opened and has not been written since."""
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


class Unreadable(Exception):
    """The parser could not get the bytes the extractor read; the message says why, in one line."""


def _read_path(path: str, identity: Identity | None) -> bytes:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        raise Unreadable("the file vanished after the extractor read it") from None
    except OSError as exc:
        raise Unreadable(f"the parser could not open the file ({exc.strerror or one_line(exc)})") from None
    try:
        before = file_identity(os.fstat(fd))
        if identity is not None and before != tuple(identity):
            raise Unreadable("the file changed after the extractor read it")
        parts, got, size = [], 0, before[2]
        while chunk := os.read(fd, max(size - got, 1 << 16)):  # one read, then the end of the file
            parts.append(chunk)
            got += len(chunk)
        if file_identity(os.fstat(fd)) != before:
            raise Unreadable("the file changed while the parser read it")
        return parts[0] if len(parts) == 1 else b"".join(parts)
    except OSError as exc:
        raise Unreadable(f"the parser could not read the file ({exc.strerror or one_line(exc)})") from None
    finally:
        os.close(fd)


def _request_bytes(request: dict, shared_fd: int | None) -> bytes | memoryview:
    """The file's bytes: from the shared buffer, inline, or (a streamed file) read here by path."""
    shared = request.get("shared")
    if shared is not None:
        if shared_fd is None:
            raise Unreadable("no shared buffer in this parser worker")
        offset, length = shared
        data = os.pread(shared_fd, length, offset)
        if len(data) != length:
            raise Unreadable("the shared buffer is shorter than the request")
        return data
    data = request.get("data")
    if data is not None:
        return data
    return _read_path(request["path"], request.get("identity"))


def handle_request(request: dict, shared_fd: int | None = None) -> dict:
    """One file's reply: the parse's raw values and errors, ``unreadable`` when the parser could not
    get the bytes the extractor read, or ``fatal`` when memory ran out (reading included: a file
    larger than the memory cap is an out-of-memory reply, not a dead worker)."""
    try:
        data = _request_bytes(request, shared_fd)
        return structural_raw(request["format"], data, request["size"], request.get("groups"))
    except MemoryError:
        return {"fatal": "out of memory"}
    except Unreadable as exc:
        return {"unreadable": str(exc)}
    except OSError as exc:  # the shared buffer could not be read
        return {"unreadable": f"the parser could not read its bytes ({exc.strerror or one_line(exc)})"}


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
    shared = os.environ.get("BINFEAT_WORKER_SHARED_FD", "")
    shared_fd = int(shared) if shared else None
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
            write_message(out, handle_request(one, shared_fd))


if __name__ == "__main__":
    sys.exit(main())
