from __future__ import annotations

import bz2
import gzip
import io
import lzma

import pytest
import zstandard

from layerferry.errors import IntegrityError
from layerferry.tario.compression import Compression, detect, open_decompressed

PAYLOAD = b"layerferry " * 50_000

ENCODERS = {
    Compression.NONE: lambda d: d,
    Compression.GZIP: gzip.compress,
    Compression.ZSTD: lambda d: zstandard.ZstdCompressor().compress(d),
    Compression.XZ: lzma.compress,
    Compression.BZIP2: bz2.compress,
}


@pytest.mark.parametrize("kind", list(Compression))
def test_detect_and_decode_by_magic(kind: Compression) -> None:
    encoded = ENCODERS[kind](PAYLOAD)
    assert detect(encoded[:8]) is kind
    reader, found = open_decompressed(io.BytesIO(encoded))
    assert found is kind
    assert reader.read() == PAYLOAD


def test_multi_member_gzip_is_one_stream() -> None:
    encoded = gzip.compress(PAYLOAD[:1000]) + gzip.compress(PAYLOAD[1000:])
    reader, _ = open_decompressed(io.BytesIO(encoded))
    assert reader.read() == PAYLOAD


def test_concatenated_zstd_frames_are_one_stream() -> None:
    c = zstandard.ZstdCompressor()
    encoded = c.compress(PAYLOAD[:7]) + c.compress(PAYLOAD[7:])
    reader, _ = open_decompressed(io.BytesIO(encoded))
    assert reader.read() == PAYLOAD


@pytest.mark.parametrize("kind", [Compression.GZIP, Compression.ZSTD, Compression.XZ])
def test_truncated_compressed_stream_is_an_integrity_error(kind: Compression) -> None:
    encoded = ENCODERS[kind](PAYLOAD)
    reader, _ = open_decompressed(io.BytesIO(encoded[: len(encoded) - 8]))
    with pytest.raises(IntegrityError, match="damaged or ends early"):
        while reader.read(65536):
            pass
