"""Whole-stream compression, detected from magic bytes (never from a file name), decoded in-process."""

from __future__ import annotations

import bz2
import enum
import gzip
import io
import lzma
import zlib
from typing import BinaryIO, cast

import zstandard

from ..errors import IntegrityError
from .stream import Readable

CHUNK = 1024 * 1024


class Compression(enum.Enum):
    NONE = "none"
    GZIP = "gzip"
    ZSTD = "zstd"
    XZ = "xz"
    BZIP2 = "bzip2"


_MAGIC: list[tuple[bytes, Compression]] = [
    (b"\x1f\x8b", Compression.GZIP),
    (b"\x28\xb5\x2f\xfd", Compression.ZSTD),
    (b"\xfd7zXZ\x00", Compression.XZ),
    (b"BZh", Compression.BZIP2),
]


def detect(head: bytes) -> Compression:
    for magic, kind in _MAGIC:
        if head.startswith(magic):
            return kind
    return Compression.NONE


class _EarlyEndGuard(io.RawIOBase):
    """Turns a codec's end-of-input complaint into one clear integrity error."""

    def __init__(self, inner: BinaryIO, kind: Compression, what: str) -> None:
        self._inner = inner
        self._kind = kind
        self._what = what

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        try:
            data = self._inner.read(len(buffer))
        except (EOFError, OSError, lzma.LZMAError, zlib.error, zstandard.ZstdError) as exc:
            raise IntegrityError(
                f"{self._what}: {self._kind.value} stream is damaged or ends early ({exc})",
                hint="the file was probably cut short in transfer; copy it again",
            ) from exc
        n = len(data)
        buffer[:n] = data
        return n


def open_decompressed(raw: Readable, what: str = "input") -> tuple[BinaryIO, Compression]:
    """Wrap *raw* so reads return decompressed bytes; reads *raw* once, front to back (pipes work)."""
    peekable = io.BufferedReader(cast(io.RawIOBase, _RawAdapter(raw)), CHUNK)
    kind = detect(peekable.peek(8)[:8])
    inner: BinaryIO
    if kind is Compression.NONE:
        return cast(BinaryIO, peekable), kind
    if kind is Compression.GZIP:
        inner = cast(BinaryIO, gzip.GzipFile(fileobj=peekable, mode="rb"))
    elif kind is Compression.ZSTD:
        inner = cast(BinaryIO, ZstdFramesReader(peekable))
    elif kind is Compression.XZ:
        inner = cast(BinaryIO, lzma.LZMAFile(peekable))  # noqa: SIM115 (closed with the stream)
    else:
        inner = cast(BinaryIO, bz2.BZ2File(peekable))
    guarded = io.BufferedReader(_EarlyEndGuard(inner, kind, what), CHUNK)
    return cast(BinaryIO, guarded), kind


class ZstdFramesReader(io.RawIOBase):
    """Concatenated zstd frames as one stream; a frame cut short is an error, not a quiet EOF.

    (``zstandard``'s own stream reader ends silently on truncated input.)
    """

    def __init__(self, raw: Readable) -> None:
        self._raw = raw
        self._dctx = zstandard.ZstdDecompressor()
        self._obj = self._dctx.decompressobj()
        self._in_frame = False
        self._pending = b""
        self._out = b""

    def readable(self) -> bool:
        return True

    def _feed(self) -> bool:
        data = self._pending or self._raw.read(CHUNK)
        self._pending = b""
        if not data:
            if self._in_frame:
                raise EOFError("zstd frame cut short")
            return False
        self._in_frame = True
        self._out += self._obj.decompress(data)
        if self._obj.eof:
            self._pending = self._obj.unused_data
            self._obj = self._dctx.decompressobj()
            self._in_frame = False
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        while not self._out:
            if not self._feed():
                return 0
        n = min(len(buffer), len(self._out))
        buffer[:n] = self._out[:n]
        self._out = self._out[n:]
        return n


class _RawAdapter(io.RawIOBase):
    """Lets any object with ``read`` sit under a BufferedReader (for ``peek``)."""

    def __init__(self, inner: Readable) -> None:
        self._inner = inner

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        data = self._inner.read(len(buffer))
        n = len(data)
        buffer[:n] = data
        return n
