"""``save``, ``load`` and ``send``: the copy engine between an engine, an archive and remote hosts."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
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
    check_writable,
)
from ..copy.engine import CopyReport, copy_images
from ..copy.plan import Plan
from ..copy.sources import ArchiveSource, DaemonSource
from ..daemon.engine import connect_local
from ..errors import Interrupted, LayerferryError, PartialFailure, UsageError
from ..reference import RegistryReference
from ..remote.host import RemoteHost
from ..remote.target import SshTarget
from ..reporting import NullReporter, Reporter
from ..settings import Settings
from ..tario.compression import Compression
from ..units import human_bytes, plural
from ._args import as_enum, as_list, as_path_or_stream
from ._common import choose_images, merge_by_config, name_images, warn_platform
from .inventory import Inventory
from .survey import NoTargetReached, Reached, TargetSurvey

DEFAULT_PARALLEL = 4


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
class HostOutcome:
    host: str
    report: CopyReport | None
    error: str | None
    seconds: float


@dataclass(frozen=True)
class SendResult:
    outcomes: dict[str, HostOutcome]

    @property
    def reports(self) -> dict[str, CopyReport]:
        return {h: o.report for h, o in self.outcomes.items() if o.report is not None}

    @property
    def failed(self) -> dict[str, str]:
        return {h: o.error for h, o in self.outcomes.items() if o.error is not None}


def _images_from_engine(
    refs: Sequence[str],
    settings: Settings,
    reporter: Reporter,
    survey: TargetSurvey | None = None,
) -> list[ArchiveImage]:
    """Read *refs* from the local engine into the cache.

    A *survey* starts reaching its targets once the engine has named the images' layers, and
    then tells the reader which layers to keep.
    """
    if not refs:
        raise UsageError("name at least one image")
    engine = connect_local(settings.docker_host)
    try:
        source = DaemonSource(engine, settings.blob_cache())
        records = [source.record(ref) for ref in refs]
        if survey is not None:
            survey.begin(records)
        images = []
        for ref, record in zip(refs, records, strict=True):
            image = source.image(ref, record=record, keep=survey)
            if not image.tags:
                reporter.warn(f"{ref} is an image ID: the archive will hold no tag for it")
            images.append(image)
    finally:
        engine.close()
    return merge_by_config(images)


def save(
    images: str | Sequence[str],
    output: str | os.PathLike[str] | BinaryIO,
    *,
    compression: Compression | str = Compression.NONE,
    layer_compression: Compression | str = Compression.NONE,
    thin_for: Inventory | None = None,
    settings: Settings | None = None,
    reporter: Reporter | None = None,
) -> SaveResult:
    """Write *images* from the local engine into one archive (docker-archive + OCI layout).

    *compression* compresses the whole file; *layer_compression* (none or gzip) the layers
    inside it, which every engine loads (zstd layers are refused: Docker 20.10 cannot load them).
    With *thin_for* (an :class:`Inventory` of the receiving engine) the archive is a delta that
    leaves out every layer that engine already holds.
    """
    settings = settings or Settings.from_env()
    reporter = reporter or NullReporter()
    images = as_list(images, "images")
    output = as_path_or_stream(output, "output")
    compression = as_enum(compression, Compression, "compression")
    layer_compression = as_enum(layer_compression, Compression, "layer compression")
    if layer_compression not in (Compression.NONE, Compression.GZIP):
        raise UsageError(
            f"layers are stored plain or gzip-compressed, not {layer_compression.value}: "
            "Docker 20.10 cannot load zstd layers; use --compress zstd for the whole archive"
        )
    if isinstance(output, Path):
        check_writable(output)
    found = _images_from_engine(images, settings, reporter)
    cache = settings.blob_cache()
    destination: Destination
    present = thin_for.chains if thin_for is not None else None
    if isinstance(output, Path):
        destination = ArchiveFileDestination(output, compression, cache, layer_compression, present)
    else:
        destination = StreamDestination(output, compression, cache, layer_compression, present)
    report = copy_images(found, destination, reporter=reporter, thin=thin_for is not None)
    reporter.step(
        f"wrote {plural(len(found), 'image')} to {destination.where} ({human_bytes(report.bytes_sent)})"
    )
    return SaveResult(output=destination.where, images=found, bytes_written=report.bytes_sent)


def load(
    source: str | os.PathLike[str] | BinaryIO,
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
    source = as_path_or_stream(source, "source")
    select = as_list(select, "select")
    if isinstance(host, str):
        host = SshTarget.parse(host)  # a bad host is a usage error before any reading
    options = ReadOptions(
        platform=parse_platform(platform) if platform else None,
        limits=limits or Limits(),
        thin=True,  # a delta's absent layers are checked against the receiving engine
    )
    reading = ArchiveSource(settings.blob_cache(), options, reporter).read(source)
    images = name_images(choose_images(reading.archive_images(), select), tag)
    from_cache = reading.cache_fills()

    def warn_cache_use(plan: Plan) -> None:
        # Only for the layers actually sent: those the receiver holds never leave the cache.
        for diff_id in plan.include:
            if diff_id in from_cache:
                reporter.warn(from_cache[diff_id])

    reporter.step(
        f"archive verified ({reading.format.value}): {len(images)} image(s), every layer "
        "matches its digest"
    )
    if host is None:
        engine = connect_local(settings.docker_host)
        try:
            warn_platform(images, engine.info(), engine.where, reporter)
            report = copy_images(
                images,
                DaemonDestination(engine, settings.blob_cache()),
                reporter=reporter,
                before_send=warn_cache_use,
            )
        finally:
            engine.close()
    else:
        target = host if isinstance(host, SshTarget) else SshTarget.parse(host)
        with RemoteHost.connect(target, ssh_config=settings.ssh_config) as remote:
            warn_platform(images, remote.info, str(target), reporter)
            report = copy_images(
                images,
                SshDaemonDestination(remote, settings.blob_cache(), reporter),
                reporter=reporter,
                before_send=warn_cache_use,
            )
    return LoadResult(destination=report.destination, images=images, report=report)


def send_images(
    images: Sequence[ArchiveImage],
    target: SshTarget,
    settings: Settings,
    reporter: Reporter,
    *,
    dry_run: bool = False,
    cancel: threading.Event | None = None,
    reached: Reached | None = None,
) -> CopyReport:
    """Copy *images* to one host; *reached* is its connection when the survey made it."""
    if reached is not None:
        destination = SshDaemonDestination(
            reached.host, settings.blob_cache(), reporter, cancel, reached.chains, reached.early
        )
        return copy_images(images, destination, reporter=reporter, dry_run=dry_run)
    with RemoteHost.connect(target, ssh_config=settings.ssh_config) as remote:
        destination = SshDaemonDestination(remote, settings.blob_cache(), reporter, cancel)
        return copy_images(images, destination, reporter=reporter, dry_run=dry_run)


def send(
    images: str | Sequence[str],
    hosts: str | SshTarget | Sequence[str | SshTarget],
    *,
    dry_run: bool = False,
    parallel: int = DEFAULT_PARALLEL,
    via: str | None = None,
    settings: Settings | None = None,
    reporter: Reporter | None = None,
) -> SendResult:
    """Put *images* from the local engine onto every host, sending only layers each one lacks.

    When every host is served at once, the hosts are reached and asked which layers they hold
    while the engine prepares its save (:mod:`.survey`), so only the layers some host lacks are
    read into the blob cache. Each layer is read from the engine once; hosts are then served in
    parallel, at most *parallel* at a time. One host failing does not stop the others: the
    result names it, and :class:`PartialFailure` is raised once all have finished.

    With *via* (``docker://REGISTRY/PREFIX``) the images are pushed once to that registry and
    each host's engine pulls the layers it lacks from there (:mod:`.via`).
    """
    settings = settings or Settings.from_env()
    reporter = reporter or NullReporter()
    images = as_list(images, "images")
    hosts = as_list(hosts, "hosts")
    if not hosts:
        raise UsageError("name at least one host (ssh://[user@]host[:port])")
    if parallel < 1:
        raise UsageError("--parallel must be at least 1")
    targets = list(
        dict.fromkeys(h if isinstance(h, SshTarget) else SshTarget.parse(h) for h in hosts)
    )
    registry = _via_reference(via) if via else None
    # Hosts are reached while the engine saves, when all are served at once (a connection
    # kept waiting for its turn would outlive its idle ssh master).
    survey = (
        TargetSurvey(targets, settings, reporter, stream=not dry_run)
        if registry is None and len(targets) <= parallel
        else None
    )
    try:
        try:
            found = _images_from_engine(images, settings, reporter, survey)
        except NoTargetReached:
            found = []  # each host's own send below says why it could not be reached
        return _send_found(found, targets, registry, parallel, dry_run, settings, reporter, survey)
    finally:
        if survey is not None:
            survey.close()


def _send_found(
    found: list[ArchiveImage],
    targets: list[SshTarget],
    registry: RegistryReference | None,
    parallel: int,
    dry_run: bool,
    settings: Settings,
    reporter: Reporter,
    survey: TargetSurvey | None,
) -> SendResult:
    from .via import pull_on_host, push_once  # the registry client, only for --via

    outcomes: dict[str, HostOutcome] = {}
    pinned = push_once(found, registry, settings, reporter) if registry and not dry_run else {}

    cancel = threading.Event()

    def one(target: SshTarget) -> HostOutcome:
        started = time.monotonic()
        if survey is not None:  # the connection was made (or tried) earlier, by the survey
            started -= survey.seconds(target)
        try:
            if registry is not None:
                report = pull_on_host(found, pinned, target, settings, reporter, dry_run=dry_run)
            else:
                reached = survey.take(target) if survey is not None else None
                report = send_images(
                    found, target, settings, reporter, dry_run=dry_run, cancel=cancel,
                    reached=reached,
                )  # fmt: skip
        except Interrupted:
            raise
        except LayerferryError as exc:
            if len(targets) == 1:
                raise
            reporter.warn(str(exc))
            return HostOutcome(str(target), None, str(exc), time.monotonic() - started)
        return HostOutcome(str(target), report, None, time.monotonic() - started)

    pool = ThreadPoolExecutor(max_workers=min(parallel, len(targets)))
    try:
        for outcome in pool.map(one, targets):
            outcomes[outcome.host] = outcome
    except KeyboardInterrupt:
        # Signals reach only this thread: tell the workers, let them stop and clean up.
        cancel.set()
        pool.shutdown(wait=True, cancel_futures=True)
        raise Interrupted(
            "interrupted; what reached the hosts stays staged there, and the same command resumes it"
        ) from None
    finally:
        pool.shutdown(wait=True)
    result = SendResult(outcomes=outcomes)
    if result.failed:
        raise PartialFailure(
            f"send failed on {len(result.failed)} of {len(targets)} hosts: {', '.join(result.failed)}",
            failed=result.failed,
            result=result,
        )
    return result


def _via_reference(text: str) -> RegistryReference:
    from .via import via_reference

    return via_reference(text)
