"""Files in windows: consecutive files whose parse requests go to the parser worker in one message
and whose md5s are computed side by side, with the bytes they hold in memory bounded."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import TypeVar

T = TypeVar("T")

WINDOW_FILES = 256  # files whose parse requests go to the worker in one message
# bytes of whole-read files held at once: the md5 lanes stay busy (about half their capacity on a
# corpus of executables, against a quarter with 64-file windows) while memory stays bounded
WINDOW_BYTES = 64 << 20


def windows(items: Iterable[T], held: Callable[[T], int]) -> Iterator[list[T]]:
    """Consecutive windows of at most WINDOW_FILES items holding at most WINDOW_BYTES (``held`` says
    what each item holds; one larger item gets a window of its own)."""
    window: list[T] = []
    total = 0
    for item in items:
        n = held(item)
        if window and (len(window) >= WINDOW_FILES or total + n > WINDOW_BYTES):
            yield window
            window, total = [], 0
        window.append(item)
        total += n
    if window:
        yield window
