"""Streaming a layer while it is compressed: the growing cache file, and a host's early load.

The host side is the real ``_SEND_LOAD`` script run with the local ``sh`` and ``zstd``, with
``docker`` standing in as ``tar -t`` (see ``test_send_load_script``), so what reached the
engine and what stayed staged can be asserted exactly.
"""

from __future__ import annotations

import hashlib
import io
import os
import tarfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import zstandard

from layerferry.copy.blobcache import BlobCache
from layerferry.copy.early import EarlyLoad
from layerferry.copy.growing import GrowingLayer, LayerAbandoned
from layerferry.copy.units import iter_growing_unit, iter_unit, stream_key, unit_for
from layerferry.errors import IntegrityError
from layerferry.oci.digest import Digest
from layerferry.remote.staging import TAIL, RemoteStaging
from layerferry.reporting import RecordingReporter
from layerferry.tario.compression import Compression

from .test_send_load_script import FAKE_DOCKER, LocalSession

MB = 1024 * 1024


def _layer(size: int) -> bytes:
    """A layer tar of *size* bytes or a little more: half random, half compressible."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for i, data in enumerate([os.urandom(size // 2), b"log line\n" * (size // 18)]):
            info = tarfile.TarInfo(f"f{i}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


class _Slow(io.RawIOBase):
    """A stream that hands out its bytes in small reads, pausing: a reader still at work."""

    def __init__(self, data: bytes, pause: float = 0.002) -> None:
        self._data = memoryview(data)
        self._pos = 0
        self._pause = pause

    def read(self, n: int = -1, /) -> bytes:
        time.sleep(self._pause)
        n = min(256 * 1024, len(self._data) - self._pos if n < 0 else n)
        out = bytes(self._data[self._pos : self._pos + n])
        self._pos += len(out)
        return out


def _put_in_background(
    cache: BlobCache, data: bytes, layer: GrowingLayer, expected: Digest | None = None
) -> threading.Thread:
    def put() -> None:
        try:
            cache.put_layer_tracked(_Slow(data), expected=expected, watcher=layer)
        except IntegrityError:
            layer.fail()

    thread = threading.Thread(target=put)
    thread.start()
    return thread


def test_followers_read_the_compressed_layer_while_it_is_written(tmp_path: Path) -> None:
    cache = BlobCache(tmp_path / "cache")
    data = _layer(6 * MB)
    diff_id = Digest.of(data)
    layer = GrowingLayer(diff_id, len(data))
    writer = _put_in_background(cache, data, layer)
    # Two hosts follow the same layer, each at its own pace, from the first byte.
    followed: list[bytes] = [b"", b""]

    def follow(i: int) -> None:
        followed[i] = b"".join(layer.follow())

    readers = [threading.Thread(target=follow, args=(i,)) for i in (0, 1)]
    for reader in readers:
        reader.start()
    for thread in [writer, *readers]:
        thread.join(timeout=60)
    entry = cache.layer(diff_id)
    assert entry is not None
    assert followed[0] == followed[1] == entry.path.read_bytes()
    assert zstandard.ZstdDecompressor().decompressobj().decompress(followed[0]) == data
    layer.close()


def test_a_streamed_unit_is_byte_for_byte_the_unit_made_from_the_cache(tmp_path: Path) -> None:
    """What a host got while the layer was compressed is what a later send would make of
    the cached layer: the remembered digest holds, and either can continue the other's part."""
    cache = BlobCache(tmp_path / "cache")
    data = _layer(5 * MB + 100)  # not a multiple of 512: the unit ends with padding
    layer = GrowingLayer(Digest.of(data), len(data))
    writer = _put_in_background(cache, data, layer)
    streamed = b"".join(iter_growing_unit(cache, layer))
    writer.join(timeout=60)
    entry = cache.layer(layer.diff_id)
    assert entry is not None
    assert streamed == b"".join(iter_unit(cache, entry, Compression.ZSTD))
    unit = unit_for(cache, entry, Compression.ZSTD)
    assert unit.digest.hex == hashlib.sha256(streamed).hexdigest()


def test_a_layer_that_fails_its_check_stops_its_followers(tmp_path: Path) -> None:
    cache = BlobCache(tmp_path / "cache")
    data = _layer(3 * MB)
    wrong = Digest.of(b"another layer")
    layer = GrowingLayer(wrong, len(data))
    writer = _put_in_background(cache, data, layer, expected=wrong)
    with pytest.raises(LayerAbandoned):
        for _ in layer.follow():
            pass
    writer.join(timeout=60)
    assert cache.layer(wrong) is None and cache.layer(Digest.of(data)) is None


# -- a host's early load ------------------------------------------------------------------------


@pytest.fixture
def host(tmp_path: Path) -> Path:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    docker = bin_dir / "docker"
    docker.write_text(FAKE_DOCKER)
    docker.chmod(0o755)
    return tmp_path


def _tail() -> bytes:
    """What the tail of a real archive does here: a manifest.json member and the end."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        info = tarfile.TarInfo("manifest.json")
        info.size = 2
        tar.addfile(info, io.BytesIO(b"[]"))
    return zstandard.ZstdCompressor().compress(buf.getvalue())


def _rest() -> Iterator[bytes]:
    yield TAIL
    yield _tail()


def _early(
    host: Path, cache: BlobCache, diff_id: Digest, parts: list[tuple[str, int]]
) -> tuple[EarlyLoad, RecordingReporter]:
    staging = RemoteStaging(LocalSession(host), str(host / "staging"))  # type: ignore[arg-type]
    staging.run_id = "run2"
    reporter = RecordingReporter()
    early = EarlyLoad(
        staging, cache, reporter, lacking={diff_id}, engine_root="", parts={diff_id: parts},
        room=None,
    )  # fmt: skip
    return early, reporter


def _listing(host: Path) -> list[str]:
    return (host / "listing").read_text().split()


def test_an_early_load_streams_the_layer_then_loads_with_the_tail(
    host: Path, tmp_path: Path
) -> None:
    cache = BlobCache(tmp_path / "cache")
    data = _layer(4 * MB)
    layer = GrowingLayer(Digest.of(data), len(data))
    early, _ = _early(host, cache, layer.diff_id, [])
    writer = _put_in_background(cache, data, layer)
    early.offer(layer)
    writer.join(timeout=60)
    assert early.settle()
    result, marks = early.finish(_rest())
    assert result.returncode == 0, result.stderr
    entry = cache.layer(layer.diff_id)
    assert entry is not None
    unit = unit_for(cache, entry, Compression.ZSTD)  # from the memo the stream left
    assert marks.ok == {unit.name} and early.streamed[layer.diff_id].name == unit.name
    assert _listing(host) == [f"blobs/sha256/{layer.diff_id.hex}", "manifest.json"]
    assert not [p for p in (host / "staging").iterdir() if p.is_file()]
    assert unit.size < early.sent < unit.size + 4096


def test_an_early_load_continues_the_part_an_earlier_run_streamed(
    host: Path, tmp_path: Path
) -> None:
    cache = BlobCache(tmp_path / "cache")
    data = _layer(4 * MB)
    layer = GrowingLayer(Digest.of(data), len(data))
    # An earlier run's cache made the same unit; its stream was cut after `have` bytes.
    earlier = BlobCache(tmp_path / "earlier")
    entry = earlier.put_layer(io.BytesIO(data))
    whole = b"".join(iter_unit(earlier, entry, Compression.ZSTD))
    have = len(whole) // 2
    (host / "staging").mkdir(mode=0o700)
    (host / "staging" / f"{stream_key(layer.diff_id)}.part.run1").write_bytes(whole[:have])
    early, reporter = _early(host, cache, layer.diff_id, [("run1", have)])
    writer = _put_in_background(cache, data, layer)
    early.offer(layer)
    writer.join(timeout=60)
    assert early.settle()
    result, marks = early.finish(_rest())
    assert result.returncode == 0, result.stderr
    assert marks.ok == {f"{hashlib.sha256(whole).hexdigest()}.zst"}
    assert any(step.startswith("ssh://test: resuming layer") for step in reporter.steps)
    assert len(whole) - have < early.sent < len(whole) - have + 4096
    assert _listing(host) == [f"blobs/sha256/{layer.diff_id.hex}", "manifest.json"]


def test_a_part_of_other_bytes_is_replaced_by_the_whole_unit(host: Path, tmp_path: Path) -> None:
    cache = BlobCache(tmp_path / "cache")
    data = _layer(2 * MB)
    layer = GrowingLayer(Digest.of(data), len(data))
    (host / "staging").mkdir(mode=0o700)
    (host / "staging" / f"{stream_key(layer.diff_id)}.part.run1").write_bytes(b"x" * 50_000)
    early, reporter = _early(host, cache, layer.diff_id, [("run1", 50_000)])
    writer = _put_in_background(cache, data, layer)
    early.offer(layer)
    writer.join(timeout=60)
    assert early.settle()
    result, marks = early.finish(_rest())
    assert result.returncode == 0, result.stderr
    assert len(marks.ok) == 1 and not marks.bad
    assert any("does not match it" in warning for warning in reporter.warnings)
    assert _listing(host) == [f"blobs/sha256/{layer.diff_id.hex}", "manifest.json"]


def test_an_abandoned_early_load_tags_nothing_and_keeps_what_arrived(
    host: Path, tmp_path: Path
) -> None:
    cache = BlobCache(tmp_path / "cache")
    data = _layer(2 * MB)
    layer = GrowingLayer(Digest.of(data), len(data))
    early, _ = _early(host, cache, layer.diff_id, [])
    writer = _put_in_background(cache, data, layer)
    early.offer(layer)
    writer.join(timeout=60)
    assert early.settle()
    early.abandon()  # the read failed elsewhere: no tail
    assert "manifest.json" not in _listing(host)
    staged = [p.name for p in (host / "staging").iterdir() if p.is_file()]
    assert len(staged) == 1 and staged[0].endswith(".zst"), staged


def test_an_early_load_given_no_layer_starts_no_command(host: Path, tmp_path: Path) -> None:
    early, _ = _early(host, BlobCache(tmp_path / "cache"), Digest.of(b"x"), [])
    assert not early.settle()
    early.abandon()
    assert not (host / "staging").exists()
