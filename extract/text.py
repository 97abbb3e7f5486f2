"""Names from binaries as valid, reversible UTF-8 text for Arrow string columns."""

from __future__ import annotations

MAX_NAME = 4096


def clean(name: str | bytes | None, limit: int = MAX_NAME) -> str:
    """Decode bytes as UTF-8 with backslash escapes for invalid bytes; escape lone surrogates; cap length.

    Binaries carry names that are not UTF-8 (or not text at all); Arrow strings must be valid UTF-8.
    Backslash escapes keep distinct byte strings distinct.
    """
    if name is None:
        return ""
    if type(name) is str and name.isascii() and "\x00" not in name and len(name) <= limit:
        return name  # the usual case, without the encode round trip
    if isinstance(name, (bytes, bytearray, memoryview)):
        s = bytes(name).decode("utf-8", "backslashreplace")
    else:
        s = str(name)
        try:
            s.encode("utf-8")
        except UnicodeEncodeError:
            s = s.encode("utf-8", "backslashreplace").decode("utf-8")
    s = s.replace("\x00", "\\x00")
    return s if len(s) <= limit else s[:limit]


def clean_all(names: list, limit: int = MAX_NAME) -> list[str]:
    """:func:`clean` of each name; a list of short ASCII str without NUL (the usual import or export
    table) is checked in one pass and returned as it is."""
    if names and all(type(n) is str for n in names):
        joined = "".join(names)
        if joined.isascii() and "\x00" not in joined and max(map(len, names)) <= limit:
            return list(names)
    return [clean(n, limit) for n in names]
