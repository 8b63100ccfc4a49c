"""One member of a layer, with everything a file carries: type, mode, owner, times, xattrs."""

from __future__ import annotations

import enum
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, replace

from ..errors import ArchiveError
from ..tario.headers import BLOCK, tar_header
from ..tario.reader import MemberKind, TarMember
from ..tario.stream import Readable
from .paths import normalize

CHUNK = 1024 * 1024
XATTR_PREFIX = "SCHILY.xattr."


class Kind(enum.Enum):
    FILE = "file"
    DIR = "dir"
    SYMLINK = "symlink"
    HARDLINK = "hardlink"
    CHAR = "char"
    BLOCK = "block"
    FIFO = "fifo"


_TYPEFLAG = {
    Kind.FILE: b"0",
    Kind.HARDLINK: b"1",
    Kind.SYMLINK: b"2",
    Kind.CHAR: b"3",
    Kind.BLOCK: b"4",
    Kind.DIR: b"5",
    Kind.FIFO: b"6",
}
_KIND = {flag: kind for kind, flag in _TYPEFLAG.items()} | {b"\0": Kind.FILE, b"7": Kind.FILE}
# PAX records the header carries in its own fields (re-derived when writing).
_DERIVED = {"path", "linkpath", "size", "uid", "gid", "uname", "gname", "mtime", "atime", "ctime"}


@dataclass(frozen=True)
class Entry:
    """``path`` is normalised (``etc/passwd``; ``""`` is the root). For hard links
    ``linkname`` is the normalised path of the first name; for symlinks the target as stored."""

    path: str
    kind: Kind
    mode: int = 0o644
    uid: int = 0
    gid: int = 0
    uname: str = ""
    gname: str = ""
    mtime: float = 0
    size: int = 0
    linkname: str = ""
    devmajor: int = 0
    devminor: int = 0
    xattrs: Mapping[str, bytes] = field(default_factory=dict)
    records: Mapping[str, bytes] = field(default_factory=dict)
    """Other PAX records kept as read (e.g. ACLs), written back unchanged."""

    @classmethod
    def from_member(cls, member: TarMember, what: str = "layer") -> Entry:
        info = member.info
        kind = _KIND.get(info.typeflag)
        if kind is None:
            raise ArchiveError(
                f"{what}: member {member.name!r} has tar type {info.typeflag!r}, not a file type"
            )
        linkname = member.linkname
        if kind is Kind.HARDLINK:
            linkname = normalize(linkname, what)
        return cls(
            path=normalize(member.name, what),
            kind=kind,
            mode=info.mode & 0o7777,
            uid=info.uid,
            gid=info.gid,
            uname=info.uname,
            gname=info.gname,
            mtime=info.mtime,
            size=member.size if member.kind is MemberKind.FILE else 0,
            linkname=linkname,
            devmajor=info.devmajor,
            devminor=info.devminor,
            xattrs=info.xattrs,
            records={
                k: v
                for k, v in info.pax.items()
                if k not in _DERIVED and not k.startswith(XATTR_PREFIX)
            },
        )

    def moved(self, path: str, linkname: str | None = None) -> Entry:
        return replace(self, path=path, linkname=self.linkname if linkname is None else linkname)

    def header(self) -> bytes:
        name = self.path + "/" if self.kind is Kind.DIR else self.path
        records = dict(self.records)
        records.update({XATTR_PREFIX + k: v for k, v in self.xattrs.items()})
        return tar_header(
            name or "./",
            _TYPEFLAG[self.kind],
            size=self.size if self.kind is Kind.FILE else 0,
            mode=self.mode,
            uid=self.uid,
            gid=self.gid,
            uname=self.uname,
            gname=self.gname,
            mtime=self.mtime,
            linkname=self.linkname,
            devmajor=self.devmajor,
            devminor=self.devminor,
            records=records,
        )


def whiteout_entry(name: str, mode: int = 0o600) -> Entry:
    return Entry(path=name, kind=Kind.FILE, mode=mode)


def iter_member(entry: Entry, payload: Readable | None = None) -> Iterator[bytes]:
    """Header, payload (exactly ``entry.size`` bytes, streamed) and padding of one member."""
    yield entry.header()
    if entry.kind is not Kind.FILE or entry.size == 0:
        return
    if payload is None:
        raise ArchiveError(f"{entry.path}: {entry.size} bytes declared, no content given")
    left = entry.size
    while left > 0:
        chunk = payload.read(min(CHUNK, left))
        if not chunk:
            raise ArchiveError(
                f"{entry.path}: content ended after {entry.size - left} of {entry.size} bytes"
            )
        left -= len(chunk)
        yield chunk
    pad = -entry.size % BLOCK
    if pad:
        yield b"\0" * pad
