"""Whole-stream compression, detected from magic bytes (never from a file name), decoded in-process."""

from __future__ import annotations

import bz2
import enum
import gzip
import io
import lzma
import zlib
from collections.abc import Callable
from typing import BinaryIO, cast

import zstandard

from ..errors import IntegrityError, LimitExceeded
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


class ExpansionBudget:
    """Bounds what decompression may produce, against decompression bombs.

    Every decoder sharing one budget adds its output; the outermost reader adds the bytes it took
    from the file. Output may reach ``max(floor, ratio * input)``; beyond that reads fail with one
    clear line. gzip cannot exceed about 1032:1, so the default ratio only stops the codecs (and
    nestings) that can.
    """

    DEFAULT_RATIO = 1000
    DEFAULT_FLOOR = 1024 * 1024 * 1024

    def __init__(self, ratio: int = DEFAULT_RATIO, floor: int = DEFAULT_FLOOR) -> None:
        self.ratio = ratio
        self.floor = floor
        self.input = 0
        self.output = 0

    def take_input(self, n: int) -> None:
        self.input += n

    def take_output(self, n: int, what: str) -> None:
        self.output += n
        allowed = max(self.floor, self.ratio * self.input)
        if self.output > allowed:
            raise LimitExceeded(
                f"{what}: decompresses to more than {allowed} bytes from {self.input} read "
                f"(over {self.ratio}:1); refused as a likely decompression bomb",
                hint="if the archive is trusted, raise the limit with --max-expansion RATIO",
            )


class _Counted(io.RawIOBase):
    def __init__(self, inner: Readable, count: Callable[[int], None]) -> None:
        self._inner = inner
        self._count = count

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        data = self._inner.read(len(buffer))
        n = len(data)
        if n:
            self._count(n)
        buffer[:n] = data
        return n


def count_input(raw: Readable, budget: ExpansionBudget) -> BinaryIO:
    """*raw* with every byte read counted as the budget's input."""
    return cast(BinaryIO, io.BufferedReader(_Counted(raw, budget.take_input), CHUNK))


def open_decompressed(
    raw: Readable, what: str = "input", budget: ExpansionBudget | None = None
) -> tuple[BinaryIO, Compression]:
    """Wrap *raw* so reads return decompressed bytes; reads *raw* once, front to back (pipes work).

    With a *budget*, decompressed output is counted against it (uncompressed input is not).
    """
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
    guard: io.RawIOBase = _EarlyEndGuard(inner, kind, what)
    if budget is not None:
        spent = budget
        guard = _Counted(guard, lambda n: spent.take_output(n, what))
    guarded = io.BufferedReader(guard, CHUNK)
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
