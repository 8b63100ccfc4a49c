"""``migrate``: commit a container, send its image (only missing layers), recreate it on the target.

Nothing changes on the target until the image is there and verified; the container is created
under a temporary name and only takes its final name (replacing an old one with ``replace``) once
it exists, and when it fails to start everything on the target is put back as it was. The source
container is never stopped or changed (``commit`` pauses it for the moment of the snapshot).
"""

from __future__ import annotations

import contextlib
import datetime
import re
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass

from ..copy.destinations import SshDaemonDestination
from ..copy.engine import CopyReport, copy_images
from ..copy.sources import DaemonSource
from ..daemon.engine import Engine, connect_local
from ..errors import ConflictError, EngineError, LayerferryError, NotFoundError, UsageError
from ..reference import ImageName, validate_container_name
from ..remote.host import RemoteHost
from ..remote.target import SshTarget
from ..reporting import NullReporter, Reporter
from ..settings import Settings
from ..units import human_bytes
from .commit import commit_with
from .spec import ContainerSpec

_BUILTIN_NETWORKS = {"default", "bridge", "host", "none"}
START_GRACE_SECONDS = 2.0


@dataclass(frozen=True)
class MigrateResult:
    container: str
    target: str
    image: str
    container_id: str
    started: bool
    transfer: CopyReport


def _image_name_for(container: str) -> ImageName:
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%d-%H%M%S")
    repository = re.sub(r"[^a-z0-9]+", "-", container.lower()).strip("-") or "container"
    return ImageName(f"layerferry/{repository}", f"migrate-{stamp}")


def _check_target(
    remote: RemoteHost, spec: ContainerSpec, name: str, replace: bool, source_engine_id: str
) -> dict[str, object] | None:
    """Everything that would make the target refuse, found before anything changes there."""
    if remote.info.engine_id and remote.info.engine_id == source_engine_id:
        raise UsageError(
            f"{remote.target} is the source's own engine: migrating there would replace the source",
            hint="pick another host",
        )
    existing = remote.engine.container_named(name)
    if existing is not None and not replace:
        raise ConflictError(
            f"{remote.target}: a container named {name!r} already exists",
            hint="pass --replace to replace it, or --name to pick another name",
        )
    mode = spec.network_mode
    custom = mode not in _BUILTIN_NETWORKS and not mode.startswith("container:")
    if custom and mode not in remote.engine.network_names():
        raise NotFoundError(
            f"{remote.target}: network {mode!r} does not exist",
            hint=f"create it there first (docker network create {mode})",
        )
    return existing


def _wait_running(engine: Engine, container_id: str) -> None:
    """A container that dies right after start is a failed migration, not a success."""
    deadline = time.monotonic() + START_GRACE_SECONDS
    while True:
        state = engine.container(container_id).get("State") or {}
        if not state.get("Running") and not state.get("Restarting"):
            logs = engine.logs(container_id).strip().splitlines()
            tail = f"; last log line: {logs[-1]}" if logs else ""
            raise EngineError(
                f"{engine.where}: the migrated container exited right after start "
                f"(exit code {state.get('ExitCode')}){tail}"
            )
        if time.monotonic() >= deadline:
            return
        time.sleep(0.25)


def _recreate(
    remote: RemoteHost,
    spec: ContainerSpec,
    image: str,
    name: str,
    existing: dict[str, object] | None,
    start: bool,
    reporter: Reporter,
) -> str:
    engine = remote.engine
    temporary = f"{name}-lf-{secrets.token_hex(4)}"
    new_id = engine.create_container(spec.create_body(image), temporary)
    old_id = str(existing["Id"]) if existing else None
    old_state = existing.get("State") if existing else None
    old_was_running = isinstance(old_state, dict) and bool(old_state.get("Running"))
    parked = f"{name}-replaced-{secrets.token_hex(4)}"
    try:
        if old_id:
            if old_was_running:
                engine.stop(old_id)
            engine.rename(old_id, parked)
        engine.rename(new_id, name)
        if start:
            engine.start(new_id)
            _wait_running(engine, new_id)
    except BaseException:
        _undo(engine, new_id, old_id, name, old_was_running)
        raise
    if old_id:
        engine.remove_container(old_id, force=True)
        reporter.step(f"{remote.target}: replaced the old container {name}")
    return new_id


def _undo(
    engine: Engine, new_id: str, old_id: str | None, name: str, old_was_running: bool
) -> None:
    """Put the target back as it was; failures here must not hide the original error."""
    steps: list[Callable[[], None]] = [lambda: engine.remove_container(new_id, force=True)]
    if old_id:
        steps.append(lambda: engine.rename(old_id, name))
        if old_was_running:
            steps.append(lambda: engine.start(old_id))
    for step in steps:
        with contextlib.suppress(LayerferryError):
            step()


def migrate(
    container: str,
    host: str | SshTarget,
    *,
    name: str | None = None,
    start: bool = False,
    replace: bool = False,
    settings: Settings | None = None,
    reporter: Reporter | None = None,
) -> MigrateResult:
    """Move *container* from the local engine to *host* with its changes and run configuration."""
    settings = settings or Settings.from_env()
    reporter = reporter or NullReporter()
    validate_container_name(container)
    target = host if isinstance(host, SshTarget) else SshTarget.parse(host)
    new_name = validate_container_name(name) if name else None
    local = connect_local(settings.docker_host)
    try:
        spec = ContainerSpec.from_inspect(local.container(container))
        new_name = new_name or spec.name
        with RemoteHost.connect(target, ssh_config=settings.ssh_config) as remote:
            reporter.step(
                f"connected to {target} (Docker {remote.info.version}, {remote.info.name})"
            )
            existing = _check_target(remote, spec, new_name, replace, local.info().engine_id)
            for mount in spec.mounts_left_behind:
                reporter.warn(mount)
            image_name = _image_name_for(spec.name)
            commit_with(
                local,
                container,
                image_name,
                changes=[],
                message=f"layerferry migrate {container}",
                author=None,
                reporter=reporter,
            )
            image = DaemonSource(local, settings.blob_cache()).image(str(image_name))
            transfer = copy_images(
                [image],
                SshDaemonDestination(remote, settings.blob_cache(), reporter),
                reporter=reporter,
            )
            reporter.step(
                f"{target}: image {image_name} is there, verified ({human_bytes(transfer.bytes_sent)} sent)"
            )
            new_id = _recreate(remote, spec, str(image_name), new_name, existing, start, reporter)
            ports = ", ".join(spec.published_ports) or "no published ports"
            reporter.step(
                f"{target}: container {new_name} {'started' if start else 'created'} ({ports})"
            )
    finally:
        local.close()
    return MigrateResult(
        container=container,
        target=str(target),
        image=str(image_name),
        container_id=new_id,
        started=start,
        transfer=transfer,
    )
