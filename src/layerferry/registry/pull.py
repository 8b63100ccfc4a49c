"""Pulling an image from a registry into the blob cache: a source for the copy engine.

Manifest (an index is resolved to one platform), config, then each layer the cache lacks. Every
blob is verified while it streams: its compressed bytes against the manifest's digest and size,
the layer they decompress to against the config's diff ID. A gzip layer's bytes are kept as the
layer's gzip form, so pushing the image again anywhere reproduces the registry's digests.
"""

from __future__ import annotations

from typing import Any, BinaryIO

from ..archive.platforms import host_platform, matches
from ..archive.writer import ArchiveImage
from ..copy.blobcache import BlobCache, LayerEntry
from ..copy.blobindex import BlobIndex
from ..errors import ArchiveError, IntegrityError, NotFoundError
from ..oci import mediatypes as mt
from ..oci.config import MAX_CONFIG_BYTES, ImageConfig
from ..oci.descriptor import Descriptor, Platform
from ..oci.digest import Digest
from ..oci.manifest import RawManifest
from ..reference import RegistryReference
from ..reporting import NullReporter, Reporter
from ..tario.compression import ExpansionBudget, open_decompressed
from ..tario.stream import Readable
from ..tario.verify import VerifyingReader
from ..units import human_bytes
from .client import RegistryClient, manifest_json

CHUNK = 1024 * 1024
GZIP_TYPES = (mt.OCI_LAYER_GZIP, mt.DOCKER_LAYER_GZIP)
LAYER_TYPES = (
    *GZIP_TYPES,
    mt.OCI_LAYER,
    mt.OCI_LAYER_ZSTD,
    "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
)


class _Tee:
    """Reads through, writing every byte to *sink* too."""

    def __init__(self, inner: Readable, sink: BinaryIO | None) -> None:
        self._inner = inner
        self._sink = sink

    def read(self, n: int = -1, /) -> bytes:
        data = self._inner.read(n)
        if data and self._sink is not None:
            self._sink.write(data)
        return data


class RegistrySource:
    def __init__(
        self, client: RegistryClient, cache: BlobCache, reporter: Reporter | None = None
    ) -> None:
        self.client = client
        self.cache = cache
        self.index = BlobIndex(cache.root)
        self.reporter = reporter or NullReporter()
        self.bytes_pulled = 0
        self.layers_pulled = 0

    def image(self, ref: RegistryReference, platform: Platform | None = None) -> ArchiveImage:
        """The image *ref* names (for an index: *platform*, default this host's), cached."""
        repo = ref.repository
        raw = self.client.get_manifest(repo, ref.reference)
        where = f"{self.client.registry}/{repo}"
        if raw.is_index:
            raw = self._choose(repo, raw, platform or host_platform(), where)
        data = manifest_json(raw, where)
        if raw.media_type not in (mt.OCI_MANIFEST, mt.DOCKER_MANIFEST):
            raise ArchiveError(f"{where}: unsupported manifest type {raw.media_type!r}")
        config_desc = Descriptor.from_dict(data.get("config"), f"{where}: manifest config")
        layers = [
            Descriptor.from_dict(d, f"{where}: manifest layer {n}")
            for n, d in enumerate(_list(data.get("layers"), where), 1)
        ]
        config = self._config(repo, config_desc, where)
        diff_ids = config.diff_ids
        if len(diff_ids) != len(layers):
            raise IntegrityError(
                f"{where}: the manifest lists {len(layers)} layers, the config {len(diff_ids)}"
            )
        entries = [
            self._layer(repo, desc, diff_id, f"{where}: layer {n}")
            for n, (desc, diff_id) in enumerate(zip(layers, diff_ids, strict=True), 1)
        ]
        tags = [ref.image_name] if ref.digest is None else []
        return ArchiveImage(config=config, layers=entries, tags=tags, origin=raw)

    # -- index, config ------------------------------------------------------------------------
    def _choose(self, repo: str, index: RawManifest, wanted: Platform, where: str) -> RawManifest:
        data = manifest_json(index, where)
        entries = [
            Descriptor.from_dict(d, f"{where}: index entry {n}")
            for n, d in enumerate(_list(data.get("manifests"), where), 1)
        ]
        for desc in entries:
            if matches(desc.platform, wanted):
                return self.client.get_manifest(repo, str(desc.digest))
        listed = ", ".join(str(d.platform) for d in entries if d.platform) or "none"
        raise NotFoundError(
            f"{where}: no {wanted} image in this index (it lists {listed})",
            hint="choose one with --platform os/arch[/variant]",
        )

    def _config(self, repo: str, desc: Descriptor, where: str) -> ImageConfig:
        cached = self.cache.config(desc.digest)
        if cached is not None:
            return ImageConfig.parse(cached, f"{where}: config")
        if desc.size > MAX_CONFIG_BYTES:
            raise IntegrityError(f"{where}: config of {desc.size} bytes is over the limit")
        with self.client.open_blob(repo, desc.digest) as body:
            reader = VerifyingReader(
                body, expected=desc.digest, size=desc.size, what=f"{where}: config"
            )
            raw = reader.read(MAX_CONFIG_BYTES + 1)
            while reader.read(CHUNK):
                pass
            reader.check()
        config = ImageConfig.parse(raw, f"{where}: config")
        self.cache.put_config(raw)
        return config

    # -- layers -------------------------------------------------------------------------------
    def _layer(self, repo: str, desc: Descriptor, diff_id: Digest, where: str) -> LayerEntry:
        location = (self.client.registry, repo)
        entry = self.cache.layer(diff_id)
        if entry is not None:
            self.index.record(desc.digest, desc.size, desc.media_type, diff_id, location)
            return entry
        if desc.media_type and desc.media_type not in LAYER_TYPES:
            raise ArchiveError(f"{where}: unsupported layer media type {desc.media_type!r}")
        entry = self._fetch(repo, desc, diff_id, where)
        self.index.record(desc.digest, desc.size, desc.media_type, diff_id, location)
        self.layers_pulled += 1
        self.bytes_pulled += desc.size
        return entry

    def _fetch(self, repo: str, desc: Descriptor, diff_id: Digest, where: str) -> LayerEntry:
        keep = self.cache.incoming() if desc.media_type in GZIP_TYPES else None
        self.reporter.step(f"{where}: pulling {desc.digest.short} ({human_bytes(desc.size)})")
        meter = self.reporter.meter(f"{self.client.registry} {desc.digest.short}", desc.size)
        try:
            with keep.open("wb") if keep else _nowhere() as sink:
                entry = self._stream_in(repo, desc, diff_id, where, sink, meter.advance)
            if keep is not None:
                self.cache.adopt_gzip(entry, keep, desc.digest, desc.size)
            return entry
        finally:
            meter.close()
            if keep is not None:
                keep.unlink(missing_ok=True)

    def _stream_in(
        self,
        repo: str,
        desc: Descriptor,
        diff_id: Digest,
        where: str,
        sink: BinaryIO | None,
        advance: Any,
    ) -> LayerEntry:
        with self.client.open_blob(repo, desc.digest) as body:
            blob = VerifyingReader(
                _Progress(body, advance), expected=desc.digest, size=desc.size, what=f"{where} blob"
            )
            source = _Tee(blob, sink)
            try:
                plain, _ = open_decompressed(source, f"{where} blob", ExpansionBudget())
                entry, created = self.cache.put_layer_tracked(plain, expected=diff_id)
            except IntegrityError:
                _drain(source)
                blob.check()  # a wrong blob digest is the better message: raise it first
                raise
            _drain(source)
            try:
                blob.check()
            except IntegrityError:
                if created:
                    self.cache.discard_layer(diff_id)
                raise
        return entry


class _Progress:
    def __init__(self, inner: Readable, advance: Any) -> None:
        self._inner = inner
        self._advance = advance

    def read(self, n: int = -1, /) -> bytes:
        data = self._inner.read(n)
        if data:
            self._advance(len(data))
        return data


class _nowhere:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None


def _drain(source: Readable) -> None:
    while source.read(CHUNK):
        pass


def _list(value: Any, where: str) -> list[Any]:
    if not isinstance(value, list):
        raise IntegrityError(f"{where}: manifest lacks its list of descriptors")
    return value
