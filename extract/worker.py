"""The isolated parser worker: parses each file once and runs every structural group on the parse.

Runs as ``python -m extract.worker``, speaking length-prefixed messages on stdin/stdout. A parser that
segfaults, hangs or balloons takes down only this process; the extractor turns that into the file's
error row and starts a fresh worker. Its protocol is internal:

1. it imports LIEF and the groups at once (in parallel with the extractor's own start), then waits
   for its configuration (memory budget, plugins to import, whether to load the compiled kernels);
2. it answers ``{"ready": True}`` once configured, and the same to ``{"warm": True}`` later;
3. each further message is one window's requests; the replies go back in order, a few files per
   message (1, 2, 4, ... up to ``REPLIES_PER_MESSAGE``, and whatever is left at the window's end),
   while :mod:`extract.progress` tells the extractor which file the worker is on, so a crash or a
   hang is still blamed on the one file that caused it.

Messages are pickles (one per few files: the keys every reply repeats are written and rebuilt once).
Not marshal, though it costs ~35% less to write: it silently turns anything with a buffer (a numpy
scalar or array in a raw value) into bytes.

A request carries the bytes the extractor read (in the shared buffer the extractor fills for each
window, :mod:`extract.shared_window`, or inline), so the parse and the byte-level groups always
describe the same contents. A file too large for the extractor to hold (it streams it) is read here
by path, and its identity
(device, inode, size, modification and change times) is checked against what the extractor saw: a
file that changed or vanished in between gets a reply that says so, never a dead worker.

A worker starts light: the section-entropy histograms count with numpy and the COFF symbol count is
a plain loop until it is told to load the compiled kernels (~0.3 s of CPU, most of it numba's own
start), which the extractor asks for once a worker has been sent enough bytes
(``extract.isolation.WARM_BYTES``) for them to pay off; the values are the same either way.

The address-space limit is set once the worker is configured (LIEF loaded, ~0.5 GiB of address
space with the kernels, mostly LLVM's reservations, not resident memory) and is the parse's budget
on top of that footprint: compiling under a tight cap made LLVM abort at start-up, so loading the
kernels later lifts the (soft) limit while they load, and sets it again from the new footprint.
"""

from __future__ import annotations

import functools
import gc
import importlib
import os
import pickle
import resource
import struct
import sys
from typing import BinaryIO

from extract.progress import Progress
from extract.shared_window import WindowReader

_HEADER = struct.Struct("<Q")
REPLIES_PER_MESSAGE = 16  # at most this many files' replies in one message


def encode(obj: object) -> bytes:
    return pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)


def decode(body: bytes) -> object:
    return pickle.loads(body)


def read_message(stream: BinaryIO) -> object | None:
    head = stream.read(_HEADER.size)
    if len(head) < _HEADER.size:
        return None
    (n,) = _HEADER.unpack(head)
    body = stream.read(n)
    if len(body) < n:
        return None
    return decode(body)


def write_message(stream: BinaryIO, obj: object) -> None:
    body = encode(obj)
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


def _request_bytes(request: dict, shared: WindowReader | None) -> bytes | memoryview:
    """The file's bytes: from the shared buffer, inline, or (a streamed file) read here by path."""
    span = request.get("shared")
    if span is not None:
        if shared is None:
            raise Unreadable("no shared buffer in this parser worker")
        try:
            return shared.read(*span)
        except ValueError as exc:
            raise Unreadable(str(exc)) from None
    data = request.get("data")
    if data is not None:
        return data
    return _read_path(request["path"], request.get("identity"))


def handle_request(request: dict, shared: WindowReader | None = None) -> dict:
    """One file's reply: the parse's raw values and errors, ``unreadable`` when the parser could not
    get the bytes the extractor read, or ``fatal`` when memory ran out (reading included: a file
    larger than the memory cap is an out-of-memory reply, not a dead worker)."""
    try:
        data = _request_bytes(request, shared)
        return structural_raw(request["format"], data, request["size"], request.get("groups"))
    except MemoryError:
        return {"fatal": "out of memory"}
    except Unreadable as exc:
        return {"unreadable": str(exc)}
    except OSError as exc:  # e.g. a streamed file's read
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
    """Limit the address space to what the process holds now plus ``budget_mb`` (the soft limit: the
    worker lifts it itself to load the kernels, see :func:`warm_kernels`)."""
    _, hard = resource.getrlimit(resource.RLIMIT_AS)
    limit = address_space_bytes() + (budget_mb << 20)
    if hard != resource.RLIM_INFINITY:
        limit = min(limit, hard)
    resource.setrlimit(resource.RLIMIT_AS, (limit, hard))


def warm_kernels(budget_mb: int) -> None:
    """Compile or load (from numba's disk cache) the structural groups' kernels now, outside any
    file's time limit. Under a memory cap the limit is lifted meanwhile (LLVM reserves address space
    as it starts) and set again from the new footprint."""
    from extract import coff_symbols, entropy

    capped = budget_mb > 0 and resource.getrlimit(resource.RLIMIT_AS)[0] != resource.RLIM_INFINITY
    if capped:
        hard = resource.getrlimit(resource.RLIMIT_AS)[1]
        resource.setrlimit(resource.RLIMIT_AS, (hard, hard))
    entropy.warm_up()
    coff_symbols.warm_up()
    if capped:
        cap_memory(budget_mb)


def _configure(config: dict) -> int:
    """Apply the extractor's configuration; returns the memory budget in MiB (0: none)."""
    budget_mb = int(config.get("memory_mb") or 0)
    if config.get("warm"):
        warm_kernels(0)  # before the cap: no limit to lift yet
    for name in config.get("preload") or ():
        importlib.import_module(name)
    if budget_mb > 0:
        cap_memory(budget_mb)
    return budget_mb


def serve(inp: BinaryIO, out: BinaryIO, shared: WindowReader | None, progress: Progress | None,
          budget_mb: int) -> int:
    """Answer messages until the extractor closes the pipe. Without a progress channel every reply
    goes alone (a crash must be blamed from the replies)."""
    done = 0  # files finished since this process started
    while True:
        message = read_message(inp)
        if message is None:
            return 0
        if isinstance(message, dict):  # a control message
            if message.get("warm"):
                warm_kernels(budget_mb)
            write_message(out, {"ready": True})
            continue
        replies: list[dict] = []
        # slow start: the first reply goes at once (the extractor waits for it), then 2, 4, ...
        per_message = 1
        most = REPLIES_PER_MESSAGE if progress is not None else 1
        last = len(message) - 1
        for i, request in enumerate(message):
            if progress is not None:
                progress.working(done)
            replies.append(handle_request(request, shared))
            done += 1
            if progress is not None:
                progress.finished(done)
            if len(replies) >= per_message or i == last:
                write_message(out, replies)
                replies = []
                per_message = min(2 * per_message, most)


def main() -> int:
    shared_fd = os.environ.get("BINFEAT_WORKER_SHARED_FD", "")
    # mapped before the memory cap is set: the map is part of the footprint, not of a parse's budget
    shared = WindowReader(int(shared_fd)) if shared_fd else None
    tracked = os.environ.get("BINFEAT_WORKER_PROGRESS_FD", "")
    progress = Progress(int(tracked)) if tracked else None
    # The protocol owns the real stdout; anything a library prints goes to stderr instead.
    out = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)
    inp = sys.stdin.buffer
    gc.disable()  # start-up allocates much and frees little: collections would only walk it
    from extract.parsed import load_lief

    load_lief()  # the parser, imported now rather than inside the first file's time limit
    import extract.groups  # noqa: F401 - declares every group
    from extract import coff_symbols, entropy

    entropy.defer_kernel()  # light until told to warm (see the module docstring)
    coff_symbols.defer_kernel()
    config = read_message(inp)
    if not isinstance(config, dict) or "config" not in config:
        return 0 if config is None else 2
    budget_mb = _configure(config["config"])
    # what start-up loaded lives as long as the process: out of the collector's sight (no collection
    # first: ~35 ms on the first file's path, for a few hundred objects)
    gc.freeze()
    gc.enable()
    write_message(out, {"ready": True})
    return serve(inp, out, shared, progress, budget_mb)


if __name__ == "__main__":
    sys.exit(main())
