"""The combined archive every engine loads: ``manifest.json`` beside an OCI image layout.

Docker 20.10 reads ``manifest.json``; Docker >= 25 and OCI tools read ``index.json``; both views
name the same blobs under ``blobs/sha256/``. Metadata comes first so a one-pass reader can plan
before the layers arrive. A *thin* archive leaves out layers the receiver already has; both views
still list them (DESIGN §3: this form loads on every engine measured).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

from ..copy.blobcache import LayerEntry
from ..errors import IntegrityError
from ..oci import mediatypes as mt
from ..oci.config import ImageConfig
from ..oci.descriptor import Descriptor
from ..oci.digest import Digest
from ..oci.manifest import Index, Manifest, canonical_json
from ..reference import ImageName
from ..tario.tarstream import END_OF_ARCHIVE, member_header, padding
from .encoding import Encoder


@dataclass(frozen=True)
class ArchiveImage:
    config: ImageConfig
    layers: list[LayerEntry]
    tags: list[ImageName] = field(default_factory=list)

    def __post_init__(self) -> None:
        diff_ids = self.config.diff_ids
        if [layer.diff_id for layer in self.layers] != diff_ids:
            raise IntegrityError(
                f"image {self.config.digest.short}: {len(self.layers)} layers given, config "
                f"declares {len(diff_ids)} (or in another order)"
            )

    def manifest(self) -> Manifest:
        return Manifest(
            config=Descriptor(mt.OCI_CONFIG, self.config.digest, len(self.config.raw)),
            layers=[Descriptor(mt.OCI_LAYER, e.diff_id, e.size) for e in self.layers],
        )


def _blob_name(digest: Digest) -> str:
    return f"blobs/{digest.algorithm}/{digest.hex}"


def _file(name: str, data: bytes) -> bytes:
    return member_header(name, len(data)) + data + padding(len(data))


def _index(images: Sequence[ArchiveImage]) -> Index:
    entries: list[Descriptor] = []
    for image in images:
        manifest = image.manifest()
        raw = manifest.to_bytes()
        if not image.tags:
            entries.append(Descriptor(mt.OCI_MANIFEST, Digest.of(raw), len(raw)))
        for tag in image.tags:
            annotations = {mt.ANNOTATION_DOCKER_NAME: tag.full, mt.ANNOTATION_REF_NAME: tag.tag}
            entries.append(Descriptor(mt.OCI_MANIFEST, Digest.of(raw), len(raw), annotations))
    return Index(entries)


def _docker_manifest(images: Sequence[ArchiveImage]) -> bytes:
    return canonical_json(
        [
            {
                "Config": _blob_name(image.config.digest),
                "RepoTags": [str(tag) for tag in image.tags] or None,
                "Layers": [_blob_name(entry.diff_id) for entry in image.layers],
            }
            for image in images
        ]
    )


def layers_to_write(
    images: Sequence[ArchiveImage], include: set[Digest] | None
) -> list[LayerEntry]:
    """The layers an archive carries: each once, in first-use order, only those in *include*."""
    chosen: dict[Digest, LayerEntry] = {}
    for image in images:
        for entry in image.layers:
            if include is None or entry.diff_id in include:
                chosen.setdefault(entry.diff_id, entry)
    return list(chosen.values())


def iter_metadata(images: Sequence[ArchiveImage], encoder: Encoder) -> Iterator[bytes]:
    """Every member but the layers: layout marker, both indexes, configs and manifests."""
    yield from encoder.raw(_file("oci-layout", canonical_json({"imageLayoutVersion": "1.0.0"})))
    yield from encoder.raw(_file("index.json", _index(images).to_bytes()))
    yield from encoder.raw(_file("manifest.json", _docker_manifest(images)))
    yield from encoder.raw(member_header("blobs/", 0, directory=True))
    yield from encoder.raw(member_header("blobs/sha256/", 0, directory=True))
    written: set[Digest] = set()
    for image in images:
        for digest, data in (
            (image.config.digest, image.config.raw),
            (image.manifest().digest, image.manifest().to_bytes()),
        ):
            if digest not in written:
                written.add(digest)
                yield from encoder.raw(_file(_blob_name(digest), data))


def iter_layer_member(entry: LayerEntry, encoder: Encoder) -> Iterator[bytes]:
    """One layer as a tar member (header, content, padding): the same bytes in every archive."""
    yield from encoder.raw(member_header(_blob_name(entry.diff_id), entry.size))
    yield from encoder.layer(entry)
    yield from encoder.raw(padding(entry.size))


def iter_archive(
    images: Sequence[ArchiveImage],
    encoder: Encoder,
    *,
    include: set[Digest] | None = None,
) -> Iterator[bytes]:
    """Yield the encoded archive. Layers whose diff ID is not in *include* are left out (thin).

    Metadata comes first, so a one-pass reader can plan before the layers arrive.
    """
    yield from iter_metadata(images, encoder)
    for entry in layers_to_write(images, include):
        yield from iter_layer_member(entry, encoder)
    yield from encoder.raw(END_OF_ARCHIVE)
    yield from encoder.finish()


def iter_tail(images: Sequence[ArchiveImage], encoder: Encoder) -> Iterator[bytes]:
    """The metadata and end of an archive whose layer members were sent ahead (staged on a host).

    Engines unpack the whole archive before reading it, so member order does not matter to them.
    """
    yield from iter_metadata(images, encoder)
    yield from encoder.raw(END_OF_ARCHIVE)
    yield from encoder.finish()
