"""How an archive's bytes are encoded on their way out: plain, gzip, or concatenated zstd frames.

An encoder takes the archive's own bytes (headers, metadata, padding) and its layers (cache
entries) and yields output chunks. The zstd encoder passes a cached layer's frames through
untouched, so a layer is compressed once no matter how many times or places it is sent.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterator
from typing import Protocol

import zstandard

from ..copy.blobcache import BlobCache, LayerEntry
from ..errors import UsageError
from ..tario.compression import Compression

GZIP_LEVEL = 1
_META_ZSTD_LEVEL = 3


class Encoder(Protocol):
    def raw(self, data: bytes) -> Iterator[bytes]: ...

    def layer(self, entry: LayerEntry) -> Iterator[bytes]: ...

    def stream(self, chunks: Iterator[bytes]) -> Iterator[bytes]: ...

    def finish(self) -> Iterator[bytes]: ...


class PlainEncoder:
    def __init__(self, cache: BlobCache) -> None:
        self._cache = cache

    def raw(self, data: bytes) -> Iterator[bytes]:
        if data:
            yield data

    def layer(self, entry: LayerEntry) -> Iterator[bytes]:
        yield from self._cache.iter_uncompressed(entry)

    def stream(self, chunks: Iterator[bytes]) -> Iterator[bytes]:
        yield from chunks

    def finish(self) -> Iterator[bytes]:
        return iter(())


class ZstdFrameEncoder:
    """Archive bytes as small zstd frames; layers as their cached frames, byte for byte."""

    def __init__(self, cache: BlobCache) -> None:
        self._cache = cache
        self._cctx = zstandard.ZstdCompressor(level=_META_ZSTD_LEVEL, write_checksum=True)
        self._pending = bytearray()

    def raw(self, data: bytes) -> Iterator[bytes]:
        # Buffer small pieces (a header, a padding run) so they share one frame.
        self._pending += data
        return iter(())

    def _flush(self) -> Iterator[bytes]:
        if self._pending:
            yield self._cctx.compress(bytes(self._pending))
            self._pending.clear()

    def layer(self, entry: LayerEntry) -> Iterator[bytes]:
        return self.frames(self._cache.iter_compressed(entry))

    def frames(self, frames: Iterator[bytes]) -> Iterator[bytes]:
        """Already compressed zstd frames (a layer's, from the cache), passed through as they are."""
        yield from self._flush()
        yield from frames

    def stream(self, chunks: Iterator[bytes]) -> Iterator[bytes]:
        yield from self._flush()
        frame = self._cctx.compressobj()
        for chunk in chunks:
            if out := frame.compress(chunk):
                yield out
        yield frame.flush()

    def finish(self) -> Iterator[bytes]:
        yield from self._flush()


class GzipEncoder:
    def __init__(self, cache: BlobCache, level: int = GZIP_LEVEL) -> None:
        self._cache = cache
        self._z = zlib.compressobj(level, zlib.DEFLATED, 16 + zlib.MAX_WBITS)

    def raw(self, data: bytes) -> Iterator[bytes]:
        out = self._z.compress(data)
        if out:
            yield out

    def layer(self, entry: LayerEntry) -> Iterator[bytes]:
        yield from self.stream(self._cache.iter_uncompressed(entry))

    def stream(self, chunks: Iterator[bytes]) -> Iterator[bytes]:
        for chunk in chunks:
            yield from self.raw(chunk)

    def finish(self) -> Iterator[bytes]:
        yield self._z.flush()


def encoder_for(kind: Compression, cache: BlobCache) -> Encoder:
    if kind is Compression.NONE:
        return PlainEncoder(cache)
    if kind is Compression.ZSTD:
        return ZstdFrameEncoder(cache)
    if kind is Compression.GZIP:
        return GzipEncoder(cache)
    raise UsageError(f"layerferry does not write {kind.value} archives; use gzip, zstd or none")
