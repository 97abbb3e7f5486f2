"""File names as text: the reversible form that the ``path`` column holds.

A POSIX file name is bytes, not text; Python hands a name that is not valid UTF-8 to us as a str
with surrogate escapes (``b"\\xff"`` -> ``"\\udcff"``), which Arrow strings, JSON and Parquet reject.
So every row's ``path`` is the name's *text form*:

- a backslash is written ``\\\\`` (two backslashes);
- a byte that is not part of a valid UTF-8 sequence is written ``\\xNN`` (two lower-case hex digits);
- every other character stands for itself (its UTF-8 bytes).

A name that is valid UTF-8 and has no backslash is therefore its own text form. Reading one back,
``\\\\`` is a backslash, ``\\xNN`` the byte NN (either case), any other character its UTF-8 bytes,
and a backslash followed by anything else makes the text malformed. Every name has exactly one
text form and every well-formed text names exactly one byte string, so the form is unambiguous.
S3 keys are UTF-8 already: only their backslashes change.
"""

from __future__ import annotations

import os
import re

_ESCAPED = re.compile("[\\\\\udc80-\udcff]")  # a backslash, or a byte Python surrogate-escaped
_TOKEN = re.compile(r"\\(?:(\\)|x([0-9a-fA-F]{2}))|(\\)|[^\\]+")


def _escape(match: re.Match) -> str:
    ch = match.group()
    return "\\\\" if ch == "\\" else f"\\x{ord(ch) - 0xDC00:02x}"


def path_text(name: str | bytes | os.PathLike) -> str:
    """The text form of a real file name: bytes, or a str as Python's ``os`` functions return it."""
    raw = os.fsencode(name)
    return _ESCAPED.sub(_escape, raw.decode("utf-8", "surrogateescape"))


def path_bytes(text: str | bytes | os.PathLike) -> bytes:
    """The real file name (bytes) a text form stands for; bytes pass through unchanged.

    Lone surrogates U+DC80..U+DCFF (Python's escapes for undecodable bytes, which a text form never
    contains) are taken as those bytes, so a name straight from ``os.listdir`` works too as long as
    it has no backslash. Raises ValueError on a malformed text form.
    """
    text = os.fspath(text)
    if isinstance(text, bytes):
        return text
    if "\\" not in text:
        return _encode(text, text)
    out = bytearray()
    for match in _TOKEN.finditer(text):  # the pattern's alternatives cover every character
        backslash, hex_byte, lone = match.groups()
        if lone is not None:
            raise ValueError(
                f"malformed path text {text!r}: a backslash at offset {match.start()} must be followed by "
                "a backslash or xNN (write a literal backslash as two)"
            )
        if backslash is not None:
            out += b"\\"
        elif hex_byte is not None:
            out.append(int(hex_byte, 16))
        else:
            out += _encode(match.group(), text)
    return bytes(out)


def canonical_path(path: str | bytes | os.PathLike) -> str:
    """The text form of whatever names a file here; a malformed text is kept (made safe for Arrow)."""
    if isinstance(path, str) and path.isascii() and "\\" not in path:
        return path  # the common case, at no cost
    try:
        return path_text(path_bytes(path))
    except ValueError:
        return os.fspath(path).encode("utf-8", "backslashreplace").decode("utf-8")


def _encode(part: str, whole: str) -> bytes:
    try:
        return part.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        raise ValueError(f"malformed path text {whole!r}: it holds a lone surrogate character") from None
