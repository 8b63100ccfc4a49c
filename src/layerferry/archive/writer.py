"""The combined archive every engine loads: ``manifest.json`` beside an OCI image layout.

Docker 20.10 reads ``manifest.json``; Docker >= 25 and OCI tools read ``index.json``; both views
name the same blobs under ``blobs/sha256/``. Metadata comes first so a one-pass reader can plan
before the layers arrive. A *thin* archive leaves out layers the receiver already has; both views
still list them (DESIGN §3: this form loads on every engine measured). A thin archive written
for a receiver (``save --thin-for``) says so in :data:`THIN_MEMBER`, which names the left-out
layers' diff IDs, so a reader can tell a delta from a damaged archive; engines ignore the member.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from functools import partial

from ..copy.blobcache import BlobCache, LayerEntry
from ..errors import IntegrityError, UsageError
from ..oci import mediatypes as mt
from ..oci.config import ImageConfig
from ..oci.descriptor import Descriptor
from ..oci.digest import Digest
from ..oci.manifest import Index, Manifest, RawManifest, canonical_json
from ..reference import ImageName
from ..tario.compression import Compression
from ..tario.tarstream import END_OF_ARCHIVE, member_header, padding
from .encoding import Encoder


@dataclass(frozen=True)
class ArchiveImage:
    config: ImageConfig
    layers: list[LayerEntry]
    tags: list[ImageName] = field(default_factory=list)
    origin: RawManifest | None = field(default=None, compare=False)
    """The manifest the image was pulled with (a registry's bytes), kept so a push elsewhere
    can reproduce its digest when the blobs it names are at hand."""

    def __post_init__(self) -> None:
        diff_ids = self.config.diff_ids
        if [layer.diff_id for layer in self.layers] != diff_ids:
            raise IntegrityError(
                f"image {self.config.digest.short}: {len(self.layers)} layers given, config "
                f"declares {len(diff_ids)} (or in another order)"
            )

    def manifest(self, layers: Sequence[Descriptor] | None = None) -> Manifest:
        """The OCI manifest; *layers* describe the stored blobs (default: plain tars)."""
        if layers is None:
            layers = [Descriptor(mt.OCI_LAYER, e.diff_id, e.size) for e in self.layers]
        return Manifest(
            config=Descriptor(mt.OCI_CONFIG, self.config.digest, len(self.config.raw)),
            layers=list(layers),
        )


@dataclass(frozen=True)
class StoredLayer:
    """How one layer is stored in the archive: its blob's descriptor, and where its bytes are."""

    descriptor: Descriptor
    chunks: Callable[[], Iterator[bytes]] | None = None
    """The blob's bytes; None: the plain tar, streamed by the encoder from the cache entry."""


def stored_layers(
    images: Sequence[ArchiveImage], cache: BlobCache, compression: Compression
) -> dict[Digest, StoredLayer]:
    """Per diff ID, the blob an archive stores: the plain tar, or its gzip form (made once)."""
    if compression not in (Compression.NONE, Compression.GZIP):
        raise UsageError(
            f"layers are stored plain or gzip-compressed, not {compression.value}: Docker 20.10 "
            "cannot load zstd layers; compress the whole archive with --compress zstd instead"
        )
    out: dict[Digest, StoredLayer] = {}
    for entry in (e for image in images for e in image.layers):
        if entry.diff_id in out:
            continue
        if compression is Compression.GZIP:
            blob = cache.gzip_layer(entry)
            desc = Descriptor(mt.OCI_LAYER_GZIP, blob.digest, blob.size)
            out[entry.diff_id] = StoredLayer(desc, partial(cache.iter_gzip, blob))
        else:
            out[entry.diff_id] = StoredLayer(Descriptor(mt.OCI_LAYER, entry.diff_id, entry.size))
    return out


THIN_MEMBER = "layerferry/thin.json"
"""Written in a delta: ``{"format": "layerferry-thin", "left_out": [diff IDs]}``."""
THIN_FORMAT = "layerferry-thin"


def left_out_layers(images: Sequence[ArchiveImage], include: set[Digest] | None) -> list[Digest]:
    """Diff IDs of the layers a thin archive leaves out, each once, in first-use order."""
    if include is None:
        return []
    out: dict[Digest, None] = {}
    for image in images:
        for entry in image.layers:
            if entry.diff_id not in include:
                out.setdefault(entry.diff_id, None)
    return list(out)


def thin_record(left_out: Sequence[Digest]) -> bytes:
    return canonical_json(
        {
            "format": THIN_FORMAT,
            "version": 1,
            "left_out": [str(d) for d in left_out],
            "reason": "a delta for a receiver that holds these layers",
        }
    )


def _blob_name(digest: Digest) -> str:
    return f"blobs/{digest.algorithm}/{digest.hex}"


def _file(name: str, data: bytes) -> bytes:
    return member_header(name, len(data)) + data + padding(len(data))


@dataclass(frozen=True)
class ExtraMember:
    """A file an archive carries beside its images (a bundle's spec and volume data). Engines
    ignore members they do not know (checked: Docker 20.10 and 26 load such archives)."""

    name: str
    size: int
    chunks: Callable[[], Iterator[bytes]]


@dataclass(frozen=True)
class _Plan:
    """Everything an archive's metadata says, decided (and checked) before the first byte."""

    images: Sequence[ArchiveImage]
    layers: dict[Digest, StoredLayer]
    manifests: list[Manifest]

    @classmethod
    def make(
        cls, images: Sequence[ArchiveImage], layers: dict[Digest, StoredLayer] | None
    ) -> _Plan:
        if layers is None:
            layers = {
                e.diff_id: StoredLayer(Descriptor(mt.OCI_LAYER, e.diff_id, e.size))
                for image in images
                for e in image.layers
            }
        manifests = [
            image.manifest([layers[e.diff_id].descriptor for e in image.layers]) for image in images
        ]
        plan = cls(images, layers, manifests)
        plan.self_check()
        return plan

    def self_check(self) -> None:
        """The writer's own promises (cases C05, C11, C12, C13), checked before writing."""
        for image, manifest in zip(self.images, self.manifests, strict=True):
            diff_ids = image.config.diff_ids
            if len(manifest.layers) != len(diff_ids):
                raise IntegrityError(
                    f"writer self-check: image {image.config.digest.short}: the manifest lists "
                    f"{len(manifest.layers)} layers, config declares {len(diff_ids)}"
                )
            for number, (entry, desc) in enumerate(
                zip(image.layers, manifest.layers, strict=True), 1
            ):
                plain = desc.media_type == mt.OCI_LAYER
                if plain and (desc.digest != entry.diff_id or desc.size != entry.size):
                    raise IntegrityError(
                        f"writer self-check: image {image.config.digest.short}: layer {number}: "
                        f"descriptor {desc.digest} ({desc.size} bytes) is not the layer's "
                        f"{entry.diff_id} ({entry.size} bytes)"
                    )
        index = self.index()
        if len({d.digest for d in index.manifests}) != len({m.digest for m in self.manifests}):
            raise IntegrityError("writer self-check: index.json does not list every image")

    def index(self) -> Index:
        entries: list[Descriptor] = []
        for image, manifest in zip(self.images, self.manifests, strict=True):
            raw = manifest.to_bytes()
            if not image.tags:
                entries.append(Descriptor(mt.OCI_MANIFEST, Digest.of(raw), len(raw)))
            for tag in image.tags:
                annotations = {mt.ANNOTATION_DOCKER_NAME: tag.full, mt.ANNOTATION_REF_NAME: tag.tag}
                entries.append(Descriptor(mt.OCI_MANIFEST, Digest.of(raw), len(raw), annotations))
        return Index(entries)

    def docker_manifest(self) -> bytes:
        return canonical_json(
            [
                {
                    "Config": _blob_name(image.config.digest),
                    "RepoTags": [str(tag) for tag in image.tags] or None,
                    "Layers": [_blob_name(d.digest) for d in manifest.layers],
                }
                for image, manifest in zip(self.images, self.manifests, strict=True)
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


def _iter_metadata(
    plan: _Plan, encoder: Encoder, left_out: Sequence[Digest] = ()
) -> Iterator[bytes]:
    """Every member but the layers: layout marker, both indexes, the delta record (when
    *left_out* names layers), configs and manifests."""
    yield from encoder.raw(_file("oci-layout", canonical_json({"imageLayoutVersion": "1.0.0"})))
    yield from encoder.raw(_file("index.json", plan.index().to_bytes()))
    yield from encoder.raw(_file("manifest.json", plan.docker_manifest()))
    if left_out:
        yield from encoder.raw(member_header("layerferry/", 0, directory=True))
        yield from encoder.raw(_file(THIN_MEMBER, thin_record(left_out)))
    yield from encoder.raw(member_header("blobs/", 0, directory=True))
    yield from encoder.raw(member_header("blobs/sha256/", 0, directory=True))
    written: set[Digest] = set()
    for image, manifest in zip(plan.images, plan.manifests, strict=True):
        for digest, data in (
            (image.config.digest, image.config.raw),
            (manifest.digest, manifest.to_bytes()),
        ):
            if digest not in written:
                written.add(digest)
                yield from encoder.raw(_file(_blob_name(digest), data))


def iter_layer_member(entry: LayerEntry, encoder: Encoder) -> Iterator[bytes]:
    """One plain layer as a tar member (header, content, padding): the same bytes in every archive."""
    return iter_member_around(entry.diff_id, entry.size, encoder.layer(entry), encoder)


def iter_member_around(
    diff_id: Digest, size: int, content: Iterator[bytes], encoder: Encoder
) -> Iterator[bytes]:
    """A layer's tar member around *content*, the layer as *encoder* gives it (lazily)."""
    yield from encoder.raw(member_header(_blob_name(diff_id), size))
    yield from content
    yield from encoder.raw(padding(size))


def iter_archive(
    images: Sequence[ArchiveImage],
    encoder: Encoder,
    *,
    include: set[Digest] | None = None,
    layers: dict[Digest, StoredLayer] | None = None,
    extras: Sequence[ExtraMember] = (),
    mark_thin: bool = False,
) -> Iterator[bytes]:
    """Yield the encoded archive. Layers whose diff ID is not in *include* are left out (thin).

    With *mark_thin* (an archive file for a receiver) the left-out layers are named in
    :data:`THIN_MEMBER`, so ``verify`` and ``inspect`` can tell the delta from a damaged archive.

    *extras* are written after the layers, each streamed and checked against its size.

    *layers* (from :func:`stored_layers`) chooses how layers are stored; default plain tars.
    Every blob's bytes are verified against their digest and size while they stream out of the
    cache, so a damaged cache entry stops the archive (its destination then removes it).
    Metadata comes first, so a one-pass reader can plan before the layers arrive.
    """
    plan = _Plan.make(images, layers)
    left_out = left_out_layers(images, include) if mark_thin else []
    yield from _iter_metadata(plan, encoder, left_out)
    written: set[Digest] = set()
    for entry in layers_to_write(images, include):
        stored = plan.layers[entry.diff_id]
        digest = stored.descriptor.digest
        if digest in written:
            continue
        written.add(digest)
        if stored.chunks is None:
            yield from iter_layer_member(entry, encoder)
        else:
            yield from encoder.raw(member_header(_blob_name(digest), stored.descriptor.size))
            yield from encoder.stream(stored.chunks())
            yield from encoder.raw(padding(stored.descriptor.size))
    for extra in extras:
        yield from encoder.raw(member_header(extra.name, extra.size))
        yield from encoder.stream(_sized(extra))
        yield from encoder.raw(padding(extra.size))
    yield from encoder.raw(END_OF_ARCHIVE)
    yield from encoder.finish()


def _sized(extra: ExtraMember) -> Iterator[bytes]:
    count = 0
    for chunk in extra.chunks():
        count += len(chunk)
        if count > extra.size:
            raise IntegrityError(f"{extra.name}: more than the declared {extra.size} bytes")
        yield chunk
    if count != extra.size:
        raise IntegrityError(f"{extra.name}: {count} bytes, {extra.size} declared")


def iter_tail(images: Sequence[ArchiveImage], encoder: Encoder) -> Iterator[bytes]:
    """The metadata and end of an archive whose (plain) layer members were sent ahead, staged
    on a host. Engines unpack the whole archive before reading it, so member order does not
    matter to them."""
    yield from _iter_metadata(_Plan.make(images, None), encoder)
    yield from encoder.raw(END_OF_ARCHIVE)
    yield from encoder.finish()
