"""What reading an archive found: its images, their layers, and every problem, each one line."""

from __future__ import annotations

from dataclasses import dataclass, field

from ..copy.blobcache import LayerEntry
from ..errors import IntegrityError
from ..oci.config import ImageConfig
from ..oci.digest import Digest
from ..reference import ImageName
from ..tario.compression import Compression
from .classify import ArchiveFormat
from .writer import ArchiveImage


class Findings:
    """Problems and warnings met while reading. Strict: the first problem is raised at once."""

    def __init__(self, strict: bool) -> None:
        self.strict = strict
        self.problems: list[IntegrityError] = []
        self.warnings: list[str] = []

    def problem(self, error: IntegrityError) -> None:
        if self.strict:
            raise error
        if all(str(p) != str(error) for p in self.problems):
            self.problems.append(error)

    def warn(self, message: str) -> None:
        if message not in self.warnings:
            self.warnings.append(message)


@dataclass(frozen=True)
class ReadLayer:
    index: int
    """1-based position in the image."""
    member: str
    """The archive member holding it ("" when absent)."""
    diff_id: Digest
    """As the config declares it."""
    size: int | None
    """Uncompressed bytes (None when absent)."""
    stored_size: int | None
    """Bytes in the archive (compressed, if the blob is)."""
    stored_digest: Digest | None
    compression: Compression
    media_type: str
    entry: LayerEntry | None
    """The blob cache entry, when the reader kept the layer."""
    left_out: bool = False
    """Not in the archive, and the archive says it left it out (a delta, ``save --thin-for``)."""
    from_cache: bool = False
    """Not in the archive; *entry* is the local blob cache's copy (used only if sent)."""


@dataclass(frozen=True)
class PlatformEntry:
    platform: str
    manifest: Digest
    complete: bool
    attestation: bool = False
    chosen: bool = False


@dataclass
class ReadImage:
    config: ImageConfig
    config_member: str
    layers: list[ReadLayer]
    tags: list[ImageName] = field(default_factory=list)
    refs: list[str] = field(default_factory=list)
    """Names found that are not tags Docker accepts (e.g. a bare OCI ``ref.name``)."""
    manifest_digest: Digest | None = None
    views: list[str] = field(default_factory=list)
    platforms: list[PlatformEntry] = field(default_factory=list)

    @property
    def label(self) -> str:
        if self.tags:
            return str(self.tags[0])
        return f"image {self.config.digest.short}"


ATTACHMENT_PREFIX = "layerferry/"
"""Members under this folder are a bundle's own files (container spec, volume data)."""


@dataclass(frozen=True)
class Attachment:
    """A member that is not part of any image: kept for whoever wrote it (a layerferry bundle)."""

    name: str
    """Relative to the archive's root, e.g. ``layerferry/spec.json``."""
    size: int
    digest: Digest
    """sha256 of the member as stored."""
    data: bytes | None
    """Its bytes, when small enough to keep in memory (JSON)."""
    entry: LayerEntry | None
    """A tar member, kept in the blob cache (when read with one)."""


@dataclass
class ArchiveReading:
    source: str
    format: ArchiveFormat
    compression: Compression
    images: list[ReadImage]
    findings: Findings
    nested: str | None = None
    """Where in a wrapper archive the image archive was found."""
    members: int = 0
    ended_cleanly: bool = True
    attachments: dict[str, Attachment] = field(default_factory=dict)
    left_out: list[Digest] = field(default_factory=list)
    """Diff IDs the archive says it leaves out (its delta record); empty: not a delta."""

    @property
    def ok(self) -> bool:
        return not self.findings.problems

    @property
    def is_delta(self) -> bool:
        return bool(self.left_out)

    def left_out_layers(self) -> list[Digest]:
        """The layers the images list that are absent because the archive is a delta."""
        seen: dict[Digest, None] = {}
        for image in self.images:
            for layer in image.layers:
                if layer.left_out:
                    seen.setdefault(layer.diff_id, None)
        return list(seen)

    def cache_fills(self) -> dict[Digest, str]:
        """Layers absent from the archive that the local cache supplies: per diff ID, a line
        for the warning to give if that copy is actually sent."""
        out: dict[Digest, str] = {}
        for image in self.images:
            for layer in image.layers:
                if layer.from_cache and layer.diff_id not in out:
                    out[layer.diff_id] = (
                        f"{self.source}: {image.label}: layer {layer.index} ({layer.diff_id}) "
                        "is not in the archive; using the copy in the local cache"
                    )
        return out

    def archive_images(self) -> list[ArchiveImage]:
        """The images for the copy engine; every layer must be in the blob cache."""
        if self.findings.problems:
            raise self.findings.problems[0]
        out = []
        for image in self.images:
            entries = []
            for layer in image.layers:
                if layer.entry is None:
                    raise IntegrityError(
                        f"{self.source}: {image.label}: layer {layer.index} "
                        f"({layer.diff_id}) was not kept; read the archive with a blob cache"
                    )
                entries.append(layer.entry)
            out.append(ArchiveImage(config=image.config, layers=entries, tags=list(image.tags)))
        return out
