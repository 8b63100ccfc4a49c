"""Tar headers for any file: ustar fields where they fit, PAX records where they do not.

Unlike :mod:`tarfile`, values of PAX records are written byte for byte (an xattr such as
``security.capability`` is binary and must survive unchanged, case C22), and large ids,
long or non-ASCII names and sizes switch to PAX automatically (case C23).
"""

from __future__ import annotations

from collections.abc import Mapping

BLOCK = 512


def _fits(value: int, width: int) -> bool:
    limit: int = 8 ** (width - 1)
    return 0 <= value < limit


def _octal(value: int, width: int) -> bytes:
    return (
        (f"{value:0{width - 1}o}".encode() + b"\0")
        if _fits(value, width)
        else b"0" * (width - 1) + b"\0"
    )


def _field(text: str, width: int) -> tuple[bytes, bool]:
    """The field's bytes, and whether the value fits a ustar field as plain ASCII."""
    raw = text.encode("utf-8", "surrogateescape")
    ok = len(raw) <= width and raw.isascii()
    return (raw[:width] if ok else b"").ljust(width, b"\0"), ok


def pax_record(key: str, value: bytes) -> bytes:
    body = b" " + key.encode("utf-8") + b"=" + value + b"\n"
    length = len(body) + 1
    while len(str(length)) + len(body) != length:
        length = len(str(length)) + len(body)
    return str(length).encode() + body


def _ustar(
    name: bytes,
    typeflag: bytes,
    *,
    mode: int,
    uid: int,
    gid: int,
    size: int,
    mtime: int,
    linkname: bytes,
    uname: bytes,
    gname: bytes,
    devmajor: int,
    devminor: int,
) -> bytes:
    header = (
        name
        + _octal(mode, 8)
        + _octal(uid, 8)
        + _octal(gid, 8)
        + _octal(size, 12)
        + _octal(mtime, 12)
        + b" " * 8
        + typeflag
        + linkname
        + b"ustar\x0000"
        + uname
        + gname
        + _octal(devmajor, 8)
        + _octal(devminor, 8)
        + b"\0" * 155
    ).ljust(BLOCK, b"\0")
    checksum = f"{sum(header):06o}\0 ".encode()
    return header[:148] + checksum + header[156:]


def tar_header(
    name: str,
    typeflag: bytes,
    *,
    size: int = 0,
    mode: int = 0o644,
    uid: int = 0,
    gid: int = 0,
    uname: str = "",
    gname: str = "",
    mtime: float = 0,
    linkname: str = "",
    devmajor: int = 0,
    devminor: int = 0,
    records: Mapping[str, bytes] | None = None,
) -> bytes:
    """One member's header blocks: a PAX extended header first when anything needs it."""
    pax: dict[str, bytes] = {}
    name_field, ok = _field(name, 100)
    if not ok:
        pax["path"] = name.encode("utf-8", "surrogateescape")
    link_field, ok = _field(linkname, 100)
    if not ok:
        pax["linkpath"] = linkname.encode("utf-8", "surrogateescape")
    uname_field, ok = _field(uname, 32)
    if not ok:
        pax["uname"] = uname.encode("utf-8", "surrogateescape")
    gname_field, ok = _field(gname, 32)
    if not ok:
        pax["gname"] = gname.encode("utf-8", "surrogateescape")
    for key, value, width in (("uid", uid, 8), ("gid", gid, 8), ("size", size, 12)):
        if not _fits(value, width):
            pax[key] = str(value).encode()
    whole = int(mtime)
    if whole != mtime or not _fits(whole, 12):
        pax["mtime"] = _pax_time(mtime)
    for key, extra in sorted((records or {}).items()):
        pax.setdefault(key, extra)
    out = b""
    if pax:
        payload = b"".join(pax_record(k, v) for k, v in pax.items())
        base = name.rstrip("/").rsplit("/", 1)[-1] or "root"
        pax_name, _ = _field(("PaxHeaders/" + base)[:100].encode("ascii", "replace").decode(), 100)
        out += _ustar(
            pax_name,
            b"x",
            mode=0o644,
            uid=0,
            gid=0,
            size=len(payload),
            mtime=0,
            linkname=b"\0" * 100,
            uname=b"\0" * 32,
            gname=b"\0" * 32,
            devmajor=0,
            devminor=0,
        )
        out += payload + b"\0" * (-len(payload) % BLOCK)
    out += _ustar(
        name_field,
        typeflag,
        mode=mode & 0o7777,
        uid=uid,
        gid=gid,
        size=size,
        mtime=max(0, whole),
        linkname=link_field,
        uname=uname_field,
        gname=gname_field,
        devmajor=devmajor,
        devminor=devminor,
    )
    return out


def _pax_time(value: float) -> bytes:
    text = f"{value:.9f}".rstrip("0").rstrip(".")
    return text.encode()
