"""Names inside layers: normalised, never climbing out, whiteouts told apart from opaque markers.

A layer member's name is taken relative to the root it is applied to: a leading ``/`` or ``./``
is dropped (absolute names resolve against the root), ``..`` is refused. Opaque markers are
checked before whiteouts: ``.wh..wh..opq`` also starts with ``.wh.`` (case C21).
"""

from __future__ import annotations

import enum
import os
from pathlib import Path

from ..errors import ArchiveError

WHITEOUT_PREFIX = ".wh."
OPAQUE_MARKER = ".wh..wh..opq"
_MAX_SYMLINKS = 40


class UnsafePathError(ArchiveError):
    """A member would write outside the root it is applied to."""


class Marker(enum.Enum):
    NONE = "none"
    WHITEOUT = "whiteout"
    OPAQUE = "opaque"
    META = "meta"  # other ``.wh..wh.`` names (aufs bookkeeping): ignored


def normalize(name: str, what: str = "layer") -> str:
    """``./a//b/`` → ``a/b``; ``/etc/x`` → ``etc/x``; the root itself → ``""``; ``..`` refused."""
    parts = []
    for part in name.split("/"):
        if part in ("", "."):
            continue
        if part == "..":
            raise UnsafePathError(f"{what}: member {name!r} climbs out with '..'; refused")
        parts.append(part)
    return "/".join(parts)


def parent_of(path: str) -> str:
    return path.rpartition("/")[0]


def base_of(path: str) -> str:
    return path.rpartition("/")[2]


def join(parent: str, name: str) -> str:
    return f"{parent}/{name}" if parent else name


def ancestors(path: str) -> list[str]:
    """``a/b/c`` → ``["a", "a/b"]`` (outermost first, the path itself excluded)."""
    parts = path.split("/")
    return ["/".join(parts[:i]) for i in range(1, len(parts))]


def is_within(path: str, top: str) -> bool:
    return top == "" or path == top or path.startswith(top + "/")


def sort_key(path: str) -> tuple[str, ...]:
    """Parents before children, siblings by name (``a`` < ``a/b`` < ``a.b``)."""
    return tuple(path.split("/"))


def marker(path: str) -> tuple[Marker, str]:
    """What a name means in a layer, and the path it acts on."""
    base = base_of(path)
    if base == OPAQUE_MARKER:
        return Marker.OPAQUE, parent_of(path)
    if base.startswith(WHITEOUT_PREFIX + WHITEOUT_PREFIX):
        return Marker.META, path
    if base.startswith(WHITEOUT_PREFIX):
        return Marker.WHITEOUT, join(parent_of(path), base[len(WHITEOUT_PREFIX) :])
    return Marker.NONE, path


def whiteout_name(path: str) -> str:
    return join(parent_of(path), WHITEOUT_PREFIX + base_of(path))


def opaque_name(directory: str) -> str:
    return join(directory, OPAQUE_MARKER)


def resolve_in_root(root: Path, path: str, *, follow_last: bool = False) -> Path:
    """Where *path* lands under *root*, following symlinks as if *root* were ``/``.

    Absolute link targets restart at *root*, ``..`` stops at *root*: the result never lies
    outside it (what a chroot would do, and what Docker's own unpacker relies on).
    """
    todo = [p for p in path.split("/") if p]
    resolved: list[str] = []
    followed = 0
    while todo:
        part = todo.pop(0)
        if part == ".":
            continue
        if part == "..":
            if resolved:
                resolved.pop()
            continue
        candidate = root.joinpath(*resolved, part)
        if (todo or follow_last) and candidate.is_symlink():
            followed += 1
            if followed > _MAX_SYMLINKS:
                raise UnsafePathError(f"{path}: too many levels of symbolic links")
            target = os.readlink(candidate)
            if target.startswith("/"):
                resolved = []
            todo = [p for p in target.split("/") if p] + todo
            continue
        resolved.append(part)
    return root.joinpath(*resolved)
