"""Tar members written piecewise, so a payload can come from anywhere (even pre-compressed frames).

Headers are PAX (long names, large ids and sizes just work); every field that would make output
depend on time or the machine is fixed, so the same input gives the same bytes.
"""

from __future__ import annotations

import tarfile

BLOCK = 512
END_OF_ARCHIVE = b"\0" * (2 * BLOCK)


def member_header(name: str, size: int, *, directory: bool = False) -> bytes:
    info = tarfile.TarInfo(name)
    info.mtime = 0
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    if directory:
        info.type = tarfile.DIRTYPE
        info.mode = 0o755
        info.size = 0
    else:
        info.type = tarfile.REGTYPE
        info.mode = 0o644
        info.size = size
    return info.tobuf(format=tarfile.PAX_FORMAT, encoding="utf-8", errors="strict")


def padding(size: int) -> bytes:
    return b"\0" * (-size % BLOCK)
