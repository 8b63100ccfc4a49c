"""``copy SRC DST``, and ``push``/``pull`` as its shorthands: the copy engine between any two
locations (:mod:`layerferry.locations`): an engine, local or over SSH, an archive, an OCI layout,
a registry. The source puts the image in the blob cache; the destination takes what it lacks.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from pathlib import Path

from ..archive.platforms import host_platform, parse_platform
from ..archive.read import ReadOptions
from ..archive.writer import ArchiveImage
from ..copy.destinations import (
    ArchiveFileDestination,
    DaemonDestination,
    Destination,
    SshDaemonDestination,
    check_writable,
)
from ..copy.engine import CopyReport, copy_images
from ..copy.ocidir import OciDirDestination
from ..copy.sources import ArchiveSource, DaemonSource, SshDaemonSource
from ..daemon.engine import Engine, EngineInfo, connect_local
from ..errors import NotFoundError, UsageError
from ..locations import (
    ArchiveLocation,
    DaemonLocation,
    Location,
    RegistryLocation,
    SshLocation,
    parse_image_or_location,
    parse_location,
)
from ..oci.descriptor import Platform
from ..oci.digest import Digest
from ..reference import ImageName
from ..registry.client import RegistryClient, Traffic
from ..registry.pull import RegistrySource
from ..registry.push import ManifestFormat, RegistryDestination
from ..remote.host import RemoteHost
from ..reporting import NullReporter, Reporter
from ..settings import Settings
from ..tario.compression import Compression
from ._common import warn_platform


@dataclass(frozen=True)
class CopyResult:
    source: str
    destination: str
    image: ArchiveImage
    report: CopyReport
    manifest_digest: Digest | None
    """The manifest written to (or found in) a registry or OCI layout."""
    layers_pulled: int = 0
    bytes_pulled: int = 0
    traffic: Traffic | None = None
    """Uploads to a registry destination: blobs uploaded, mounted, bytes, resumed offsets."""


class _Ends:
    """Everything opened for one copy (engines, SSH hosts, registry clients), closed together."""

    def __init__(self, settings: Settings, reporter: Reporter) -> None:
        self.settings = settings
        self.reporter = reporter
        self.cache = settings.blob_cache()
        self.stack = contextlib.ExitStack()
        self.pulled: RegistrySource | None = None
        self.pushed: RegistryDestination | None = None
        self.written: OciDirDestination | None = None

    def local(self) -> Engine:
        engine = connect_local(self.settings.docker_host)
        self.stack.callback(engine.close)
        return engine

    def remote(self, location: SshLocation) -> RemoteHost:
        host = RemoteHost.connect(location.target, ssh_config=self.settings.ssh_config)
        return self.stack.enter_context(host)

    def registry(self, location: RegistryLocation) -> RegistryClient:
        client = RegistryClient(location.ref.registry, self.settings.registry)
        return self.stack.enter_context(client)

    # -- destinations -------------------------------------------------------------------------
    def destination(
        self, location: Location, manifest_format: ManifestFormat
    ) -> tuple[Destination, EngineInfo | None]:
        if isinstance(location, DaemonLocation):
            engine = self.local()
            return DaemonDestination(engine, self.cache), engine.info()
        if isinstance(location, SshLocation):
            host = self.remote(location)
            return SshDaemonDestination(host, self.cache, self.reporter), host.info
        if isinstance(location, RegistryLocation):
            client = self.registry(location)
            self.pushed = RegistryDestination(
                client, location.ref, self.cache, manifest_format=manifest_format,
                reporter=self.reporter,
            )  # fmt: skip
            return self.pushed, None
        path = Path(location.path)
        if location.kind == "oci":
            if path.exists() and not path.is_dir():
                raise UsageError(f"{path} exists and is not a directory (oci: needs one)")
            self.written = OciDirDestination(path, location.name, self.cache, self.reporter)
            return self.written, None
        check_writable(path)
        layers = Compression.GZIP if location.kind == "oci-archive" else Compression.NONE
        return ArchiveFileDestination(path, Compression.NONE, self.cache, layers), None

    # -- sources ------------------------------------------------------------------------------
    def source(self, location: Location, platform: Platform) -> ArchiveImage:
        if isinstance(location, DaemonLocation):
            return DaemonSource(self.local(), self.cache).image(location.image)
        if isinstance(location, SshLocation):
            return SshDaemonSource(self.remote(location), self.cache).image(location.image)
        if isinstance(location, RegistryLocation):
            self.pulled = RegistrySource(self.registry(location), self.cache, self.reporter)
            return self.pulled.image(location.ref, platform)
        return self._from_archive(location, platform)

    def _from_archive(self, location: ArchiveLocation, platform: Platform) -> ArchiveImage:
        path = Path(location.path)
        if not path.exists():
            raise NotFoundError(f"{path}: no such file or directory")
        options = ReadOptions(platform=platform)
        reading = ArchiveSource(self.cache, options, self.reporter).read(path)
        images = reading.archive_images()
        chosen = list(range(len(images)))
        name = location.name
        if name is not None:
            chosen = [
                n for n, read in enumerate(reading.images) if _named(read.tags, read.refs, name, n)
            ]
        if not chosen:
            raise NotFoundError(f"{location}: the archive holds no image {name!r}")
        if len(chosen) > 1:
            held = ", ".join(i.label for i in reading.images)
            raise UsageError(
                f"{location}: holds {len(chosen)} images ({held}); name one after the path"
            )
        return images[chosen[0]]


def _named(tags: list[ImageName], refs: list[str], name: str, index: int) -> bool:
    if name.isdigit():
        return int(name) == index + 1
    return name in refs or any(name in (str(t), t.tag) for t in tags)


def _retag(image: ArchiveImage, location: Location) -> ArchiveImage:
    """The names the destination gives the image (the source's, unless the location names one)."""
    name: ImageName | None = None
    if isinstance(location, (DaemonLocation, SshLocation)):
        if "@" in location.image or location.image.startswith("sha256:"):
            raise UsageError(f"{location}: name the image to create as NAME[:TAG], not by digest")
        name = ImageName.parse(location.image)
    elif isinstance(location, ArchiveLocation) and location.name and not location.name.isdigit():
        if location.kind == "docker-archive":
            name = ImageName.parse(location.name)
        elif location.kind == "oci-archive":
            base = image.tags[0].repository if image.tags else "image"
            name = (
                ImageName(base, location.name)
                if ":" not in location.name
                else ImageName.parse(location.name)
            )
    if name is None:
        return image
    return ArchiveImage(config=image.config, layers=image.layers, tags=[name], origin=image.origin)


def copy(
    source: str | Location,
    destination: str | Location,
    *,
    platform: str | None = None,
    manifest_format: ManifestFormat = "oci",
    settings: Settings | None = None,
    reporter: Reporter | None = None,
) -> CopyResult:
    """Copy one image from *source* to *destination* (:mod:`layerferry.locations` forms).

    For a multi-platform registry image, *platform* (``os/arch[/variant]``) chooses; by default
    the destination engine's platform, else this host's. A registry destination gets an OCI
    manifest (or Docker v2s2 with *manifest_format* ``docker``), unless the image came from a
    registry and keeps the manifest it had.
    """
    settings = settings or Settings.from_env()
    reporter = reporter or NullReporter()
    src = source if not isinstance(source, str) else parse_location(source)
    dst = destination if not isinstance(destination, str) else parse_location(destination)
    ends = _Ends(settings, reporter)
    with ends.stack:
        target, info = ends.destination(dst, manifest_format)
        wanted = _platform(platform, info)
        image = _retag(ends.source(src, wanted), dst)
        if info is not None:
            warn_platform([image], info, target.where, reporter)
        report = copy_images([image], target, reporter=reporter)
    return CopyResult(
        source=str(src),
        destination=str(dst),
        image=image,
        report=report,
        manifest_digest=_manifest_digest(ends, image),
        layers_pulled=ends.pulled.layers_pulled if ends.pulled else 0,
        bytes_pulled=ends.pulled.bytes_pulled if ends.pulled else 0,
        traffic=ends.pushed.client.traffic if ends.pushed else None,
    )


def _platform(text: str | None, info: EngineInfo | None) -> Platform:
    if text:
        return parse_platform(text)
    if info is not None and info.os and info.architecture:
        return Platform(info.os, info.architecture)
    return host_platform()


def _manifest_digest(ends: _Ends, image: ArchiveImage) -> Digest | None:
    if ends.pushed is not None:
        return ends.pushed.pushed.get(image.config.digest)
    if ends.written is not None:
        found = ends.written.manifests.get(image.config.digest)
        return found.digest if found else None
    return image.origin.digest if image.origin is not None else None


def push(
    image: str,
    destination: str,
    *,
    manifest_format: ManifestFormat = "oci",
    settings: Settings | None = None,
    reporter: Reporter | None = None,
) -> CopyResult:
    """``copy docker-daemon:IMAGE docker://…``: an image of the local engine (or any location)
    to a registry; only blobs the registry lacks are uploaded."""
    dst = parse_location(destination)
    if not isinstance(dst, RegistryLocation):
        raise UsageError(
            f"push writes to a registry: docker://REGISTRY/REPO[:TAG], not {destination!r}"
        )
    return copy(
        parse_image_or_location(image),
        dst,
        manifest_format=manifest_format,
        settings=settings,
        reporter=reporter,
    )


def pull(
    source: str,
    image: str | None = None,
    *,
    platform: str | None = None,
    settings: Settings | None = None,
    reporter: Reporter | None = None,
) -> CopyResult:
    """``copy docker://… docker-daemon:IMAGE``: into the local engine, named *image* or as
    ``docker pull`` names it (``REGISTRY/REPO:TAG``)."""
    src = parse_location(source)
    if not isinstance(src, RegistryLocation):
        raise UsageError(
            f"pull reads from a registry: docker://REGISTRY/REPO[:TAG], not {source!r}"
        )
    dst = parse_image_or_location(image) if image else DaemonLocation(str(src.ref.image_name))
    return copy(src, dst, platform=platform, settings=settings, reporter=reporter)
