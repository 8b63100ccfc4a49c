"""A container as one file, for hosts no network reaches: ``migrate -o`` writes it, ``restore``
reads it.

A bundle is layerferry's usual image archive (``manifest.json`` beside an OCI layout, so plain
``docker load`` still loads its image on any engine) with extra members engines ignore::

    layerferry/spec.json                      the container record (spec, settings, digests)
    layerferry/volumes/named/<name>.tar       a named volume's data (as the archive endpoint
                                              gave it)
    layerferry/volumes/anonymous/<n>.tar      an anonymous volume's (n: its position)
    layerferry/binds/<n>.tar                  a bind-mounted path's (with --bind-mounts copy)

Each kind has its own prefix, so no two mounts can share a member (a volume named ``12`` and the
12th anonymous volume did, in bundles before these prefixes; such a bundle is still read by the
member names its record gives, which is all a reader ever uses).

The file is written beside its name and renamed when complete, mode 0600 (env values inside).
Reading it verifies every layer and every data tar against its digest before anything is used.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from ..archive.encoding import PlainEncoder
from ..archive.limits import Limits
from ..archive.read import ReadOptions
from ..archive.writer import ArchiveImage, ExtraMember, iter_archive
from ..copy.blobcache import BlobCache
from ..copy.destinations import write_atomically
from ..copy.sources import ArchiveSource
from ..errors import ArchiveError, IntegrityError, LayerferryError
from ..reference import ImageName
from ..reporting import Reporter
from .record import ContainerRecord
from .spec import MountSpec
from .volumes import CapturedData

SPEC_MEMBER = "layerferry/spec.json"


@dataclass(frozen=True)
class Bundle:
    image: ArchiveImage
    record: ContainerRecord
    data: list[CapturedData]


def data_member(mount: MountSpec, position: int) -> str:
    if mount.type == "volume":
        if mount.anonymous:
            return f"layerferry/volumes/anonymous/{position}.tar"
        return f"layerferry/volumes/named/{mount.source}.tar"
    return f"layerferry/binds/{position}.tar"


def members_for(data: Sequence[CapturedData]) -> dict[str, str]:
    """Bundle member of each captured mount, by destination."""
    return {d.mount.destination: data_member(d.mount, n) for n, d in enumerate(data, 1)}


def write_bundle(
    path: Path,
    image: ArchiveImage,
    record: ContainerRecord,
    data: Sequence[CapturedData],
    cache: BlobCache,
) -> int:
    """Write the bundle; returns its size in bytes."""
    members = [SPEC_MEMBER] + [item.member for item in record.data]
    if len(set(members)) != len(members) or not all(members):
        # A reader finds data by member name: two of one name make the bundle unrestorable.
        raise LayerferryError(f"internal error: bundle members collide or are unnamed: {members}")
    raw = record.to_bytes()
    extras = [ExtraMember(SPEC_MEMBER, len(raw), lambda: iter([raw]))]
    by_destination = {d.mount.destination: d for d in data}
    for item in record.data:
        captured = by_destination[item.mount.destination]
        chunks = functools.partial(captured.cache.iter_uncompressed, captured.entry)
        extras.append(ExtraMember(item.member, captured.entry.size, chunks))
    written = [0]

    def counted() -> Iterator[bytes]:
        for chunk in iter_archive([image], PlainEncoder(cache), extras=extras):
            written[0] += len(chunk)
            yield chunk

    write_atomically(path, counted())
    return written[0]


def read_bundle(
    path: Path, cache: BlobCache, reporter: Reporter, limits: Limits | None = None
) -> Bundle:
    """Read and verify a bundle: its image and data go into *cache*."""
    reading = ArchiveSource(cache, ReadOptions(limits=limits or Limits()), reporter).read(path)
    spec = reading.attachments.get(SPEC_MEMBER)
    if spec is None or spec.data is None:
        raise ArchiveError(
            f"{path}: not a layerferry bundle (no {SPEC_MEMBER}): it holds images only",
            hint="load its images with `layerferry load`",
        )
    record = ContainerRecord.parse(spec.data, f"{path}: {SPEC_MEMBER}")
    images = reading.archive_images()
    chosen = [i for i in images if str(i.config.digest) == record.image_id] or images[:1]
    if not chosen:
        raise ArchiveError(f"{path}: the bundle holds no image")
    data = []
    for item in record.data:
        member = reading.attachments.get(item.member)
        if member is None or member.entry is None:
            raise ArchiveError(f"{path}: {item.member} ({item.mount.label}) is missing")
        if str(member.entry.diff_id) != item.digest or member.entry.size != item.size:
            raise IntegrityError(
                f"{path}: {item.member}: digest mismatch, expected {item.digest} ({item.size} "
                f"bytes), got {member.entry.diff_id} ({member.entry.size} bytes)",
                hint="the bundle was damaged; copy it again",
            )
        data.append(CapturedData(item.mount, member.entry, cache))
    image = chosen[0]
    if not image.tags and record.image:
        image = ArchiveImage(image.config, image.layers, [ImageName.parse(record.image)])
    return Bundle(image, record, data)
