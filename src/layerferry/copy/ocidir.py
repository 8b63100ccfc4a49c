"""An OCI image layout directory (``oci:DIR[:REF]``) as a destination.

Layers are stored gzip-compressed (as skopeo and registries keep them; the same blobs a push
references, so digests agree between a registry and a layout). Blobs already in the layout are
not written again; each new blob is written beside its final name, verified, then renamed.
``index.json`` is rewritten last (the commit): other images in the layout stay, an entry with
the same reference name is replaced.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator, Sequence
from pathlib import Path

from ..archive.writer import ArchiveImage, StoredLayer, stored_layers
from ..errors import ArchiveError, IntegrityError, LayerferryError
from ..oci import mediatypes as mt
from ..oci.descriptor import Descriptor
from ..oci.digest import Digest
from ..oci.manifest import Index, RawManifest, canonical_json
from ..reporting import NullReporter, Reporter
from ..tario.compression import Compression
from .blobcache import BlobCache
from .plan import Holding

MAX_INDEX_BYTES = 4 * 1024 * 1024


class OciDirDestination:
    def __init__(
        self, path: Path, ref: str | None, cache: BlobCache, reporter: Reporter | None = None
    ) -> None:
        self.path = path
        self.ref = ref
        self.where = f"oci:{path}"
        self.cache = cache
        self.reporter = reporter or NullReporter()
        self.manifests: dict[Digest, RawManifest] = {}
        """Config digest → the manifest written (or found) for it."""

    # -- helpers ------------------------------------------------------------------------------
    def _blob(self, digest: Digest) -> Path:
        return self.path / "blobs" / digest.algorithm / digest.hex

    def _has(self, desc: Descriptor) -> bool:
        try:
            return self._blob(desc.digest).stat().st_size == desc.size
        except OSError:
            return False

    def _layers(self, images: Sequence[ArchiveImage]) -> dict[Digest, StoredLayer]:
        return stored_layers(images, self.cache, Compression.GZIP)

    def _manifest(self, image: ArchiveImage, layers: dict[Digest, StoredLayer]) -> RawManifest:
        descs = [layers[e.diff_id].descriptor for e in image.layers]
        origin = image.origin
        if origin is not None and origin.media_type == mt.OCI_MANIFEST:
            try:
                data = json.loads(origin.data)
                named = [Digest.parse(d["digest"]) for d in data["layers"]]
            except (ValueError, KeyError, TypeError, LayerferryError):
                named = []
            if named == [d.digest for d in descs]:
                return origin
        built = image.manifest(descs)
        return RawManifest(built.media_type, built.to_bytes())

    def _names(self, image: ArchiveImage) -> list[dict[str, str]]:
        if self.ref is not None:
            return [{mt.ANNOTATION_REF_NAME: self.ref}]
        return [
            {mt.ANNOTATION_DOCKER_NAME: tag.full, mt.ANNOTATION_REF_NAME: tag.tag}
            for tag in image.tags
        ]

    # -- the contract -------------------------------------------------------------------------
    def inventory(self, images: Sequence[ArchiveImage]) -> list[Holding]:
        layers = self._layers(images)
        entries = self._read_index()
        out = []
        for image in images:
            manifest = self._manifest(image, layers)
            held = frozenset(
                e.diff_id for e in image.layers if self._has(layers[e.diff_id].descriptor)
            )
            listed = {(e.digest, e.annotations.get(mt.ANNOTATION_REF_NAME)) for e in entries}
            names = [n.get(mt.ANNOTATION_REF_NAME) for n in self._names(image)]
            listed_all = bool(names) and all((manifest.digest, n) in listed for n in names)
            present = listed_all and self._has(Descriptor("", manifest.digest, len(manifest.data)))
            if present:
                self.manifests[image.config.digest] = manifest
            out.append(Holding(present, held))
        return out

    def receive(
        self, images: Sequence[ArchiveImage], include: set[Digest], meter: list[int]
    ) -> None:
        self.path.mkdir(parents=True, exist_ok=True)
        layers = self._layers(images)
        self._write_file(self.path / "oci-layout", canonical_json({"imageLayoutVersion": "1.0.0"}))
        for image in images:
            for entry in image.layers:
                stored = layers[entry.diff_id]
                if not self._has(stored.descriptor):
                    assert stored.chunks is not None
                    meter[0] += self._write_blob(stored.descriptor, stored.chunks())
            manifest = self._manifest(image, layers)
            config_desc = Descriptor(mt.OCI_CONFIG, image.config.digest, len(image.config.raw))
            for desc, data in (
                (config_desc, image.config.raw),
                (
                    Descriptor(manifest.media_type, manifest.digest, len(manifest.data)),
                    manifest.data,
                ),
            ):
                if not self._has(desc):
                    meter[0] += self._write_blob(desc, iter([data]))
            self.manifests[image.config.digest] = manifest
        self._commit(images)

    def tag(self, image: ArchiveImage) -> None:
        pass

    def confirm(self, images: Sequence[ArchiveImage]) -> None:
        entries = {e.digest for e in self._read_index()}
        for image in images:
            manifest = self.manifests.get(image.config.digest)
            if manifest is None or manifest.digest not in entries:
                raise IntegrityError(f"{self.where}: index.json does not list the image written")

    # -- files --------------------------------------------------------------------------------
    def _read_index(self) -> list[Descriptor]:
        path = self.path / "index.json"
        try:
            raw = path.read_bytes()
        except FileNotFoundError:
            return []
        if len(raw) > MAX_INDEX_BYTES:
            raise ArchiveError(f"{path}: over {MAX_INDEX_BYTES} bytes")
        try:
            data = json.loads(raw)
            listed = data.get("manifests") or []
            return [Descriptor.from_dict(d, f"{path}") for d in listed]
        except (ValueError, AttributeError) as exc:
            raise ArchiveError(f"{path}: not an OCI index ({exc})") from exc

    def _commit(self, images: Sequence[ArchiveImage]) -> None:
        entries = self._read_index()
        for image in images:
            manifest = self.manifests[image.config.digest]
            names = self._names(image)
            replaced = {n[mt.ANNOTATION_REF_NAME] for n in names}
            entries = [
                e
                for e in entries
                if e.annotations.get(mt.ANNOTATION_REF_NAME) not in replaced
                and not (not names and e.digest == manifest.digest)
            ]
            for names_of in names or [{}]:
                entries.append(
                    Descriptor(manifest.media_type, manifest.digest, len(manifest.data), names_of)
                )
        self._write_file(self.path / "index.json", Index(entries).to_bytes())

    def _write_blob(self, desc: Descriptor, chunks: Iterator[bytes]) -> int:
        target = self._blob(desc.digest)
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".{target.name}.{os.getpid()}.partial")
        digest = hashlib.sha256()
        size = 0
        try:
            with tmp.open("wb") as out:
                for chunk in chunks:
                    digest.update(chunk)
                    size += len(chunk)
                    out.write(chunk)
                out.flush()
                os.fsync(out.fileno())
            if size != desc.size or digest.hexdigest() != desc.digest.hex:
                raise IntegrityError(f"{self.where}: blob {desc.digest.short} did not verify")
            os.replace(tmp, target)
        finally:
            tmp.unlink(missing_ok=True)
        return size

    def _write_file(self, path: Path, data: bytes) -> None:
        tmp = path.with_name(f".{path.name}.{os.getpid()}.partial")
        tmp.write_bytes(data)
        os.replace(tmp, path)
