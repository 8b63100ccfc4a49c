"""A tar stream read one member at a time, front to back, with exact truncation messages.

Python's ``tarfile`` in stream mode takes a header cut short for the end of the archive and says
nothing; image archives cut in transit must say where. This reader parses ustar, GNU (long names,
base-256 numbers) and PAX headers itself, hands out each member's payload as a bounded reader,
and reports what was cut: the member, its declared size, what was present and the offset.
"""

from __future__ import annotations

import enum
from collections.abc import Iterator
from dataclasses import dataclass, field

from ..errors import ArchiveError
from .stream import Readable

BLOCK = 512
_MAX_LONG_NAME = 64 * 1024
_MAX_PAX = 1024 * 1024
_DRAIN = 1024 * 1024


class MemberKind(enum.Enum):
    FILE = "file"
    DIRECTORY = "directory"
    SYMLINK = "symlink"
    HARDLINK = "hardlink"
    OTHER = "other"


_KINDS = {
    b"0": MemberKind.FILE,
    b"\0": MemberKind.FILE,
    b"7": MemberKind.FILE,
    b"1": MemberKind.HARDLINK,
    b"2": MemberKind.SYMLINK,
    b"5": MemberKind.DIRECTORY,
    b"3": MemberKind.OTHER,
    b"4": MemberKind.OTHER,
    b"6": MemberKind.OTHER,
}
_NO_PAYLOAD = {MemberKind.HARDLINK, MemberKind.SYMLINK, MemberKind.DIRECTORY}


@dataclass(frozen=True)
class HeaderInfo:
    """What a header says beyond name, kind and size: the file's metadata, as stored.

    ``pax`` holds every PAX record of the member byte for byte (xattrs as
    ``SCHILY.xattr.NAME``, large ids, sub-second times); numbers already reflect them.
    """

    typeflag: bytes = b"0"
    mode: int = 0o644
    uid: int = 0
    gid: int = 0
    uname: str = ""
    gname: str = ""
    mtime: float = 0
    devmajor: int = 0
    devminor: int = 0
    pax: dict[str, bytes] = field(default_factory=dict)

    @property
    def xattrs(self) -> dict[str, bytes]:
        prefix = "SCHILY.xattr."
        return {k[len(prefix) :]: v for k, v in self.pax.items() if k.startswith(prefix)}


@dataclass
class TarMember:
    """One member. ``read`` returns its payload (regular files only) and never reads past it."""

    name: str
    kind: MemberKind
    size: int
    linkname: str
    offset: int
    _reader: TarReader | None = field(default=None, repr=False)
    _left: int = field(default=0, repr=False)
    info: HeaderInfo = field(default_factory=HeaderInfo)

    def read(self, n: int = -1) -> bytes:
        if n is None or n < 0:
            parts = []
            while chunk := self.read(_DRAIN):
                parts.append(chunk)
            return b"".join(parts)
        if self._reader is None or self._left <= 0 or n == 0:
            return b""
        data = self._reader._read_payload(self, min(n, self._left))
        self._left -= len(data)
        return data


class TarReader:
    """Iterate the members of a tar stream. ``ended_cleanly`` tells whether end blocks were seen."""

    def __init__(self, stream: Readable, what: str = "archive") -> None:
        self._stream = stream
        self._what = what
        self.offset = 0
        self.count = 0
        self.ended_cleanly = False
        self.trailing_bytes = 0
        self._eof_after_member = False

    # -- raw reads ----------------------------------------------------------------------------
    def _read(self, n: int) -> bytes:
        parts = []
        got = 0
        while got < n:
            data = self._stream.read(n - got)
            if not data:
                break
            parts.append(data)
            got += len(data)
        out = b"".join(parts)
        self.offset += len(out)
        return out

    def _read_payload(self, member: TarMember, n: int) -> bytes:
        data = self._stream.read(n)
        self.offset += len(data)
        if not data:
            present = member.size - member._left
            raise ArchiveError(
                f"{self._what}: archive truncated: member {member.name} declares {member.size} "
                f"bytes, only {present} present (offset {member.offset})",
                hint="the file was cut short in transfer; copy it again",
            )
        return data

    def _skip(self, member: TarMember) -> None:
        while member._left > 0:
            member.read(min(member._left, _DRAIN))
        pad = -member.size % BLOCK
        if pad and len(self._read(pad)) < pad:
            self._eof_after_member = True

    # -- iteration ----------------------------------------------------------------------------
    def __iter__(self) -> Iterator[TarMember]:
        pending: dict[str, bytes] = {}
        while True:
            start = self.offset
            block = self._read(BLOCK)
            if not block:
                return  # no end blocks: ended_cleanly stays False
            if len(block) < BLOCK:
                raise ArchiveError(
                    f"{self._what}: archive truncated inside the header of member "
                    f"{self.count + 1} ({len(block)} of {BLOCK} bytes, offset {start})",
                    hint="the file was cut short in transfer; copy it again",
                )
            if block == b"\0" * BLOCK:
                self._finish()
                return
            header = self._parse(block, start, pending)
            if header is None:
                continue
            yield header
            self._skip(header)
            header._reader = None
            if self._eof_after_member:
                return

    def _finish(self) -> None:
        # A second zero block should follow; then anything left (record padding) is drained so a
        # compressed stream's own end check (gzip CRC, zstd frame end) still runs.
        self._read(BLOCK)
        self.ended_cleanly = True
        while data := self._stream.read(_DRAIN):
            self.trailing_bytes += len(data)

    def _parse(self, block: bytes, start: int, pending: dict[str, bytes]) -> TarMember | None:
        _check_checksum(block, start, self.count, self._what)
        type_flag = block[156:157]
        size = _number(block[124:136], start, self._what)
        if "size" in pending:
            size = _pax_int(_text(pending.pop("size")), start, self._what)
        if size < 0:
            raise ArchiveError(f"{self._what}: tar header at offset {start} has a negative size")
        if type_flag in (b"L", b"K", b"x", b"g"):
            payload = self._special_payload(type_flag, size, start)
            if type_flag == b"L":
                pending[_GNU_PATH] = payload.split(b"\0", 1)[0]
            elif type_flag == b"K":
                pending[_GNU_LINK] = payload.split(b"\0", 1)[0]
            elif type_flag == b"x":
                pending.update(_pax_records(payload, start, self._what))
            return None
        self.count += 1
        path = pending.pop("path", None) or pending.pop(_GNU_PATH, None)
        link = pending.pop("linkpath", None) or pending.pop(_GNU_LINK, None)
        name = _text(path) if path else _header_name(block)
        linkname = _text(link) if link else _cstr(block[157:257])
        info = _header_info(block, type_flag, dict(pending), start, self._what)
        pending.clear()
        kind = _KINDS.get(type_flag, MemberKind.OTHER)
        left = 0 if kind in _NO_PAYLOAD else size
        member = TarMember(name, kind, left, linkname, start, self, left, info)
        return member

    def _special_payload(self, type_flag: bytes, size: int, start: int) -> bytes:
        limit = _MAX_PAX if type_flag in (b"x", b"g") else _MAX_LONG_NAME
        if size > limit:
            raise ArchiveError(
                f"{self._what}: extended header at offset {start} is {size} bytes, over the "
                f"{limit} limit; refused"
            )
        data = self._read(size)
        if len(data) < size:
            raise ArchiveError(
                f"{self._what}: archive truncated inside an extended header "
                f"(offset {start}, {len(data)} of {size} bytes)",
                hint="the file was cut short in transfer; copy it again",
            )
        self._read(-size % BLOCK)
        return data


def _check_checksum(block: bytes, start: int, count: int, what: str) -> None:
    try:
        stored = int(block[148:156].replace(b"\0", b" ").strip() or b"-1", 8)
    except ValueError:
        stored = -1
    unsigned = sum(block[:148]) + 8 * 32 + sum(block[156:])
    signed = sum(b - 256 if b > 127 else b for b in block[:148] + block[156:]) + 8 * 32
    if stored not in (unsigned, signed):
        if count == 0 and start == 0:
            raise ArchiveError(f"{what}: not a tar archive (no valid tar header at the start)")
        raise ArchiveError(
            f"{what}: damaged tar header after member {count} (offset {start}, bad checksum)",
            hint="the archive is damaged; copy it again",
        )


def looks_like_tar(head: bytes) -> bool:
    """True when *head* starts with a valid tar header or an end-of-archive zero block."""
    if len(head) < BLOCK:
        return False
    block = head[:BLOCK]
    if block == b"\0" * BLOCK:
        return True
    try:
        _check_checksum(block, 1, 1, "")
    except ArchiveError:
        return False
    return True


def _number(field: bytes, start: int, what: str) -> int:
    if field[:1] and field[0] & 0x80:
        value = int.from_bytes(field[1:], "big")
        return value if field[0] == 0x80 else -1
    text = field.replace(b"\0", b" ").strip()
    try:
        return int(text, 8) if text else 0
    except ValueError as exc:
        raise ArchiveError(f"{what}: damaged tar header at offset {start} (bad number)") from exc


def _pax_int(text: str, start: int, what: str) -> int:
    try:
        value = int(text)
    except ValueError as exc:
        raise ArchiveError(f"{what}: bad PAX size {text!r} at offset {start}") from exc
    if value < 0:
        raise ArchiveError(f"{what}: bad PAX size {text!r} at offset {start}")
    return value


_GNU_PATH = "\0gnu.path"
_GNU_LINK = "\0gnu.linkpath"


def _text(data: bytes) -> str:
    return data.decode("utf-8", "surrogateescape")


def _header_info(
    block: bytes, type_flag: bytes, pax: dict[str, bytes], start: int, what: str
) -> HeaderInfo:
    def number(key: str, field: bytes) -> int:
        if key in pax:
            return _pax_int(_text(pax[key]), start, what)
        return max(0, _number(field, start, what))

    try:
        mtime = (
            float(_text(pax["mtime"])) if "mtime" in pax else _number(block[136:148], start, what)
        )
    except ValueError as exc:
        raise ArchiveError(f"{what}: bad PAX mtime at offset {start}") from exc
    return HeaderInfo(
        typeflag=type_flag,
        mode=max(0, _number(block[100:108], start, what)) & 0o7777,
        uid=number("uid", block[108:116]),
        gid=number("gid", block[116:124]),
        uname=_text(pax["uname"]) if "uname" in pax else _cstr(block[265:297]),
        gname=_text(pax["gname"]) if "gname" in pax else _cstr(block[297:329]),
        mtime=mtime,
        devmajor=max(0, _number(block[329:337], start, what)),
        devminor=max(0, _number(block[337:345], start, what)),
        pax={k: v for k, v in pax.items() if not k.startswith("\0")},
    )


def _cstr(data: bytes) -> str:
    return data.split(b"\0", 1)[0].decode("utf-8", "surrogateescape")


def _header_name(block: bytes) -> str:
    name = _cstr(block[0:100])
    if block[257:263] == b"ustar\x00":  # POSIX ustar: the prefix field extends the name
        prefix = _cstr(block[345:500])
        if prefix:
            return f"{prefix}/{name}"
    return name


def _pax_records(data: bytes, start: int, what: str) -> dict[str, bytes]:
    """Every record, values as raw bytes (xattr values are binary)."""
    records: dict[str, bytes] = {}
    pos = 0
    while pos < len(data):
        space = data.find(b" ", pos)
        try:
            length = int(data[pos:space])
        except ValueError:
            length = 0
        if space < 0 or length <= 0 or pos + length > len(data):
            if not data[pos:].strip(b"\0"):
                break
            raise ArchiveError(f"{what}: damaged PAX header at offset {start}")
        key, _, value = data[space + 1 : pos + length - 1].partition(b"=")
        records[key.decode("utf-8", "replace")] = value
        pos += length
    return records
