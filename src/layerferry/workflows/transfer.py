"""``save``, ``load`` and ``send``: the copy engine between an engine, an archive and remote hosts."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from ..archive.limits import Limits
from ..archive.platforms import parse_platform
from ..archive.read import ReadOptions
from ..archive.writer import ArchiveImage
from ..copy.destinations import (
    ArchiveFileDestination,
    DaemonDestination,
    Destination,
    SshDaemonDestination,
    StreamDestination,
)
from ..copy.engine import CopyReport, copy_images
from ..copy.sources import ArchiveSource, DaemonSource
from ..daemon.engine import connect_local
from ..errors import LayerferryError, PartialFailure, UsageError
from ..remote.host import RemoteHost
from ..remote.target import SshTarget
from ..reporting import NullReporter, Reporter
from ..settings import Settings
from ..tario.compression import Compression
from ..units import human_bytes
from ._common import choose_images, merge_by_config, name_images, warn_platform


@dataclass(frozen=True)
class SaveResult:
    output: str
    images: list[ArchiveImage]
    bytes_written: int


@dataclass(frozen=True)
class LoadResult:
    destination: str
    images: list[ArchiveImage]
    report: CopyReport


@dataclass(frozen=True)
class SendResult:
    reports: dict[str, CopyReport]
    failed: dict[str, str]


def _images_from_engine(
    refs: Sequence[str], settings: Settings, reporter: Reporter
) -> list[ArchiveImage]:
    if not refs:
        raise UsageError("name at least one image")
    engine = connect_local(settings.docker_host)
    try:
        source = DaemonSource(engine, settings.blob_cache())
        images = []
        for ref in refs:
            image = source.image(ref)
            if not image.tags:
                reporter.warn(f"{ref} is an image ID: the archive will hold no tag for it")
            images.append(image)
    finally:
        engine.close()
    return merge_by_config(images)


def save(
    images: Sequence[str],
    output: Path | BinaryIO,
    *,
    compression: Compression = Compression.NONE,
    layer_compression: Compression = Compression.NONE,
    settings: Settings | None = None,
    reporter: Reporter | None = None,
) -> SaveResult:
    """Write *images* from the local engine into one archive (docker-archive + OCI layout).

    *compression* compresses the whole file; *layer_compression* (none or gzip) the layers
    inside it, which every engine loads (zstd layers are refused: Docker 20.10 cannot load them).
    """
    settings = settings or Settings.from_env()
    reporter = reporter or NullReporter()
    if layer_compression not in (Compression.NONE, Compression.GZIP):
        raise UsageError(
            f"layers are stored plain or gzip-compressed, not {layer_compression.value}: "
            "Docker 20.10 cannot load zstd layers; use --compress zstd for the whole archive"
        )
    found = _images_from_engine(images, settings, reporter)
    cache = settings.blob_cache()
    destination: Destination
    if isinstance(output, Path):
        destination = ArchiveFileDestination(output, compression, cache, layer_compression)
    else:
        destination = StreamDestination(output, compression, cache, layer_compression)
    report = copy_images(found, destination, reporter=reporter, thin=False)
    reporter.step(
        f"wrote {len(found)} image(s) to {destination.where} ({human_bytes(report.bytes_sent)})"
    )
    return SaveResult(output=destination.where, images=found, bytes_written=report.bytes_sent)


def load(
    source: Path | BinaryIO,
    *,
    host: str | SshTarget | None = None,
    tag: str | None = None,
    select: Sequence[str] = (),
    platform: str | None = None,
    limits: Limits | None = None,
    settings: Settings | None = None,
    reporter: Reporter | None = None,
) -> LoadResult:
    """Verify an archive completely, then load it into the local engine or a remote one.

    Any form :mod:`layerferry.archive.read` knows is accepted (OCI-only archives too: the engine
    is sent the combined form every Docker loads). *select* keeps the images named by tag,
    1-based position or ID prefix; *tag* names the one image loaded (e.g. an untagged one).
    """
    settings = settings or Settings.from_env()
    reporter = reporter or NullReporter()
    options = ReadOptions(
        platform=parse_platform(platform) if platform else None, limits=limits or Limits()
    )
    reading = ArchiveSource(settings.blob_cache(), options, reporter).read(source)
    images = name_images(choose_images(reading.archive_images(), select), tag)
    reporter.step(
        f"archive verified ({reading.format.value}): {len(images)} image(s), every layer "
        "matches its digest"
    )
    if host is None:
        engine = connect_local(settings.docker_host)
        try:
            warn_platform(images, engine.info(), engine.where, reporter)
            report = copy_images(
                images, DaemonDestination(engine, settings.blob_cache()), reporter=reporter
            )
        finally:
            engine.close()
    else:
        target = host if isinstance(host, SshTarget) else SshTarget.parse(host)
        with RemoteHost.connect(target, ssh_config=settings.ssh_config) as remote:
            warn_platform(images, remote.info, str(target), reporter)
            report = copy_images(
                images, SshDaemonDestination(remote, settings.blob_cache()), reporter=reporter
            )
    return LoadResult(destination=report.destination, images=images, report=report)


def send_images(
    images: Sequence[ArchiveImage],
    target: SshTarget,
    settings: Settings,
    reporter: Reporter,
) -> CopyReport:
    with RemoteHost.connect(target, ssh_config=settings.ssh_config) as remote:
        return copy_images(
            images, SshDaemonDestination(remote, settings.blob_cache()), reporter=reporter
        )


def send(
    images: Sequence[str],
    hosts: Sequence[str | SshTarget],
    *,
    settings: Settings | None = None,
    reporter: Reporter | None = None,
) -> SendResult:
    """Put *images* from the local engine onto every host, sending only layers each one lacks."""
    settings = settings or Settings.from_env()
    reporter = reporter or NullReporter()
    if not hosts:
        raise UsageError("name at least one host (ssh://[user@]host[:port])")
    targets = [h if isinstance(h, SshTarget) else SshTarget.parse(h) for h in hosts]
    found = _images_from_engine(images, settings, reporter)
    reports: dict[str, CopyReport] = {}
    failed: dict[str, str] = {}
    for target in targets:
        try:
            reports[str(target)] = send_images(found, target, settings, reporter)
        except LayerferryError as exc:
            if len(targets) == 1:
                raise
            failed[str(target)] = str(exc)
            reporter.warn(f"{target}: {exc}")
    if failed:
        raise PartialFailure(
            f"send failed on {len(failed)} of {len(targets)} hosts: {', '.join(failed)}",
            failed=failed,
        )
    return SendResult(reports=reports, failed=failed)
