"""Library arguments taken in the forms a Python caller naturally writes.

A path may be a ``str`` or any ``os.PathLike``; a single name may stand for a list of one; an
enum may be given by its value. Anything else is a :class:`UsageError`, never an
``AttributeError`` from deep inside, and a ``str`` is never iterated character by character.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from enum import Enum
from pathlib import Path
from typing import BinaryIO, TypeVar

from ..errors import UsageError

E = TypeVar("E", bound=Enum)
T = TypeVar("T")


def as_path_or_stream(value: str | os.PathLike[str] | BinaryIO, what: str) -> Path | BinaryIO:
    """A file name (``str``/``PathLike``) as a :class:`Path`; a binary stream as it is."""
    if isinstance(value, Path):
        return value
    if isinstance(value, (str, os.PathLike)):
        return Path(value)
    if hasattr(value, "read") or hasattr(value, "write"):
        return value
    raise UsageError(f"{what}: expected a path or a binary stream, not {type(value).__name__}")


def as_list(value: T | Sequence[T], what: str) -> list[T]:
    """One ``str`` (or other single item) as a list of one; a sequence as a list."""
    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence):
        if isinstance(value, bytes):
            raise UsageError(f"{what}: expected text, not bytes")
        return [value]
    return list(value)


def as_enum(value: E | str, kind: type[E], what: str) -> E:
    """An enum member, or its value as text (``"gzip"`` for ``Compression.GZIP``)."""
    if isinstance(value, kind):
        return value
    try:
        return kind(value)
    except ValueError:
        choices = ", ".join(str(m.value) for m in kind)
        raise UsageError(f"{what} must be one of {choices}, not {value!r}") from None
