"""``migrate``: a whole container to another host (or into one bundle file), as it was.

Order, so that nothing changes on the target until everything needed is known to be there:

1. read the container's spec on the local engine (compared with its image, volumes, networks);
2. connect to the target and check everything it would refuse or lack (:mod:`.preflight`):
   the name, ports, bind paths, devices, networks, volume and log drivers; refuse, or leave
   such parts out with ``skip_missing``; ``dry_run`` stops here with the plan;
3. hold the container still (paused, or stopped with ``stop_source``), commit it and read the
   data of its volumes (``volumes``) and bind paths (``bind_mounts=copy``) into the local cache;
   put it back as it was (a paused one stays paused, a stopped one stopped);
4. send the image (only layers the target lacks) and stage the data there, verified;
5. recreate the container (:mod:`.recreate`): networks and volumes it needs, data restored,
   created, started with ``start`` (and healthy, if it has a healthcheck), its settings compared
   with the source's. Any failure there puts the target back as it was.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..copy.blobcache import BlobCache
from ..copy.destinations import check_writable
from ..copy.engine import CopyReport, copy_images
from ..copy.sources import DaemonSource
from ..daemon.engine import Engine, connect_local
from ..errors import LayerferryError, UsageError
from ..reference import validate_container_name
from ..remote.host import RemoteHost
from ..remote.target import SshTarget
from ..reporting import NullReporter, Reporter
from ..settings import Settings
from ..units import human_bytes
from .bundle import members_for, write_bundle
from .capture import Capture, capture, image_name_for, read_spec, stamp
from .commit import warn_secret_paths
from .describe import MovePlan, plan_move
from .normalize import Difference
from .preflight import BindMode, Options, Preflight, preflight
from .record import ContainerRecord
from .recreate import DEFAULT_HEALTH_TIMEOUT, recreate
from .site import RemoteSite
from .spec import ContainerSpec, MountSpec
from .volumes import CapturedData


@dataclass(frozen=True)
class DataMoved:
    label: str
    destination: str
    bytes: int


@dataclass(frozen=True)
class MigrateResult:
    container: str
    target: str
    """``ssh://…``, or the bundle's path."""
    image: str
    container_id: str | None
    """On the target (None for a bundle or a dry run)."""
    started: bool
    transfer: CopyReport | None
    data: list[DataMoved] = field(default_factory=list)
    source_state: str = ""
    """How the source container was left: running, paused or stopped."""
    skipped: list[str] = field(default_factory=list)
    attributes: int = 0
    """Settings compared between source and target."""
    differences: list[Difference] = field(default_factory=list)
    healthy: bool | None = None
    kept_volumes: dict[str, str] = field(default_factory=dict)
    """Volumes refilled on the target (``--replace``) -> the volume keeping their previous data."""
    bundle_bytes: int | None = None
    plan: MovePlan | None = None
    """The plan, for a dry run."""

    @property
    def dry_run(self) -> bool:
        return self.plan is not None


def migrate(
    container: str,
    host: str | SshTarget | None = None,
    *,
    output: Path | None = None,
    name: str | None = None,
    start: bool = False,
    replace: bool = False,
    stop_source: bool = False,
    volumes: bool = False,
    bind_mounts: BindMode | str = BindMode.REQUIRE,
    skip_missing: bool = False,
    dry_run: bool = False,
    health_timeout: float = DEFAULT_HEALTH_TIMEOUT,
    settings: Settings | None = None,
    reporter: Reporter | None = None,
) -> MigrateResult:
    """Move *container* from the local engine to *host*, or write it to the bundle *output*.

    *volumes*: copy the data of its volumes (named and anonymous); without it the data stays
    behind (and a warning says so). *bind_mounts*: ``require`` bind paths to exist on the target,
    ``copy`` their contents, or ``skip`` them. *skip_missing*: leave out what the target cannot
    provide instead of refusing. *stop_source*: stop the source (and leave it stopped) instead
    of pausing it while it is read.
    """
    settings = settings or Settings.from_env()
    reporter = reporter or NullReporter()
    validate_container_name(container)
    new_name = validate_container_name(name) if name else None
    try:
        mode = BindMode(bind_mounts)
    except ValueError as exc:
        raise UsageError(
            f"--bind-mounts must be copy, require or skip, not {bind_mounts!r}"
        ) from exc
    if (host is None) == (output is None):
        raise UsageError("name a target host (ssh://[user@]host[:port]) or a bundle file (-o FILE)")
    if output is not None:
        if str(output) == "-":
            raise UsageError(
                "migrate writes a bundle to a file, not to stdout (-o -)",
                hint="name a file: -o web.bundle (then copy it and `layerferry restore` it)",
            )
        if name or replace or start or skip_missing:
            raise UsageError("--name, --replace, --start and --skip-missing belong to `restore`")
        check_writable(output)
    target = (
        None if host is None else host if isinstance(host, SshTarget) else SshTarget.parse(host)
    )
    local = connect_local(settings.docker_host)
    try:
        local.container(container)  # a missing container is named before any host is reached
        if output is not None:
            return _to_bundle(
                local, container, output, volumes, mode, stop_source, dry_run, settings, reporter
            )
        assert target is not None
        with RemoteHost.connect(target, ssh_config=settings.ssh_config) as remote:
            reporter.step(
                f"connected to {target} (Docker {remote.info.version}, {remote.info.name})"
            )
            if remote.info.engine_id and remote.info.engine_id == local.info().engine_id:
                raise UsageError(
                    f"{target} is the source's own engine: migrating there would replace the "
                    "source",
                    hint="pick another host (or `snapshot`/`rollback` for one host)",
                )
            options = Options(
                name=new_name or "", replace=replace, volumes=volumes, bind_mounts=mode,
                skip_missing=skip_missing,
            )  # fmt: skip
            site = RemoteSite(remote, settings.blob_cache(), reporter)
            return _to_site(
                local, site, container, options, stop_source, start, dry_run, health_timeout,
                settings.blob_cache(), reporter,
            )  # fmt: skip
    finally:
        local.close()


def warn_left_behind(
    spec: ContainerSpec, plan: Preflight, reporter: Reporter, *, bundle: bool = False
) -> None:
    """Say loudly what stays behind: volume data not copied, bind contents, links."""
    travelling = {m.destination for m in plan.data_mounts}
    for mount in plan.spec.data_mounts:
        if mount.destination not in travelling:
            reporter.warn(
                f"{mount.label}: its data is not part of a commit and stays behind: "
                f"{_fate(mount, plan, bundle)} (--volumes copies it)"
            )
    for mount in plan.spec.bind_mounts:
        if mount.destination not in travelling:
            reporter.warn(
                f"bind mount {mount.source}: its contents are not copied; the target's own "
                "path is used (--bind-mounts copy copies them)"
            )
    for note in spec.not_carried:
        reporter.warn(f"not carried: {note}")


def _fate(mount: MountSpec, plan: Preflight, bundle: bool) -> str:
    """What the container gets at *mount* where it is recreated, its data left behind."""
    if bundle:
        return "the bundle does not hold it; a restored container starts with an EMPTY volume"
    if not mount.anonymous and mount.source in plan.present_volumes:
        return "the container there uses the volume of that name the target already has"
    return "the container there starts with an EMPTY volume"


def _to_site(
    local: Engine,
    site: RemoteSite,
    container: str,
    options: Options,
    stop_source: bool,
    start: bool,
    dry_run: bool,
    health_timeout: float,
    cache: BlobCache,
    reporter: Reporter,
) -> MigrateResult:
    memo: dict[str, dict[str, Any] | None] = {}
    spec, inspect, _ = read_spec(local, container, memo)
    if not options.name:
        options = Options(**{**vars(options), "name": spec.name})
    plan = preflight(site, spec, options, reporter)
    warn_left_behind(spec, plan, reporter)
    if dry_run:
        chains = site.engine.layer_chains()
        move = plan_move(local, inspect, plan, site.where, chains, cache)
        return MigrateResult(
            spec.name, site.where, "", None, False, None, plan=move, skipped=plan.skipped
        )
    image_name = image_name_for(spec.name, f"migrate-{stamp()}")
    _warn_secrets_travel(local, container, reporter)
    cap = capture(
        local, container, image_name, plan.data_mounts, cache, reporter,
        stop_source=stop_source, message=f"layerferry migrate {container}", defaults_memo=memo,
    )  # fmt: skip
    done = False
    try:
        image = DaemonSource(local, cache).image(str(image_name))
        transfer = copy_images([image], site.destination(), reporter=reporter)
        reporter.step(
            f"{site.where}: image {image_name} is there, verified "
            f"({human_bytes(transfer.bytes_sent)} sent)"
        )
        site.stage(cap.data, [0])
        made = recreate(
            site, plan, str(image_name), cap.data, reporter,
            source=cap.attributes, start=start, health_timeout=health_timeout,
        )  # fmt: skip
        done = True
    finally:
        with contextlib.suppress(LayerferryError):
            site.discard_staged()
        forget(cap.data)
        if not done:  # the target as it was: without the image this attempt sent
            with contextlib.suppress(LayerferryError):
                site.engine.remove_image(str(image_name))
        drop_commit(local, str(image_name))
    _report(site.where, plan, made.differences, made.attributes, start, reporter)
    return MigrateResult(
        container=container,
        target=site.where,
        image=str(image_name),
        container_id=made.container_id,
        started=start,
        transfer=transfer,
        data=_moved(cap.data),
        source_state=_left_state(cap, stop_source),
        skipped=plan.skipped,
        attributes=made.attributes,
        differences=made.differences,
        healthy=made.healthy,
        kept_volumes=made.kept_volumes,
    )


def _to_bundle(
    local: Engine,
    container: str,
    output: Path,
    volumes: bool,
    mode: BindMode,
    stop_source: bool,
    dry_run: bool,
    settings: Settings,
    reporter: Reporter,
) -> MigrateResult:
    cache = settings.blob_cache()
    memo: dict[str, dict[str, Any] | None] = {}
    spec, inspect, _ = read_spec(local, container, memo)
    if mode is BindMode.SKIP:
        for mount in spec.bind_mounts:
            spec = spec.without_mount(mount.destination)
    mounts = list(spec.data_mounts) if volumes else []
    mounts += spec.bind_mounts if mode is BindMode.COPY else []
    plan = Preflight(spec=spec, existing=None, data_mounts=mounts)
    warn_left_behind(spec, plan, reporter, bundle=True)
    if dry_run:
        move = plan_move(local, inspect, plan, str(output), None, cache)
        return MigrateResult(spec.name, str(output), "", None, False, None, plan=move)
    image_name = image_name_for(spec.name, f"migrate-{stamp()}")
    _warn_secrets_travel(local, container, reporter)
    cap = capture(
        local, container, image_name, mounts, cache, reporter,
        stop_source=stop_source, message=f"layerferry migrate {container}", defaults_memo=memo,
    )  # fmt: skip
    try:
        image = DaemonSource(local, cache).image(str(image_name))
        record = ContainerRecord.from_capture(
            cap, local.where, members=members_for(cap.data), spec=spec
        )
        size = write_bundle(output, image, record, cap.data, cache)
    finally:
        forget(cap.data)
        drop_commit(local, str(image_name))
    reporter.step(
        f"wrote {output} ({human_bytes(size)}): image, configuration and {len(cap.data)} data tar(s)"
    )
    return MigrateResult(
        container=container,
        target=str(output),
        image=str(image_name),
        container_id=None,
        started=False,
        transfer=None,
        data=_moved(cap.data),
        source_state=_left_state(cap, stop_source),
        bundle_bytes=size,
    )


def _warn_secrets_travel(engine: Engine, container: str, reporter: Reporter) -> None:
    warn_secret_paths(
        engine, container, reporter, fate="travels with the container",
        advice=f"`layerferry diff {container}` shows what else its changes hold",
    )  # fmt: skip


def drop_commit(engine: Engine, image: str) -> None:
    """Remove the source's commit of the container: it only carried the container's changes to
    the target (or into the bundle). Kept if anything else uses it (the engine refuses then)."""
    with contextlib.suppress(LayerferryError):
        engine.remove_image(image)


def forget(data: list[CapturedData]) -> None:
    """Drop captured data from the (layer) cache: it was read for this one move."""
    for item in data:
        item.cache.discard_layer(item.entry.diff_id)


def _moved(data: list[CapturedData]) -> list[DataMoved]:
    return [DataMoved(d.mount.label, d.mount.destination, d.size) for d in data]


def _left_state(cap: Capture, stop_source: bool) -> str:
    return "stopped" if stop_source else cap.state


def _report(
    where: str,
    plan: Preflight,
    differences: list[Difference],
    attributes: int,
    start: bool,
    reporter: Reporter,
) -> None:
    for difference in differences:
        reporter.warn(f"{where}: differs from the source: {difference}")
    ports = ", ".join(plan.spec.published_ports) or "no published ports"
    reporter.step(
        f"{where}: container {plan.spec.name} {'started' if start else 'created'} ({ports}); "
        f"{attributes - len(differences)}/{attributes} settings equal the source's"
    )
