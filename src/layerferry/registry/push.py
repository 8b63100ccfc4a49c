"""Pushing to a registry: a destination for the copy engine.

Per layer, the blob to reference is chosen so that nothing the registry has is sent again:

1. the manifest the image was pulled with, unchanged, when every blob it names is in the target
   repository, mountable, or kept in the cache (the image keeps its digest across registries);
2. else a compressed blob known for the layer (:class:`~layerferry.copy.blobindex.BlobIndex`)
   that the target repository holds (HEAD), or that another repository of the same registry
   holds (a cross-repository mount: no bytes move);
3. else the layer's gzip form from the cache (the registry's own bytes when it was pulled as
   gzip, else made once, deterministically), uploaded in chunks that resume.

Blobs go first, the manifest PUT last: that is the commit. A second push finds every blob and
the manifest in place and uploads nothing.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from ..archive.writer import ArchiveImage
from ..copy.blobcache import BlobCache, LayerEntry
from ..copy.blobindex import BlobIndex
from ..copy.plan import Holding
from ..errors import IntegrityError, LayerferryError, RegistryError, UsageError
from ..oci import mediatypes as mt
from ..oci.descriptor import Descriptor
from ..oci.digest import Digest
from ..oci.manifest import Manifest, RawManifest
from ..reference import RegistryReference
from ..reporting import NullReporter, Reporter
from ..units import human_bytes, plural
from .client import RegistryClient, manifest_json
from .pull import GZIP_TYPES
from .upload import BlobSource, UploadMemory, upload_blob

ManifestFormat = Literal["oci", "docker"]
CHUNK = 1024 * 1024
HEAD_WORKERS = 8


@dataclass
class _Blob:
    descriptor: Descriptor
    entry: LayerEntry | None
    """The layer it holds (None for the config)."""
    present: bool = False
    mount_from: str | None = None


@dataclass
class _ImagePush:
    manifest: RawManifest
    config: _Blob
    layers: list[_Blob]
    present: bool = False


class RegistryDestination:
    """``docker://REGISTRY/REPO[:TAG]``: every image is pushed under the reference's tag (or by
    digest alone when it names a digest, which must then be the image's)."""

    def __init__(
        self,
        client: RegistryClient,
        ref: RegistryReference,
        cache: BlobCache,
        *,
        manifest_format: ManifestFormat = "oci",
        reporter: Reporter | None = None,
    ) -> None:
        if manifest_format not in ("oci", "docker"):
            raise UsageError(f"unknown manifest format {manifest_format!r}: use oci or docker")
        self.client = client
        self.ref = ref
        self.repo = ref.repository
        self.where = str(ref)
        self.cache = cache
        self.index = BlobIndex(cache.root)
        self.memory = UploadMemory(cache.root / "uploads")
        self.format = manifest_format
        self.reporter = reporter or NullReporter()
        self._state: dict[Digest, _ImagePush] = {}
        self.pushed: dict[Digest, Digest] = {}
        """Config digest → manifest digest of every image written or found."""

    # -- the batch question -------------------------------------------------------------------
    def inventory(self, images: Sequence[ArchiveImage]) -> list[Holding]:
        states = [self._prepare(image) for image in images]
        holdings = []
        for image, state in zip(images, states, strict=True):
            held = frozenset(b.entry.diff_id for b in state.layers if b.present and b.entry)
            holdings.append(Holding(state.present, held))
            if state.present:
                self.pushed[image.config.digest] = state.manifest.digest
        return holdings

    def _prepare(self, image: ArchiveImage) -> _ImagePush:
        key = image.config.digest
        if key not in self._state:
            self._state[key] = self._decide(image)
        return self._state[key]

    def _decide(self, image: ArchiveImage) -> _ImagePush:
        config_desc = Descriptor(self._config_type(), image.config.digest, len(image.config.raw))
        config = _Blob(config_desc, None)
        origin = self._from_origin(image)
        if origin is not None:
            push = origin
        else:
            layers = [self._choose_layer(entry) for entry in image.layers]
            push = _ImagePush(self._build(image, config, layers), config, layers)
        self._heads([push.config, *push.layers])
        for blob in push.layers:
            if not blob.present and blob.mount_from is None:
                blob.mount_from = self._mount_source(blob.descriptor.digest)
        reference = self._reference(push.manifest)
        push.present = self.client.head_manifest(self.repo, reference, push=True) == (
            push.manifest.digest
        )
        return push

    def _config_type(self) -> str:
        return mt.OCI_CONFIG if self.format == "oci" else mt.DOCKER_CONFIG

    def _layer_type(self) -> str:
        return mt.OCI_LAYER_GZIP if self.format == "oci" else mt.DOCKER_LAYER_GZIP

    def _from_origin(self, image: ArchiveImage) -> _ImagePush | None:
        """The pulled manifest, when every blob it names can be had without recompressing."""
        origin = image.origin
        if origin is None or origin.is_index:
            return None
        try:
            data = manifest_json(origin, self.where)
            config = Descriptor.from_dict(data.get("config"), "config")
            descs = [Descriptor.from_dict(d, "layer") for d in data.get("layers") or []]
        except LayerferryError:
            return None
        if config.digest != image.config.digest or len(descs) != len(image.layers):
            return None
        layers = [_Blob(d, e) for d, e in zip(descs, image.layers, strict=True)]
        self._heads(layers)
        for blob in layers:
            if blob.present or blob.entry is None:
                continue
            kept = self.cache.gzip_form(blob.entry.diff_id)
            if kept is not None and kept.digest == blob.descriptor.digest:
                continue
            blob.mount_from = self._mount_source(blob.descriptor.digest)
            if blob.mount_from is None:
                return None
        return _ImagePush(origin, _Blob(config, None), layers)

    def _choose_layer(self, entry: LayerEntry) -> _Blob:
        known = [b for b in self.index.for_layer(entry.diff_id) if b.media_type in GZIP_TYPES]
        candidates = [_Blob(Descriptor(self._layer_type(), b.digest, b.size), entry) for b in known]
        self._heads(candidates)
        for blob in candidates:
            if blob.present:
                return blob
        for blob in candidates:
            if self._mount_source(blob.descriptor.digest) is not None:
                return blob
        gz = self.cache.gzip_layer(entry)
        return _Blob(Descriptor(self._layer_type(), gz.digest, gz.size), entry)

    def _heads(self, blobs: Sequence[_Blob]) -> None:
        """Which blobs the target repository holds: HEADs, several at once."""
        todo = [b for b in blobs if not b.present]
        if not todo:
            return

        def head(blob: _Blob) -> bool:
            return self.client.blob_size(self.repo, blob.descriptor.digest, push=True) is not None

        with ThreadPoolExecutor(max_workers=min(HEAD_WORKERS, len(todo))) as pool:
            for blob, present in zip(todo, pool.map(head, todo), strict=True):
                blob.present = present

    def _mount_source(self, digest: Digest) -> str | None:
        known = self.index.get(digest)
        if known is None:
            return None
        for registry, repo in known.locations:
            if registry == self.client.registry and repo != self.repo:
                return repo
        return None

    def _build(self, image: ArchiveImage, config: _Blob, layers: list[_Blob]) -> RawManifest:
        descs = [b.descriptor for b in layers]
        if self.format == "oci":
            manifest = image.manifest(descs)
        else:
            manifest = Manifest(config.descriptor, descs, media_type=mt.DOCKER_MANIFEST)
        return RawManifest(manifest.media_type, manifest.to_bytes())

    def _reference(self, manifest: RawManifest) -> str:
        if self.ref.digest is not None and self.ref.tag is None:
            if self.ref.digest != manifest.digest:
                raise UsageError(
                    f"{self.where}: pushing by digest, but the image's manifest is "
                    f"{manifest.digest}",
                    hint="push by tag instead: docker://REGISTRY/REPO:TAG",
                )
            return str(manifest.digest)
        return self.ref.tag or "latest"

    # -- sending ------------------------------------------------------------------------------
    def receive(
        self, images: Sequence[ArchiveImage], include: set[Digest], meter: list[int]
    ) -> None:
        for image in images:
            push = self._prepare(image)
            self._send_blob(push.config, _config_source(image), meter)
            for blob in push.layers:
                self._send_layer(blob, meter)
            self._commit(image, push)

    def _send_layer(self, blob: _Blob, meter: list[int]) -> None:
        digest = blob.descriptor.digest
        if blob.present:
            return
        if blob.mount_from is not None and self.client.mount(self.repo, digest, blob.mount_from):
            self.reporter.step(f"{self.where}: layer {digest.short} mounted from {blob.mount_from}")
            blob.present = True
            self._remember(blob)
            return
        assert blob.entry is not None
        gz = self.cache.gzip_form(blob.entry.diff_id)
        if gz is None or gz.digest != digest:
            gz = self.cache.gzip_layer(blob.entry)
        if gz.digest != digest:
            raise IntegrityError(f"{self.where}: no local copy of blob {digest} to upload")
        source = BlobSource(
            digest, gz.size, lambda offset: _file_from(gz.path, offset), f"layer {digest.short}"
        )
        self._send_blob(blob, source, meter)

    def _send_blob(self, blob: _Blob, source: BlobSource, meter: list[int]) -> None:
        if blob.present:
            return
        sent = upload_blob(
            self.client, self.repo, source, memory=self.memory, reporter=self.reporter
        )
        meter[0] += sent
        blob.present = True
        self._remember(blob)

    def _remember(self, blob: _Blob) -> None:
        if blob.entry is not None:
            d = blob.descriptor
            self.index.record(
                d.digest,
                d.size,
                d.media_type,
                blob.entry.diff_id,
                (self.client.registry, self.repo),
            )

    def _commit(self, image: ArchiveImage, push: _ImagePush) -> None:
        reference = self._reference(push.manifest)
        self.client.put_manifest(self.repo, reference, push.manifest)
        self.pushed[image.config.digest] = push.manifest.digest
        moved = sum(1 for b in push.layers if b.entry is not None)
        self.reporter.step(
            f"{self.where}: wrote manifest {push.manifest.digest.short} ({plural(moved, 'layer')}, "
            f"{human_bytes(self.client.traffic.bytes_uploaded)} uploaded in this run)"
        )

    def tag(self, image: ArchiveImage) -> None:
        push = self._prepare(image)
        if not push.present:
            self._commit(image, push)

    def confirm(self, images: Sequence[ArchiveImage]) -> None:
        for image in images:
            push = self._prepare(image)
            found = self.client.head_manifest(self.repo, self._reference(push.manifest), push=True)
            if found != push.manifest.digest:
                raise RegistryError(
                    f"{self.where}: after the push the registry names {found}, "
                    f"not {push.manifest.digest}"
                )


def _config_source(image: ArchiveImage) -> BlobSource:
    raw = image.config.raw
    return BlobSource(image.config.digest, len(raw), lambda offset: iter([raw[offset:]]), "config")


def _file_from(path: Path, offset: int) -> Iterator[bytes]:
    with path.open("rb") as fh:
        fh.seek(offset)
        while chunk := fh.read(CHUNK):
            yield chunk
