"""One input of the job, as listing or a manifest describes it, and the error an unusable INPUT raises."""

from __future__ import annotations

from dataclasses import dataclass


class InputError(ValueError):
    """The INPUT spec itself is unusable (missing, empty glob, bad manifest); one line why."""


@dataclass(frozen=True, slots=True)
class InputFile:
    """One input: where it is, how big the listing said it was, and what a manifest said about it.

    ``path`` is a text form (:mod:`extract.paths`). ``error`` is set when the listing already knows
    the file cannot be read as a regular file; the job then emits an error row with that message
    without opening anything.
    """

    path: str
    size: int
    sha256: str | None = None
    label: str | None = None
    error: str | None = None
