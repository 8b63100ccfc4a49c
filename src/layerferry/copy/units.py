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
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from ..archive.encoding import encoder_for
from ..archive.writer import iter_layer_member
from ..oci.digest import Digest
from ..tario.compression import Compression
from .blobcache import BlobCache, LayerEntry


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
    memo = _memo_path(cache.root, entry.diff_id, codec)
    try:
        record = json.loads(memo.read_text())
        return Unit(entry, codec, Digest.parse(record["digest"]), int(record["size"]))
    except (OSError, ValueError, KeyError):
        pass
    digest = hashlib.sha256()
    size = 0
    for chunk in iter_unit(cache, entry, codec):
        digest.update(chunk)
        size += len(chunk)
    unit = Unit(entry, codec, Digest("sha256", digest.hexdigest()), size)
    memo.parent.mkdir(parents=True, exist_ok=True)
    tmp = memo.with_suffix(f".tmp{os.getpid()}")
    tmp.write_text(json.dumps({"digest": str(unit.digest), "size": unit.size}))
    os.replace(tmp, memo)
    return unit


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
    """The unit's bytes from *offset* on (resuming a cut transfer)."""
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

    def chunks_from(self, offset: int) -> Iterator[bytes]:
        return iter_unit_from(self.cache, self.unit, offset)

    def prefix_digest(self, length: int) -> Digest:
        return prefix_digest(self.cache, self.unit, length)


def _memo_path(root: Path, diff_id: Digest, codec: Compression) -> Path:
    return root / "units" / codec.value / f"{diff_id.hex}.json"
