"""The tar stream reader against what Python's tarfile writes in every format (C17, C22, C23)."""

from __future__ import annotations

import io
import tarfile

import pytest

from layerferry.errors import ArchiveError
from layerferry.tario.reader import MemberKind, TarReader, looks_like_tar

LONG = "deep/" * 30 + "name-longer-than-one-hundred-characters.bin"


def build(fmt: int, uid: int = 0, long: str = LONG) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=fmt) as tar:
        d = tarfile.TarInfo("dir")
        d.type = tarfile.DIRTYPE
        tar.addfile(d)
        for name, data in (("dir/short", b"x" * 700), (long, b"y" * 3)):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.uid = info.gid = uid
            tar.addfile(info, io.BytesIO(data))
        link = tarfile.TarInfo("dir/sym")
        link.type = tarfile.SYMTYPE
        link.linkname = long if fmt != tarfile.USTAR_FORMAT else "dir/short"
        tar.addfile(link)
        hard = tarfile.TarInfo("dir/hard")
        hard.type = tarfile.LNKTYPE
        hard.linkname = "dir/short"
        tar.addfile(hard)
    return buf.getvalue()


@pytest.mark.parametrize(
    "fmt",
    [tarfile.PAX_FORMAT, tarfile.GNU_FORMAT, tarfile.USTAR_FORMAT],
    ids=["pax", "gnu", "ustar"],
)
def test_every_format_reads_the_same(fmt: int) -> None:
    if fmt == tarfile.USTAR_FORMAT:  # ustar: a 155-byte prefix + 100-byte name, short link names
        expected_long, expected_link = "deep/" * 20 + "name.bin", "dir/short"
    else:
        expected_long = expected_link = LONG
    data = build(fmt, long=expected_long)
    reader = TarReader(io.BytesIO(data))
    seen = [(m.name, m.kind, m.size, m.linkname, m.read()) for m in reader]
    assert seen == [
        ("dir/", MemberKind.DIRECTORY, 0, "", b""),
        ("dir/short", MemberKind.FILE, 700, "", b"x" * 700),
        (expected_long, MemberKind.FILE, 3, "", b"y" * 3),
        ("dir/sym", MemberKind.SYMLINK, 0, expected_link, b""),
        ("dir/hard", MemberKind.HARDLINK, 0, "dir/short", b""),
    ]
    assert reader.ended_cleanly and reader.count == 5


@pytest.mark.parametrize("fmt", [tarfile.PAX_FORMAT, tarfile.GNU_FORMAT], ids=["pax", "gnu"])
def test_c23_ids_beyond_ustar_are_read(fmt: int) -> None:
    """uid 88888888: PAX records or GNU base-256; neither trips the reader."""
    data = build(fmt, uid=88888888)
    assert [m.name for m in TarReader(io.BytesIO(data))][:2] == ["dir/", "dir/short"]


def test_members_not_read_are_skipped() -> None:
    names = [m.name for m in TarReader(io.BytesIO(build(tarfile.PAX_FORMAT)))]
    assert names == ["dir/", "dir/short", LONG, "dir/sym", "dir/hard"]


def test_a_damaged_header_after_the_first_member() -> None:
    data = bytearray(build(tarfile.GNU_FORMAT))
    data[512 + 10] ^= 0xFF  # the second header's name
    with pytest.raises(
        ArchiveError, match=r"damaged tar header after member 1 \(offset 512, bad checksum\)"
    ):
        list(TarReader(io.BytesIO(bytes(data)), "x.tar"))


def test_not_a_tar_at_all() -> None:
    with pytest.raises(ArchiveError, match="x: not a tar archive"):
        list(TarReader(io.BytesIO(b"hello" * 200), "x"))
    assert not looks_like_tar(b"hello" * 200)
    assert looks_like_tar(b"\0" * 1024)
    assert looks_like_tar(build(tarfile.PAX_FORMAT))


def test_pax_header_over_its_cap_is_refused() -> None:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        info = tarfile.TarInfo("f")
        info.pax_headers = {"comment": "c" * (2 * 1024 * 1024)}
        tar.addfile(info, io.BytesIO(b""))
    with pytest.raises(
        ArchiveError,
        match=r"extended header at offset 0 is \d+ bytes, over the 1048576 limit; refused",
    ):
        list(TarReader(io.BytesIO(buf.getvalue())))


def test_c22_xattr_records_do_not_disturb_reading() -> None:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        info = tarfile.TarInfo("usr/bin/ping")
        info.size = 4
        info.pax_headers = {"SCHILY.xattr.security.capability": "\x01\x00\x00\x02" + "\x00" * 16}
        tar.addfile(info, io.BytesIO(b"ping"))
    members = [(m.name, m.read()) for m in TarReader(io.BytesIO(buf.getvalue()))]
    assert members == [("usr/bin/ping", b"ping")]
