"""Which files of the fetched packages join the sample corpus.

Per package, the files its pin asks for (include / exclude globs, the wanted kind, ``take[profile]``
of them, each at most the profile's size cap), in a deterministic but spread-out order: by a hash of
``pin|path``, not alphabetically. Also thin slices cut out of fat Mach-O files, whole wheels as zip
samples, Java classes out of jars, and real text and gzip files from the Debian packages' docs.
"""

from __future__ import annotations

import fnmatch
import hashlib
import io
import os
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path

from benchmarks.corpus_entry import Collection, Entry
from benchmarks.corpus_fetch import Fetched, Pin
from benchmarks.corpus_sniff import EXECUTABLE_KINDS, MACHO_THIN_MAGICS, fat_slices, sniff, sniff_nonexec


def _order(pin: Pin, origin: str) -> str:
    """Deterministic, spread-out order: by a hash of the path, not alphabetically."""
    return hashlib.sha256(f"{pin.key}|{origin}".encode("utf-8", "surrogateescape")).hexdigest()


def _head(path: Path, size: int) -> bytes:
    with path.open("rb") as fh:
        head = fh.read(4096)
        if head[:2] == b"MZ" and len(head) >= 0x40:
            e_lfanew = int.from_bytes(head[0x3C:0x40], "little")
            if 4096 - 512 < e_lfanew < size:
                fh.seek(0)
                head = fh.read(e_lfanew + 512)
    return head


def _files(fetched: Fetched) -> Iterator[tuple[str, int, Callable[[], bytes], Callable[[], bytes]]]:
    """(origin, size, head(), read()) for every regular file in the package."""
    if fetched.pin.registry == "debian":
        root = fetched.path
        for dirpath, dirnames, filenames in os.walk(root):
            dirnames.sort()
            for name in sorted(filenames):
                p = Path(dirpath) / name
                if p.is_symlink() or not p.is_file():
                    continue
                size = p.stat().st_size
                yield (str(p.relative_to(root)), size,
                       lambda p=p, size=size: _head(p, size), lambda p=p: p.read_bytes())
        return
    with zipfile.ZipFile(fetched.path) as zf:
        for info in sorted(zf.infolist(), key=lambda i: i.filename):
            if info.is_dir():
                continue
            data = zf.read(info)
            yield info.filename, len(data), lambda d=data: d, lambda d=data: d


def _jar_classes(origin: str, data: bytes) -> Iterator[tuple[str, bytes]]:
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            for info in sorted(zf.infolist(), key=lambda i: i.filename):
                if info.filename.endswith(".class"):
                    yield f"{origin}!{info.filename}", zf.read(info)
    except zipfile.BadZipFile:
        return


def _matches(pin: Pin, origin: str) -> bool:
    if pin.include and not any(fnmatch.fnmatchcase(origin, g) for g in pin.include):
        return False
    return not any(fnmatch.fnmatchcase(origin, g) for g in pin.exclude)


def select_from(fetched: Fetched, profile: str, cap: int, coll: Collection) -> list[Entry]:
    """Pick `take[profile]` distinct files of the wanted kind from one package."""
    pin = fetched.pin
    want = pin.take.get(profile, 0)
    base = {"source": pin.name, "version": fetched.version, "warning": fetched.warning}
    picked: list[Entry] = []
    if want:
        cands: list[tuple[str, str, Callable[[], bytes]]] = []
        for origin, size, head, read in _files(fetched):
            if not _matches(pin, origin) or size == 0:
                continue
            if pin.select == "java-class":
                if origin.endswith(".jar"):
                    for sub, data in _jar_classes(origin, read()):
                        if len(data) <= cap and sniff_nonexec(data) == "java-class":
                            cands.append((_order(pin, sub), sub, lambda d=data: d))
                continue
            if size > cap:
                continue
            s = sniff(head())
            if s.kind in EXECUTABLE_KINDS:
                cands.append((_order(pin, origin), origin, read))
        for _, origin, read in sorted(cands):
            if len(picked) >= want:
                break
            data = read()
            kind = sniff(data).kind or "unknown"
            entry = Entry(data, kind, origin=origin, **base)
            if coll.add(entry):
                picked.append(entry)
    if pin.slices:
        for e in [e for e in picked if e.kind == "macho-fat"]:
            for i, (arch, off, size) in enumerate(fat_slices(e.data)):
                part = e.data[off : off + size]
                if len(part) == size and part[:4] in MACHO_THIN_MAGICS:
                    entry = Entry(part, sniff(part).kind or "unknown", origin=f"{e.origin}#slice={i}:{arch}",
                                  **base)
                    if coll.add(entry):
                        picked.append(entry)
    if pin.as_zip.get(profile, 0) and fetched.path.is_file():
        data = fetched.path.read_bytes()
        if len(data) <= cap:
            entry = Entry(data, "zip", origin=fetched.path.name, **base)
            if coll.add(entry):
                picked.append(entry)
    return picked


def select_docs(fetched: list[Fetched], counts: dict[str, int], cap: int, coll: Collection) -> list[Entry]:
    """Real non-executables from the Debian packages' doc folders: text and gzip."""
    cands: dict[str, list[tuple[str, Fetched, str, Callable[[], bytes]]]] = {"text": [], "gzip": []}
    for f in fetched:
        if f.pin.registry != "debian":
            continue
        for origin, size, _head_fn, read in _files(f):
            if not origin.startswith("usr/share/doc/") or not 0 < size <= min(cap, 1 << 18):
                continue
            kind = "gzip" if origin.endswith(".gz") else "text"
            cands[kind].append((_order(f.pin, origin), f, origin, read))
    picked: list[Entry] = []
    for kind, items in cands.items():
        n = 0
        for _, f, origin, read in sorted(items, key=lambda t: t[0]):
            if n >= counts.get(kind, 0):
                break
            data = read()
            if sniff_nonexec(data) != kind:
                continue
            entry = Entry(data, kind, f.pin.name, f.version, origin, warning=f.warning)
            if coll.add(entry):
                picked.append(entry)
                n += 1
    return picked
