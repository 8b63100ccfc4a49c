"""Where archive members come from (a tar stream or a directory), and how their names are kept.

Member names are keys, never paths on this machine: they are normalised (``./a//b`` → ``a/b``)
and a name that is absolute or climbs out with ``..`` is refused, since no image archive holds
one. A directory is walked without following symbolic links; its links become link records, as
in a tar.
"""

from __future__ import annotations

import os
import posixpath
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO, Protocol

from ..errors import ArchiveError
from ..tario.reader import MemberKind


class Member(Protocol):
    name: str
    kind: MemberKind
    size: int
    linkname: str

    def read(self, n: int = -1, /) -> bytes: ...


def normalise_name(name: str, what: str) -> str:
    """The key a member is known by; refuses absolute names and names that climb out."""
    if name.startswith("/"):
        raise ArchiveError(f"{what}: member {name!r} has an absolute path; refused")
    norm = posixpath.normpath(name)
    if norm == ".." or norm.startswith("../"):
        raise ArchiveError(f"{what}: member {name!r} climbs out of the archive with '..'; refused")
    return "" if norm == "." else norm


def safe_reference(path: str) -> str | None:
    """A path named *inside* metadata (``manifest.json``), normalised; None if it escapes."""
    if not path or path.startswith("/"):
        return None
    norm = posixpath.normpath(path)
    if norm in (".", "..") or norm.startswith("../"):
        return None
    return norm


class _FileMember:
    def __init__(self, name: str, fh: BinaryIO, size: int) -> None:
        self.name = name
        self.kind = MemberKind.FILE
        self.size = size
        self.linkname = ""
        self._fh = fh

    def read(self, n: int = -1, /) -> bytes:
        return self._fh.read(n)


class _PlainMember:
    def __init__(self, name: str, kind: MemberKind, linkname: str = "") -> None:
        self.name = name
        self.kind = kind
        self.size = 0
        self.linkname = linkname

    def read(self, n: int = -1, /) -> bytes:
        return b""


def iter_directory(root: Path) -> Iterator[Member]:
    """The files, links and directories under *root* as members, names relative to it, sorted."""
    for current, dirs, files in os.walk(root, followlinks=False):
        dirs.sort()
        base = Path(current)
        rel_dir = base.relative_to(root).as_posix()
        prefix = "" if rel_dir == "." else f"{rel_dir}/"
        for name in dirs:
            if (base / name).is_symlink():
                yield _PlainMember(prefix + name, MemberKind.SYMLINK, os.readlink(base / name))
            else:
                yield _PlainMember(prefix + name, MemberKind.DIRECTORY)
        for name in sorted(files):
            yield from _directory_entry(base / name, prefix + name)


def _directory_entry(path: Path, name: str) -> Iterator[Member]:
    info = path.lstat()
    if stat.S_ISLNK(info.st_mode):
        yield _PlainMember(name, MemberKind.SYMLINK, os.readlink(path))
        return
    if not stat.S_ISREG(info.st_mode):
        yield _PlainMember(name, MemberKind.OTHER)
        return
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    with os.fdopen(fd, "rb") as fh:
        yield _FileMember(name, fh, info.st_size)
