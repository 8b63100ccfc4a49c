"""Staging units: one layer as a complete, independently encoded tar member.

A unit is the encoded form of ``header + layer + padding`` for one codec (zstd frames, one gzip
member, or plain bytes). Units concatenate: a host that has staged the units of the layers it
lacks gets a whole archive by ``cat unit… tail | zstd -dc``. A unit's bytes depend only on the
layer and the codec, so a unit staged for one image serves every image that shares the layer,
and a half-sent unit can be resumed byte for byte. Its digest is computed once and remembered.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
from collections.abc import Generator, Iterator
from dataclasses import dataclass
from pathlib import Path

from ..archive.encoding import ZstdFrameEncoder, encoder_for
from ..archive.writer import iter_layer_member, iter_member_around
from ..oci.digest import Digest
from ..tario.compression import Compression
from .blobcache import BlobCache, LayerEntry
from .growing import GrowingLayer


@dataclass(frozen=True)
class Unit:
    entry: LayerEntry
    codec: Compression
    digest: Digest
    size: int

    @property
    def name(self) -> str:
        """The file name on the host: content-addressed, so names never need quoting care."""
        return f"{self.digest.hex}.{_SUFFIX[self.codec]}"


_SUFFIX = {Compression.ZSTD: "zst", Compression.GZIP: "gz", Compression.NONE: "tar"}


def iter_unit(cache: BlobCache, entry: LayerEntry, codec: Compression) -> Iterator[bytes]:
    encoder = encoder_for(codec, cache)
    yield from iter_layer_member(entry, encoder)
    yield from encoder.finish()


def unit_for(cache: BlobCache, entry: LayerEntry, codec: Compression) -> Unit:
    """The unit of *entry* under *codec*, its digest read from the cache's memo or computed."""
    known = remembered(cache, entry.diff_id, codec)
    if known is not None:
        return Unit(entry, codec, *known)
    digest = hashlib.sha256()
    size = 0
    for chunk in iter_unit(cache, entry, codec):
        digest.update(chunk)
        size += len(chunk)
    unit = Unit(entry, codec, Digest("sha256", digest.hexdigest()), size)
    remember(cache, entry.diff_id, codec, unit.digest, unit.size)
    return unit


def remembered(cache: BlobCache, diff_id: Digest, codec: Compression) -> tuple[Digest, int] | None:
    """The digest and size of the layer's unit under *codec*, when measured before."""
    try:
        record = json.loads(_memo_path(cache.root, diff_id, codec).read_text())
        return Digest.parse(record["digest"]), int(record["size"])
    except (OSError, ValueError, KeyError):
        return None


def remember(
    cache: BlobCache, diff_id: Digest, codec: Compression, digest: Digest, size: int
) -> None:
    """Keep a unit's digest and size (measured while it was made or sent) for :func:`unit_for`."""
    memo = _memo_path(cache.root, diff_id, codec)
    memo.parent.mkdir(parents=True, exist_ok=True)
    tmp = memo.with_suffix(f".tmp{os.getpid()}.{threading.get_ident()}")
    tmp.write_text(json.dumps({"digest": str(digest), "size": size}))
    os.replace(tmp, memo)


def stream_key(diff_id: Digest) -> str:
    """The name of a zstd unit's part on a host when it was streamed while it was made
    (:mod:`.early`): its own name, its digest, is known only at its end."""
    return f"{diff_id.hex}.zst"


def iter_growing_unit(cache: BlobCache, layer: GrowingLayer) -> Generator[bytes, None, None]:
    """The zstd unit of a layer still being compressed into the cache: byte for byte what
    :func:`iter_unit` makes of it once it is there (so what is measured on the way is its memo)."""
    encoder = ZstdFrameEncoder(cache)
    yield from iter_member_around(
        layer.diff_id, layer.size, encoder.frames(layer.follow()), encoder
    )
    yield from encoder.finish()


def prefix_digest(cache: BlobCache, unit: Unit, length: int) -> Digest:
    """sha256 of the unit's first *length* bytes: what a half-staged copy must hash to."""
    digest = hashlib.sha256()
    remaining = length
    for chunk in iter_unit(cache, unit.entry, unit.codec):
        if remaining <= 0:
            break
        piece = chunk[:remaining]
        digest.update(piece)
        remaining -= len(piece)
    return Digest("sha256", digest.hexdigest())


def iter_unit_from(cache: BlobCache, unit: Unit, offset: int) -> Iterator[bytes]:
    """The unit's bytes from *offset* on (resuming a cut transfer); none, without reading
    the unit, from its end (a whole part was found staged)."""
    if offset >= unit.size:
        return
    skip = offset
    for chunk in iter_unit(cache, unit.entry, unit.codec):
        if skip >= len(chunk):
            skip -= len(chunk)
            continue
        yield chunk[skip:] if skip else chunk
        skip = 0


@dataclass(frozen=True)
class StagedUnit:
    """A unit as :mod:`.staged` stages it (bytes from any offset, prefix digests)."""

    cache: BlobCache
    unit: Unit

    @property
    def name(self) -> str:
        return self.unit.name

    @property
    def digest(self) -> Digest:
        return self.unit.digest

    @property
    def size(self) -> int:
        return self.unit.size

    @property
    def label(self) -> str:
        return f"layer {self.unit.entry.diff_id.short}"

    @property
    def other_part_names(self) -> tuple[str, ...]:
        if self.unit.codec is Compression.ZSTD:
            return (stream_key(self.unit.entry.diff_id),)
        return ()

    def chunks_from(self, offset: int) -> Iterator[bytes]:
        return iter_unit_from(self.cache, self.unit, offset)

    def prefix_digest(self, length: int) -> Digest:
        return prefix_digest(self.cache, self.unit, length)


def _memo_path(root: Path, diff_id: Digest, codec: Compression) -> Path:
    return root / "units" / codec.value / f"{diff_id.hex}.json"
